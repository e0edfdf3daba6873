"""Shared test settings (deterministic, single-threaded where it helps, quiet) and fixtures.

``tests/`` goes on ``sys.path`` so that every test module imports shared code from
``helpers`` (and the reliability harness from ``reliability``), never from another test module.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

import pytest
import torch

TESTS_DIR = str(Path(__file__).resolve().parent)
if TESTS_DIR not in sys.path:
    sys.path.insert(0, TESTS_DIR)

from helpers.datasets import has_fashion_mnist  # noqa: E402
from helpers.runs import SMALL  # noqa: E402

# Two cores on CI: pytest-xdist workers each get one intra-op thread so they do not fight.
if os.environ.get("PYTEST_XDIST_WORKER"):
    torch.set_num_threads(1)


@pytest.fixture(autouse=True)
def _seed() -> None:
    torch.manual_seed(0)


@pytest.fixture(scope="session")
def trained_run(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A finished 2-epoch ``cnnlab train tinynet`` run on a small Fashion-MNIST subset."""
    if not has_fashion_mnist():
        pytest.skip("Fashion-MNIST not installed")
    import helpers.models  # noqa: F401  (registers tinynet)
    from cnnlab.cli import main

    out = tmp_path_factory.mktemp("train") / "run"
    assert main(["train", "tinynet", *SMALL, "--epochs", "2", "--out", str(out)]) == 0
    return out


@pytest.fixture
def no_user_data(tmp_path: Path, monkeypatch) -> Path:
    """Only the system copy is visible: no cache, no $CNNLAB_DATA, no downloads."""
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    monkeypatch.delenv("CNNLAB_DATA", raising=False)
    monkeypatch.setenv("CNNLAB_DATA_URL", "http://127.0.0.1:9/")  # nothing listens on port 9
    monkeypatch.setenv("CNNLAB_DOWNLOAD_TIMEOUT", "2")
    return tmp_path


@pytest.fixture
def server():
    """A local HTTP server (``helpers.http_server.Server``), closed after the test."""
    from helpers.http_server import Server

    s = Server()
    yield s
    s.close()


def pytest_runtest_logreport(report: pytest.TestReport) -> None:
    """Count each ``hostile``-marked case for ``benchmarks/reliability.py`` (helpers.tally)."""
    from helpers import tally

    if os.environ.get("PYTEST_XDIST_WORKER"):  # the controller records what workers report
        return
    surface = dict(report.user_properties).get("hostile_surface")
    if surface and (report.when == "call" or (report.when == "setup" and report.failed)):
        failure = f"{report.nodeid}: {str(report.longrepr).splitlines()[-1][:300]}"
        tally.record(surface, 1, [failure] if report.failed else [])


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo):
    """Carry a test's ``hostile`` marker onto its report (user properties cross xdist workers)."""
    outcome = yield
    marker = item.get_closest_marker("hostile")
    if marker is not None:
        outcome.get_result().user_properties.append(("hostile_surface", marker.args[0]))
