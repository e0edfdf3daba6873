"""The report in a real browser: headless Chromium (Debian's ``chromium`` + ``chromium-driver``,
driven by Selenium) opens the page from disk with the network unreachable and checks that no
request leaves the file, the console is clean, every image decoded and every section shows.

``scripts/setup.sh`` installs both packages where it can; elsewhere the test is skipped.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from cnnlab.cli import main
from helpers.optional import importable

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
DRIVER = shutil.which("chromedriver")
SECTIONS = ("run", "reproduce", "environment", "curves", "confusion", "per-class",
            "confused-pairs", "worst-errors", "augmented", "gradcam", "layers",
            "timings")  # fmt: skip

pytestmark = [
    pytest.mark.skipif(
        not (CHROMIUM and DRIVER),
        reason="headless Chromium not installed (apt-get install chromium chromium-driver)",
    ),
    pytest.mark.skipif(not importable("selenium"), reason="selenium not installed"),
    pytest.mark.slow,
]


@pytest.fixture
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
        "--window-size=1200,900",
        "--proxy-server=127.0.0.1:9",  # nothing listens there: any request would fail
        "--host-resolver-rules=MAP * ~NOTFOUND",
    ):
        options.add_argument(flag)
    options.set_capability("goog:loggingPrefs", {"browser": "ALL", "performance": "ALL"})
    driver = webdriver.Chrome(service=Service(DRIVER), options=options)
    try:
        yield driver
    finally:
        driver.quit()


def test_report_renders_offline_in_chromium(trained_run: Path, tmp_path: Path, browser) -> None:
    out = tmp_path / "report.html"
    assert main(["report", str(trained_run), "-o", str(out), "--limit", "300"]) == 0
    browser.get(out.resolve().as_uri())
    assert browser.execute_script("return document.readyState") == "complete"
    assert "tinynet" in browser.title

    requests = [
        json.loads(entry["message"])["message"]["params"]["request"]["url"]
        for entry in browser.get_log("performance")
        if '"Network.requestWillBeSent"' in entry["message"]
    ]
    assert requests and all(url.startswith(("file:", "data:")) for url in requests), requests
    assert [e for e in browser.get_log("browser") if e["level"] in ("SEVERE", "WARNING")] == []

    images = browser.execute_script(
        "return Array.from(document.images).map(i => [i.complete, i.naturalWidth, i.alt])"
    )
    assert len(images) > 40
    assert [alt for done, width, alt in images if not (done and width > 0)] == []
    visible = browser.execute_script(
        "return Array.from(document.querySelectorAll('section')).map(s => "
        "[s.id, s.getBoundingClientRect().height > 0, s.querySelector('h2').textContent])"
    )
    assert [s[0] for s in visible] == list(SECTIONS) and all(s[1] for s in visible)

    # A screenshot of the whole page, for looking at (kept next to the page).
    height = browser.execute_script("return document.documentElement.scrollHeight")
    browser.set_window_size(1200, min(height, 16000))
    assert browser.save_screenshot(str(tmp_path / "report.png"))


# Each table's overflow past its container, in CSS pixels (0 when it fits).
_OVERFLOW = (
    "return Array.from(document.querySelectorAll('table')).map(t => "
    "[t.closest('section') ? t.closest('section').id : '', "
    "t.scrollWidth - t.parentElement.clientWidth, "
    "t.getBoundingClientRect().right"
    " - document.querySelector('main').getBoundingClientRect().right])"
)


def test_tables_and_figures_fit_a_1280_px_window(trained_run: Path, tmp_path: Path, browser):
    """With ResNet-18's layer table (the widest names in the zoo's usual networks) on the page,
    at a 1280 px window: no table is wider than its container or the page, and the curves
    use the page's width (two or more side by side, each wider than half its natural size)."""
    from markupsafe import Markup

    from cnnlab.analysis import analyze
    from cnnlab.report import page

    report = page.build_report(trained_run, limit=100)
    report.layers_html = Markup(analyze("resnet18").to_html())
    out = tmp_path / "wide.html"
    out.write_text(report.to_html(), encoding="utf-8")
    browser.set_window_size(1280, 900)
    browser.get(out.resolve().as_uri())
    overflow = browser.execute_script(_OVERFLOW)
    assert len(overflow) >= 4 and any(section == "layers" for section, *_ in overflow)
    assert [t for t in overflow if t[1] > 0 or t[2] > 0.5] == []
    widths = browser.execute_script(
        "const main = document.querySelector('main').getBoundingClientRect().width;"
        "return [main, Array.from(document.querySelectorAll('#curves img.plot'))"
        ".map(i => i.getBoundingClientRect().width)]"
    )
    main_width, curves = widths
    assert main_width > 1150 and len(curves) == 3
    assert sum(curves[:2]) > 0.9 * main_width  # the first row of curves fills the page
