"""The dashboard's session: a signed, expiring cookie (itsdangerous) holding the app,
the SHA-256 of the key it signed in with (checked on every request, so revoking the
key ends the session) and the CSRF token every form must carry back."""

from __future__ import annotations

import hmac
import secrets
from dataclasses import dataclass

from itsdangerous import BadSignature, URLSafeTimedSerializer
from starlette.requests import Request
from starlette.responses import Response

COOKIE = "msgtrail_session"
MAX_AGE = 8 * 3600


@dataclass(frozen=True)
class Session:
    csrf: str
    app_id: str | None = None
    key_hash: str | None = None


class Sessions:
    def __init__(self, secret: bytes, secure: bool) -> None:
        self._serializer = URLSafeTimedSerializer(secret, salt="msgtrail-dashboard")
        self._secure = secure

    def read(self, request: Request) -> Session | None:
        raw = request.cookies.get(COOKIE)
        if not raw:
            return None
        try:
            doc = self._serializer.loads(raw, max_age=MAX_AGE)
        except BadSignature:  # also an expired one (SignatureExpired)
            return None
        if not isinstance(doc, dict) or not isinstance(doc.get("csrf"), str):
            return None
        return Session(doc["csrf"], doc.get("app_id"), doc.get("key_hash"))

    def anonymous(self) -> Session:
        return Session(secrets.token_urlsafe(24))

    def signed_in(self, app_id: str, key_hash: str) -> Session:
        # A new CSRF token at sign-in: one seen before it proves nothing after.
        return Session(secrets.token_urlsafe(24), app_id, key_hash)

    def write(self, response: Response, session: Session) -> None:
        value = self._serializer.dumps({"csrf": session.csrf, "app_id": session.app_id,
                                        "key_hash": session.key_hash})
        response.set_cookie(COOKIE, value, max_age=MAX_AGE, httponly=True, samesite="strict",
                            secure=self._secure, path="/")

    def clear(self, response: Response) -> None:
        response.delete_cookie(COOKIE, path="/", httponly=True, samesite="strict",
                               secure=self._secure)


def csrf_ok(session: Session | None, given: object) -> bool:
    return (session is not None and isinstance(given, str)
            and hmac.compare_digest(session.csrf.encode(), given.encode()))
