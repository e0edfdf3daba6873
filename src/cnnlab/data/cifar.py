"""Reader for the *binary version* of CIFAR-10 (``cifar-10-binary.tar.gz``).

Format (Krizhevsky, the CIFAR page, "Binary version"): each batch file is a sequence of 3073-byte
records, one label byte (0-9) followed by 3072 pixel bytes: the 1024 red values of the 32x32
image in row-major order, then the 1024 green, then the 1024 blue. That is already (C, H, W), so
one reshape turns a whole file into an (N, 3, 32, 32) array without a per-sample loop.

The batches are read either unpacked (``cifar-10-batches-bin/data_batch_1.bin`` ...) or straight
out of the tarball (only the known member names, never extracted to disk). Every file's length is
checked to be a whole number of records before anything is allocated, and every label to be < 10.
The pickled "python version" of the dataset is deliberately not supported: unpickling runs code.
"""

from __future__ import annotations

import os
import tarfile
import zlib
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import torch

from cnnlab.errors import DataError

__all__ = ["read_cifar_archive", "read_cifar_files"]

SIDE = 32
CHANNELS = 3
RECORD = 1 + CHANNELS * SIDE * SIDE  # 3073 bytes: label, then R, G, B planes
NUM_CLASSES = 10
DEFAULT_FIX = "delete it and run `cnnlab data fetch cifar10`"


def _check_length(where: str, size: int, fix: str) -> int:
    if size == 0 or size % RECORD:
        raise DataError(
            f"{where}: length {size} bytes is not a positive multiple of the {RECORD}-byte "
            f"CIFAR-10 record (1 label byte + {RECORD - 1} pixel bytes); {fix}"
        )
    return size // RECORD


def _split(records: np.ndarray, sources: Sequence[tuple[str, int]], fix: str):
    """Turn (N, 3073) records into tensors after checking labels; ``sources`` names the files."""
    labels = records[:, 0]
    if int(labels.max()) >= NUM_CLASSES:
        bad = int(np.argmax(labels >= NUM_CLASSES))
        start = 0
        for where, n in sources:  # name the file that holds the bad record
            if bad < start + n:
                raise DataError(
                    f"{where}: record {bad - start} has label {labels[bad]}, expected 0-9; {fix}"
                )
            start += n
    images = np.ascontiguousarray(records[:, 1:]).reshape(-1, CHANNELS, SIDE, SIDE)
    return torch.from_numpy(images), torch.from_numpy(labels.astype(np.int64))


def read_cifar_files(
    paths: Sequence[str | os.PathLike], *, fix: str = DEFAULT_FIX
) -> tuple[torch.Tensor, torch.Tensor]:
    """Read and concatenate CIFAR-10 binary batch files.

    Returns:
        ``(images, labels)``.

    Shape:
        images: (N, 3, 32, 32), torch.uint8; labels: (N,), torch.int64.
    """
    paths = [Path(p) for p in paths]
    counts = []
    for p in paths:
        try:
            size = p.stat().st_size
        except FileNotFoundError:
            raise DataError(f"{p}: file not found; {fix}") from None
        counts.append(_check_length(str(p), size, fix))
    records = np.empty((sum(counts), RECORD), dtype=np.uint8)
    start = 0
    for p, n in zip(paths, counts, strict=True):
        with open(p, "rb") as fh:
            got = fh.readinto(memoryview(records[start : start + n]).cast("B"))
        if got != n * RECORD:  # the file shrank between stat and read
            raise DataError(f"{p}: read {got} of {n * RECORD} bytes; {fix}")
        start += n
    return _split(records, [(str(p), n) for p, n in zip(paths, counts, strict=True)], fix)


def read_cifar_archive(
    archive: str | os.PathLike, members: Sequence[str], *, fix: str = DEFAULT_FIX
) -> tuple[torch.Tensor, torch.Tensor]:
    """Read the named batch files straight out of ``cifar-10-binary.tar.gz``.

    Args:
        archive: The tarball.
        members: Paths inside it, e.g. ``cifar-10-batches-bin/test_batch.bin``.
        fix: Ends every error message.
    """
    archive = Path(archive)
    parts: dict[str, np.ndarray] = {}
    try:
        # One streaming pass (a .tar.gz has no index): each wanted member's length comes from its
        # tar header and is checked before its buffer is allocated.
        with tarfile.open(archive, "r|*") as tar:
            for m in tar:
                if m.name not in members or not m.isfile() or m.name in parts:
                    continue
                n = _check_length(f"{archive}:{m.name}", m.size, fix)
                buf = np.empty((n, RECORD), dtype=np.uint8)
                src = tar.extractfile(m)
                assert src is not None  # regular file members always have data
                view = memoryview(buf).cast("B")
                got = 0
                while got < n * RECORD:
                    k = src.readinto(view[got:])
                    if not k:
                        raise DataError(f"{archive}:{m.name}: truncated member; {fix}")
                    got += k
                parts[m.name] = buf
    except (tarfile.TarError, EOFError, OSError, zlib.error) as err:
        raise DataError(f"{archive}: not a readable tar.gz ({err}); {fix}") from None
    missing = [name for name in members if name not in parts]
    if missing:
        raise DataError(f"{archive}: lacks member {missing[0]}; {fix}")
    records = np.concatenate([parts[n] for n in members]) if len(members) > 1 else parts[members[0]]
    return _split(records, [(f"{archive}:{n}", len(parts[n])) for n in members], fix)
