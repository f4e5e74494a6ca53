"""The synchronous client."""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx
from tenacity import Retrying

from msgtrail.client._base import DEFAULT_BASE_URL, Again, BaseClient, Call, destination
from msgtrail.client._files import publish, temp_path
from msgtrail.client._models import ExportResult, Progress

OnProgress = Callable[[Progress], None]


class Client(BaseClient):
    """Exports from OneSignal or msgtrail, start to file on disk:

        with Client(api_key=..., app_id=..., base_url="http://127.0.0.1:8000") as c:
            result = c.export_audience_activity(message_id, "activity.csv.gz")
    """

    def __init__(self, api_key: str, app_id: str, base_url: str = DEFAULT_BASE_URL, *,
                 transport: httpx.BaseTransport | None = None, **options: Any) -> None:
        super().__init__(api_key, app_id, base_url, **options)
        self._api = httpx.Client(base_url=self.base_url, headers=self._api_headers(),
                                 timeout=self.timeout, transport=transport)
        # File URLs (a presigned S3 URL, say) must not carry the API key.
        self._files = httpx.Client(timeout=self.timeout, transport=transport,
                                   follow_redirects=True)

    def close(self) -> None:
        self._api.close()
        self._files.close()

    def __enter__(self) -> Client:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def export_audience_activity(self, message_id: str, dest: str | Path,
                                 events: list[str] | str | None = None, *,
                                 decompress: bool = False, format: str = "csv",
                                 csv_raw: bool = False,
                                 on_progress: OnProgress | None = None) -> ExportResult:
        """Export a message's audience activity (`.csv.gz`) to `dest` (a file, or a
        directory to keep the server's file name); `events` selects recipients."""
        return self._run(self._export_call(message_id, events, csv_raw), dest, decompress,
                         format, on_progress)

    def export_history(self, message_id: str, dest: str | Path, events: str = "sent", *,
                       email: str | None = None, format: str = "csv", csv_raw: bool = False,
                       on_progress: OnProgress | None = None) -> ExportResult:
        """Export who was `sent` the message, or who `clicked` it, as CSV to `dest`."""
        return self._run(self._history_call(message_id, events, email, csv_raw), dest, False,
                         format, on_progress)

    def export_activity(self, dest: str | Path, *, message_ids: list[str] | None = None,
                        events: list[str] | str | None = None, since: int | str | None = None,
                        until: int | str | None = None, cursor: str | None = None,
                        format: str = "csv", compression: str | None = None,
                        decompress: bool = False,
                        on_progress: OnProgress | None = None) -> ExportResult:
        """msgtrail only: every event of the app's messages (or `message_ids`) as one
        row each, written by the server as `format` (csv, jsonl or parquet), to `dest`;
        with `cursor` (a previous result's `next_cursor`), only the events recorded
        since that export. `since`/`until` bound the events' own times."""
        return self._run(self._activity_call(
            message_ids=message_ids, events=events, since=since, until=until, cursor=cursor,
            format=format, compression=compression), dest, decompress, "csv", on_progress)

    def _run(self, call: Call, dest: str | Path, decompress: bool, fmt: str,
             on_progress: OnProgress | None) -> ExportResult:
        report = on_progress or (lambda _p: None)
        started = time.monotonic()
        deadline = started + self.deadline
        report(Progress("requesting"))
        self._request(call, deadline)
        # Every export passes through "waiting", however fast the job: progress
        # displays and logs can rely on the order of phases.
        report(Progress("waiting"))
        if call.export_id:
            self._wait(call, deadline, report)
        path = destination(dest, call.url, decompress, fmt)
        with temp_path(path) as tmp:
            self._download(call, tmp, deadline, report)
            report(Progress("verifying"))
            rows, size = publish(tmp, path, decompress, fmt, call.manifest, call.served)
        report(Progress("done", rows=rows, total_rows=rows, bytes=size))
        return ExportResult(path, rows, size, time.monotonic() - started, call.url,
                            call.export_id, call.next_cursor)

    def _request(self, call: Call, deadline: float) -> None:
        try:
            for attempt in Retrying(**self._policy(deadline)):
                with attempt:
                    try:
                        response = self._api.post(call.path, params=call.params,
                                                  content=call.body)
                    except httpx.TransportError as exc:
                        raise Again(f"request failed: {exc}") from exc
                    self._on_requested(call, response)
        except Again as exc:
            raise self._give_up(exc, "requesting the export", deadline) from None

    def _wait(self, call: Call, deadline: float, report: OnProgress) -> None:
        """Poll msgtrail's job status until the file is ready."""
        def before_sleep(state) -> None:  # type: ignore[no-untyped-def]
            exc = state.outcome.exception()
            if isinstance(exc, Again) and exc.progress:
                report(exc.progress)

        try:
            for attempt in Retrying(**self._policy(deadline), before_sleep=before_sleep):
                with attempt:
                    try:
                        response = self._api.get(self._status_path(call),
                                                 params={"app_id": self.app_id})
                    except httpx.TransportError as exc:
                        raise Again(f"status request failed: {exc}") from exc
                    self._on_status(call, response)
        except Again as exc:
            raise self._give_up(exc, "waiting for the export", deadline) from None

    def _download(self, call: Call, tmp: Path, deadline: float, report: OnProgress) -> None:
        """Poll the file URL until it serves the file, then stream it to `tmp`,
        resuming with Range after a dropped connection where the server allows."""
        if call.export_id:  # the job is done: what follows is the download itself
            report(Progress("downloading"))
        try:
            for attempt in Retrying(**self._policy(deadline)):
                with attempt:
                    have = tmp.stat().st_size if tmp.exists() else 0
                    try:
                        with self._files.stream("GET", call.url, headers=self._download_headers(
                                call, have)) as response:
                            self._on_file(call, response, tmp)
                            self._save(call, response, tmp, have, report)
                    except httpx.TransportError as exc:
                        raise self._count_drop(call, exc) from exc
        except Again as exc:
            raise self._give_up(exc, "downloading the file", deadline) from None

    def _save(self, call: Call, response: httpx.Response, tmp: Path, have: int,
              report: OnProgress) -> None:
        mode, total, done = self._receiving(call, response, have)
        with open(tmp, mode) as out:
            for chunk in response.iter_raw():
                out.write(chunk)
                done += len(chunk)
                report(Progress("downloading", bytes=done, total_bytes=total))
