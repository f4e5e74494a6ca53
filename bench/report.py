"""The dashboard's report of a big message: time to the first byte of
`GET /messages/{id}`, signed in: the first view the moment its last event is accepted
(it says the message is being counted), the time until the page shows everything
(counters, chart and the first recipients), and until a filtered list shows (it needs
the recipients' pages), then views once the background work is done and
after an export, each over several views, and views while more events arrive.

    python bench/report.py [--recipients 1000000] [--views 10]
"""

from __future__ import annotations

import argparse
import json
import re
import statistics
import time

import httpx

from msgtrail.testing.backends import add_bench_arguments
from msgtrail.testing.service import bench_service, core_loop_seconds, wait_idle
from msgtrail.testing.workload import ndjson_batches, send_ndjson


def _first_byte(client: httpx.Client, path: str) -> float:
    started = time.perf_counter()
    took = None
    with client.stream("GET", path) as r:
        assert r.status_code == 200, r.status_code
        for _ in r.iter_raw():
            took = took or time.perf_counter() - started
    assert took is not None
    return took


def _spread(values: list[float]) -> dict[str, float]:
    return {"min": round(min(values), 3), "median": round(statistics.median(values), 3),
            "max": round(max(values), 3)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--recipients", type=int, default=1_000_000)
    parser.add_argument("--views", type=int, default=10)
    add_bench_arguments(parser)
    args = parser.parse_args()
    core_loop = core_loop_seconds()
    payloads = ndjson_batches(args.recipients, 10_000, int(time.time()))
    with bench_service(args) as (server, creds):
        api = httpx.Client(base_url=server.base_url, timeout=600,
                           headers={"Authorization": f"Key {creds['api_key']}"})
        message_id = api.post("/notifications", json={
            "app_id": creds["app_id"], "target_channel": "push", "name": "report"}).json()["id"]
        web = httpx.Client(base_url=server.base_url, timeout=600)
        csrf = re.search(r'name="csrf" value="([^"]+)"', web.get("/").text)
        assert csrf is not None
        web.post("/signin", data={"csrf": csrf[1], "app_id": creds["app_id"],
                                  "api_key": creds["api_key"]})
        path = f"/messages/{message_id}"
        send_ndjson(api, message_id, creds["app_id"], payloads, 2)
        del payloads
        # The first view the moment the last event is accepted: it says the message is
        # being counted (and reloads itself until everything is shown).
        accepted = time.perf_counter()
        pending = _first_byte(web, path)
        while "data-pending" in web.get(path).text:
            time.sleep(0.1)
        whole = time.perf_counter() - accepted
        # A filtered list waits for the recipients' pages (built by the same thread).
        while "data-pending" in web.get(path, params={"activity": "clicked"}).text:
            time.sleep(0.1)
        filtered = time.perf_counter() - accepted
        # (quiet longer than the upkeep waits for events to pause, 2 s, before it runs)
        wait_idle(server.process.pid, quiet=4.0, limit=1800)
        kept = [_first_byte(web, path) for _ in range(args.views)]
        export = api.post(f"/notifications/{message_id}/export_events",
                          params={"app_id": creds["app_id"]}).json()
        status = f"/notifications/{message_id}/export_events/{export['export_id']}"
        while api.get(status, params={"app_id": creds["app_id"]}).json()["state"] != "ready":
            time.sleep(0.05)
        after_export = [_first_byte(web, path) for _ in range(args.views)]
        # More events arrive (a tenth more recipients): the views meanwhile show the
        # counters kept, and say so, instead of counting every recipient again.
        more = ndjson_batches(args.recipients // 10, 10_000, int(time.time()))
        send_ndjson(api, message_id, creds["app_id"], more, 2)
        while_arriving = [_first_byte(web, path) for _ in range(args.views)]
        assert "Events are still arriving" in web.get(path).text
        print(json.dumps({"core_loop_s": core_loop, "recipients": args.recipients,
                          "first_view_as_events_stop_s": round(pending, 3),
                          "whole_report_after_last_event_s": round(whole, 3),
                          "filtered_list_after_last_event_s": round(filtered, 3),
                          "report_first_byte_s": _spread(kept),
                          "after_export_first_view_s": round(after_export[0], 3),
                          "after_export_later_views_s": _spread(after_export[1:]),
                          "views_while_events_arrive_s": _spread(while_arriving)}))


if __name__ == "__main__":
    main()
