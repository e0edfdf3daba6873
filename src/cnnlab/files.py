"""Files that are either completely written or not there: atomic writes and SHA-256 digests.

Every file cnnlab writes for later (checkpoints, final weights, JSON records, ONNX exports,
downloads) goes through :func:`atomic_write`: the bytes go to a temporary file in the same
directory, which is flushed and fsynced, renamed over the final name, and then the directory
itself is fsynced. A crash or SIGKILL at any moment therefore leaves either the old file or the
new one, never a torn mix; what it may leave is a ``.NAME.*.tmp`` file, which
:func:`remove_temporaries` clears.

This module is the only place in cnnlab that renames files into place or computes SHA-256, so
the durability and checksum rules have one owner.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import tempfile
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import IO, Any

CHUNK_BYTES = 1 << 20  # read size when hashing: large enough to be I/O bound, small in memory


def sha256() -> Any:
    """A fresh SHA-256 hasher, for data hashed while it streams (downloads, archive members)."""
    return hashlib.sha256()


def sha256_file(path: str | os.PathLike[str]) -> str:
    """The hex SHA-256 of a file's bytes, read in chunks."""
    h = sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(CHUNK_BYTES), b""):
            h.update(chunk)
    return h.hexdigest()


def _fsync_dir(directory: Path) -> None:
    """Make a rename durable: POSIX needs the directory entry itself fsynced."""
    with contextlib.suppress(OSError):  # some file systems refuse to open directories
        fd = os.open(directory, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)


def _usual_mode(path: str | os.PathLike[str]) -> None:
    """mkstemp (and safetensors) create 0600 files; give the mode a plain open() would."""
    umask = os.umask(0)
    os.umask(umask)
    os.chmod(path, 0o666 & ~umask)


def _temporary(path: Path) -> Path:
    """A new, unique temporary file beside ``path`` (closed, empty)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    os.close(fd)
    return Path(tmp)


def _commit(tmp: Path, path: Path) -> None:
    _usual_mode(tmp)
    with open(tmp, "rb+") as f:
        os.fsync(f.fileno())
    os.replace(tmp, path)
    _fsync_dir(path.parent)


def write_atomic(path: str | os.PathLike[str], write: Callable[[Path], object]) -> Path:
    """Have ``write(tmp)`` write a temporary file, then commit it as ``path``.

    For writers that take a file name (safetensors, ONNX). Any exception from ``write`` or the
    commit removes the temporary file and propagates; ``path`` keeps whatever it held before.

    Returns:
        ``path``.
    """
    path = Path(path)
    tmp = _temporary(path)
    try:
        write(tmp)
        _commit(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    return path


@contextlib.contextmanager
def atomic_write(path: str | os.PathLike[str]) -> Iterator[IO[bytes]]:
    """``with atomic_write(path) as f: f.write(...)``: ``path`` appears only if the block ends
    without an exception; otherwise the temporary file is removed and the exception propagates."""
    path = Path(path)
    tmp = _temporary(path)
    try:
        with open(tmp, "wb") as f:
            yield f
            f.flush()
        _commit(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise


def write_bytes_atomic(path: str | os.PathLike[str], data: bytes) -> Path:
    """Write ``data`` to ``path`` atomically."""
    return write_atomic(path, lambda tmp: tmp.write_bytes(data))


def write_json_atomic(path: str | os.PathLike[str], obj: Any) -> Path:
    """Write ``obj`` as indented JSON (one trailing newline) to ``path`` atomically."""
    return write_bytes_atomic(path, (json.dumps(obj, indent=1) + "\n").encode())


def remove_temporaries(directory: str | os.PathLike[str]) -> list[Path]:
    """Delete the ``.NAME.*.tmp`` files interrupted atomic writes left in ``directory``."""
    directory = Path(directory)
    stale = sorted(directory.glob(".*.tmp")) if directory.is_dir() else []
    for path in stale:
        path.unlink(missing_ok=True)
    return stale
