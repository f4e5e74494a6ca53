"""Workers killed (kill -9) again and again while they compact a message's segments
and build its recipient pages: nothing accepted is lost or counted twice, no half-built
pages are ever read, and the next worker finishes the job."""

from __future__ import annotations

import gzip
import random
import signal
import time
import uuid

from sqlalchemy import text

from msgtrail.db.engine import make_engine
from tests.helpers import (
    create_message,
    download_when_ready,
    event,
    export,
    send_events,
    send_ndjson,
    wait_for,
    worker_process,
)

BIG = 150_000  # recipients sent in 10,000-event batches: large segments, passes, pages
SMALL = 100  # one-event requests, as webhooks send them: small segments to compact
NEWER = 2_000  # clicks and new recipients after the pages: merged into them
# Workers start on upkeep half a second after the events pause, not two.
QUIET = {"MSGTRAIL_UPKEEP_QUIET_SECONDS": "0.5"}


def test_kill_9_during_compaction_and_page_builds_loses_nothing(api_only) -> None:  # type: ignore[no-untyped-def]
    srv, workers = api_only
    engine = make_engine(srv.database_url)
    creds = srv.create_app()
    rng = random.Random(7)
    with srv.client(creds) as client:
        message_id = create_message(client, creds)
        subs = [str(uuid.uuid4()) for _ in range(BIG + SMALL)]
        send_ndjson(client, creds, message_id, [event(s, "sent") for s in subs[:BIG]])
        for s in subs[BIG:]:
            assert send_events(client, creds, message_id, [event(s, "sent")]).status_code == 200
        time.sleep(1)  # the events pause: workers now compact and build pages
        _kill_workers(srv, workers, rng, "worker", 6, (0.5, 3.0))

        def settled() -> bool:
            with engine.connect() as conn:
                upto, published, generation = conn.execute(text(
                    "SELECT next_batch, pages_upto, pages_generation FROM messages"
                    " WHERE message_id = :m"), {"m": message_id}).one()
                small = conn.execute(text(
                    "SELECT count(*) FROM activity_segments WHERE events < 1000")).scalar_one()
                generations = conn.execute(text(
                    "SELECT count(DISTINCT generation) FROM recipient_pages")).scalar_one()
            return upto == published and generation is not None and small < 64 \
                and generations == 1

        wait_for(settled, timeout=120, interval=0.5)
        with engine.connect() as conn:
            stored = conn.execute(text("SELECT sum(events) FROM activity_segments")).scalar_one()
            paged = conn.execute(text("SELECT sum(rows) FROM recipient_pages")).scalar_one()
        assert (stored, paged) == (BIG + SMALL, BIG + SMALL)
        data = download_when_ready(export(client, creds, message_id).json()["csv_file_url"],
                                   timeout=120)
        lines = gzip.decompress(data).decode().splitlines()
        assert [line.split(",")[1] for line in lines[1:]] == sorted(subs)

        # Newer events, a few next to the pages: the next builds merge them into the
        # pages, and are killed as well.
        clicked = rng.sample(subs, NEWER)
        late = [str(uuid.uuid4()) for _ in range(NEWER)]
        send_ndjson(client, creds, message_id, [event(s, "clicked") for s in clicked]
                    + [event(s, "sent") for s in late])
        time.sleep(1)
        _kill_workers(srv, workers, rng, "worker-merge", 4, (0.2, 1.5))
        wait_for(settled, timeout=120, interval=0.5)
        with engine.connect() as conn:
            paged = conn.execute(text("SELECT sum(rows) FROM recipient_pages")).scalar_one()
        assert paged == BIG + SMALL + NEWER
        data = download_when_ready(export(client, creds, message_id).json()["csv_file_url"],
                                   timeout=120)
        doc = client.get(f"/notifications/{message_id}", params={"app_id": creds.app_id}).json()
    rows = [line.split(",") for line in gzip.decompress(data).decode().splitlines()[1:]]
    assert [r[1] for r in rows] == sorted(subs + late)
    assert sorted(r[1] for r in rows if r[5]) == sorted(clicked)  # column 6: clicked
    assert (doc["successful"], doc["converted"]) == (BIG + SMALL + NEWER, NEWER)
    engine.dispose()


def _kill_workers(srv, workers, rng: random.Random, name: str, kills: int,  # type: ignore[no-untyped-def]
                  after: tuple[float, float]) -> None:
    """Start a worker and kill -9 it after a random while, `kills` times; then start
    one that is left to finish."""
    for i in range(kills):
        workers.append(worker_process(srv, f"{name}-{i}", **QUIET))
        time.sleep(rng.uniform(*after))
        workers[-1].send_signal(signal.SIGKILL)
        workers[-1].wait()
    workers.append(worker_process(srv, f"{name}-last", **QUIET))
