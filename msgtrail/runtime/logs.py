"""Logs: one line per event, as text for a console or as JSON for a collector
(`--log-format`), each carrying what it happened in: the request's id, or the job's
id, app and message. Those come from context variables set where a request or a job
begins, so no call site passes them on."""

from __future__ import annotations

import logging
from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from typing import Any

from pythonjsonlogger.json import JsonFormatter

# What the current request or job is, for every line logged while it runs.
_context: ContextVar[dict[str, str]] = ContextVar("msgtrail_log_context", default={})  # noqa: B039 - never mutated


@contextmanager
def context(**fields: str) -> Iterator[None]:
    """Lines logged inside the block carry these fields (beside any already set)."""
    token = _context.set({**_context.get(), **fields})
    try:
        yield
    finally:
        _context.reset(token)


class _WithContext(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        fields = _context.get()
        for key, value in fields.items():
            setattr(record, key, value)
        record.context = "".join(f" {k}={v}" for k, v in fields.items())
        return True


class _Console(logging.Formatter):
    def __init__(self) -> None:
        super().__init__("%(asctime)s %(levelname)s %(name)s: %(message)s%(context)s")


class _Json(JsonFormatter):
    def __init__(self) -> None:
        super().__init__("%(asctime)s %(levelname)s %(name)s %(message)s",
                         rename_fields={"asctime": "time", "levelname": "level",
                                        "name": "logger"})

    def add_fields(self, log_data: dict[str, Any], record: logging.LogRecord,
                   message_dict: dict[str, Any]) -> None:
        super().add_fields(log_data, record, message_dict)
        log_data.pop("context", None)  # the console's rendering of the same fields


FORMATS = {"console": _Console, "json": _Json}


def configure(level: str, fmt: str) -> None:
    """The process's logging: `level` and above, in `fmt` (console or json), on stderr."""
    handler = logging.StreamHandler()
    handler.setFormatter(FORMATS[fmt]())
    handler.addFilter(_WithContext())
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level.upper())
    # A line per request is noise; and at DEBUG, botocore logs every S3 request's
    # headers, signatures among them.
    # Alembic's lines (each migration's docstring, its context) are one line of
    # msgtrail.db.engine's instead.
    for noisy in ("httpx", "botocore", "boto3", "s3transfer", "urllib3", "alembic"):
        logging.getLogger(noisy).setLevel(max(logging.WARNING, root.level))
