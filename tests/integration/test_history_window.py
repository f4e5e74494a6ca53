"""Message history is only for messages sent within the history window: the window is
crossed by moving the service's clock, not by waiting."""

from __future__ import annotations

from msgtrail.testing.clock import manual_clock
from tests.integration.conftest import InProcess


def test_only_within_the_history_window(api: InProcess) -> None:
    with manual_clock() as clock:
        message_id = api.create_message()

        def history() -> tuple[int, dict[str, object]]:
            r = api.client.post(f"/notifications/{message_id}/history",
                                json={"app_id": api.app_id, "events": "sent"})
            return r.status_code, r.json()

        clock.advance(api.settings.history_window_days * 86_400)
        status, doc = history()
        assert status == 200 and doc["success"] is True
        clock.advance(1)
        status, doc = history()
        assert status == 400 and doc["success"] is False
        assert doc["errors"] == [f"Message history is only available for "
                                 f"{api.settings.history_window_days:g} days after the "
                                 "message was sent."]
