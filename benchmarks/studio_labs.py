"""The studio's labs against issue 24's goals: a conv-lab step (50 ms) and one filter on a
1-megapixel photo (500 ms).

* **A conv-lab step**: headless Chromium on ``#/conv``, the Step button clicked ``--steps``
  times; each time from the click to the status line naming the new cell (the window, products,
  sum, output cell, backward pass and im2col column are updated in the same call), to the
  layout it causes (forced), and to the next animation frame (which also waits for the frame
  clock: up to 16.7 ms at 60 Hz). Two configurations:
  the default (5x5x3, two 3x3 filters) and the largest the lab takes with im2col drawn
  (32x32x3, eight 5x5 filters, padding 2: 5,304 padded input cells).
* **One filter on a 1-megapixel photo**: the shipped sample scaled to 1000x1000 (Pillow,
  bicubic) and uploaded once; then per kernel the API's time seen by a client (POST
  /api/labs/filter to the PNG received, median of ``--repeats``), the server's own filter time,
  and the time in the page (the kernel chosen in the form to the filtered image decoded, as
  the page reports it).

Usage::

    .venv/bin/python benchmarks/studio_labs.py [--steps 40] [--repeats 3]
        [--out benchmarks/results/studio_labs.json]

``measure()`` is what benchmarks/studio.py calls; run alone, this prints and writes the JSON.
"""

from __future__ import annotations

import argparse
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import httpx
from machine import cpu_model, header, write_result

RESULTS = Path(__file__).resolve().parent / "results"
GOALS_MS = {"conv_step": 50, "filter_1mp": 500}
KERNELS = ("box", "gaussian", "sharpen", "sobel_x", "sobel_magnitude", "laplacian")
PHOTO_SIDE = 1000  # 1000 x 1000 = 1 megapixel
CONV_CONFIGS = {
    "default 5x5x3, 2 filters 3x3": "",
    "32x32x3, 8 filters 5x5, pad 2": "h=32&w=32&channels=3&filters=8&kernel=5&padding=2&stride=1",
}

# Click Step n times; per click the time to the status line's new text and to the next frame.
STEP_SCRIPT = """
const [n, done] = [arguments[0], arguments[arguments.length - 1]];
const button = document.getElementById('conv-step');
const status = document.getElementById('conv-status');
const updated = [], laidOut = [], framed = [];
(async () => {
  for (let i = 0; i < n; i++) {
    document.getElementById('conv-first').click();
    const before = status.textContent;
    const t0 = performance.now();
    button.click();
    if (status.textContent === before) return done({error: 'the step did not update'});
    updated.push(performance.now() - t0);
    void document.body.offsetHeight; // force the layout the step caused
    laidOut.push(performance.now() - t0);
    await new Promise((r) => requestAnimationFrame(() => r()));
    framed.push(performance.now() - t0);
  }
  done({updated, laidOut, framed});
})();
"""


def stats(values: list[float]) -> dict[str, float]:
    ordered = sorted(values)
    p95 = ordered[min(len(ordered) - 1, round(0.95 * (len(ordered) - 1)))]
    return {"n": len(values), "p50_ms": statistics.median(ordered), "p95_ms": p95,
            "max_ms": ordered[-1]}  # fmt: skip


class Studio:
    """``cnnlab studio`` on an empty runs folder, with its base address and token."""

    def __init__(self, root: Path) -> None:
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "cnnlab", "studio", str(root), "--no-browser", "--port", "0"],
            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
        )  # fmt: skip
        for line in self.proc.stdout:
            found = re.search(r"(http://127\.0\.0\.1:\d+)/\?token=(\S+)", line)
            if found:
                self.base, self.token = found.groups()
                break
        else:
            raise SystemExit(f"cnnlab studio printed no address: {self.proc.stdout.read()}")
        self.url = f"{self.base}/?token={self.token}"
        self.client = httpx.Client(base_url=self.base, headers={"X-Cnnlab-Token": self.token},
                                   timeout=120)  # fmt: skip

    def close(self) -> None:
        self.client.close()
        self.proc.send_signal(2)
        try:
            self.proc.wait(10)
        except subprocess.TimeoutExpired:
            self.proc.kill()


def chromium():
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    options = webdriver.ChromeOptions()
    options.binary_location = shutil.which("chromium") or shutil.which("chromium-browser")
    for flag in ("--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
                 "--window-size=1280,900"):  # fmt: skip
        options.add_argument(flag)
    driver = webdriver.Chrome(service=Service(shutil.which("chromedriver")), options=options)
    driver.set_script_timeout(300)
    return driver


def wait(driver, script: str, timeout: float = 60) -> Any:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = driver.execute_script(f"return ({script})")
        if value:
            return value
        time.sleep(0.02)
    raise SystemExit(f"timed out waiting for {script}")


def measure_steps(studio: Studio, driver, steps: int) -> dict[str, Any]:
    out = {}
    for name, query in CONV_CONFIGS.items():
        driver.get(f"{studio.url}#/conv?{query}")
        wait(driver, "document.querySelector('#conv-lab[data-ready=\"1\"]')")
        cells = driver.execute_script("return document.querySelectorAll('#conv-lab td').length")
        result = driver.execute_async_script(STEP_SCRIPT, steps)
        if "error" in result:
            raise SystemExit(result["error"])
        out[name] = {"cells_on_page": cells, "click_to_updated": stats(result["updated"]),
                     "click_to_laid_out": stats(result["laidOut"]),
                     "click_to_next_frame": stats(result["framed"])}  # fmt: skip
    return out


def photo(folder: Path) -> Path:
    """The sample scaled to 1000x1000 (a 1-megapixel photo), as PNG."""
    from PIL import Image

    from cnnlab.studio.labs import SAMPLE, SAMPLES

    path = folder / "photo-1mp.png"
    with Image.open(SAMPLES / SAMPLE) as image:
        image.convert("RGB").resize((PHOTO_SIDE, PHOTO_SIDE), Image.Resampling.BICUBIC).save(path)
    return path


def measure_filters(studio: Studio, driver, path: Path, repeats: int) -> dict[str, Any]:
    with path.open("rb") as f:
        uploaded = studio.client.post("/api/labs/photo", files={"image": (path.name, f)}).json()
    assert (uploaded["width"], uploaded["height"]) == (PHOTO_SIDE, PHOTO_SIDE), uploaded
    out: dict[str, Any] = {}
    for kernel in KERNELS:
        body = {"photo": uploaded["photo"], "kernel": kernel, "mode": "reflect"}
        client, server = [], []
        for _ in range(repeats):
            start = time.perf_counter()
            answer = studio.client.post("/api/labs/filter", json=body).json()
            client.append(1000 * (time.perf_counter() - start))
            server.append(answer["filter_ms"])
        out[kernel] = {"api_ms": statistics.median(client), "filter_ms": statistics.median(server)}
    # In the page: upload the same file, then choose each kernel in the form.
    driver.get(f"{studio.url}#/filters")
    wait(driver, "(document.getElementById('filter-lab') || {dataset: {}}).dataset.shown")
    driver.find_element("css selector", "#filter-file").send_keys(str(path))
    wait(driver, f"(document.getElementById('filter-lab').dataset.shown || '').endsWith("
         f"'{uploaded['photo']}')")  # fmt: skip
    for kernel in KERNELS:
        page = []
        for _ in range(repeats):
            driver.execute_script(
                "const s = document.getElementById('filter-kernel'); s.value = arguments[0];"
                "document.getElementById('filter-lab').dataset.shown = '';"
                "s.dispatchEvent(new Event('change'));", kernel)  # fmt: skip
            wait(driver, f"(document.getElementById('filter-lab').dataset.shown || '')"
                 f".startsWith('{kernel}:')")  # fmt: skip
            text = driver.execute_script(
                "return document.getElementById('filter-time').textContent"
            )
            page.append(float(re.search(r"in the page (\d+) ms", text).group(1)))
        out[kernel]["page_ms"] = statistics.median(page)
    return out


def measure(steps: int = 40, repeats: int = 3) -> dict[str, Any]:
    """Both figures beside their goals, with the CPU; printed and returned."""
    with tempfile.TemporaryDirectory(prefix="cnnlab-labs-bench-") as folder:
        studio = Studio(Path(folder))
        driver = chromium()
        try:
            result = {
                "cpu": cpu_model(),
                "goals_ms": GOALS_MS,
                "conv_step": measure_steps(studio, driver, steps),
                "filter_1mp": measure_filters(studio, driver, photo(Path(folder)), repeats),
            }
        finally:
            driver.quit()
            studio.close()
    for name, r in result["conv_step"].items():
        print(
            f"conv-lab step, {name} ({r['cells_on_page']} cells): click to updated "
            f"p50 {r['click_to_updated']['p50_ms']:.1f} ms, p95 "
            f"{r['click_to_updated']['p95_ms']:.1f} ms; laid out p50 "
            f"{r['click_to_laid_out']['p50_ms']:.1f} ms; to the next frame p50 "
            f"{r['click_to_next_frame']['p50_ms']:.1f} ms (goal {GOALS_MS['conv_step']} ms)"
        )
    for kernel, r in result["filter_1mp"].items():
        print(
            f"{kernel} on 1000x1000: API {r['api_ms']:.0f} ms (filter {r['filter_ms']:.0f} ms), "
            f"in the page {r['page_ms']:.0f} ms (goal {GOALS_MS['filter_1mp']} ms)"
        )
    print(f"CPU: {result['cpu']}")
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--steps", type=int, default=40)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--out", type=Path, default=RESULTS / "studio_labs.json")
    args = parser.parse_args()
    result = header("studio_labs") | measure(args.steps, args.repeats)
    write_result(args.out, result)
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
