"""The reliability tests drive the trials of ``benchmarks/reliability.py`` with small counts.

The harness is loaded from its file (it is a script, not a package module), once per session.
"""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path
from types import ModuleType

import pytest

HARNESS = Path(__file__).resolve().parents[2] / "benchmarks" / "reliability.py"


def _load() -> ModuleType:
    name = "cnnlab_reliability_harness"
    if name not in sys.modules:
        spec = importlib.util.spec_from_file_location(name, HARNESS)
        module = importlib.util.module_from_spec(spec)
        sys.modules[name] = module
        spec.loader.exec_module(module)
    return sys.modules[name]


@pytest.fixture(scope="session")
def harness() -> ModuleType:
    return _load()


@pytest.fixture(scope="session")
def work(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """One scratch directory per session, so the uninterrupted reference run is made once."""
    return tmp_path_factory.mktemp("reliability")


def _has_fashion_mnist() -> bool:
    try:
        from cnnlab.data import find_dataset

        return find_dataset("fashion-mnist", "train") is not None
    except Exception:
        return False


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line("markers", "needs_fashion_mnist: trains on the real dataset")


def pytest_runtest_setup(item: pytest.Item) -> None:
    if item.get_closest_marker("needs_fashion_mnist") and not _has_fashion_mnist():
        pytest.skip("Fashion-MNIST not installed (cnnlab data fetch fashion-mnist)")
