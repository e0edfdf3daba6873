"""Which real datasets this machine has, as pytest skip markers."""

from __future__ import annotations

from pathlib import Path

import pytest

# Debian's copy (package dataset-fashion-mnist), which the tests of the real data read directly.
SYSTEM_FASHION_MNIST = Path("/usr/share/datasets/fashion-mnist")


def has_fashion_mnist() -> bool:
    """True when Fashion-MNIST is installed where ``cnnlab`` looks for it."""
    try:
        from cnnlab.data import find_dataset

        return find_dataset("fashion-mnist", "train") is not None
    except Exception:
        return False


needs_fashion_mnist = pytest.mark.skipif(
    not has_fashion_mnist(),
    reason="Fashion-MNIST not installed (cnnlab data fetch fashion-mnist)",
)
needs_system_fashion_mnist = pytest.mark.skipif(
    not (SYSTEM_FASHION_MNIST / "train-images-idx3-ubyte.gz").is_file(),
    reason=f"Fashion-MNIST not installed in {SYSTEM_FASHION_MNIST} (Debian package "
    "dataset-fashion-mnist)",
)
