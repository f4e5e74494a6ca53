"""The dashboard's session. Before sign-in it is a signed cookie (itsdangerous) that
holds only the CSRF token the sign-in form must carry back. Signed in, the cookie holds
a random token and the session itself is a row of `dashboard_sessions` (the token's
SHA-256, the app, the key it signed in with, its CSRF token, its expiry): signing out,
or rotating or revoking that key, deletes the row, and the cookie opens nothing after
that, wherever it was copied to (ASVS 3.3.1)."""

from __future__ import annotations

import functools
import hashlib
import hmac
import secrets
from dataclasses import dataclass

from itsdangerous import BadSignature, URLSafeTimedSerializer
from starlette.requests import Request
from starlette.responses import Response

from msgtrail.audit import Actor
from msgtrail.service import Service

COOKIE = "msgtrail_session"
MAX_AGE = 8 * 3600


@dataclass(frozen=True)
class Session:
    csrf: str
    app_pk: int | None = None
    key_hash: str | None = None
    # The cookie's token of a signed-in session (only its hash is stored).
    token: str | None = None


def _hash(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


class Sessions:
    """The cookie's codec, and the signed-in sessions the service keeps."""

    def __init__(self, service: Service) -> None:
        # Signed with a key derived from the vault's: every process derives the same.
        self._serializer = URLSafeTimedSerializer(service.vault.derive("dashboard-session"),
                                                  salt="msgtrail-dashboard")
        self._secure = service.settings.resolved_public_url().startswith("https:")
        self._service = service

    def read(self, request: Request) -> Session | None:
        """The request's session: a signed-in one only while its row exists."""
        raw = request.cookies.get(COOKIE)
        if not raw:
            return None
        try:
            doc = self._serializer.loads(raw, max_age=MAX_AGE)
        except BadSignature:  # also an expired one (SignatureExpired)
            return None
        if not isinstance(doc, dict):
            return None
        token = doc.get("token")
        if isinstance(token, str):
            row = self._service.session(_hash(token))
            if row is None or not hmac.compare_digest(row[0], _hash(token)):
                return None
            _, app_pk, key_hash, signed_in_csrf = row
            return Session(signed_in_csrf, app_pk, key_hash, token)
        csrf = doc.get("csrf")
        return Session(csrf) if isinstance(csrf, str) else None

    def anonymous(self) -> Session:
        return Session(secrets.token_urlsafe(24))

    def sign_in(self, app_pk: int, key_hash: str, actor: Actor) -> Session:
        """A new signed-in session, stored. A new CSRF token at sign-in: one seen before
        it proves nothing after. Sessions past their expiry are cleared on the way."""
        session = Session(secrets.token_urlsafe(24), app_pk, key_hash, secrets.token_urlsafe(32))
        self._service.open_session(_hash(str(session.token)), app_pk, key_hash, session.csrf,
                                   MAX_AGE, actor)
        return session

    def sign_out(self, session: Session, actor: Actor) -> None:
        if session.token:
            self._service.close_session(_hash(session.token), actor)

    def write(self, response: Response, session: Session) -> None:
        doc = {"token": session.token} if session.token else {"csrf": session.csrf}
        response.set_cookie(COOKIE, self._serializer.dumps(doc), max_age=MAX_AGE,
                            httponly=True, samesite="strict", secure=self._secure, path="/")

    def clear(self, response: Response) -> None:
        response.delete_cookie(COOKIE, path="/", httponly=True, samesite="strict",
                               secure=self._secure)


def csrf_ok(session: Session | None, given: object) -> bool:
    return (session is not None and isinstance(given, str)
            and hmac.compare_digest(session.csrf.encode(), given.encode()))


@functools.lru_cache(maxsize=16)
def sessions_of(service: Service) -> Sessions:
    """The service's sessions: one codec per service, its key derived once."""
    return Sessions(service)
