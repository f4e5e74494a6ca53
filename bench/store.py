"""Activity store speed, without HTTP: N push recipients (~2.05 events each, as the demo
makes them) appended in 10,000-event batches (one segment each), then read back as a
reader does: the pivot into per-recipient CSV lines (an export without compression),
and the counters. Then the recipient pages are built and read, and, after each of
1,000, 10,000 and 100,000 newer click events (half for recipients in the pages, half
new), the pages merged with them (an export of a message still receiving clicks)
against the pivot of everything. `sqlite` or `pg` (a throwaway database on the local
PostgreSQL).

    .venv/bin/python bench/store.py 1000000 sqlite
"""
import os
import random
import sys
import tempfile
import time
import uuid

import psycopg

from msgtrail import apps, messages
from msgtrail.channels import EVENT_CODE
from msgtrail.clock import now
from msgtrail.db.engine import make_engine, upgrade
from msgtrail.demo import _activity
from msgtrail.runtime import allocators
from msgtrail.store import activity, counters, event_batch, pages, pivot
from msgtrail.testing.service import peak_rss_mb

# As the msgtrail command runs: Arrow on the system's allocator (runtime/allocators.py).
allocators.bound()

n, db = int(sys.argv[1]), sys.argv[2]
if db == "pg":
    name = "store_" + uuid.uuid4().hex[:8]
    with psycopg.connect("postgresql://postgres@127.0.0.1/postgres", autocommit=True) as c:
        c.execute(f"CREATE DATABASE {name}")
    url = f"postgresql://postgres@127.0.0.1/{name}"
else:
    url = f"sqlite:///{tempfile.mkdtemp()}/f.db"
engine = make_engine(url)
upgrade(engine)
with engine.begin() as conn:
    app, key = apps.create_app(conn, "b", account="b")
    m = messages.create(conn, app, {"target_channel": "push"})
rows = _activity("push", n, now() - 3600, random.Random(1))
batches = [[(s, *r) for s, r in enumerate(rows[i:i + 10_000])] for i in range(0, len(rows), 10_000)]
started = time.perf_counter()
for batch in batches:
    with engine.begin() as conn:
        activity.append(conn, m.pk, event_batch.columns(batch), now())
el = time.perf_counter() - started
print(f"{db} append {len(rows):,} events: {el:.2f} s = {len(rows) / el:,.0f} events/s")
line = pivot.export_line("push", False)
for _ in range(3):
    started = time.perf_counter()
    with activity.snapshot(engine) as raw:
        out = sum(c for _, c in pivot.lines(raw, m.pk, "push", line, []))
    el = time.perf_counter() - started
    print(f"{db} pivot into {out:,} CSV lines: {el:.2f} s = {out / el:,.0f} records/s")
started = time.perf_counter()
with activity.snapshot(engine) as raw:
    counters.counts(raw, m.pk, "push")
print(f"{db} counters: {time.perf_counter() - started:.2f} s")


def timed(label: str, read) -> None:  # type: ignore[no-untyped-def]
    for _ in range(2):
        started = time.perf_counter()
        with activity.snapshot(engine) as raw:
            out = sum(c for _, c in read(raw))
        el = time.perf_counter() - started
        print(f"{db} {label}: {out:,} CSV lines in {el:.2f} s = {out / el:,.0f} records/s")


started = time.perf_counter()
pages.build_pages(engine, m.pk)
print(f"{db} build pages: {time.perf_counter() - started:.2f} s")
timed("pages", lambda raw: pages.page_lines(
    pages.recipient_pages(raw, m.pk, "push") or [], [], False))
rng = random.Random(2)
known = sorted({r[0] for r in rows})
added = 0
for newer in (1_000, 10_000, 100_000):
    subs = rng.sample(known, newer // 2) + [str(uuid.uuid4()) for _ in range(newer - newer // 2)]
    clicks = [(s, EVENT_CODE["clicked"], now(), None, None, None, None) for s in subs]
    for i in range(0, len(clicks), 10_000):
        with engine.begin() as conn:
            activity.append(conn, m.pk, event_batch.columns(
                [(j, *c) for j, c in enumerate(clicks[i:i + 10_000])]), now())
    added += newer
    with activity.snapshot(engine) as raw:
        assert pages.mergeable_pages(raw, m.pk) is not None
    timed(f"pages + {added:,} newer events merged", lambda raw: pages.page_lines(
        pages.recipient_pages(raw, m.pk, "push") or [], [], False))
    timed(f"pivot of everything ({added:,} newer)",
          lambda raw: pivot.lines(raw, m.pk, "push", line, []))
started = time.perf_counter()
pages.build_pages(engine, m.pk)
print(f"{db} build pages by merging the {added:,} newer events: "
      f"{time.perf_counter() - started:.2f} s")
print(f"peak RSS: {peak_rss_mb(os.getpid()):.0f} MB")
engine.dispose()
if db == "pg":
    with psycopg.connect("postgresql://postgres@127.0.0.1/postgres", autocommit=True) as c:
        c.execute(f"DROP DATABASE {name} WITH (FORCE)")
