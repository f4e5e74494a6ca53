"""Amazon SNS's HTTP(S) deliveries: the message authenticity check (signature versions
1 and 2 over the canonical string, with the signing certificate fetched only from an
SNS host) and the subscription handshake."""

from __future__ import annotations

import base64
import binascii
import re
import threading
from typing import Any
from urllib.parse import urlsplit

from cryptography import x509
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import padding, rsa

from msgtrail.connectors.base import Context
from msgtrail.errors import BadRequest, Unauthorized

# The fields each message type signs, in the order SNS signs them.
_SIGNED = {
    "Notification": ("Message", "MessageId", "Subject", "Timestamp", "TopicArn", "Type"),
    "SubscriptionConfirmation": ("Message", "MessageId", "SubscribeURL", "Timestamp", "Token",
                                 "TopicArn", "Type"),
}
_SIGNED["UnsubscribeConfirmation"] = _SIGNED["SubscriptionConfirmation"]
_HASHES = {"1": hashes.SHA1, "2": hashes.SHA256}

_certs: dict[str, rsa.RSAPublicKey] = {}
_certs_lock = threading.Lock()


def canonical(doc: dict[str, Any]) -> bytes:
    """The string SNS signs: name and value lines of the signed fields present."""
    kind = doc.get("Type")
    if kind not in _SIGNED:
        raise BadRequest(f"Type: {kind!r} is not an SNS message type")
    lines = []
    for name in _SIGNED[kind]:
        if name in doc and doc[name] is not None:
            lines += [name, str(doc[name])]
    return ("\n".join(lines) + "\n").encode()


def check_host(url: object, ctx: Context, what: str) -> str:
    """The URL, if its scheme and host are an SNS endpoint's; anything else is refused,
    so that a forged message cannot make msgtrail trust or call a host of its choice."""
    if not isinstance(url, str):
        raise Unauthorized(f"{what}: missing")
    parts = urlsplit(url)
    if not re.fullmatch(ctx.sns_host_pattern, f"{parts.scheme}://{parts.netloc}"):
        raise Unauthorized(f"{what}: {parts.scheme}://{parts.netloc} is not an SNS host")
    return url


def _certificate_key(url: str, ctx: Context) -> rsa.RSAPublicKey:
    with _certs_lock:
        cached = _certs.get(url)
    if cached is not None:
        return cached
    try:
        key = x509.load_pem_x509_certificate(ctx.fetch(url)).public_key()
    except ValueError:
        raise Unauthorized("SigningCertURL does not hold a PEM certificate") from None
    if not isinstance(key, rsa.RSAPublicKey):
        raise Unauthorized("SNS signing certificate is not an RSA key")
    with _certs_lock:
        _certs[url] = key
    return key


def verify(doc: dict[str, Any], ctx: Context) -> None:
    """Raise Unauthorized unless SNS signed this message."""
    algorithm = _HASHES.get(str(doc.get("SignatureVersion")))
    if algorithm is None:
        raise Unauthorized("SignatureVersion: must be 1 or 2")
    url = check_host(doc.get("SigningCertURL"), ctx, "SigningCertURL")
    try:
        signature = base64.b64decode(str(doc.get("Signature") or ""), validate=True)
        _certificate_key(url, ctx).verify(signature, canonical(doc), padding.PKCS1v15(),
                                          algorithm())
    except (InvalidSignature, binascii.Error):
        raise Unauthorized("SNS signature does not verify") from None


def confirm(doc: dict[str, Any], ctx: Context) -> None:
    """Accept a subscription: GET its SubscribeURL (from an SNS host only)."""
    ctx.fetch(check_host(doc.get("SubscribeURL"), ctx, "SubscribeURL"))
