"""What the sync and async clients share: requests, answers, the retry policy.

The clients differ only in how they do I/O; every decision (what to send, what an
answer means, how long to wait, when to give up) is made here, so the two never drift.
"""

from __future__ import annotations

import json
import os
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import unquote, urlparse

import httpx
from tenacity import RetryCallState, retry_if_exception_type, wait_exponential_jitter

from msgtrail.client._exceptions import (
    APIError,
    AuthenticationError,
    BadRequestError,
    ClientError,
    DeadlineExceededError,
    DownloadError,
    ExportFailedError,
    NotFoundError,
)
from msgtrail.client._files import output_name
from msgtrail.client._models import Progress

DEFAULT_BASE_URL = "https://api.onesignal.com"
# Statuses that mean "not now": wait (Retry-After when given) and ask again.
TRANSIENT = {429, 500, 502, 503, 504}


class Again(Exception):
    """Raised inside an attempt: try again after `retry_after` seconds, or after the
    backoff when the server gave no time."""

    def __init__(self, reason: str, retry_after: float | None = None,
                 progress: Progress | None = None) -> None:
        super().__init__(reason)
        self.reason = reason
        self.retry_after = retry_after
        self.progress = progress


@dataclass
class Call:
    """One export request and what follows from it."""

    kind: str  # export | history | activity
    message_id: str  # an app-level (activity) export: empty
    path: str
    params: dict[str, str]
    body: bytes
    # The format the server writes; the client converts only CSV.
    served: str = "csv"
    url: str = ""
    export_id: str | None = None
    drops: int = 0
    accepts_ranges: bool = False
    # The file's manifest, when the server publishes one: the download is checked
    # against its rows and SHA-256 before it is kept.
    manifest: dict[str, Any] | None = None
    # An activity export's cursor for the next one, from its ready status.
    next_cursor: str | None = None


def retry_after(response: httpx.Response) -> float | None:
    value = response.headers.get("retry-after", "")
    return float(value) if value.strip().isdigit() else None


def error_messages(response: httpx.Response) -> list[str]:
    try:
        doc = response.json()
    except ValueError:
        return [response.text[:500]] if response.text else []
    errors = doc.get("errors") if isinstance(doc, dict) else None
    if isinstance(errors, list):
        return [str(e) for e in errors]
    if isinstance(errors, dict):  # some OneSignal endpoints answer {"errors": {field: msg}}
        return [f"{k}: {v}" for k, v in errors.items()]
    return [json.dumps(doc)[:500]]


def api_error(response: httpx.Response) -> APIError:
    status = response.status_code
    cls = {400: BadRequestError, 401: AuthenticationError, 403: AuthenticationError,
           404: NotFoundError}.get(status, APIError)
    return cls(status, error_messages(response), response.text)


def file_name(url: str) -> str:
    return unquote(Path(urlparse(url).path).name) or "export.csv.gz"


def destination(dest: str | Path, url: str, decompress: bool, fmt: str) -> Path:
    """The file to write: `dest` itself, or, when `dest` is a directory, the server's
    file name inside it. A name ending in a slash means a directory, created if missing
    (`exports/` must not become a file called `exports`)."""
    path = Path(dest)
    if isinstance(dest, str) and dest.endswith(("/", os.sep)):
        path.mkdir(parents=True, exist_ok=True)
    if path.is_dir():
        return path / output_name(file_name(url), decompress, fmt)
    return path


class BaseClient:
    """Settings and decisions common to `Client` and `AsyncClient`."""

    def __init__(self, api_key: str, app_id: str, base_url: str = DEFAULT_BASE_URL, *,
                 deadline: float = 3600, poll_initial: float = 0.5, poll_max: float = 30.0,
                 timeout: float = 60, max_drops: int = 10) -> None:
        self.api_key = api_key
        self.app_id = app_id
        self.base_url = base_url.rstrip("/")
        self.deadline = deadline
        self.poll_initial = poll_initial
        self.poll_max = poll_max
        self.timeout = timeout
        self.max_drops = max_drops
        self._backoff = wait_exponential_jitter(multiplier=poll_initial, max=poll_max,
                                                jitter=poll_initial)

    def _api_headers(self) -> dict[str, str]:
        return {"Authorization": f"Key {self.api_key}", "Content-Type": "application/json",
                "Accept": "application/json"}

    # -- what to ask -----------------------------------------------------------------

    def _export_call(self, message_id: str, events: list[str] | str | None,
                     csv_raw: bool = False) -> Call:
        params = {"app_id": self.app_id}
        if events:
            params["events"] = events if isinstance(events, str) else ",".join(events)
        if csv_raw:
            params["csv_raw"] = "true"
        return Call("export", message_id, f"/notifications/{message_id}/export_events",
                    params, b"")

    def _history_call(self, message_id: str, events: str, email: str | None,
                      csv_raw: bool = False) -> Call:
        body: dict[str, str | bool] = {"app_id": self.app_id, "events": events}
        if email:
            body["email"] = email
        if csv_raw:
            body["csv_raw"] = True
        return Call("history", message_id, f"/notifications/{message_id}/history", {},
                    json.dumps(body).encode())

    def _activity_call(self, *, message_ids: list[str] | None = None,
                       events: list[str] | str | None = None, since: int | str | None = None,
                       until: int | str | None = None, cursor: str | None = None,
                       format: str = "csv", compression: str | None = None) -> Call:
        """msgtrail's app-level export: every event of the app's messages recorded
        after `cursor` (all without one), within the filter, written as `format`."""
        body = {"message_ids": message_ids, "events": events, "since": since, "until": until,
                "cursor": cursor, "format": format, "compression": compression}
        return Call("activity", "", f"/apps/{self.app_id}/activity_exports", {},
                    json.dumps({k: v for k, v in body.items() if v is not None}).encode(),
                    served=format)

    def _status_path(self, call: Call) -> str:
        if call.kind == "activity":
            return f"/apps/{self.app_id}/activity_exports/{call.export_id}"
        return f"/notifications/{call.message_id}/export_events/{call.export_id}"

    # -- what answers mean -----------------------------------------------------------

    def _on_requested(self, call: Call, response: httpx.Response) -> None:
        """Record the file URL of a 200; raise Again for 429/5xx, APIError otherwise."""
        if response.status_code in TRANSIENT:
            raise Again(f"HTTP {response.status_code}: {'; '.join(error_messages(response))}",
                        retry_after(response))
        if response.status_code != 200:
            raise api_error(response)
        doc = response.json()
        url = doc.get("csv_file_url") or doc.get("destination_url") or doc.get("file_url")
        if not isinstance(url, str) or not url:
            raise APIError(200, ["the answer carries no file URL"], response.text)
        call.url = url
        call.export_id = doc.get("export_id") if isinstance(doc.get("export_id"), str) else None

    def _on_status(self, call: Call, response: httpx.Response) -> None:
        """msgtrail's job status: return once ready (keeping its manifest), Again while
        it runs."""
        if response.status_code in TRANSIENT:
            raise Again(f"HTTP {response.status_code}", retry_after(response))
        if response.status_code != 200:
            raise api_error(response)
        doc = response.json()
        state = doc.get("state")
        if state == "ready":
            manifest = doc.get("manifest")
            call.manifest = manifest if isinstance(manifest, dict) else None
            cursor = doc.get("next_cursor")
            call.next_cursor = cursor if isinstance(cursor, str) else None
            return
        if state in ("failed", "expired"):
            raise ExportFailedError(f"export {state}: {doc.get('error', 'no reason given')}")
        raise Again(f"export {state}", progress=Progress(
            "waiting", rows=doc.get("rows_written"), total_rows=doc.get("total_rows")))

    def _on_file(self, call: Call, response: httpx.Response, tmp: Path) -> None:
        """Raise Again while the file is not ready (404 NoSuchKey for exports, 403 for
        history reports, as OneSignal documents them) or the store is busy."""
        status = response.status_code
        if status in (200, 206):
            return
        if status == 404 or (status == 403 and call.kind == "history"):
            raise Again("file not ready yet")
        if status in TRANSIENT:
            raise Again(f"file URL answered HTTP {status}", retry_after(response))
        if status == 416:
            # What we hold is not a prefix of this file (it was written again, say):
            # drop it, so that the next attempt asks for the whole file from byte 0.
            tmp.unlink(missing_ok=True)
            raise Again("range not satisfiable; restarting the download")
        raise DownloadError(f"file URL answered HTTP {status}: {response.text[:200]}")

    # -- how long to wait, when to give up -------------------------------------------

    def _policy(self, deadline: float) -> dict[str, Any]:
        """tenacity settings: retry on Again, waiting what the server asked or the
        jittered backoff, and never past the deadline."""
        def wait(state: RetryCallState) -> float:
            exc = state.outcome.exception() if state.outcome else None
            if isinstance(exc, Again) and exc.retry_after is not None:
                return exc.retry_after
            return float(self._backoff(state))

        def stop(state: RetryCallState) -> bool:
            return time.monotonic() + (state.upcoming_sleep or 0) >= deadline

        return dict(retry=retry_if_exception_type(Again), wait=wait, stop=stop, reraise=True)

    def _give_up(self, exc: Again, what: str, deadline: float) -> ClientError:
        left = deadline - time.monotonic()
        return DeadlineExceededError(
            f"{what}: deadline of {self.deadline:g} s would pass "
            f"({max(left, 0):.1f} s left); last answer: {exc.reason}")

    def _count_drop(self, call: Call, exc: Exception) -> Again:
        call.drops += 1
        if call.drops > self.max_drops:
            raise DownloadError(f"connection lost {call.drops} times: {exc}") from exc
        return Again(f"connection lost: {exc}")

    def _download_headers(self, call: Call, have: int) -> dict[str, str]:
        return {"Range": f"bytes={have}-"} if have and call.accepts_ranges else {}

    @staticmethod
    def _receiving(call: Call, response: httpx.Response, have: int) -> tuple[str, int | None, int]:
        """How to write a file answer to the temporary file: (open mode, total bytes if
        known, bytes already there). A 206 resumes after `have`; a 200 starts over."""
        call.accepts_ranges = response.headers.get("accept-ranges") == "bytes"
        resumed = response.status_code == 206
        done = have if resumed else 0
        span = response.headers.get("content-range", "")
        length = response.headers.get("content-length")
        if "/" in span and span.rsplit("/", 1)[1].isdigit():
            total: int | None = int(span.rsplit("/", 1)[1])
        else:
            total = done + int(length) if length and length.isdigit() else None
        return ("ab" if resumed else "wb"), total, done
