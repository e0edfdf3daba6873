"""The real Fashion-MNIST (Debian's copy) and its verification (the ``cnnlab data`` command:
``test_cli.py``)."""

from __future__ import annotations

import time
from pathlib import Path

import pytest
import torch

from cnnlab.cli import main
from cnnlab.data import DATASETS, dataset_info, load_dataset
from helpers.datasets import SYSTEM_FASHION_MNIST, needs_system_fashion_mnist


@needs_system_fashion_mnist
def test_real_fashion_mnist(no_user_data: Path) -> None:
    start = time.perf_counter()
    x, y = load_dataset("fashion-mnist", "train")
    seconds = time.perf_counter() - start
    assert x.shape == (60_000, 1, 28, 28) and x.dtype == torch.uint8
    assert y.shape == (60_000,) and y.dtype == torch.int64
    assert torch.equal(torch.bincount(y), torch.full((10,), 6_000))  # balanced by design
    assert seconds < 5.0, f"loading took {seconds:.2f} s"  # ~0.3 s; generous for a busy CI box
    xt, yt = load_dataset("fashion-mnist", "test")
    assert xt.shape == (10_000, 1, 28, 28) and torch.equal(
        torch.bincount(yt), torch.full((10,), 1_000)
    )
    # the stored statistics are what the training split gives (4 decimals)
    info = dataset_info("fashion-mnist")
    f = x.to(torch.float64) / 255
    assert abs(f.mean().item() - info.mean[0]) < 5e-5
    assert abs(f.std(unbiased=False).item() - info.std[0]) < 5e-5
    # Published figure cross-check: the first training image is an ankle boot (label 9).
    assert int(y[0]) == 9 and info.classes[9] == "Ankle boot"


@needs_system_fashion_mnist
def test_verification_accepts_raw_and_recompressed_copies(no_user_data: Path) -> None:
    import gzip
    import shutil

    from cnnlab.data import find_dataset
    from cnnlab.data.fetch import file_status

    root = no_user_data / "copies"
    (root / "fashion-mnist").mkdir(parents=True)
    for name in ("t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte"):
        with (
            gzip.open(SYSTEM_FASHION_MNIST / f"{name}.gz") as src,
            open(root / "fashion-mnist" / name, "wb") as dst,
        ):
            shutil.copyfileobj(src, dst)  # a raw, uncompressed copy
    loc = find_dataset("fashion-mnist", "test", root)
    assert loc.step == "--data-dir" and all(not p.name.endswith(".gz") for p in loc.paths.values())
    files = {f.name: f for f in DATASETS["fashion-mnist"].files}
    assert {file_status(files[k], p) for k, p in loc.paths.items()} == {"ok (content)"}
    x, y = load_dataset("fashion-mnist", "test", root)
    ref_x, ref_y = load_dataset("fashion-mnist", "test")  # the system copy
    assert torch.equal(x, ref_x) and torch.equal(y, ref_y)
    # re-compressed with other settings: a different .gz, the same content
    raw = root / "fashion-mnist" / "t10k-labels-idx1-ubyte"
    regz = root / "fashion-mnist" / "t10k-labels-idx1-ubyte.gz"
    regz.write_bytes(gzip.compress(raw.read_bytes(), compresslevel=1, mtime=0))
    assert file_status(files[regz.name], regz) == "ok (content)"


def test_mnist_files_under_the_fashion_mnist_name_are_refused(no_user_data: Path) -> None:
    # MNIST and Fashion-MNIST share file names; structure alone cannot tell them apart.
    import gzip
    import struct

    import numpy as np

    from cnnlab.errors import DataError

    d = no_user_data / "wrong" / "fashion-mnist"
    d.mkdir(parents=True)
    rng = np.random.default_rng(0)
    for prefix, n in (("train", 8), ("t10k", 4)):
        imgs = rng.integers(0, 256, (n, 28, 28), dtype=np.uint8)
        labs = rng.integers(0, 10, n, dtype=np.uint8)
        (d / f"{prefix}-images-idx3-ubyte.gz").write_bytes(
            gzip.compress(struct.pack(">IIII", 0x803, n, 28, 28) + imgs.tobytes())
        )
        (d / f"{prefix}-labels-idx1-ubyte.gz").write_bytes(
            gzip.compress(struct.pack(">II", 0x801, n) + labs.tobytes())
        )
    with pytest.raises(DataError) as err:
        load_dataset("fashion-mnist", "test", no_user_data / "wrong")
    text = str(err.value)
    assert "not the published fashion-mnist file" in text and "t10k-images" in text
    assert "verify=False" in text and "\n" not in text
    x, _ = load_dataset("fashion-mnist", "test", no_user_data / "wrong", verify=False)
    assert x.shape == (4, 1, 28, 28)
    assert main(["data", "info", "fashion-mnist", "--data-dir", str(no_user_data / "wrong")]) == 1
