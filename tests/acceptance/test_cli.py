"""The `msgtrail` command: apps, keys and the demo, run as a user would."""

import json
import subprocess
import time

import httpx

from msgtrail.db.engine import HEAD
from msgtrail.testing.service import MSGTRAIL, free_port, run_cli, start_server, stop_server


def test_apps_create_list_rotate_revoke_update(tmp_path) -> None:
    created = json.loads(run_cli(tmp_path, "apps", "create", "--name", "Shop", "--account",
                                 "acme", "--json"))
    assert set(created) == {"app_id", "api_key", "account"} and created["account"] == "acme"
    listed = json.loads(run_cli(tmp_path, "apps", "list", "--json"))
    assert listed == [{"app_id": created["app_id"], "name": "Shop", "account": "acme",
                       "history": True, "active_keys": 1}]
    # The key is stored only as a hash.
    assert created["api_key"].encode() not in (tmp_path / "msgtrail.db").read_bytes()

    server = start_server(tmp_path)
    try:
        def status(key):
            return httpx.get(f"{server.base_url}/notifications",
                             params={"app_id": created["app_id"]},
                             headers={"Authorization": f"Key {key}"}).status_code

        assert status(created["api_key"]) == 200
        rotated = json.loads(run_cli(tmp_path, "apps", "rotate-key", created["app_id"], "--json"))
        assert status(created["api_key"]) == 401
        assert status(rotated["api_key"]) == 200
        assert "revoked 1 key(s)" in run_cli(tmp_path, "apps", "revoke-key", created["app_id"])
        assert status(rotated["api_key"]) == 401
    finally:
        stop_server(server)
    out = run_cli(tmp_path, "apps", "update", created["app_id"], "--history", "off")
    assert "history=off" in out
    bad = subprocess.run([*MSGTRAIL, "apps", "rotate-key", "nope", "--data-dir", str(tmp_path)],
                         capture_output=True, text=True)
    assert bad.returncode != 0 and "No app with id nope" in bad.stderr


def test_demo_serves_queryable_data(tmp_path) -> None:
    port = free_port()
    proc = subprocess.Popen([*MSGTRAIL, "demo", "--recipients", "3000", "--port", str(port),
                             "--data-dir", str(tmp_path)],
                            stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
    try:
        lines = []
        for line in proc.stdout:  # type: ignore[union-attr]
            lines.append(line)
            if line.startswith("API docs:"):
                break
        info = dict(x.split(":", 1) for x in lines if x.startswith(("app_id:", "api_key:")))
        app_id, key = info["app_id"].strip(), info["api_key"].strip()
        base = f"http://127.0.0.1:{port}"
        deadline = time.monotonic() + 30
        while True:
            try:
                r = httpx.get(f"{base}/notifications", params={"app_id": app_id},
                              headers={"Authorization": f"Key {key}"})
                break
            except httpx.TransportError:
                assert time.monotonic() < deadline
                time.sleep(0.2)
        doc = r.json()
        assert doc["total_count"] == 3
        # The export command runs as printed (no venv activated), from where the demo ran.
        [export_line] = [x.strip() for x in lines if x.strip().startswith("MSGTRAIL_API_KEY=")]
        assert not export_line.split()[1].startswith("msgtrail")  # a path, not the bare name
        (tmp_path / "out").mkdir()
        done = subprocess.run(f"{export_line} -o {tmp_path / 'out'}", shell=True,
                              capture_output=True, text=True, timeout=120)
        assert done.returncode == 0, done.stderr
        assert [p.suffix for p in (tmp_path / "out").iterdir()] == [".gz"]
        channels = {n["target_channel"]: n for n in doc["notifications"]}
        assert set(channels) == {"push", "email", "sms"}
        push = channels["push"]
        assert push["successful"] + push["failed"] == 1800
        # Created just before its sends began (6 h ago), not after its own activity.
        started = time.time() - 6 * 3600
        assert started - 180 <= push["queued_at"] <= started
        assert 0 < push["failed"] < 180 and 0 < push["converted"] < 180
    finally:
        proc.terminate()
        proc.wait(15)


def test_apps_update_webhook_url_and_secret(tmp_path) -> None:
    app_id = json.loads(run_cli(tmp_path, "apps", "create", "--name", "hooks", "--json"))["app_id"]
    url = "https://93.184.216.34/hooks/msgtrail"
    first = json.loads(run_cli(tmp_path, "apps", "update", app_id, "--webhook-url", url, "--json"))
    assert first["app_id"] == app_id and first["webhook_url"] == url
    assert first["webhook_secret"].startswith("whsec_")
    # A new URL keeps the secret (not shown again); rotating issues a new one.
    moved = json.loads(run_cli(tmp_path, "apps", "update", app_id, "--webhook-url",
                               url + "/v2", "--json"))
    assert moved == {"app_id": app_id, "webhook_url": url + "/v2", "webhook_secret": None}
    rotated = json.loads(run_cli(tmp_path, "apps", "update", app_id,
                                 "--rotate-webhook-secret", "--json"))
    assert rotated["webhook_secret"] not in (None, first["webhook_secret"])
    assert "webhook secret: whsec_" in run_cli(tmp_path, "apps", "update", app_id,
                                               "--rotate-webhook-secret")
    removed = json.loads(run_cli(tmp_path, "apps", "update", app_id, "--webhook-url", "",
                                 "--json"))
    assert removed == {"app_id": app_id, "webhook_url": None, "webhook_secret": None}

    # Loopback and private addresses are refused unless allowed.
    for bad in ("http://127.0.0.1:8080/x", "http://10.0.0.7/x", "ftp://93.184.216.34/x"):
        refused = subprocess.run([*MSGTRAIL, "apps", "update", app_id, "--webhook-url", bad,
                                  "--data-dir", str(tmp_path)], capture_output=True, text=True)
        assert refused.returncode == 2 and "--webhook-url" in refused.stderr, refused.stderr
    allowed = json.loads(run_cli(tmp_path, "apps", "update", app_id, "--webhook-url",
                                 "http://127.0.0.1:8080/x", "--json",
                                 env={"MSGTRAIL_WEBHOOK_ALLOW_PRIVATE": "1"}))
    assert allowed["webhook_url"] == "http://127.0.0.1:8080/x" and allowed["webhook_secret"]
    nothing = subprocess.run([*MSGTRAIL, "apps", "update", app_id, "--data-dir", str(tmp_path)],
                             capture_output=True, text=True)
    assert nothing.returncode == 2 and "nothing to change" in nothing.stderr


def _msgtrail(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    import os

    return subprocess.run([*MSGTRAIL, *args], capture_output=True, text=True, timeout=120,
                          env={**os.environ, **(env or {})})


def test_a_command_on_a_missing_data_dir_says_so_and_creates_nothing(tmp_path) -> None:
    missing = tmp_path / "typo"
    for args in (["apps", "list"], ["apps", "rotate-key", "x"], ["webhooks", "rejected", "x"],
                 ["check"], ["backup", str(tmp_path / "b")]):
        done = _msgtrail(*args, "--data-dir", str(missing))
        assert done.returncode == 1, (args, done.stderr)
        assert "no msgtrail data in" in done.stderr or "no database at" in done.stderr, args
        assert not missing.exists(), args
    # Making one is what `apps create` (like serve and demo) is for.
    assert _msgtrail("apps", "create", "--name", "a", "--data-dir", str(missing)).returncode == 0
    assert _msgtrail("apps", "list", "--data-dir", str(missing)).returncode == 0


def test_migrations_log_one_line_and_only_when_they_run(tmp_path) -> None:
    first = _msgtrail("apps", "create", "--name", "a", "--data-dir", str(tmp_path))
    assert first.returncode == 0
    assert first.stderr.splitlines() == [
        first.stderr.splitlines()[0]] and f"database migrated from nothing to {HEAD}" in first.stderr
    again = _msgtrail("apps", "list", "--data-dir", str(tmp_path))
    assert again.returncode == 0 and again.stderr == ""


def test_connect_warns_when_providers_cannot_reach_the_url(tmp_path) -> None:
    app_id = json.loads(run_cli(tmp_path, "apps", "create", "--name", "a", "--json"))["app_id"]
    local = _msgtrail("apps", "connect", app_id, "postmark", "--data-dir", str(tmp_path))
    assert local.returncode == 0 and "not reachable from the internet" in local.stderr
    public = _msgtrail("apps", "connect", app_id, "postmark", "--data-dir", str(tmp_path),
                       "--public-url", "https://msgtrail.example.com")
    assert public.returncode == 0 and public.stderr == ""
    assert public.stdout.startswith("https://msgtrail:")


def test_help_starts_without_the_commands_it_does_not_run() -> None:
    done = _msgtrail("--help")
    assert done.returncode == 0
    from msgtrail.cli import _Commands
    from msgtrail.client.cli import export_command

    # The line the help shows for a command imported only when run is its own.
    assert _Commands.lazy["export"][2] == export_command.short_help
    assert f"export    {export_command.short_help}" in done.stdout
    assert _msgtrail("export", "--help").returncode == 0
