"""Reader for the IDX format of MNIST and Fashion-MNIST, gzip-compressed or raw.

Format (LeCun et al., the MNIST page, "FILE FORMATS"): a big-endian header, then the array.

    bytes 0-1  zero
    byte  2    element type: 0x08 = unsigned byte (the only type these datasets use)
    byte  3    number of dimensions: 3 for images (count, rows, cols), 1 for labels (count)
    then       one 32-bit big-endian size per dimension, then the elements in C order

so the image files start with the magic number 0x00000803 and label files with 0x00000801.
Everything the header claims is checked before the array is allocated: the magic number, the
dimensions, that the file holds exactly as many bytes as the header implies (for a raw file from
its length on disk; for a gzip file by reading at most that many bytes and requiring the stream to
end there), that images and labels agree on the count and that every label is a class index.
The array is read with ``readinto`` into one NumPy buffer, in bounded chunks (peak memory about
the array itself); there is no per-sample loop.
"""

from __future__ import annotations

import gzip
import math
import os
import struct
import zlib
from pathlib import Path
from typing import IO

import numpy as np
import torch

from cnnlab.errors import DataError

__all__ = ["read_idx", "read_idx_pair"]

IMAGES_MAGIC = 0x00000803  # unsigned bytes, 3 dimensions
LABELS_MAGIC = 0x00000801  # unsigned bytes, 1 dimension
_UBYTE = 0x08
_GZIP_MAGIC = b"\x1f\x8b"

#: Largest array a header may announce (8 GiB); a larger claim is a damaged header, not data.
MAX_IDX_BYTES = 8 * 1024**3
READ_CHUNK = 1 << 20  # bytes per readinto: bounds gzip's temporary copy
DEFAULT_FIX = "delete it and download it again"


def _fail(path: Path, problem: str, fix: str) -> DataError:
    return DataError(f"{path}: {problem}; {fix}")


def _open(path: Path, fix: str):
    """Open raw or gzip by content (the first two bytes), not by the name's extension."""
    try:
        fh = open(path, "rb")  # noqa: SIM115 - returned to the caller, closed there
    except FileNotFoundError:
        raise _fail(path, "file not found", fix) from None
    except IsADirectoryError:
        raise _fail(path, "is a directory, not an IDX file", fix) from None
    except PermissionError:
        raise _fail(path, "permission denied", "make it readable") from None
    head = fh.read(2)
    fh.seek(0)
    if head == _GZIP_MAGIC:
        return gzip.GzipFile(fileobj=fh, mode="rb"), True
    return fh, False


def read_idx(path: str | os.PathLike, magic: int, *, fix: str = DEFAULT_FIX) -> np.ndarray:
    """Read one IDX file of unsigned bytes after validating its header against ``magic``.

    Args:
        path: File, gzip-compressed (detected from its content) or raw.
        magic: ``IMAGES_MAGIC`` (0x00000803) or ``LABELS_MAGIC`` (0x00000801).
        fix: What the user should do if the file is damaged; ends every error message.

    Returns:
        A writable uint8 array of the header's shape.

    Raises:
        DataError: naming the file and the field that is wrong.
    """
    path = Path(path)
    fh, compressed = _open(path, fix)
    with fh:
        try:
            header_bytes, dims = _read_header(fh, path, magic, fix)
            payload = math.prod(dims)  # Python ints: no overflow on a garbage header
            if payload > MAX_IDX_BYTES:
                raise _fail(path, f"header dimensions {dims} claim {payload} bytes", fix)
            expected = header_bytes + payload
            if not compressed:
                size = path.stat().st_size
                if size != expected:
                    raise _fail(
                        path,
                        f"file is {size} bytes but its header {dims} implies {expected} "
                        f"({'truncated' if size < expected else 'trailing bytes'})",
                        fix,
                    )
            array = _read_payload(fh, path, dims, payload, fix)
            if compressed and fh.read(1):
                raise _fail(
                    path, f"data continues past the {payload} bytes its header implies", fix
                )
        except (EOFError, zlib.error, gzip.BadGzipFile) as err:
            raise _fail(path, f"corrupt or truncated gzip stream ({err})", fix) from None
    return array.reshape(dims)


def _read_header(fh: IO[bytes], path: Path, magic: int, fix: str) -> tuple[int, tuple[int, ...]]:
    """Check the magic number and read the dimension sizes: (header length, dims)."""
    ndim = magic & 0xFF
    header = fh.read(4 + 4 * ndim)
    if len(header) < 4:
        raise _fail(path, f"only {len(header)} bytes, too short for an IDX header", fix)
    (got_magic,) = struct.unpack(">I", header[:4])
    if got_magic != magic:
        kind = "images" if magic == IMAGES_MAGIC else "labels"
        hint = ""
        if got_magic >> 16 == 0 and (got_magic >> 8) & 0xFF == _UBYTE:
            hint = f" (an IDX file with {got_magic & 0xFF} dimensions)"
        raise _fail(
            path,
            f"magic number 0x{got_magic:08x}{hint}, expected 0x{magic:08x} for IDX {kind}",
            fix,
        )
    if len(header) < 4 + 4 * ndim:
        raise _fail(path, "header ends before its dimension sizes", fix)
    dims = struct.unpack(f">{ndim}I", header[4:])
    names = ("count", "rows", "columns")[:ndim]
    for name, d in zip(names, dims, strict=True):
        if d == 0:
            raise _fail(path, f"header field {name} is 0", fix)
    return len(header), dims


def _read_payload(
    fh: IO[bytes], path: Path, dims: tuple[int, ...], payload: int, fix: str
) -> np.ndarray:
    """The ``payload`` data bytes after the header, as a flat uint8 array."""
    array = np.empty(payload, dtype=np.uint8)
    view = memoryview(array)
    got = 0
    while got < payload:
        # Bounded chunks: GzipFile.readinto decodes into a temporary bytes object as
        # large as the request, so one whole-array read would peak at twice the array.
        n = fh.readinto(view[got : got + READ_CHUNK])
        if not n:  # short reads are normal for gzip; zero means the data ended
            break
        got += n
    if got < payload:
        raise _fail(
            path,
            f"data ends after {got} of the {payload} bytes its header {dims} implies (truncated)",
            fix,
        )
    return array


def read_idx_pair(
    images_path: str | os.PathLike,
    labels_path: str | os.PathLike,
    num_classes: int,
    *,
    fix: str = DEFAULT_FIX,
) -> tuple[torch.Tensor, torch.Tensor]:
    """Read an images file and its labels file and check that they belong together.

    Args:
        images_path: IDX file with magic 0x00000803.
        labels_path: IDX file with magic 0x00000801.
        num_classes: Labels must lie in ``[0, num_classes)``.
        fix: Ends every error message.

    Returns:
        ``(images, labels)``.

    Shape:
        images: (N, 1, rows, columns), torch.uint8; labels: (N,), torch.int64.
    """
    labels = read_idx(labels_path, LABELS_MAGIC, fix=fix)
    # The label file is small: read it first and check its count against the image header
    # before the image array is allocated.
    images_path = Path(images_path)
    fh, _ = _open(images_path, fix)
    with fh:
        try:
            head = fh.read(8)
        except (EOFError, zlib.error, gzip.BadGzipFile) as err:
            raise _fail(images_path, f"corrupt gzip stream ({err})", fix) from None
    if len(head) == 8 and struct.unpack(">I", head[:4])[0] == IMAGES_MAGIC:
        (count,) = struct.unpack(">I", head[4:])
        if count != len(labels):
            raise _fail(
                images_path,
                f"header count {count} does not match the {len(labels)} labels in {labels_path}",
                fix,
            )
    images = read_idx(images_path, IMAGES_MAGIC, fix=fix)
    if int(labels.max()) >= num_classes:
        bad = int(np.argmax(labels >= num_classes))
        raise _fail(
            Path(labels_path),
            f"label {labels[bad]} at index {bad} is out of range for {num_classes} classes",
            fix,
        )
    n, rows, cols = images.shape
    return (
        torch.from_numpy(images).view(n, 1, rows, cols),
        torch.from_numpy(labels).to(torch.int64),
    )
