"""Files cnnlab writes and reads: atomic writes, checked reads and SHA-256 digests.

Every file cnnlab writes for later (checkpoints, final weights, JSON records, ONNX exports,
downloads) goes through :func:`atomic_write`: the bytes go to a temporary file in the same
directory, which is flushed and fsynced, renamed over the final name, and then the directory
itself is fsynced. A crash or SIGKILL at any moment therefore leaves either the old file or the
new one, never a torn mix; what it may leave is a ``.NAME.*.tmp`` file, which
:func:`remove_temporaries` clears.

Every file cnnlab reads goes through :func:`open_regular` (or :func:`read_bytes`,
:func:`read_json`), because any of them may be hostile: a FIFO named ``model.safetensors`` would
block a plain ``open`` forever, ``/dev/zero`` never ends, a directory or a symlink loop raises
an ``OSError`` nobody expects. It resolves symlinks, opens without blocking, refuses anything
but a regular file, and bounds the size per kind of file (:data:`LIMITS`), all before a byte
is parsed; the error names the file, what is wrong and the fix, on one line.

This module is the only place in cnnlab that renames files into place, opens files it reads or
computes SHA-256, so the durability, reading and checksum rules have one owner.
"""

from __future__ import annotations

import contextlib
import errno
import hashlib
import json
import os
import stat
import tempfile
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import IO, Any, BinaryIO

from cnnlab.errors import CnnlabError, DataError

CHUNK_BYTES = 1 << 20  # read size when hashing: large enough to be I/O bound, small in memory
_MiB, _GiB = 2**20, 2**30
# The largest file of each kind cnnlab will read: far above any it writes (a run's JSON records
# are kilobytes, ResNet-152's weights 230 MB), far below what would exhaust memory or time.
LIMITS = {
    "json": 64 * _MiB,  # config.json, results.json, checkpoint records, splits.json, time.json
    "jsonl": 256 * _MiB,  # metrics.jsonl: one line per epoch
    "weights": 8 * _GiB,  # safetensors, .pth, ONNX
    "image": 256 * _MiB,  # one photo (decoding is bounded separately, by pixels)
    "dataset": 2 * _GiB,  # one IDX or CIFAR archive member
}
_KINDS = {
    stat.S_IFDIR: "directory",
    stat.S_IFIFO: "FIFO (named pipe)",
    stat.S_IFCHR: "character device",
    stat.S_IFBLK: "block device",
    stat.S_IFSOCK: "socket",
}


def _size(n: int) -> str:
    return f"{n / _GiB:.1f} GiB" if n >= _GiB else f"{n / _MiB:.1f} MiB"


def open_regular(
    path: str | os.PathLike[str],
    *,
    what: str = "file",
    limit: int | str = "json",
    error: type[CnnlabError] = DataError,
) -> BinaryIO:
    """Open a file cnnlab reads, refusing anything that is not a regular file of bounded size.

    Symlinks are followed (a loop is an error), the file is opened with ``O_NONBLOCK`` so a FIFO
    cannot hang the open, and the checks run on the opened descriptor (``fstat``), so the file
    cannot be swapped between check and use.

    Args:
        path: the file.
        what: what the file is, for the message ("weights file", "image", "results.json").
        limit: the largest size accepted, in bytes or as a kind of :data:`LIMITS`.
        error: the :class:`~cnnlab.errors.CnnlabError` subclass to raise.

    Returns:
        The file, open for binary reading (blocking again), positioned at its start.

    Raises:
        error: missing, unreadable, a symlink loop, not a regular file, or larger than ``limit``.
    """
    limit = LIMITS[limit] if isinstance(limit, str) else limit
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK | getattr(os, "O_CLOEXEC", 0))
    except OSError as err:
        reason = (
            "a symlink loop" if err.errno == errno.ELOOP else (err.strerror or str(err)).lower()
        )
        raise error(f"{path}: cannot read this {what}: {reason}") from None
    try:
        info = os.fstat(fd)
        if not stat.S_ISREG(info.st_mode):
            kind = _KINDS.get(stat.S_IFMT(info.st_mode), "special file")
            raise error(f"{path} is a {kind}, not a regular file: pass the {what} itself")
        if info.st_size > limit:
            raise error(
                f"{path} is {_size(info.st_size)}, more than any {what} cnnlab reads "
                f"({_size(limit)}): pass the right file"
            )
        os.set_blocking(fd, True)
        return os.fdopen(fd, "rb")
    except BaseException:
        os.close(fd)
        raise


def read_bytes(
    path: str | os.PathLike[str],
    *,
    what: str = "file",
    limit: int | str = "json",
    error: type[CnnlabError] = DataError,
) -> bytes:
    """All of a file's bytes, through :func:`open_regular`; at most ``limit`` bytes are read
    even where the size the file system reports is wrong (``/proc`` files report 0)."""
    cap = LIMITS[limit] if isinstance(limit, str) else limit
    with open_regular(path, what=what, limit=cap, error=error) as f:
        data = f.read(cap + 1)
    if len(data) > cap:
        raise error(
            f"{path} is larger than any {what} cnnlab reads ({_size(cap)}): pass the right file"
        )
    return data


def read_json(
    path: str | os.PathLike[str],
    *,
    what: str = "JSON file",
    limit: int | str = "json",
    error: type[CnnlabError] = DataError,
) -> Any:
    """A JSON file's value (any JSON type: the caller checks the shape it needs).

    Raises:
        error: as :func:`open_regular`, or not UTF-8 JSON (the message says where it breaks).
    """
    data = read_bytes(path, what=what, limit=limit, error=error)
    try:
        return json.loads(data.decode("utf-8"))
    except UnicodeDecodeError:
        raise error(f"{path}: this {what} is not UTF-8 text") from None
    except json.JSONDecodeError as err:
        raise error(
            f"{path}: this {what} is not valid JSON ({err.msg} at line {err.lineno})"
        ) from None
    except (ValueError, RecursionError) as err:  # a 5,000-digit number, 100,000 nested lists
        raise error(
            f"{path}: this {what} is not JSON cnnlab wrote ({type(err).__name__})"
        ) from None


def sha256() -> Any:
    """A fresh SHA-256 hasher, for data hashed while it streams (downloads, archive members)."""
    return hashlib.sha256()


def sha256_bytes(data: bytes) -> str:
    """The hex SHA-256 of ``data``."""
    return hashlib.sha256(data).hexdigest()


def sha256_file(
    path: str | os.PathLike[str],
    *,
    what: str = "file",
    limit: int | str = "weights",
    error: type[CnnlabError] = DataError,
) -> str:
    """The hex SHA-256 of a regular file's bytes (:func:`open_regular`), read in chunks."""
    h = sha256()
    with open_regular(path, what=what, limit=limit, error=error) as f:
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
