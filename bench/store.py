"""Activity store speed, without HTTP: N push recipients (~2.05 events each, as the demo
makes them) appended in 10,000-event batches (one segment each), then read back as a
reader does: the pivot into per-recipient CSV lines (an export without compression),
and the counters. `sqlite` or `pg` (a throwaway database on the local PostgreSQL).

    .venv/bin/python bench/store.py 1000000 sqlite
"""
import os
import random
import sys
import tempfile
import time
import uuid

import psycopg

from msgtrail import activity, apps, event_batch, messages, recipients
from msgtrail.clock import now
from msgtrail.db.engine import make_engine, upgrade
from msgtrail.demo import _activity
from msgtrail.testing.service import peak_rss_mb

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
line = recipients.export_line("push", False)
for _ in range(3):
    started = time.perf_counter()
    with activity.snapshot(engine) as raw:
        out = sum(c for _, c in recipients.lines(raw, m.pk, "push", line, []))
    el = time.perf_counter() - started
    print(f"{db} pivot into {out:,} CSV lines: {el:.2f} s = {out / el:,.0f} records/s")
started = time.perf_counter()
with activity.snapshot(engine) as raw:
    recipients.counts(raw, m.pk, "push")
print(f"{db} counters: {time.perf_counter() - started:.2f} s")
print(f"peak RSS: {peak_rss_mb(os.getpid()):.0f} MB")
engine.dispose()
if db == "pg":
    with psycopg.connect("postgresql://postgres@127.0.0.1/postgres", autocommit=True) as c:
        c.execute(f"DROP DATABASE {name} WITH (FORCE)")
