"""Fixtures of the reliability tests: one scratch directory per session, real data or a skip."""

from __future__ import annotations

from pathlib import Path

import pytest

from helpers.datasets import has_fashion_mnist


@pytest.fixture(scope="session")
def work(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """One scratch directory per session, so the uninterrupted reference run is made once."""
    return tmp_path_factory.mktemp("reliability")


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line("markers", "needs_fashion_mnist: trains on the real dataset")


def pytest_runtest_setup(item: pytest.Item) -> None:
    if item.get_closest_marker("needs_fashion_mnist") and not has_fashion_mnist():
        pytest.skip("Fashion-MNIST not installed (cnnlab data fetch fashion-mnist)")
