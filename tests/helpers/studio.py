"""``cnnlab studio`` started for a test, and the headless Chromium the studio's browser tests drive.

Debian's ``chromium`` and ``chromium-driver`` through Selenium, as tests/test_report_browser.py
does, with every host name but the studio's unresolvable: a font, CDN or analytics request would
show in the performance log and fail.
"""

from __future__ import annotations

import contextlib
import os
import re
import shutil
import subprocess
import sys
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from helpers import TESTS_DIR, subprocess_env

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
DRIVER = shutil.which("chromedriver")
ADDRESS = re.compile(r"http://127\.0\.0\.1:\d+/\?token=\S+")


@contextlib.contextmanager
def running_studio(root: Path, module: str = "helpers.tinynet_cli") -> Iterator[str]:
    """``python -m MODULE studio ROOT`` (MODULE registers the tests' models); its address with
    the token. The server's output is read to the end in a thread (a full pipe would stop it);
    Ctrl-C, the clean stop a user gets, ends it."""
    proc = subprocess.Popen(
        [sys.executable, "-m", module, "studio", str(root), "--no-browser", "--port", "0"],
        stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, cwd=TESTS_DIR,
        env=subprocess_env(OMP_NUM_THREADS="1"),
    )  # fmt: skip
    printed: list[str] = []
    url = None
    for line in proc.stdout:  # the address is printed before the server answers
        printed.append(line)
        found = ADDRESS.search(line)
        if found:
            url = found.group(0)
            break
    if url is None:
        proc.kill()
        pytest.fail(f"cnnlab studio printed no address: {''.join(printed)}")
    threading.Thread(target=lambda: printed.extend(proc.stdout), daemon=True).start()
    try:
        yield url
    finally:
        proc.send_signal(2)
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()


@contextlib.contextmanager
def chromium(script_timeout: float = 30) -> Iterator[Any]:
    """Headless Chromium at 1280x900 logging the console and the network; quit afterwards."""
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM
    for flag in ("--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
                 "--window-size=1280,900",
                 "--host-resolver-rules=MAP * ~NOTFOUND, EXCLUDE 127.0.0.1"):  # fmt: skip
        options.add_argument(flag)
    options.set_capability("goog:loggingPrefs", {"browser": "ALL", "performance": "ALL"})
    driver = webdriver.Chrome(service=Service(DRIVER), options=options)
    driver.set_script_timeout(script_timeout)
    try:
        yield driver
    finally:
        driver.quit()


def screenshot_folder(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """$CNNLAB_STUDIO_SCREENSHOTS (docs/figures/studio for the docs), else a temporary folder."""
    folder = os.environ.get("CNNLAB_STUDIO_SCREENSHOTS")
    out = Path(folder) if folder else tmp_path_factory.mktemp("screenshots")
    out.mkdir(parents=True, exist_ok=True)
    return out
