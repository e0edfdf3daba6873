"""Which real datasets this machine has, as pytest skip markers, and small image folders."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from PIL import Image

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


RNG = np.random.default_rng(0)


def photos(root: Path, per_class: int = 10, classes=("blue", "red"), size=(48, 64)) -> Path:
    """JPEG 'photos' whose classes differ in colour."""
    colours = {"red": (210, 40, 40), "blue": (40, 40, 210), "green": (40, 200, 40)}
    for name in classes:
        d = root / name
        d.mkdir(parents=True, exist_ok=True)
        for i in range(per_class):
            noise = RNG.integers(-25, 25, (*size, 3))
            pixels = np.clip(np.array(colours[name]) + noise, 0, 255).astype(np.uint8)
            Image.fromarray(pixels).save(d / f"{name}{i}.jpg")
    return root
