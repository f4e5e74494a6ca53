"""Secrets at rest: webhook credentials are encrypted with Fernet (AES-128-CBC plus
HMAC-SHA256, from `cryptography`) before they reach the database."""

from __future__ import annotations

import hashlib
import hmac
import json
import logging
import os
from pathlib import Path
from typing import Any

from cryptography.fernet import Fernet, InvalidToken, MultiFernet

from msgtrail.errors import Unavailable
from msgtrail.settings import Settings

log = logging.getLogger("msgtrail.vault")


class VaultError(Unavailable):
    """A stored secret cannot be decrypted with the configured keys: the server's
    trouble, not the caller's (503; a restored database without its key, a key
    replaced instead of rotated)."""


def _keys(settings: Settings) -> list[str]:
    if settings.secret_key:
        return [k.strip() for k in settings.secret_key.split(",") if k.strip()]
    # The embedded default runs with no configuration: its key lives beside its data,
    # readable by the owner only (a database copied alone is still unreadable).
    path = Path(settings.data_dir) / "secret.key"
    if not path.exists():
        settings.ensure_data_dir()
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "w") as out:
            out.write(Fernet.generate_key().decode())
    return [path.read_text().strip()]


class Vault:
    """Encrypts with the first key, decrypts with any: keys rotate by prepending."""

    def __init__(self, settings: Settings) -> None:
        keys = _keys(settings)
        self._fernet = MultiFernet([Fernet(k) for k in keys])
        self._first = keys[0].encode()

    def derive(self, purpose: str) -> bytes:
        """A secret for one purpose (signing dashboard sessions), from the first key:
        every process with the same MSGTRAIL_SECRET_KEY derives the same one."""
        return hmac.new(self._first, purpose.encode(), hashlib.sha256).digest()

    def seal(self, value: dict[str, Any]) -> str:
        return self._fernet.encrypt(json.dumps(value).encode()).decode()

    def open(self, token: str) -> dict[str, Any]:
        try:
            return dict(json.loads(self._fernet.decrypt(token.encode())))
        except InvalidToken:
            log.error("a stored webhook credential does not decrypt with MSGTRAIL_SECRET_KEY")
            raise VaultError("a stored webhook credential does not decrypt with "
                             "MSGTRAIL_SECRET_KEY (was the key changed?)") from None
