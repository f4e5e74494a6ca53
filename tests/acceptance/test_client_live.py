"""The client and `msgtrail export` against a live msgtrail server."""

from __future__ import annotations

import csv
import gzip
import io
import itertools
import json
import os
import subprocess
import uuid

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from msgtrail.client import Client, NotFoundError
from msgtrail.testing.service import MSGTRAIL
from tests.helpers import create_message, event, iso, send_events


@pytest.fixture
def message(server, app_creds):
    """A push message with 3 recipients: one clicked, one failed."""
    subs = sorted(str(uuid.uuid4()) for _ in range(3))
    with server.client(app_creds) as client:
        message_id = create_message(client, app_creds)
        send_events(client, app_creds, message_id, [
            *(event(s, "sent", 1_790_000_000) for s in subs),
            event(subs[0], "clicked", 1_790_000_100),
            event(subs[1], "failed", 1_790_000_050, failure_message="NotRegistered")])
    return message_id, subs


def test_client_exports_and_reports_progress_from_job_status(server, app_creds, message,
                                                             tmp_path) -> None:
    message_id, subs = message
    phases = []
    with Client(app_creds.api_key, app_creds.app_id, server.base_url, poll_initial=0.05) as c:
        result = c.export_audience_activity(message_id, tmp_path,
                                            on_progress=lambda p: phases.append(p.phase))
        assert result.export_id and result.rows == 3
        assert result.path.parent == tmp_path
        assert result.path.name.startswith(f"events_audience-activity-{message_id}-push-")
        rows = list(csv.DictReader(io.StringIO(gzip.decompress(result.path.read_bytes()).decode())))
        assert [r["subscription_id"] for r in rows] == subs
        assert rows[0]["clicked"] == iso(1_790_000_100)
        # however fast the job, the phases come in this order (repeats collapsed)
        assert [k for k, _ in itertools.groupby(phases)] == [
            "requesting", "waiting", "downloading", "verifying", "done"]

        clicked = c.export_history(message_id, tmp_path / "clicked.csv", "clicked")
        assert clicked.rows == 1
        assert clicked.path.read_text().splitlines()[1] == (
            f'"{subs[0]}","","","push","1790000100"')

        with pytest.raises(NotFoundError) as err:
            c.export_audience_activity(str(uuid.uuid4()), tmp_path / "none.csv.gz")
        assert "purged" in err.value.errors[0]
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted([result.path.name,
                                                                 "clicked.csv"])


def _cli(server, creds, *args: str, key_env: str = "MSGTRAIL_API_KEY"):  # type: ignore[no-untyped-def]
    env = {k: v for k, v in os.environ.items()
           if k not in ("MSGTRAIL_API_KEY", "ONESIGNAL_REST_API_KEY")}
    env[key_env] = creds.api_key
    return subprocess.run([*MSGTRAIL, "export", *args, "--app-id", creds.app_id,
                           "--base-url", server.base_url], capture_output=True, text=True,
                          env=env, timeout=120)


def test_cli_exports_several_messages_one_after_another(server, app_creds, message,
                                                        tmp_path) -> None:
    first, _ = message
    with server.client(app_creds) as client:
        second = create_message(client, app_creds, "sms")
        send_events(client, app_creds, second, [event(name="sent")])
    out = _cli(server, app_creds, first, second, "-o", str(tmp_path / "out"), "--decompress")
    assert out.returncode == 0, out.stderr
    files = sorted((tmp_path / "out").iterdir())
    assert [f.suffix for f in files] == [".csv", ".csv"]
    assert {len(f.read_text().splitlines()) for f in files} == {4, 2}
    # Not a terminal: plain progress lines on stderr, one result line per file on stdout.
    assert f"{first[:8]}: done" in out.stderr and len(out.stdout.splitlines()) == 2

    quiet = _cli(server, app_creds, first, "-o", str(tmp_path / "q.csv.gz"), "--quiet",
                 key_env="ONESIGNAL_REST_API_KEY")
    assert quiet.returncode == 0 and quiet.stdout == "" and quiet.stderr == ""
    assert len(gzip.decompress((tmp_path / "q.csv.gz").read_bytes()).splitlines()) == 4


def test_cli_parquet_has_typed_columns(server, app_creds, message, tmp_path) -> None:
    message_id, subs = message
    out = _cli(server, app_creds, message_id, "-o", str(tmp_path / "a.parquet"),
               "--format", "parquet", "--events", "clicked,failed")
    assert out.returncode == 0, out.stderr
    table = pq.read_table(tmp_path / "a.parquet")
    assert table.num_rows == 2
    assert pa.types.is_timestamp(table.schema.field("clicked").type)
    assert table.schema.field("failure_message").type == pa.string()
    assert table.column("subscription_id").to_pylist() == subs[:2]
    assert table.column("clicked")[0].as_py().timestamp() == 1_790_000_100
    assert table.column("clicked")[1].as_py() is None

    out = _cli(server, app_creds, message_id, "-o", str(tmp_path / "h.parquet"),
               "--format", "parquet", "--history", "clicked")
    assert out.returncode == 0, out.stderr
    history = pq.read_table(tmp_path / "h.parquet")
    assert pa.types.is_timestamp(history.schema.field("timestamp").type)
    assert history.column("timestamp")[0].as_py().timestamp() == 1_790_000_100


def test_cli_exit_codes(server, app_creds, tmp_path) -> None:
    out = _cli(server, app_creds, str(uuid.uuid4()), "-o", str(tmp_path / "x.csv.gz"))
    assert out.returncode == 3 and "purged" in out.stderr
    assert not (tmp_path / "x.csv.gz").exists()
    out = subprocess.run([*MSGTRAIL, "export", "m"], capture_output=True, text=True,
                         env={k: v for k, v in os.environ.items() if "API_KEY" not in k})
    assert out.returncode == 2 and "--api-key" in out.stderr
    out = subprocess.run([*MSGTRAIL, "export", "m", "--api-key", "k"], capture_output=True,
                         text=True, env={k: v for k, v in os.environ.items()
                                         if k != "MSGTRAIL_APP_ID"})
    assert out.returncode == 2 and "--app-id" in out.stderr
    out = _cli(server, app_creds, "m", "--format", "jsonl")
    assert out.returncode == 2 and "--format jsonl needs --app" in out.stderr


def _app_cli(server, creds, *args: str) -> subprocess.CompletedProcess[str]:  # type: ignore[no-untyped-def]
    return subprocess.run([*MSGTRAIL, "export", "--app", creds.app_id, *args,
                           "--api-key", creds.api_key, "--base-url", server.base_url],
                          capture_output=True, text=True, timeout=120)


def test_cli_app_export_keeps_its_cursor_in_a_file(server, app_creds, message,
                                                   tmp_path) -> None:
    """A cron job's loop: each run exports only what was recorded since the last."""
    message_id, subs = message
    cursor_file = tmp_path / "cursor"
    out = _app_cli(server, app_creds, "--cursor-file", str(cursor_file), "--format", "parquet",
                   "-o", f"{tmp_path}/runs/")
    assert out.returncode == 0, out.stderr
    first = pq.read_table(out.stdout.split("\t")[0])
    assert first.num_rows == 5 and pa.types.is_timestamp(first.schema.field("timestamp").type)
    assert sorted(first.column("event").to_pylist()) == [
        "clicked", "failed", "sent", "sent", "sent"]
    cursor = cursor_file.read_text().strip()
    assert f"next_cursor={cursor}" in out.stdout

    with server.client(app_creds) as client:
        send_events(client, app_creds, message_id, [
            event(subs[2], "clicked", 1_790_000_200),
            event(subs[0], "clicked", 1_790_000_100),  # a repeat: recorded before
            event(subs[1], "unsubscribed", 1_790_000_300)])
    out = _app_cli(server, app_creds, "--cursor-file", str(cursor_file), "--format", "parquet",
                   "-o", f"{tmp_path}/runs/")
    assert out.returncode == 0, out.stderr
    second = pq.read_table(out.stdout.split("\t")[0]).to_pylist()
    assert sorted((r["subscription_id"], r["event"]) for r in second) == [
        (subs[1], "unsubscribed"), (subs[2], "clicked")]
    assert cursor_file.read_text().strip() not in ("", cursor)
    assert len(list((tmp_path / "runs").iterdir())) == 2

    # A refused request leaves the cursor where it was.
    kept = cursor_file.read_text()
    out = _app_cli(server, app_creds, "--cursor-file", str(cursor_file), "--since", "soon",
                   "-o", f"{tmp_path}/runs/")
    assert out.returncode == 3 and "since" in out.stderr
    assert cursor_file.read_text() == kept


def test_client_app_export_in_json_lines(server, app_creds, message, tmp_path) -> None:
    message_id, subs = message
    with Client(app_creds.api_key, app_creds.app_id, server.base_url, poll_initial=0.05) as c:
        result = c.export_activity(tmp_path, message_ids=[message_id], events="sent,clicked",
                                   since=1_790_000_000, until="2026-09-30T00:00:00Z",
                                   format="jsonl", decompress=True)
    assert result.path.name.endswith(".jsonl") and result.rows == 4
    rows = [json.loads(line) for line in result.path.read_text().splitlines()]
    assert [(r["subscription_id"], r["event"]) for r in rows] == [
        (subs[0], "sent"), (subs[0], "clicked"), (subs[1], "sent"), (subs[2], "sent")]
    assert rows[1]["timestamp"] == iso(1_790_000_100) and result.next_cursor
