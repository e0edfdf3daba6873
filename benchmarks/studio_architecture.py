"""The architecture view's speed: densenet201's diagram interactive (issue 24, goal 1 s).

Two figures, each the median of ``repeats``:

* **API alone**: ``GET /api/architecture/model/densenet201`` through Starlette's TestClient on a
  fresh diagram (the cache emptied before each request; torch and the zoo already imported), that
  is the analyzer's trace, the data-flow pass, the formulas, the errata and the JSON;
* **in Chromium**: ``cnnlab studio`` started as a user starts it, headless Chromium sent to
  ``#/architecture/densenet201``; the time from the navigation's start to the diagram drawn with
  its handlers attached (``svg.arch-diagram[data-ready]``; the page stamps
  ``performance.now()`` there). The first visit is the studio's first request for that model
  (``cold``: torch imported, the model traced); later visits reload the page and find the
  diagram in the server's cache (``warm``), so they time the page alone.

Usage::

    .venv/bin/python benchmarks/studio_architecture.py [--repeats 5]
        [--out benchmarks/results/studio_architecture.json]

``benchmarks/studio.py`` can call :func:`measure` and merge its dict.
"""

from __future__ import annotations

import argparse
import os
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from machine import cpu_model, header, write_result

RESULTS = Path(__file__).resolve().parent / "results"
MODEL = "densenet201"
GOAL_S = 1.0


def api_seconds(repeats: int) -> list[float]:
    """Seconds per fresh diagram of MODEL through the API (in this process)."""
    from starlette.testclient import TestClient

    from cnnlab.studio import architecture
    from cnnlab.studio.app import create_app
    from cnnlab.studio.security import HEADER

    out = []
    with tempfile.TemporaryDirectory() as root:
        app = create_app([root], "bench")
        with TestClient(app, base_url="http://127.0.0.1:8000", headers={HEADER: "bench"}) as c:
            c.get("/api/architecture/model/lenet5")  # imports torch and the zoo once
            for _ in range(repeats):
                architecture.CACHE.items.clear()
                start = time.perf_counter()
                r = c.get(f"/api/architecture/model/{MODEL}")
                out.append(time.perf_counter() - start)
                assert r.status_code == 200, r.text[:200]
    return out


def chromium_seconds(repeats: int) -> dict[str, Any]:
    """Navigation start to the diagram drawn, first visit (cold server) and reloads (warm)."""
    chromium = shutil.which("chromium") or shutil.which("chromium-browser")
    driver_path = shutil.which("chromedriver")
    if not (chromium and driver_path):
        return {"skipped": "headless Chromium not installed"}
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    root = tempfile.mkdtemp()
    proc = subprocess.Popen(
        [sys.executable, "-m", "cnnlab", "studio", root, "--no-browser", "--port", "0"],
        stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
        env={**os.environ, "OMP_NUM_THREADS": "1"},
    )  # fmt: skip
    url = None
    for line in proc.stdout:
        found = re.search(r"http://127\.0\.0\.1:\d+/\?token=\S+", line)
        if found:
            url = found.group(0)
            break
    options = webdriver.ChromeOptions()
    options.binary_location = chromium
    for flag in ("--headless=new", "--no-sandbox", "--disable-gpu", "--window-size=1280,900",
                 "--host-resolver-rules=MAP * ~NOTFOUND, EXCLUDE 127.0.0.1"):  # fmt: skip
        options.add_argument(flag)
    driver = webdriver.Chrome(service=Service(driver_path), options=options)
    times = []
    try:
        assert url, "cnnlab studio printed no address"
        driver.get(url + "#/runs")  # the session cookie; the runs view, not ours
        time.sleep(0.5)
        for _ in range(repeats + 1):
            driver.get("about:blank")
            driver.get(url + f"#/architecture/{MODEL}")
            ms = None
            deadline = time.monotonic() + 120
            while ms is None and time.monotonic() < deadline:
                ms = driver.execute_script(
                    "const s = document.querySelector('svg.arch-diagram[data-ready]');"
                    "return s ? Number(s.dataset.drawnMs) : null"
                )
                time.sleep(0.02)
            assert ms is not None, "the diagram never drew"
            times.append(ms / 1000)
    finally:
        driver.quit()
        proc.send_signal(2)
        proc.wait(timeout=20)
        shutil.rmtree(root, ignore_errors=True)
    return {"cold_s": round(times[0], 3), "warm_s": [round(t, 3) for t in times[1:]],
            "warm_median_s": round(statistics.median(times[1:]), 3)}  # fmt: skip


def measure(repeats: int = 5) -> dict[str, Any]:
    """The figures with the goal beside each, and the CPU."""
    api = api_seconds(repeats)
    browser = chromium_seconds(repeats)
    result = {
        "model": MODEL,
        "cpu": cpu_model(),
        "api_fresh_diagram_s": {
            "median": round(statistics.median(api), 3),
            "all": [round(t, 3) for t in api],
            "goal": GOAL_S,
        },
        "interactive_in_chromium_s": {**browser, "goal": GOAL_S},
        "note": "navigation start to the diagram drawn and clickable; cold = the studio's first "
        "request for the model, warm = the diagram in the server's cache",
    }
    print(result)
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--out", type=Path, default=RESULTS / "studio_architecture.json")
    args = parser.parse_args()
    write_result(args.out, {**header("studio_architecture"), **measure(args.repeats)})


if __name__ == "__main__":
    main()
