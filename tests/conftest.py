"""Shared test settings: deterministic, single-threaded where it helps, quiet."""

from __future__ import annotations

import os

import pytest
import torch

# Two cores on CI: pytest-xdist workers each get one intra-op thread so they do not fight.
if os.environ.get("PYTEST_XDIST_WORKER"):
    torch.set_num_threads(1)


@pytest.fixture(autouse=True)
def _seed() -> None:
    torch.manual_seed(0)
