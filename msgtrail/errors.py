"""The service's exception tree; each maps to one OneSignal-style error answer.

Every error leaves as `{"errors": [...]}` with the status code OneSignal uses; the
mapping lives in `msgtrail.web.app` and nowhere else.
"""

from __future__ import annotations


class MsgtrailError(Exception):
    """Base of every error the API reports to a client."""

    status_code = 500

    def __init__(self, *messages: str, headers: dict[str, str] | None = None,
                 extra: dict | None = None) -> None:
        super().__init__("; ".join(messages))
        self.messages = list(messages) or [self.__class__.__doc__ or "Error"]
        self.headers = headers or {}
        self.extra = extra or {}


class BadRequest(MsgtrailError):
    """The request is malformed or names something invalid (400)."""

    status_code = 400


class Unauthorized(MsgtrailError):
    """The API key is missing, unknown or revoked (401)."""

    status_code = 401


class Forbidden(MsgtrailError):
    """The request is authenticated but not allowed: a foreign SNS topic (403)."""

    status_code = 403


class NotFound(MsgtrailError):
    """No such resource for this key, or it was purged (404)."""

    status_code = 404


class PayloadTooLarge(MsgtrailError):
    """The request body carries more events or bytes than one request may (413)."""

    status_code = 413


class RateLimited(MsgtrailError):
    """Too many requests or a concurrent job; retry after the given seconds (429)."""

    status_code = 429

    def __init__(self, *messages: str, retry_after: int) -> None:
        super().__init__(*messages, headers={"Retry-After": str(max(1, int(retry_after)))})


class Unavailable(MsgtrailError):
    """The database or storage cannot take the request right now (503)."""

    status_code = 503

    def __init__(self, *messages: str, retry_after: int = 5) -> None:
        super().__init__(*messages, headers={"Retry-After": str(max(1, int(retry_after)))})
