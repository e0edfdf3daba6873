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
* **Inspect**: ``/inspect`` of a test image; each method's map alone (``"faithfulness": false``)
  and with its scores; Grad-CAM and feature maps at six layers and Grad-CAM for three classes (the
  issue's target: within 100 ms for the Fashion-MNIST networks, 300 ms for ResNet-18 at 224x224,
  a one-epoch ResNet-18 trained here; ``--no-resnet`` skips it);
* **load test**: ``--clients`` threads for ``--load-seconds`` alternating ``/api/runs`` and
  a Grad-CAM map (``/explain``); p50 and p95 of the latencies, the count of non-2xx answers,
  and the server's peak resident memory (``VmHWM`` of its process);
* **training with the studio watching**: ``cnnlab train`` twice, once alone and once with an event
  stream open on its run (images per second from its ``metrics.jsonl``); skip with
  ``--no-training``.

Usage::

    .venv/bin/python benchmarks/studio.py [--runs 500] [--clients 20] [--load-seconds 30]
        [--out benchmarks/results/studio.json]

The result JSON names the CPU (``machine.describe``); docs/studio.md's table is made from it
(``--table RESULT.json`` prints it). ``benchmarks/studio_architecture.py`` and
``benchmarks/studio_labs.py``'s ``measure()`` results go under ``architecture`` and ``labs``.
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
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx
from machine import header, write_result

PYTHON = sys.executable
RESULTS = Path(__file__).resolve().parent / "results"
TEMPLATE_TRAIN = ["lenet5", "--limit-train", "1024", "--limit-test", "500", "--epochs", "2",
                  "--threads", "1", "--no-progress", "--stall-patience", "0"]  # fmt: skip
RELOADS = 5  # reloads of the runs page timed after the first navigation
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


def generate_runs(template: Path, root: Path, count: int, tensorboard: bool) -> None:
    """``count`` runs written by cnnlab's run writer: the template's config with a seed each, its
    curves shifted per run (so no two are equal), its results; no weights (the list needs none).
    With ``tensorboard``, each run also gets the event files ``cnnlab train --log tensorboard``
    writes (``RUN/tb``, the same tags, the same shifted values), so TensorBoard reads the same
    curves of the same runs."""
    from cnnlab.files import write_json_atomic
    from cnnlab.run.layout import RunFiles

    source = RunFiles(template)
    config = json.loads(source.config.read_text())
    history = source.read_history()
    results = source.read_results()
    steps = source.read_steps()
    for i in range(count):
        files = RunFiles(root / f"gen{i:04d}")
        files.root.mkdir(parents=True)
        write_json_atomic(files.config, config | {"seed": i})
        shift = 1 + 0.002 * (i % 50)
        shifted = [r | {"train_loss": r["train_loss"] * shift, "val_loss": r["val_loss"] * shift}
                   for r in history]  # fmt: skip
        files.write_history(shifted)
        write_json_atomic(files.results, results)
        if tensorboard:
            write_events(files.root / "tb", shifted, steps, shift)


def write_events(folder: Path, history: list[dict], steps: list[dict], shift: float) -> None:
    """TensorBoard event files with :class:`cnnlab.report.loggers.TensorBoardLog`'s tags."""
    from torch.utils.tensorboard import SummaryWriter

    writer = SummaryWriter(log_dir=str(folder))
    for record in steps:
        writer.add_scalar("train/step_loss", record["loss"] * shift, record["step"])
        writer.add_scalar("train/lr", record["lr"], record["step"])
    for record in history:
        for key in ("train_loss", "train_acc", "val_loss", "val_acc", "images_per_s"):
            writer.add_scalar(f"epoch/{key}", record[key], record["step"])
    writer.close()


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


def tensorboard_binary() -> str | None:
    beside = Path(PYTHON).with_name("tensorboard")
    return shutil.which("tensorboard") or (str(beside) if beside.exists() else None)


def measure_tensorboard(root: Path, repeats: int, runs: int) -> dict[str, Any]:
    """``tensorboard --logdir ROOT`` started the same way: start to first page, and start to its
    scalar-tags endpoint (``/data/plugin/scalars/tags``, what its scalars page asks first)
    naming all ``runs`` runs (their ``tb`` event files)."""
    binary = tensorboard_binary()
    if binary is None:
        return {"installed": False}
    from importlib.metadata import version

    page, tags = [], []
    for port in range(6123, 6123 + repeats):
        start = time.perf_counter()
        proc = subprocess.Popen([binary, "--logdir", str(root), "--port", str(port)],
                                stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)  # fmt: skip
        try:
            while True:
                try:
                    if httpx.get(f"http://127.0.0.1:{port}/", timeout=5).status_code == 200:
                        page.append(time.perf_counter() - start)
                        break
                except httpx.TransportError:
                    time.sleep(0.01)
            url = f"http://127.0.0.1:{port}/data/plugin/scalars/tags"
            while time.perf_counter() - start < 300:
                seen = httpx.get(url, timeout=30).json()
                if sum(1 for run in seen if run.endswith("tb")) >= runs:
                    tags.append(time.perf_counter() - start)
                    break
                time.sleep(0.01)
        finally:
            proc.terminate()
            proc.wait(10)
    return {"installed": True, "version": version("tensorboard"),
            "first_page_s": statistics.median(page),
            "scalar_tags_all_runs_s": statistics.median(tags) if tags else None,
            "runs": runs, "repeats": repeats}  # fmt: skip


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
    rows = "return document.querySelectorAll('table.runs tbody tr').length"

    def shown(load: Callable[[], None]) -> float:
        start = time.perf_counter()
        load()
        while browser.execute_script(rows) < runs:
            time.sleep(0.01)
        return time.perf_counter() - start

    try:
        first = shown(lambda: browser.get(studio.url))  # a fresh browser's first navigation
        reloads = [shown(browser.refresh) for _ in range(RELOADS)]  # the browser running
        return {"measured": True, "rows_shown_s": first, "reload_s": statistics.median(reloads),
                "reloads": RELOADS, "rows": runs}  # fmt: skip
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
    """Inspect a test image; each method's map alone (``"faithfulness": false``, what a page asks
    for first) and with its faithfulness scores; Grad-CAM and feature maps at layers spread over
    the network (the layer switch) and Grad-CAM for three classes (the class switch).

    Each figure is the client's time for one request on loopback: the server's computation and
    the transfer of the PNG in the JSON."""
    run = f"/api/runs/{run_id.replace('/', '%2F')}"
    timed: dict[str, list[float]] = {"inspect": [], "layer_switch": [], "class_switch": [],
                                     "features_layer_switch": [], "faithfulness_first": [],
                                     "faithfulness_again": []}  # fmt: skip
    timed |= {f"map_{m}": [] for m in METHODS}
    sizes: list[int] = []

    def post(key: str, path: str, body: dict[str, Any]) -> dict[str, Any]:
        start = time.perf_counter()
        response = studio.client.post(run + path, json=body)
        if response.status_code != 200:
            raise SystemExit(f"{path} {body}: {response.status_code} {response.text}")
        timed[key].append(time.perf_counter() - start)
        sizes.append(len(response.content))
        return response.json()

    first_load = time.perf_counter()
    image = post("inspect", "/inspect", {"test_index": 0})["image_id"]
    load_s = time.perf_counter() - first_load  # loads torch and the network
    timed["inspect"].clear()
    rows = studio.client.get(run + "/layers").json()
    layers = [row["name"] for row in rows if len(row["output_shape"]) == 3]  # maps, not vectors
    spread = [layers[round(i * (len(layers) - 1) / 5)] for i in range(6)] if layers else []
    quick = {"image_id": image, "faithfulness": False}
    for i in range(repeats):
        image = post("inspect", "/inspect", {"test_index": i + 1})["image_id"]
        quick["image_id"] = image
        for method in METHODS:
            post(f"map_{method}", "/explain", quick | {"method": method})
        for layer in spread:
            post("layer_switch", "/explain", quick | {"method": "gradcam", "layer": layer})
            features = quick | {"method": "features", "layer": layer}
            post("features_layer_switch", "/explain", features)
        for cls in range(3):
            post("class_switch", "/explain", quick | {"method": "gradcam", "class": cls})
        # The scores: the first method pays for the random orders, the next reuses them.
        post("faithfulness_first", "/explain", {"image_id": image, "method": "gradcam"})
        post("faithfulness_again", "/explain", {"image_id": image, "method": "saliency"})
    return {"first_inspect_with_load_s": load_s, "layers_switched": spread,
            "median_answer_bytes": statistics.median(sizes),
            **{k: percentiles(v) for k, v in timed.items()}}  # fmt: skip


def measure_load(studio: Studio, run_id: str, clients: int, seconds: float) -> dict[str, Any]:
    """``clients`` threads for ``seconds``: /api/runs and /explain in turn; latencies and errors."""
    run = f"/api/runs/{run_id.replace('/', '%2F')}"
    image = studio.client.post(run + "/inspect", json={"test_index": 0}).json()["image_id"]
    # A Grad-CAM map as a layer or class switch asks for it (the scores come in a second request)
    explain = {"image_id": image, "method": "gradcam", "faithfulness": False}
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
                    response = http.post(run + "/explain", json=explain)
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


def resnet_run(folder: Path) -> Path:
    """A ResNet-18 at 224x224 (Fashion-MNIST resized; 128 images, one epoch): Inspect's speed
    depends on the network's size, not on how well it learned."""
    out = folder / "runs" / "resnet18"
    subprocess.run([PYTHON, "-m", "cnnlab", "train", "resnet18", "--image-size", "224",
                    "--limit-train", "128", "--val-size", "32", "--limit-test", "64",
                    "--batch-size", "32", "--epochs", "1", "--threads", "1", "--no-progress",
                    "--stall-patience", "0", "--out", str(out)],
                   check=True, stdout=subprocess.DEVNULL)  # fmt: skip
    return out


def measure_views() -> dict[str, Any]:
    """The other views' own measurements (issue 24): ``benchmarks/studio_architecture.py`` and
    ``benchmarks/studio_labs.py``'s ``measure()``, each where its file exists."""
    out: dict[str, Any] = {}
    for key, module in (("architecture", "studio_architecture"), ("labs", "studio_labs")):
        script = Path(__file__).with_name(f"{module}.py")
        if not script.exists():
            continue
        # Each in a process of its own, as run alone: called in this process after the rest,
        # the architecture view's Chromium never saw its diagram drawn (120 s), alone it did.
        result = RESULTS / f"{module}.json"
        done = subprocess.run([PYTHON, str(script), "--out", str(result)],
                              capture_output=True, text=True)  # fmt: skip
        if done.returncode != 0:  # one view's failure must not lose the others' figures
            out[key] = {"error": (done.stderr or done.stdout).strip().splitlines()[-1:]}
        else:
            out[key] = json.loads(result.read_text())
    return out


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
            try:
                with studio.client.stream("GET", "/api/events",
                                          params={"runs": "0/watched"}) as response:  # fmt: skip
                    for _ in response.iter_lines():
                        if stop.is_set():
                            return
            except httpx.HTTPError:  # the studio stopped under the stream: the run is over
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
    parser.add_argument("--no-resnet", action="store_true", help="skip ResNet-18's Inspect")
    parser.add_argument("--no-views", action="store_true",
                        help="skip the architecture and labs measurements")  # fmt: skip
    parser.add_argument("--out", type=Path, default=RESULTS / "studio.json")
    parser.add_argument("--table", type=Path, metavar="JSON",
                        help="print docs/studio.md's table from a result and exit")  # fmt: skip
    args = parser.parse_args()
    if args.table:
        print(table(json.loads(args.table.read_text())))
        return
    os.environ.setdefault("OMP_NUM_THREADS", "1")

    result: dict[str, Any] = header("studio")
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        template = template_run(folder)
        root = folder / "runs"
        has_tb = tensorboard_binary() is not None
        generate_runs(template, root, args.runs, has_tb)
        result["start"] = measure_start(root, args.repeats)
        result["tensorboard"] = measure_tensorboard(root, args.repeats, args.runs)
        shutil.copytree(template, root / "live")
        resnet = None if args.no_resnet else resnet_run(folder)
        studio = Studio(root)
        try:
            studio.first_page()
            result["page"] = measure_page_interactive(studio, args.runs + 1 + (resnet is not None))
            result["live"] = measure_live(studio, root / "live", "0/live", args.live)
            result["inspect"] = {"lenet5": measure_inspect(studio, "0/live", args.inspect_repeats)}
            result["load"] = measure_load(studio, "0/live", args.clients, args.load_seconds)
            if resnet is not None:  # after the load test: its peak memory is the LeNet server's
                result["inspect"]["resnet18_224"] = measure_inspect(studio, "0/resnet18", 2)
                result["inspect"]["resnet18_224"]["server_peak_rss_bytes"] = studio.peak_memory()
        finally:
            studio.close()
        if not args.no_training:
            watched_root = folder / "watched_root"
            watched_root.mkdir()
            result["training"] = measure_training(folder, watched_root)
    if not args.no_views:
        result |= measure_views()
    write_result(args.out, result)
    print(json.dumps({k: v for k, v in result.items() if k != "machine"}, indent=2))
    print(table(result))


def table(r: dict[str, Any]) -> str:
    """docs/studio.md's table: each figure of a result beside its goal (issue 23)."""
    ms = lambda v: f"{v:.0f} ms" if v is not None else "–"  # noqa: E731
    s = lambda v: f"{v:.2f} s" if v is not None else "–"  # noqa: E731
    start, tb = r["start"], r["tensorboard"]
    rows = [
        ("start to first page", s(start["first_page_s"]), "1 s",
         f"TensorBoard {tb.get('version', '')}: {s(tb.get('first_page_s'))}"),
        (f"start to the runs list with all {start['runs']} runs", s(start["runs_listed_s"]),
         "sooner than TensorBoard's scalar tags",
         f"TensorBoard: {s(tb.get('scalar_tags_all_runs_s'))}"),
    ]  # fmt: skip
    page = r.get("page", {})
    if page.get("measured"):
        rows.append((f"page showing all {page['rows']} rows (Chromium, a fresh browser's "
                     "first navigation)", s(page["rows_shown_s"]), "1 s", ""))  # fmt: skip
        if "reload_s" in page:
            rows.append((f"the same page reloaded (median of {page['reloads']})",
                         s(page["reload_s"]), "1 s", ""))  # fmt: skip
    live = r["live"]
    rows.append(("live update: record written to event received", f"p50 {ms(live.get('p50_ms'))},"
                 f" p95 {ms(live.get('p95_ms'))}", "1 s", f"{live['n']} records"))  # fmt: skip
    goals = {"lenet5": "100 ms", "resnet18_224": "300 ms"}
    for net, x in r["inspect"].items():
        for key, what in (
            ("layer_switch", "Grad-CAM, layer switch"),
            ("class_switch", "Grad-CAM, class switch"),
            ("features_layer_switch", "feature maps, layer switch"),
            ("map_occlusion", "occlusion map"),
            ("faithfulness_first", "a map with its faithfulness scores (first)"),
            ("faithfulness_again", "another method's scores (random orders kept)"),
        ):
            goal = goals[net] if "switch" in key else "–"
            rows.append((f"Inspect {net}: {what}", f"p50 {ms(x[key].get('p50_ms'))}, max "
                         f"{ms(x[key].get('max_ms'))}", goal, ""))  # fmt: skip
    load = r["load"]
    rows.append((f"load: {load['clients']} clients for {load['seconds']:.0f} s, /api/runs",
                 f"p50 {ms(load['runs'].get('p50_ms'))}, p95 {ms(load['runs'].get('p95_ms'))}",
                 "no errors", f"{load['errors']} errors"))  # fmt: skip
    rows.append(
        (
            "load: Grad-CAM maps (same clients)",
            f"p50 {ms(load['explain'].get('p50_ms'))}, p95 {ms(load['explain'].get('p95_ms'))}",
            "no errors",
            f"server peak memory {load['server_peak_rss_bytes'] / 2**20:.0f} MiB",
        )
    )
    train = r.get("training")
    if train:
        rows.append(("training with the studio watching", f"{train['ratio']:.2f}x alone",
                     "no slower", f"{train['watched_images_per_s']:.0f} against "
                     f"{train['alone_images_per_s']:.0f} img/s"))  # fmt: skip
    lines = ["| measurement | measured | goal | beside it |", "|---|---|---|---|"]
    lines += [f"| {a} | {b} | {c} | {d} |" for a, b, c, d in rows]
    return "\n".join(lines)


if __name__ == "__main__":
    main()
