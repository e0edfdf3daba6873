"""cnnlab studio's speed: first page, 500 runs, live updates, Inspect, a load test, training.

Each measurement starts ``cnnlab studio`` as a user does (``python -m cnnlab studio DIR
--no-browser --port 0``) and talks to it over the loopback address with httpx:

* **start to first page**: from starting the process to the first ``200`` on ``/`` (the token's
  address), the median of ``--repeats`` starts; ``tensorboard --logdir`` on the same folder the same
  way when TensorBoard is installed (else recorded as not installed);
* **500 runs**: ``--runs`` run folders written by cnnlab's own run writer (``RunFiles``, the
  trainer's ``write_json_atomic``) from one real template run, each with its own seed and curves;
  the time from start to ``/api/runs`` answering with all of them, and from start to a headless
  Chromium showing all of their rows (when selenium and chromium are there);
* **live-update latency**: a record appended to a run's ``metrics.jsonl`` (``append_history``, as
  the trainer does) until its ``epoch`` event arrives on ``/api/events``; ``--live`` times;
* **Inspect**: ``/inspect`` of a test image, then ``/explain`` for each method and for each layer
  switch (the issue's target: within 100 ms for the Fashion-MNIST networks, 300 ms for ResNet-18 at
  224x224; pass ``--resnet-run`` for the latter);
* **load test**: ``--clients`` threads for ``--load-seconds`` alternating ``/api/runs`` and
  ``/explain``; p50 and p95 of the latencies, the count of non-2xx answers, and the server's peak
  resident memory (``VmHWM`` of its process);
* **training with the studio watching**: ``cnnlab train`` twice, once alone and once with an event
  stream open on its run (images per second from its ``metrics.jsonl``); skip with
  ``--no-training``.

Usage::

    .venv/bin/python benchmarks/studio.py [--runs 500] [--clients 20] [--load-seconds 30]
        [--out benchmarks/results/studio.json]

The result JSON names the CPU (``machine.describe``); docs/studio.md's table is made from it.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

import httpx
from machine import header, write_result

PYTHON = sys.executable
RESULTS = Path(__file__).resolve().parent / "results"
TEMPLATE_TRAIN = ["lenet5", "--limit-train", "1024", "--limit-test", "500", "--epochs", "2",
                  "--threads", "1", "--no-progress", "--stall-patience", "0"]  # fmt: skip
METHODS = ("gradcam", "saliency", "occlusion", "features")


def percentiles(values: list[float]) -> dict[str, float | int]:
    """p50, p95 and max of some seconds, in milliseconds."""
    if not values:
        return {"n": 0}
    ordered = sorted(values)
    p95 = ordered[min(len(ordered) - 1, round(0.95 * (len(ordered) - 1)))]
    return {"n": len(values), "p50_ms": 1000 * statistics.median(ordered), "p95_ms": 1000 * p95,
            "max_ms": 1000 * ordered[-1]}  # fmt: skip


# --- the studio as a process ---------------------------------------------------------------------


class Studio:
    """``cnnlab studio ROOT`` in a child process; ``url`` carries the token, ``client`` uses it."""

    def __init__(self, root: Path) -> None:
        self.started = time.perf_counter()
        self.proc = subprocess.Popen(
            [PYTHON, "-m", "cnnlab", "studio", str(root), "--no-browser", "--port", "0"],
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

    def first_page(self) -> float:
        """Seconds from starting the process to the first 200 on the page."""
        while True:
            try:
                if httpx.get(self.url, timeout=5).status_code == 200:
                    return time.perf_counter() - self.started
            except httpx.TransportError:
                pass
            time.sleep(0.01)

    def peak_memory(self) -> int | None:
        """The server's peak resident set size in bytes (Linux ``VmHWM``)."""
        try:
            status = Path(f"/proc/{self.proc.pid}/status").read_text()
        except OSError:
            return None
        found = re.search(r"VmHWM:\s+(\d+) kB", status)
        return int(found.group(1)) * 1024 if found else None

    def close(self) -> None:
        self.client.close()
        self.proc.send_signal(2)
        try:
            self.proc.wait(10)
        except subprocess.TimeoutExpired:
            self.proc.kill()


# --- runs ----------------------------------------------------------------------------------------


def template_run(folder: Path) -> Path:
    """A real small training (lenet5, 1024 images, 2 epochs): the runs generated copy its files."""
    out = folder / "template"
    subprocess.run([PYTHON, "-m", "cnnlab", "train", *TEMPLATE_TRAIN, "--out", str(out)],
                   check=True, stdout=subprocess.DEVNULL)  # fmt: skip
    return out


def generate_runs(template: Path, root: Path, count: int) -> None:
    """``count`` runs written by cnnlab's run writer: the template's config with a seed each, its
    curves shifted per run (so no two are equal), its results; no weights (the list needs none)."""
    from cnnlab.files import write_json_atomic
    from cnnlab.run.layout import RunFiles

    source = RunFiles(template)
    config = json.loads(source.config.read_text())
    history = source.read_history()
    results = source.read_results()
    for i in range(count):
        files = RunFiles(root / f"gen{i:04d}")
        files.root.mkdir(parents=True)
        write_json_atomic(files.config, config | {"seed": i})
        shift = 1 + 0.002 * (i % 50)
        files.write_history([r | {"train_loss": r["train_loss"] * shift,
                                  "val_loss": r["val_loss"] * shift} for r in history])  # fmt: skip
        write_json_atomic(files.results, results)


def measure_start(root: Path, repeats: int) -> dict[str, Any]:
    """Start to first page, and start to ``/api/runs`` listing every run, median of ``repeats``."""
    page, listed, count = [], [], 0
    for _ in range(repeats):
        studio = Studio(root)
        try:
            page.append(studio.first_page())
            count = len(studio.client.get("/api/runs").json()["runs"])
            listed.append(time.perf_counter() - studio.started)
        finally:
            studio.close()
    return {"first_page_s": statistics.median(page), "runs_listed_s": statistics.median(listed),
            "runs": count, "repeats": repeats}  # fmt: skip


def measure_tensorboard(root: Path, repeats: int) -> dict[str, Any]:
    """``tensorboard --logdir ROOT``: start to first page (its runs would need event files, which
    ``cnnlab train --log tensorboard`` writes; the generated runs have none)."""
    binary = shutil.which("tensorboard") or (
        str(Path(PYTHON).with_name("tensorboard")) if Path(PYTHON).with_name("tensorboard").exists()
        else None
    )  # fmt: skip
    if binary is None:
        return {"installed": False}
    times = []
    for port in range(6123, 6123 + repeats):
        start = time.perf_counter()
        proc = subprocess.Popen([binary, "--logdir", str(root), "--port", str(port)],
                                stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)  # fmt: skip
        try:
            while True:
                try:
                    if httpx.get(f"http://127.0.0.1:{port}/", timeout=5).status_code == 200:
                        times.append(time.perf_counter() - start)
                        break
                except httpx.TransportError:
                    time.sleep(0.01)
        finally:
            proc.terminate()
            proc.wait(10)
    return {"installed": True, "first_page_s": statistics.median(times), "repeats": repeats}


def measure_page_interactive(studio: Studio, runs: int) -> dict[str, Any]:
    """Headless Chromium: navigation to every run's row in the table (None without Chromium)."""
    chromium, driver = shutil.which("chromium"), shutil.which("chromedriver")
    try:
        from selenium import webdriver
        from selenium.webdriver.chrome.service import Service
    except ImportError:
        return {"measured": False, "why": "selenium not installed"}
    if not (chromium and driver):
        return {"measured": False, "why": "chromium or chromedriver not installed"}
    options = webdriver.ChromeOptions()
    options.binary_location = chromium
    for flag in ("--headless=new", "--no-sandbox", "--disable-gpu", "--window-size=1280,900"):
        options.add_argument(flag)
    browser = webdriver.Chrome(service=Service(driver), options=options)
    try:
        start = time.perf_counter()
        browser.get(studio.url)
        rows = "return document.querySelectorAll('table.runs tbody tr').length"
        while browser.execute_script(rows) < runs:
            time.sleep(0.01)
        return {"measured": True, "rows_shown_s": time.perf_counter() - start, "rows": runs}
    finally:
        browser.quit()


# --- live updates, Inspect, load -----------------------------------------------------------------


def measure_live(studio: Studio, run_dir: Path, run_id: str, times: int) -> dict[str, Any]:
    """Append an epoch record; seconds until the stream delivers it, ``times`` times."""
    from cnnlab.run.layout import RunFiles

    files = RunFiles(run_dir)
    latencies: list[float] = []
    arrived = threading.Event()
    stop = threading.Event()

    def listen() -> None:
        with studio.client.stream("GET", "/api/events", params={"runs": run_id}) as response:
            for line in response.iter_lines():
                if stop.is_set():
                    return
                if line.startswith("event: epoch"):
                    arrived.set()

    reader = threading.Thread(target=listen, daemon=True)
    reader.start()
    time.sleep(1.0)  # the stream has connected and read what is on disk
    for _ in range(times):
        last = files.read_history()[-1]
        arrived.clear()
        start = time.perf_counter()
        files.append_history(last | {"epoch": last["epoch"] + 1, "step": last["step"] + 1})
        if arrived.wait(10):
            latencies.append(time.perf_counter() - start)
        time.sleep(0.3)  # not in step with the server's poll
    stop.set()
    return {"appended": times, **percentiles(latencies)}


def measure_inspect(studio: Studio, run_id: str, repeats: int) -> dict[str, Any]:
    """Inspect a test image, then every method, then Grad-CAM at each layer and for each class."""
    run = f"/api/runs/{run_id.replace('/', '%2F')}"
    timed: dict[str, list[float]] = {"inspect": [], **{m: [] for m in METHODS},
                                     "layer_switch": [], "class_switch": []}  # fmt: skip

    def post(key: str, path: str, body: dict[str, Any]) -> dict[str, Any]:
        start = time.perf_counter()
        response = studio.client.post(run + path, json=body)
        response.raise_for_status()
        timed[key].append(time.perf_counter() - start)
        return response.json()

    first_load = time.perf_counter()
    image = post("inspect", "/inspect", {"test_index": 0})["image_id"]
    load_s = time.perf_counter() - first_load  # loads torch and the network
    layers = [row["name"] for row in studio.client.get(run + "/layers").json()]
    for i in range(repeats):
        post("inspect", "/inspect", {"test_index": i + 1})
        for method in METHODS:
            post(method, "/explain", {"image_id": image, "method": method})
        for layer in layers[: min(len(layers), 6)]:
            post(
                "layer_switch", "/explain", {"image_id": image, "method": "gradcam", "layer": layer}
            )
        for cls in range(3):
            post("class_switch", "/explain", {"image_id": image, "method": "gradcam", "class": cls})
    return {"first_inspect_with_load_s": load_s, **{k: percentiles(v) for k, v in timed.items()}}


def measure_load(studio: Studio, run_id: str, clients: int, seconds: float) -> dict[str, Any]:
    """``clients`` threads for ``seconds``: /api/runs and /explain in turn; latencies and errors."""
    run = f"/api/runs/{run_id.replace('/', '%2F')}"
    image = studio.client.post(run + "/inspect", json={"test_index": 0}).json()["image_id"]
    latencies: dict[str, list[float]] = {"runs": [], "explain": []}
    errors: list[str] = []
    lock = threading.Lock()
    deadline = time.perf_counter() + seconds

    def client(n: int) -> None:
        with httpx.Client(base_url=studio.base, headers={"X-Cnnlab-Token": studio.token},
                          timeout=60) as http:  # fmt: skip
            i = n
            while time.perf_counter() < deadline:
                kind = "runs" if i % 2 else "explain"
                start = time.perf_counter()
                if kind == "runs":
                    response = http.get("/api/runs")
                else:
                    response = http.post(run + "/explain", json={"image_id": image,
                                                                 "method": "gradcam"})  # fmt: skip
                took = time.perf_counter() - start
                with lock:
                    latencies[kind].append(took)
                    if response.status_code >= 300:
                        errors.append(f"{kind}: {response.status_code}")
                i += 1

    threads = [threading.Thread(target=client, args=(n,)) for n in range(clients)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return {"clients": clients, "seconds": seconds, "errors": len(errors),
            "error_samples": errors[:5], "server_peak_rss_bytes": studio.peak_memory(),
            **{k: percentiles(v) for k, v in latencies.items()}}  # fmt: skip


def measure_training(folder: Path, studio_root: Path) -> dict[str, Any]:
    """Images per second of the same training alone and with the studio streaming its run."""

    def train(out: Path) -> float:
        subprocess.run([PYTHON, "-m", "cnnlab", "train", *TEMPLATE_TRAIN, "--out", str(out)],
                       check=True, stdout=subprocess.DEVNULL)  # fmt: skip
        records = [json.loads(line) for line in (out / "metrics.jsonl").read_text().splitlines()]
        return statistics.median(r["images_per_s"] for r in records)

    alone = train(folder / "alone")
    studio = Studio(studio_root)
    try:
        studio.first_page()
        watched = studio_root / "watched"
        stop = threading.Event()

        def watch() -> None:  # an open page: the run's stream, from before the run exists
            while not stop.is_set() and not (watched / "config.json").exists():
                time.sleep(0.05)
            with studio.client.stream("GET", "/api/events",
                                      params={"runs": "0/watched"}) as response:  # fmt: skip
                for _ in response.iter_lines():
                    if stop.is_set():
                        return

        threading.Thread(target=watch, daemon=True).start()
        with_studio = train(watched)
        stop.set()
    finally:
        studio.close()
    return {
        "alone_images_per_s": alone,
        "watched_images_per_s": with_studio,
        "ratio": with_studio / alone,
        "command": " ".join(["cnnlab train", *TEMPLATE_TRAIN]),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=500)
    parser.add_argument("--repeats", type=int, default=5, help="starts per start-up figure")
    parser.add_argument("--live", type=int, default=20, help="live records to time")
    parser.add_argument("--inspect-repeats", type=int, default=5)
    parser.add_argument("--clients", type=int, default=20)
    parser.add_argument("--load-seconds", type=float, default=30.0)
    parser.add_argument("--no-training", action="store_true", help="skip the training comparison")
    parser.add_argument("--out", type=Path, default=RESULTS / "studio.json")
    args = parser.parse_args()
    os.environ.setdefault("OMP_NUM_THREADS", "1")

    result: dict[str, Any] = header("studio")
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        template = template_run(folder)
        root = folder / "runs"
        generate_runs(template, root, args.runs)
        shutil.copytree(template, root / "live")
        result["start"] = measure_start(root, args.repeats)
        result["tensorboard"] = measure_tensorboard(root, args.repeats)
        studio = Studio(root)
        try:
            studio.first_page()
            result["page"] = measure_page_interactive(studio, args.runs + 1)
            result["live"] = measure_live(studio, root / "live", "0/live", args.live)
            result["inspect"] = measure_inspect(studio, "0/live", args.inspect_repeats)
            result["load"] = measure_load(studio, "0/live", args.clients, args.load_seconds)
        finally:
            studio.close()
        if not args.no_training:
            watched_root = folder / "watched_root"
            watched_root.mkdir()
            result["training"] = measure_training(folder, watched_root)
    write_result(args.out, result)
    print(json.dumps({k: v for k, v in result.items() if k != "machine"}, indent=2))


if __name__ == "__main__":
    main()
