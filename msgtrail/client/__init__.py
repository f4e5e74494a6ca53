"""msgtrail's client: exports from OneSignal or msgtrail, from request to file on disk.

It does the whole polling dance: waits out 429 and 503 (honouring Retry-After) within a
total deadline, polls with exponential backoff and jitter (msgtrail's job status when
the server has it), streams the file under a temporary name with resumption, verifies
it, and renames it into place only when complete.
"""

from msgtrail.client._async_client import AsyncClient
from msgtrail.client._base import DEFAULT_BASE_URL
from msgtrail.client._client import Client
from msgtrail.client._exceptions import (
    APIError,
    AuthenticationError,
    BadRequestError,
    ClientError,
    CorruptFileError,
    DeadlineExceededError,
    DownloadError,
    ExportFailedError,
    NotFoundError,
    WebhookSignatureError,
)
from msgtrail.client._models import ExportResult, Progress
from msgtrail.client._webhooks import WEBHOOK_HEADER, sign_webhook, verify_webhook

__all__ = [
    "DEFAULT_BASE_URL",
    "WEBHOOK_HEADER",
    "APIError",
    "AsyncClient",
    "AuthenticationError",
    "BadRequestError",
    "Client",
    "ClientError",
    "CorruptFileError",
    "DeadlineExceededError",
    "DownloadError",
    "ExportFailedError",
    "ExportResult",
    "NotFoundError",
    "Progress",
    "WebhookSignatureError",
    "sign_webhook",
    "verify_webhook",
]
