"""Prometheus metrics, correct across processes: `msgtrail serve` and `msgtrail worker`
set PROMETHEUS_MULTIPROC_DIR (the data dir's `metrics/`, or MSGTRAIL_METRICS_DIR) before
this module is imported, each process writes its counters there, and `GET /metrics` on
any API process sums every process of the machine (prometheus_client's multiprocess
mode, as GOV.UK Notify runs it). What the database knows (the queue, the upkeep's lag)
is read at scrape time. Labels are bounded: sources, providers, kinds, states, never
app or message ids."""

from __future__ import annotations

import os
import threading
import time
from collections.abc import Iterator

from prometheus_client import (
    CONTENT_TYPE_LATEST,
    REGISTRY,
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    generate_latest,
    multiprocess,
)
from prometheus_client.core import GaugeMetricFamily, Metric
from prometheus_client.registry import Collector
from sqlalchemy import Engine, text

from msgtrail.clock import exact
from msgtrail.runtime.metrics_dir import MULTIPROC_ENV

EVENTS_ACCEPTED = Counter("msgtrail_events_accepted_total",
                          "Events stored, by source (api, or the webhook's provider)",
                          ["source"])
EVENTS_REJECTED = Counter("msgtrail_events_rejected_total",
                          "Events refused, by source and reason", ["source", "reason"])
SIGNATURE_FAILURES = Counter("msgtrail_webhook_signature_failures_total",
                             "Webhook requests refused for their signature or credentials",
                             ["provider"])
GROUP_SIZE = Histogram("msgtrail_group_commit_deliveries",
                       "Webhook requests recorded by one group commit",
                       buckets=(1, 2, 4, 8, 16, 32, 64, 128, 256, 512))
GROUP_SECONDS = Histogram("msgtrail_group_commit_seconds",
                          "Time of one group commit's transaction",
                          buckets=(.001, .0025, .005, .01, .025, .05, .1, .25, .5, 1, 2.5))
JOBS_ENDED = Counter("msgtrail_export_jobs_total", "Export jobs ended, by kind and outcome",
                     ["kind", "outcome"])
EXPORT_SECONDS = Histogram("msgtrail_export_seconds", "Running time of a finished export",
                           ["kind"], buckets=(.05, .1, .25, .5, 1, 2.5, 5, 10, 30, 60, 120, 300))
EXPORT_ROWS_PER_SECOND = Histogram(
    "msgtrail_export_rows_per_second", "Rows a second of a finished export", ["kind"],
    buckets=(1e3, 1e4, 5e4, 1e5, 2.5e5, 5e5, 1e6, 2e6))
COMPLETION_WEBHOOKS = Counter(
    "msgtrail_completion_webhooks_total",
    "Completion webhook attempts, by outcome (delivered, retry, failed)", ["outcome"])
HTTP_ERRORS = Counter("msgtrail_http_errors_total",
                      "Requests answered 4xx or 5xx, by status", ["status"])
DB_CONNECTIONS = Gauge("msgtrail_db_connections_in_use",
                       "Database connections each process holds from its pool", ["pid"],
                       multiprocess_mode="liveall")
RSS = Gauge("msgtrail_process_resident_memory_bytes", "Resident memory of each process",
            ["pid"], multiprocess_mode="liveall")


_watched: list[Engine] = []


def watch_memory(interval: float = 5.0) -> None:
    """Record this process's resident memory, and the connections its engine holds
    (`watch_pool`), every `interval` seconds, on a thread."""
    pid = os.getpid()

    def loop() -> None:
        while True:
            with open(f"/proc/{pid}/statm") as statm:
                RSS.labels(str(pid)).set(int(statm.read().split()[1]) * os.sysconf("SC_PAGE_SIZE"))
            _sample_pool()
            time.sleep(interval)

    threading.Thread(target=loop, name="metrics-memory", daemon=True).start()


def watch_pool(engine: Engine) -> None:
    """Report the connections `engine`'s pool has handed out (the process's one engine),
    from now on."""
    _watched[:] = [engine]
    _sample_pool()


def _sample_pool() -> None:
    for engine in _watched[:1]:
        DB_CONNECTIONS.labels(str(os.getpid())).set(getattr(engine.pool, "checkedout", int)())


def process_exit() -> None:
    """Forget this process's live gauges (its counters stay counted)."""
    if MULTIPROC_ENV in os.environ:
        multiprocess.mark_process_dead(os.getpid())


class _Database(Collector):
    """What the database knows, read at each scrape."""

    def __init__(self, engine: Engine, retention_days: float) -> None:
        self.engine = engine
        self.retention_seconds = retention_days * 86400

    def collect(self) -> Iterator[GaugeMetricFamily]:
        now = exact()
        with self.engine.connect() as conn:
            states: dict[str, int] = {state: n for state, n in conn.execute(text(
                "SELECT state, count(*) FROM jobs WHERE state IN ('queued', 'running')"
                " GROUP BY state"))}
            oldest = conn.execute(text(
                "SELECT min(created_at) FROM jobs WHERE state = 'queued'")).scalar()
            pending, since = conn.execute(text(
                "SELECT count(*), min(pending_since) FROM messages"
                " WHERE pending_since IS NOT NULL")).one()
            hooks, hooks_since = conn.execute(text(
                "SELECT count(*), min(created_at) FROM webhook_deliveries"
                " WHERE state IN ('pending', 'sending')")).one()
            # What retention should have removed by now: files past their lifetime, and
            # activity past its window (a purge pass takes them every purge_interval).
            file_due = conn.execute(text(
                "SELECT min(expires_at) FROM jobs WHERE state = 'ready' AND expires_at < :now"),
                {"now": now}).scalar()
            activity_due = conn.execute(text(
                "SELECT min(created_at) FROM messages WHERE purged_at IS NULL"
                " AND created_at < :cutoff"), {"cutoff": now - self.retention_seconds}).scalar()
            conn.rollback()
        jobs = GaugeMetricFamily("msgtrail_export_jobs", "Export jobs queued or running",
                                 labels=["state"])
        for state in ("queued", "running"):
            jobs.add_metric([state], int(states.get(state, 0)))
        yield jobs
        yield GaugeMetricFamily("msgtrail_export_oldest_queued_seconds",
                                "Age of the oldest queued export (0: none queued)",
                                value=now - float(oldest) if oldest is not None else 0)
        yield GaugeMetricFamily("msgtrail_upkeep_pending_messages",
                                "Messages with events their counters and pages do not hold",
                                value=int(pending))
        yield GaugeMetricFamily("msgtrail_upkeep_oldest_pending_seconds",
                                "Since when the longest-waiting message's counters and pages "
                                "lack events (0: none)",
                                value=now - float(since) if since is not None else 0)
        yield GaugeMetricFamily("msgtrail_completion_webhooks_pending",
                                "Completion webhooks not yet delivered or given up",
                                value=int(hooks))
        yield GaugeMetricFamily("msgtrail_completion_webhooks_oldest_pending_seconds",
                                "Age of the oldest of them (0: none)",
                                value=now - float(hooks_since) if hooks_since is not None else 0)
        overdue = [now - float(file_due)] if file_due is not None else []
        if activity_due is not None:
            overdue.append(now - self.retention_seconds - float(activity_due))
        yield GaugeMetricFamily("msgtrail_retention_overdue_seconds",
                                "How long past its end the oldest expired file or activity "
                                "past its window still waits for retention (0: none)",
                                value=max(overdue, default=0))


def exposition(engine: Engine, retention_days: float) -> tuple[bytes, str]:
    """The metrics page: every process's counters, and the database's gauges
    (activity is kept `retention_days`)."""
    processes = REGISTRY  # this process alone, unless several share a directory
    if MULTIPROC_ENV in os.environ:
        processes = CollectorRegistry()
        multiprocess.MultiProcessCollector(processes)
    return (generate_latest(_Page(processes, _Database(engine, retention_days))),
            CONTENT_TYPE_LATEST)


class _Page(CollectorRegistry):
    def __init__(self, *parts: Collector) -> None:
        super().__init__()
        self.parts = parts

    def collect(self) -> Iterator[Metric]:
        for part in self.parts:
            yield from part.collect()
