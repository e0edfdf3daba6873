"""The studio's experiments view: the catalogue, finished results with their verdict and figures,
an experiment run as a studio job with live progress, and the view in Chromium.

One real finished experiment (``tiny-test`` at its smoke tier, tests/helpers/tiny_experiment.py)
is made once for the module; a second folder is assembled from the kept quick-tier results of
``kernel-stacks`` (benchmarks/results/experiments, the figures in docs/figures/experiments), so
the view shows a real verdict and figure. Screenshots go to $CNNLAB_STUDIO_SCREENSHOTS when set.
"""

from __future__ import annotations

import json
import os
import shutil
import stat
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

pytest.importorskip("starlette")
pytest.importorskip("httpx")

from starlette.testclient import TestClient

import helpers.tiny_experiment  # noqa: F401  (registers tiny-test and tinynet)
from helpers import TESTS_DIR, subprocess_env
from helpers.datasets import has_fashion_mnist
from helpers.optional import importable

REPO = Path(__file__).resolve().parents[1]
KEPT = "kernel-stacks-quick"  # a kept result with a verdict and one figure
TOKEN = "test-token"
PORT = 6072
TINY = "0/experiments/tiny-test-smoke"

pytestmark = pytest.mark.skipif(not has_fashion_mnist(), reason="Fashion-MNIST not installed")


def kept_folder(root: Path) -> Path:
    """An experiment folder as ``cnnlab experiment run`` leaves it, from a kept results.json."""
    results = json.loads(
        (REPO / "benchmarks" / "results" / "experiments" / f"{KEPT}.json").read_text()
    )
    folder = root / "experiments" / KEPT
    (folder / "figures").mkdir(parents=True)
    request = {k: results[k] for k in ("tier", "data", "seed", "settings")}
    (folder / "experiment.json").write_text(
        json.dumps({"experiment": results["experiment"], **request})
    )
    (folder / "results.json").write_text(json.dumps(results))
    for fig in results["figures"]:
        kept = REPO / "docs" / "figures" / "experiments" / f"{KEPT}-{fig['file']}"
        shutil.copyfile(kept, folder / "figures" / fig["file"])
    return folder


@pytest.fixture(scope="module")
def made(tmp_path_factory: pytest.TempPathFactory) -> dict:
    """``tiny-test`` at its smoke tier, queued as a job on a real server (uvicorn in a thread)
    whose jobs run ``python -m helpers.tiny_experiment`` (the ``cnnlab`` command with tiny-test
    registered), with its folder's event stream read until the experiment finished; then the
    kept ``kernel-stacks`` folder beside it."""
    import socket

    import httpx
    import uvicorn

    from cnnlab.studio import create_app

    tmp = tmp_path_factory.mktemp("studio-experiments")
    python = tmp / "python"
    env = subprocess_env(OMP_NUM_THREADS="1")
    python.write_text(
        f"#!/bin/sh\nshift 2\nexec env PYTHONPATH={env['PYTHONPATH']} OMP_NUM_THREADS=1 "
        f'{sys.executable} -m helpers.tiny_experiment "$@"\n'
    )
    python.chmod(python.stat().st_mode | stat.S_IEXEC)
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    root = tmp / "runs"
    root.mkdir()
    app = create_app([root], TOKEN, port=port, python=str(python))
    server = uvicorn.Server(uvicorn.Config(app, port=port, log_level="warning", lifespan="on"))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.time() + 10
    while not server.started and time.time() < deadline:
        time.sleep(0.05)
    client = httpx.Client(base_url=f"http://127.0.0.1:{port}", headers={"X-Cnnlab-Token": TOKEN},
                          timeout=30)  # fmt: skip
    try:
        job = client.post("/api/jobs", json={"kind": "experiment", "name": "tiny-test",
                                             "tier": "smoke", "threads": 1})  # fmt: skip
        assert job.status_code == 201, job.text
        job = job.json()
        folder = root / "experiments" / "tiny-test-smoke"
        deadline = time.time() + 60
        while not (folder / "experiment.json").exists() and time.time() < deadline:
            time.sleep(0.05)
        epochs: list[tuple[str, int]] = []
        last: dict = {}
        deadline = time.time() + 90  # the keep-alive lines wake the loop: it cannot wait forever
        with client.stream("GET", f"/api/events?experiments={job['run']}") as events:
            name = None
            for line in events.iter_lines():
                if time.time() > deadline:
                    break
                if line.startswith("event: "):
                    name = line[7:]
                elif line.startswith("data: ") and name == "epoch":
                    record = json.loads(line[6:])
                    epochs.append((record["run"].rsplit("/", 1)[1], record["epoch"]))
                elif line.startswith("data: ") and name == "experiment":
                    last = json.loads(line[6:])
                    if last["state"] == "finished":
                        break
        jobs = client.get("/api/jobs").json()["jobs"]
    finally:
        client.close()
        server.should_exit = True
        thread.join(20)
    kept_folder(root)
    return {"root": root, "job": job, "jobs": jobs, "epochs": epochs, "last": last}


@pytest.fixture(scope="module")
def root(made: dict) -> Path:
    return made["root"]


@pytest.fixture(scope="module")
def client(root: Path):
    from cnnlab.studio import create_app

    app = create_app([root], TOKEN, port=PORT)
    with TestClient(app, base_url=f"http://127.0.0.1:{PORT}",
                    headers={"X-Cnnlab-Token": TOKEN}) as c:  # fmt: skip
        yield c


def test_catalogue_and_a_finished_verdict_with_its_figure(client, root):
    from cnnlab.experiments import list_experiments
    from cnnlab.experiments.page import verdict_words

    body = client.get("/api/experiments").json()
    rows = {e["name"]: e for e in body["experiments"]}
    # every experiment, with the claim and source its module states (one owner of the text)
    assert list(rows) == [e.name for e in list_experiments()]
    for e in list_experiments():
        assert (rows[e.name]["claim"], rows[e.name]["source"]) == (e.claim, e.source)
        assert [t["tier"] for t in rows[e.name]["tiers"]] == list(e.tiers)
    [tiny] = rows["tiny-test"]["results"]
    results = json.loads((root / "experiments" / "tiny-test-smoke" / "results.json").read_text())
    assert tiny["id"] == TINY and tiny["state"] == "finished"
    assert tiny["verdict_words"] == verdict_words(results) == "no verdict (smoke tier)"
    assert tiny["verdict"] == results["verdict"]
    [kept] = rows["kernel-stacks"]["results"]
    assert kept["state"] == "finished" and kept["verdict_words"] == "the claim held"

    detail = client.get(f"/api/experiments/{TINY}").json()
    assert detail["findings"] == results["findings"] and detail["departures"]
    listed = {r["id"] for r in client.get("/api/runs").json()["runs"]}
    assert {r["id"] for r in detail["runs"]} == {f"{TINY}/runs/first", f"{TINY}/runs/second"}
    assert {r["id"] for r in detail["runs"]} <= listed  # the runs view lists them too
    assert all(
        r["status"] == "finished" and r["epochs_done"] == r["epochs"] for r in detail["runs"]
    )
    [figure] = detail["figures"]
    png = client.get(figure["url"])
    assert png.status_code == 200 and png.headers["content-type"] == "image/png"
    assert (
        png.content
        == (root / "experiments" / "tiny-test-smoke" / "figures" / "curve.png").read_bytes()
    )


def test_figures_are_confined_and_job_names_checked(client, root, tmp_path):
    folder = root / "experiments" / "tiny-test-smoke"
    secret = tmp_path / "secret.png"
    secret.write_bytes(b"\x89PNG not yours")
    (folder / "figures" / "out.png").symlink_to(secret)
    base = f"/api/experiments/{TINY}"
    refused = (
        "/figures/out.png",
        "/figures/..%2Fresults.json",
        "/figures/results.json",
        "/figures/missing.png",
        "/runs/first/figures/curve.png",
        "/../..%2Fetc",
    )
    for path in refused:
        r = client.get(base + path)
        assert r.status_code == 404 and r.json()["error"], (path, r.text)
    assert client.get("/api/experiments/0/experiments").status_code == 404  # no experiment.json
    r = client.post("/api/jobs", json={"kind": "experiment", "name": "tiny"})
    assert r.status_code == 400 and "unknown experiment 'tiny'" in r.json()["error"]
    assert "kernel-stacks" in r.json()["error"]  # the choices are listed
    r = client.post("/api/jobs", json={"kind": "experiment", "name": "tiny-test", "tier": "full"})
    assert r.status_code == 400 and r.json()["error"].endswith("pick one of smoke, quick")
    assert client.get("/api/jobs").json()["jobs"] == []  # nothing was queued (a new app)


def test_the_first_pages_import_no_torch(root):
    """The runs list, curves, jobs, experiments and the event stream's reads load no PyTorch: a
    page is served at once (issue 23: the first page within 1 s of starting)."""
    script = f"""
import sys
from starlette.testclient import TestClient
from cnnlab.studio import create_app
from cnnlab.studio import live
from cnnlab.studio.experiments import folder_record
from pathlib import Path
root = Path({str(root)!r})
app = create_app([root], "t", port=9)
paths = ["/", "/api/runs", "/api/runs/{TINY}/runs/first/curves", "/api/jobs",
         "/api/experiments", "/api/experiments/{TINY}", "/static/app.js"]
with TestClient(app, base_url="http://127.0.0.1:9", headers={{"X-Cnnlab-Token": "t"}}) as c:
    for path in paths:
        assert c.get(path).status_code == 200, path
    s = app.state.studio
    w = live.WatchedExperiment("{TINY}", root / "experiments/tiny-test-smoke",
                               lambda f: folder_record(s, f, lambda r: r.status),
                               lambda p: "0/x")
    w.start_at_end()
    assert w.poll(lambda p: "finished")
print(sorted(m for m in ("torch", "matplotlib", "numpy") if m in sys.modules))
"""
    out = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True,
                         env=subprocess_env(), timeout=120)  # fmt: skip
    assert out.returncode == 0, out.stderr[-2000:]
    assert "torch" not in out.stdout.splitlines()[-1], out.stdout


@pytest.mark.slow
def test_an_experiment_job_shows_its_progress_live(made):
    """`cnnlab experiment run tiny-test --tier smoke` queued as a job: the stream of its folder
    brought its runs' epochs as they were recorded, then the finished record with its verdict."""
    job, last = made["job"], made["last"]
    assert job["command"][:6] == ["cnnlab", "experiment", "run", "tiny-test", "--tier", "smoke"]
    assert job["run"] == TINY and job["experiment"] == {"name": "tiny-test", "tier": "smoke"}
    assert last.get("state") == "finished", (last, made["jobs"])
    assert last["verdict_words"] == "no verdict (smoke tier)" and last["figures"]
    assert [j["state"] for j in made["jobs"]] in (["finished"], ["running"])  # exiting now
    # every epoch of both runs arrived on the stream (first: 1 epoch, second: 3 at smoke tier)
    assert sorted(made["epochs"]) == [("first", 1), ("second", 1), ("second", 2), ("second", 3)]


# --- Chromium -------------------------------------------------------------------------------------

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
DRIVER = shutil.which("chromedriver")


@pytest.fixture(scope="module")
def studio_url(root: Path):
    """``cnnlab studio ROOT`` with tiny-test registered; stopped with Ctrl-C afterwards."""
    import re

    proc = subprocess.Popen(
        [sys.executable, "-m", "helpers.tiny_experiment", "studio", str(root), "--no-browser",
         "--port", "0"],
        stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, cwd=TESTS_DIR,
        env=subprocess_env(OMP_NUM_THREADS="1"),
    )  # fmt: skip
    url = None
    for line in proc.stdout:
        found = re.search(r"http://127\.0\.0\.1:\d+/\?token=\S+", line)
        if found:
            url = found.group(0)
            break
    if url is None:
        proc.kill()
        pytest.fail(f"cnnlab studio printed no address: {proc.stdout.read()}")
    yield url
    proc.send_signal(2)
    try:
        proc.wait(timeout=10)
    except subprocess.TimeoutExpired:
        proc.kill()


@pytest.mark.slow
@pytest.mark.skipif(not (CHROMIUM and DRIVER), reason="headless Chromium not installed")
@pytest.mark.skipif(not importable("selenium"), reason="selenium not installed")
def test_the_view_lists_experiments_and_shows_a_verdict(studio_url, tmp_path_factory):
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    from cnnlab.experiments import list_experiments
    from test_studio_browser import screenshot, usable, wait_for

    folder = os.environ.get("CNNLAB_STUDIO_SCREENSHOTS")
    shots = Path(folder) if folder else tmp_path_factory.mktemp("screenshots")
    shots.mkdir(parents=True, exist_ok=True)
    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM
    for flag in ("--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
                 "--window-size=1280,900",
                 "--host-resolver-rules=MAP * ~NOTFOUND, EXCLUDE 127.0.0.1"):  # fmt: skip
        options.add_argument(flag)
    options.set_capability("goog:loggingPrefs", {"browser": "ALL", "performance": "ALL"})
    browser = webdriver.Chrome(service=Service(DRIVER), options=options)
    try:
        browser.get(studio_url + "#/experiments")
        claims = wait_for(browser, "document.querySelectorAll('article.experiment').length >= 9 && "
                          "Array.from(document.querySelectorAll('article.experiment'), a => "
                          "[a.dataset.experiment, a.querySelector('.claim').textContent])",
                          "the experiments")  # fmt: skip
        assert [(n, c.removeprefix("Claim. ")) for n, c in claims] == [
            (e.name, e.claim) for e in list_experiments()
        ]
        verdict = "(a => a && a.querySelector('tr.finished .verdict').textContent)"
        assert wait_for(browser, f"{verdict}(document.querySelector("
                        "'article[data-experiment=\"kernel-stacks\"]'))", "a verdict") == (
            "the claim held"
        )  # fmt: skip
        tiny = "document.querySelector('article[data-experiment=\"tiny-test\"]')"
        assert browser.execute_script(f"return {verdict}({tiny})") == "no verdict (smoke tier)"
        usable(browser)
        screenshot(browser, shots / "experiments.png")

        browser.execute_script(
            "document.querySelector('tr[data-folder=\"0/experiments/kernel-stacks-quick\"] a')"
            ".click()"
        )
        heading = wait_for(browser, "(b => b && b.querySelector('h2').textContent)"
                           "(document.querySelector('.verdict-box'))", "the verdict")  # fmt: skip
        assert heading == "Verdict: the claim held"
        wait_for(browser, "Array.from(document.querySelectorAll('.experiment-figures img'))"
                 ".every(i => i.complete && i.naturalWidth > 0) && "
                 "document.querySelectorAll('.experiment-figures img').length === 1",
                 "the figure")  # fmt: skip
        assert browser.execute_script("return document.querySelectorAll('table.finding').length")
        usable(browser)
        screenshot(browser, shots / "experiment.png")

        base = studio_url.split("?")[0].rstrip("/")
        requests = [
            json.loads(entry["message"])["message"]["params"]["request"]["url"]
            for entry in browser.get_log("performance")
            if '"Network.requestWillBeSent"' in entry["message"]
        ]
        assert [u for u in requests if not u.startswith((base + "/", "data:", "blob:"))] == []
        logs = [e for e in browser.get_log("browser") if e["level"] in ("SEVERE", "WARNING")]
        assert logs == []
    finally:
        browser.quit()
