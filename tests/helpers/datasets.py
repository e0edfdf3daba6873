"""Which real datasets this machine has, as pytest skip markers."""

from __future__ import annotations

import pytest


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
