"""Retention runs once per interval, whatever the number of workers and processes."""

from __future__ import annotations

import threading
from concurrent.futures import ThreadPoolExecutor

from msgtrail.db.engine import make_engine, upgrade
from msgtrail.runtime import retention


def test_one_worker_among_many_takes_each_purge_turn(tmp_path, backend) -> None:
    env = backend.provision(tmp_path)
    engine = make_engine(env.get("MSGTRAIL_DATABASE_URL", f"sqlite:///{tmp_path / 'm.db'}"),
                         workers=8)
    try:
        upgrade(engine)
        start = threading.Barrier(8)

        def race(now: float) -> bool:
            start.wait()
            return retention.take_turn(engine, 60, now)

        with ThreadPoolExecutor(8) as pool:
            assert sorted(pool.map(race, [1000.0] * 8)) == [False] * 7 + [True]
            # Within the interval nobody's turn; once it has passed, again one.
            assert not any(pool.map(race, [1059.0] * 8))
            assert sorted(pool.map(race, [1060.0] * 8)) == [False] * 7 + [True]
    finally:
        engine.dispose()
        backend.release(env)
