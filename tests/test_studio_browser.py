"""cnnlab studio in a real browser: ``cnnlab studio`` (with tinynet registered) serves a folder of
tiny runs, and headless Chromium (Debian's ``chromium`` + ``chromium-driver``, driven by Selenium,
as tests/test_report_browser.py does) uses every view with every other host unreachable.

It checks what a user sees: the runs list with each run's status (a damaged one with its reason),
overlaid curves where a diverged run is clipped and marked instead of flattening the others, a
new epoch arriving live, a confusion cell opening its test images, a thumbnail opening Inspect
with the top 5 and four explanation maps, an uploaded image explained, and the job form's
command; then that every request stayed on the studio and the console holds no error.

Screenshots of each view go to $CNNLAB_STUDIO_SCREENSHOTS when it is set (docs/figures/studio
for the docs), else to the test's temporary folder.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
import time
from pathlib import Path

import pytest

from helpers import subprocess_env
from helpers.optional import importable

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
DRIVER = shutil.which("chromedriver")
WAIT = 30  # seconds any one thing may take to show (the first Inspect loads torch)

pytestmark = [
    pytest.mark.skipif(
        not (CHROMIUM and DRIVER),
        reason="headless Chromium not installed (apt-get install chromium chromium-driver)",
    ),
    pytest.mark.skipif(not importable("selenium"), reason="selenium not installed"),
    pytest.mark.skipif(not importable("cnnlab.studio.app"), reason="the studio is not built"),
    pytest.mark.slow,
]


@pytest.fixture(scope="module")
def runs_root(trained_run: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A finished tiny run, a copy whose loss diverged to 1e6, and a damaged copy."""
    root = tmp_path_factory.mktemp("studio") / "runs"
    shutil.copytree(trained_run, root / "tiny")
    diverged = shutil.copytree(trained_run, root / "diverged")
    records = [json.loads(line) for line in (diverged / "metrics.jsonl").read_text().splitlines()]
    records[-1] |= {"train_loss": 3.0e4, "val_loss": 1.0e6, "val_acc": 0.1}
    (diverged / "metrics.jsonl").write_text("".join(json.dumps(r) + "\n" for r in records))
    damaged = shutil.copytree(trained_run, root / "damaged")
    (damaged / "results.json").write_text("null")
    return root


@pytest.fixture(scope="module")
def studio(runs_root: Path):
    """The studio's address with its token; the server is stopped (Ctrl-C) afterwards."""
    command = [sys.executable, "-m", "helpers.tinynet_cli", "studio", str(runs_root)]
    proc = subprocess.Popen(
        [*command, "--no-browser", "--port", "0"],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        env=subprocess_env(OMP_NUM_THREADS="1"),
    )
    url = None
    for line in proc.stdout:  # the address is printed before the server answers
        found = re.search(r"http://127\.0\.0\.1:\d+/\?token=\S+", line)
        if found:
            url = found.group(0)
            break
    if url is None:
        proc.kill()
        pytest.fail(f"cnnlab studio printed no address: {proc.stdout.read()}")
    try:
        yield url
    finally:
        proc.send_signal(2)  # SIGINT: the clean stop a user gets from Ctrl-C
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()


@pytest.fixture(scope="module")
def browser():
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM
    for flag in (
        "--headless=new",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-dev-shm-usage",
        "--window-size=1280,900",
        # Every host name but the studio's fails to resolve: a font, CDN or analytics request
        # would show in the performance log and fail.
        "--host-resolver-rules=MAP * ~NOTFOUND, EXCLUDE 127.0.0.1",
    ):
        options.add_argument(flag)
    options.set_capability("goog:loggingPrefs", {"browser": "ALL", "performance": "ALL"})
    driver = webdriver.Chrome(service=Service(DRIVER), options=options)
    driver.set_script_timeout(WAIT)
    try:
        yield driver
    finally:
        driver.quit()


@pytest.fixture(scope="module")
def shots(tmp_path_factory: pytest.TempPathFactory) -> Path:
    folder = os.environ.get("CNNLAB_STUDIO_SCREENSHOTS")
    out = Path(folder) if folder else tmp_path_factory.mktemp("screenshots")
    out.mkdir(parents=True, exist_ok=True)
    return out


def wait_for(browser, script: str, what: str, timeout: float = WAIT):
    """Poll a JavaScript expression until it is truthy; its value."""
    from selenium.common.exceptions import JavascriptException

    deadline, last = time.monotonic() + timeout, ""
    while time.monotonic() < deadline:
        try:
            value = browser.execute_script(f"return ({script})")
        except JavascriptException as err:  # the element is not drawn yet
            value, last = None, err.msg
        if value:
            return value
        time.sleep(0.05)
    message = browser.execute_script("const m = document.getElementById('message'); "
                                      "return m && !m.hidden ? m.textContent : ''")  # fmt: skip
    raise AssertionError(f"timed out waiting for {what}: {message or last}")


def usable(browser) -> None:
    """The view fits a 1280 px laptop and a 1920 px projector without sideways scrolling, and
    every form field has a label (read out to a screen reader, clickable)."""
    for width in (1920, 1280):
        browser.set_window_size(width, 900)
        overflow = browser.execute_script(
            "return document.documentElement.scrollWidth - document.documentElement.clientWidth"
        )
        assert overflow <= 0, f"{overflow} px too wide at {width} px"
    unlabelled = browser.execute_script(
        "return Array.from(document.querySelectorAll('input, select'))"
        ".filter(e => !e.labels.length && !e.getAttribute('aria-label')).map(e => e.outerHTML)"
    )
    assert unlabelled == []


def screenshot(browser, path: Path, width: int = 1280) -> None:
    height, chrome = browser.execute_script(
        "return [document.documentElement.scrollHeight, window.outerHeight - window.innerHeight]"
    )
    browser.set_window_size(width, min(max(height, 700), 4000) + chrome)
    time.sleep(0.2)  # let the resize lay out
    assert browser.save_screenshot(str(path))
    browser.set_window_size(1280, 900)


def test_runs_view_lists_every_run_and_overlays_curves(studio, runs_root, browser, shots):
    browser.get(studio)
    rows = wait_for(browser, "document.querySelectorAll('table.runs tbody tr').length >= 3 && "
                    "Array.from(document.querySelectorAll('table.runs tbody tr'))"
                    ".map(r => [r.dataset.run, r.querySelector('.badge').textContent, "
                    "(r.querySelector('.reason') || {}).textContent || ''])",
                    "the runs list")  # fmt: skip
    status = {run: (badge, reason) for run, badge, reason in rows}
    assert status["0/tiny"][0] == "finished" and status["0/diverged"][0] == "finished"
    assert status["0/damaged"][0] == "damaged" and "results.json" in status["0/damaged"][1]
    assert "token=" not in browser.current_url  # the token left the address bar

    # Filter by status, then sort by test accuracy (best first): the table follows.
    from selenium.webdriver.support.select import Select

    listed = (
        "return Array.from(document.querySelectorAll('table.runs tbody tr'), r => r.dataset.run)"
    )
    status_filter = Select(browser.find_element("css selector", "form.filters select"))
    status_filter.select_by_value("damaged")
    assert browser.execute_script(listed) == ["0/damaged"]
    status_filter.select_by_value("")
    browser.find_element("xpath", "//th/button[starts-with(., 'Test top-1')]").click()
    assert browser.execute_script(listed)[-1] == "0/damaged"  # no test result: sorted last

    for run in ("0/tiny", "0/diverged"):  # clicked in the page: live events redraw the table
        browser.execute_script(
            f"document.querySelector('input[aria-label=\"compare {run}\"]').click()"
        )
    # Both runs drawn (train and validation each), read in one go: live events redraw the charts.
    diverged = "document.querySelector('.compare g.series[data-label=\"0/diverged validation\"]')"
    note, ticks = wait_for(browser, f"{diverged} && "
                           "(f => [(f.querySelector('.clip-note') || {}).textContent || '', "
                           "Array.from(f.querySelectorAll('g.axes text')).map(t => t.textContent)"
                           ".filter(s => /^[0-9.]+$/.test(s)).map(Number)])"
                           "(document.querySelector('.compare .chart-figure'))",
                           "the curves")  # fmt: skip
    assert "0/diverged validation" in note and "1e+6" in note  # clipped and named...
    assert max(ticks) < 10  # ...and the other losses (about 2.3) keep the scale
    usable(browser)
    screenshot(browser, shots / "runs.png")


def test_a_new_epoch_reaches_the_open_page_live(studio, runs_root, browser):
    """A record appended to metrics.jsonl (as the trainer writes it) is drawn without a reload."""
    browser.get(studio + "#/runs")
    # The runs to compare, ticked here too: a test runs alone under xdist, with no earlier ticks.
    box = "document.querySelector('input[aria-label=\"compare 0/diverged\"]')"
    wait_for(browser, box, "the runs table")
    browser.execute_script(f"if (!{box}.checked) {box}.click()")
    dots = (
        "document.querySelector('.compare .chart-figure')"  # the loss chart
        ".querySelectorAll('g.series[data-label=\"0/diverged validation\"] circle.dot').length"
    )
    before = wait_for(browser, dots, "the diverged run's curve")
    wait_for(
        browser, "document.getElementById('live').dataset.state === 'open'", "the event stream"
    )
    metrics = runs_root / "diverged" / "metrics.jsonl"  # (the tiny run stays as trained)
    last = json.loads(metrics.read_text().splitlines()[-1])
    with metrics.open("a") as f:
        record = last | {"epoch": last["epoch"] + 1, "step": last["step"] + 8, "val_loss": 2.3}
        f.write(json.dumps(record) + "\n")
    wait_for(browser, f"{dots} === {before + 1}", "the new epoch", timeout=10)


def test_run_page_confusion_cell_opens_its_images_then_inspect(studio, browser, shots):
    browser.get(studio + "#/run/0%2Ftiny")
    wait_for(browser, "document.querySelectorAll('table.confusion button.cell').length === 100",
             "the confusion matrix")  # fmt: skip
    assert (
        browser.execute_script(
            "return document.querySelectorAll('#curves-h ~ div svg.chart').length"
        )
        == 3
    )
    count = browser.execute_script(  # the fullest cell, clicked in the page (no stale handle)
        "const cell = Array.from(document.querySelectorAll("
        "'table.confusion button.cell:not(:disabled)'))"
        ".sort((a, b) => b.textContent - a.textContent)[0];"
        "cell.click(); return Number(cell.textContent)"
    )
    thumbs = wait_for(
        browser, "document.querySelectorAll('.cell-images img.thumb').length", "thumbs"
    )
    assert thumbs == min(count, 24)
    decoded = browser.execute_script(
        "return Array.from(document.querySelectorAll('.cell-images img.thumb'))"
        ".every(i => i.complete && i.naturalWidth > 0)"
    )
    assert decoded
    usable(browser)
    screenshot(browser, shots / "run.png")

    browser.find_element("css selector", ".cell-images a.thumb-link").click()
    assert "#/inspect?" in browser.current_url and "test=" in browser.current_url
    top5 = wait_for(browser, "document.querySelectorAll('ol.top5 li .p').length === 5 && "
                    "Array.from(document.querySelectorAll('ol.top5 li .p'))"
                    ".map(e => e.textContent)",
                    "the top 5")  # fmt: skip
    shares = [float(p.rstrip("%")) for p in top5]
    assert shares == sorted(shares, reverse=True) and sum(shares) <= 100.5
    wait_for(browser, "document.querySelectorAll('figure.map img').length === 4", "four maps")
    # the maps come first, their faithfulness after (a hundred forward passes each): all three
    # methods that have scores show them, the feature maps say they have none
    wait_for(browser, "document.querySelectorAll('figure.map table.scores').length === 3",
             "faithfulness beside the maps that have it")  # fmt: skip
    usable(browser)
    screenshot(browser, shots / "inspect.png")


def test_an_uploaded_image_is_predicted_and_explained(studio, browser, tmp_path):
    from PIL import Image

    picture = tmp_path / "drawn.png"
    Image.new("L", (28, 28), 0).save(picture)  # a black square: any class, but a real image
    browser.get(studio + "#/inspect?run=0%2Ftiny")
    wait_for(browser, "document.querySelectorAll('#inspect-layer option').length > 3", "the layers")
    browser.find_element("css selector", "#inspect-file").send_keys(str(picture))
    wait_for(browser, "document.querySelectorAll('ol.top5 li .p').length === 5", "the top 5")
    # A chosen layer and class reach the map's title.
    layer = browser.execute_script(
        "const s = document.getElementById('inspect-layer'); s.value = s.options[2].value;"
        "s.dispatchEvent(new Event('change')); return s.value"
    )
    wait_for(browser, "document.querySelectorAll('figure.map img').length === 4", "four maps")
    caption = browser.find_element("css selector", 'figure.map[data-method="gradcam"] figcaption')
    assert re.search(rf" at {re.escape(layer)} \d+ ms$", caption.text), caption.text


def test_jobs_view_shows_the_command(studio, browser, shots):
    browser.get(studio + "#/jobs")
    command = wait_for(browser, "(document.querySelector('#job-command') || {}).textContent",
                       "the command")  # fmt: skip
    assert command.startswith("cnnlab train ") and "--epochs 1" in command
    epochs = browser.find_element("css selector", "#job-epochs")
    epochs.clear()
    epochs.send_keys("7")
    assert "--epochs 7" in browser.find_element("css selector", "#job-command").text
    usable(browser)
    screenshot(browser, shots / "jobs.png")


def test_a_job_trains_live_then_stops_and_resumes_from_the_page(studio, runs_root, browser, shots):
    """A real training started from the form: its steps and epochs reach its run page live,
    Stop interrupts it cleanly, Resume continues the same run, and a reload keeps the queue."""
    from selenium.webdriver.support.select import Select

    browser.get(studio + "#/jobs")
    wait_for(browser, "document.querySelector('#job-command')", "the form")
    Select(browser.find_element("css selector", "#job-model")).select_by_value("lenet5")
    for name, value in (("epochs", "10"), ("threads", "1"), ("limit_train", "8192")):
        field = browser.find_element("css selector", f"#job-{name}")
        field.clear()
        field.send_keys(value)
    shown = browser.find_element("css selector", "#job-command").text
    browser.find_element("css selector", ".job-form button[type=submit]").click()
    run = wait_for(browser, "(r => r && r.querySelector('.badge').textContent === 'running' && "
                   "r.querySelector('a').textContent)(document.querySelector('tr[data-job]'))",
                   "the job to run")  # fmt: skip
    argv = browser.find_element("css selector", "tr[data-job] code.argv").text
    assert shown.endswith(" --out …")  # the studio picks the folder
    assert (
        argv.startswith(shown.removesuffix(" --out …") + " --out ")
        and f"{run.split('/', 1)[1]}" in argv
    )

    browser.find_element("css selector", "tr[data-job] a").click()  # its run page, live
    figure = "document.querySelectorAll('#curves-h ~ div .chart-figure')"
    steps = f"{figure}[2].querySelectorAll('circle.dot').length"
    epochs = f"{figure}[0].querySelectorAll('circle.dot').length"
    first = wait_for(browser, f"{figure}.length === 3 && [{steps}, {epochs}]", "the run page")
    wait_for(browser, f"{steps} > {first[0]} && {epochs} > {first[1]}", "live steps and epochs")
    screenshot(browser, shots / "live.png")

    browser.get(studio + "#/jobs")  # a reload: the queue is the server's
    stop = "document.querySelector('tr[data-job] button[data-action=\"stop\"]')"
    wait_for(browser, f"(b => b && (b.click(), true))({stop})", "the stop button")
    wait_for(browser, "document.querySelector('tr[data-job] .badge').textContent === 'stopped'",
             "the job to stop")  # fmt: skip
    assert not (runs_root / run.split("/", 1)[1] / "results.json").exists()  # interrupted
    resume = "document.querySelector('tr[data-job] button[data-action=\"resume\"]')"
    wait_for(browser, f"(b => b && (b.click(), true))({resume})", "the resume button")
    wait_for(browser, "document.querySelectorAll('tr[data-job]').length === 2 && "
             "document.querySelector('tr[data-job]').querySelector('code.argv')"
             ".textContent.endsWith('--resume')", "the resumed job")  # fmt: skip
    screenshot(browser, shots / "jobs-queue.png")
    # The stream redraws the table at any moment: find and click in one step.
    wait_for(browser, f"(b => b ? (b.click(), true) : document.querySelector('tr[data-job] .badge')"
             f".textContent === 'finished')({stop})", "the resumed job to run")  # fmt: skip
    wait_for(browser, "['stopped', 'finished'].includes("
             "document.querySelector('tr[data-job] .badge').textContent)", "the end")  # fmt: skip


def test_no_request_left_the_studio_and_the_console_is_clean(studio, browser):
    base = studio.split("?")[0].rstrip("/")
    # Every view, here (under xdist this test may run alone, after no other).
    browser.get(studio + "#/runs")
    wait_for(browser, "document.querySelectorAll('table.runs tbody tr').length > 0", "the runs")
    browser.get(studio + "#/run/0%2Ftiny")
    wait_for(browser, "document.querySelectorAll('table.confusion button.cell').length === 100",
             "the confusion matrix")  # fmt: skip
    for view in ("#/jobs", "#/inspect"):
        browser.get(studio + view)
        time.sleep(1.0)  # its requests made
    requests = [
        json.loads(entry["message"])["message"]["params"]["request"]["url"]
        for entry in browser.get_log("performance")
        if '"Network.requestWillBeSent"' in entry["message"]
    ]
    assert len(requests) > 20
    assert [u for u in requests if not u.startswith((base + "/", "data:", "blob:"))] == []
    assert [e for e in browser.get_log("browser") if e["level"] in ("SEVERE", "WARNING")] == []
