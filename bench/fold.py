"""Fold speed: N push recipients (~2.05 events each, as the demo makes them) appended
to the log in 10,000-event batches, then `fold_message` timed. `sqlite` or `pg` (a
throwaway database on the local PostgreSQL).

    .venv/bin/python bench/fold.py 200000 sqlite
"""
import random
import sys
import tempfile
import time
import uuid

import psycopg

from msgtrail import activity, apps, messages
from msgtrail.clock import now
from msgtrail.db.engine import make_engine, upgrade
from msgtrail.demo import _activity

n, db = int(sys.argv[1]), sys.argv[2]
if db == "pg":
    name = "fold_" + uuid.uuid4().hex[:8]
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
for i in range(0, len(rows), 10_000):
    with engine.begin() as conn:
        activity.append(conn, m.pk, [(s, *r) for s, r in enumerate(rows[i:i+10_000])], now())
started = time.perf_counter()
activity.fold_message(engine, m.pk)
el = time.perf_counter() - started
print(f"{db} fold {len(rows)} events / {n} recipients: {el:.2f} s = {len(rows)/el:,.0f} events/s")
engine.dispose()
if db == "pg":
    with psycopg.connect("postgresql://postgres@127.0.0.1/postgres", autocommit=True) as c:
        c.execute(f"DROP DATABASE {name} WITH (FORCE)")
