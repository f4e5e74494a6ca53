"""Take docs/report.png, the dashboard page's picture of a message report: `msgtrail demo` on a
throwaway data dir, signed in and photographed in Debian's Chromium.

    .venv/bin/python docs/screenshot.py
"""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import httpx
from playwright.sync_api import sync_playwright

from msgtrail.testing.service import MSGTRAIL, free_port

HERE = Path(__file__).parent


def main() -> None:
    port = free_port()
    with tempfile.TemporaryDirectory() as tmp:
        demo = subprocess.Popen([*MSGTRAIL, "demo", "--recipients", "20000", "--port", str(port),
                                 "--data-dir", tmp], stdout=subprocess.PIPE, text=True)
        try:
            out = ""
            assert demo.stdout is not None
            while "api_key:" not in out:
                out += demo.stdout.readline()
            app_id = re.search(r"app_id:\s+(\S+)", out).group(1)  # type: ignore[union-attr]
            key = re.search(r"api_key:\s+(\S+)", out).group(1)  # type: ignore[union-attr]
            base = f"http://127.0.0.1:{port}"
            for _ in range(100):
                try:
                    httpx.get(f"{base}/healthz")
                    break
                except httpx.TransportError:
                    time.sleep(0.1)
            with sync_playwright() as p:
                browser = p.chromium.launch(executable_path=shutil.which("chromium"))
                page = browser.new_page(viewport={"width": 1100, "height": 1450})
                page.goto(f"{base}/")
                page.get_by_label("App ID").fill(app_id)
                page.get_by_label("API key").fill(key)
                page.get_by_role("button", name="Sign in").click()
                page.get_by_role("link", name="Spring sale starts now").click()
                page.get_by_role("img", name=re.compile("^Activity over time")).wait_for()
                page.screenshot(path=str(HERE / "report.png"))
                browser.close()
        finally:
            demo.terminate()
            demo.wait(30)
    print(f"wrote {HERE / 'report.png'}", file=sys.stderr)


if __name__ == "__main__":
    main()
