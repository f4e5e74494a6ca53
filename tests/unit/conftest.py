"""A store of one's own for each unit test: SQLite in a temporary directory, one app
and one push message, and a clock the test moves by hand."""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from sqlalchemy import Engine

from msgtrail import apps, messages
from msgtrail.apps import App
from msgtrail.db.engine import make_engine, upgrade
from msgtrail.messages import Message
from msgtrail.settings import Settings
from msgtrail.store import activity
from msgtrail.store.event_batch import parse_batch
from msgtrail.testing.clock import ManualClock, manual_clock


@dataclass
class Store:
    engine: Engine
    settings: Settings
    app: App
    message: Message

    def append(self, events: list[dict[str, object]], at: int) -> None:
        """Events of the message, stored as one batch received at `at`."""
        batch = parse_batch(json.dumps({"events": events}).encode(), False, "push", at, 10_000)
        with self.engine.begin() as conn:
            activity.append(conn, self.message.pk, batch.events, at)


@pytest.fixture
def clock() -> Iterator[ManualClock]:
    with manual_clock(1_800_000_000.0) as manual:
        yield manual


@pytest.fixture
def store(tmp_path: Path, clock: ManualClock) -> Iterator[Store]:
    settings = Settings(data_dir=tmp_path)
    engine = make_engine(settings.resolved_database_url(), 1)
    upgrade(engine)
    with engine.begin() as conn:
        app, _ = apps.create_app(conn, "unit")
        message = messages.create(conn, app, {"name": "m", "target_channel": "push"})
    yield Store(engine, settings, app, message)
    engine.dispose()


def sent(subscription: str | None = None, at: int = 1_800_000_000,
         event: str = "sent") -> dict[str, object]:
    """One event of a recipient (a new one unless named)."""
    return {"subscription_id": subscription or str(uuid.uuid4()), "event": event,
            "timestamp": at}
