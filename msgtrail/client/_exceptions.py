"""The client's exceptions: catch at the level you care about.

ClientError
├── APIError                 the server refused the request (carries its errors)
│   ├── BadRequestError      400: a malformed request or an invalid id
│   ├── AuthenticationError  401/403: a missing, wrong or revoked key
│   └── NotFoundError        404: no such message in this app, or it was purged
├── ExportFailedError        the server gave up on the export (or it expired)
├── DeadlineExceededError    the total deadline passed (waiting out 429/503 included)
└── DownloadError            the file could not be fetched whole
    └── CorruptFileError     the bytes arrived but are not a valid file
"""

from __future__ import annotations


class ClientError(Exception):
    """Base of every error the client raises."""


class APIError(ClientError):
    """The server answered the request with an error; `errors` holds its messages."""

    def __init__(self, status: int, errors: list[str], body: str = "") -> None:
        super().__init__(f"HTTP {status}: {'; '.join(errors) or body[:200]}")
        self.status = status
        self.errors = errors
        self.body = body


class BadRequestError(APIError):
    """400: the server rejected the request as malformed."""


class AuthenticationError(APIError):
    """401 or 403: the API key is missing, wrong or revoked."""


class NotFoundError(APIError):
    """404: no such message in this app, or its activity was purged."""


class ExportFailedError(ClientError):
    """The server reports that the export failed or expired before it was fetched."""


class DeadlineExceededError(ClientError):
    """The total deadline passed before the file was on disk."""


class DownloadError(ClientError):
    """The file could not be downloaded whole, even with retries and resumption."""


class CorruptFileError(DownloadError):
    """The downloaded bytes are not a valid file (a broken gzip stream, say), or not
    the file its manifest describes."""


class WebhookSignatureError(ClientError):
    """A completion webhook's signature is missing, malformed, too old or wrong."""
