"""The one way cnnlab opens a file it reads: regular files only, bounded, never a hang."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from cnnlab import files
from cnnlab.errors import CheckpointError, DataError


def _fifo(tmp_path: Path) -> Path:
    path = tmp_path / "model.safetensors"
    os.mkfifo(path)
    return path


def _loop(tmp_path: Path) -> Path:
    (tmp_path / "a.json").symlink_to(tmp_path / "b.json")
    (tmp_path / "b.json").symlink_to(tmp_path / "a.json")
    return tmp_path / "a.json"


@pytest.mark.parametrize(
    ("make", "message"),
    [
        (_fifo, r"is a FIFO \(named pipe\), not a regular file"),
        (lambda d: Path("/dev/zero"), "is a character device, not a regular file"),
        (lambda d: d, "is a directory, not a regular file"),
        (_loop, "a symlink loop"),
        (lambda d: d / "missing.json", "no such file or directory"),
    ],
)
def test_special_files_are_refused_at_once(tmp_path: Path, make, message: str) -> None:
    """A FIFO would block a plain open() forever and /dev/zero never ends: both are refused
    before a byte is read (the test itself would hang otherwise)."""
    path = make(tmp_path)
    with pytest.raises(CheckpointError, match=message) as err:
        files.read_bytes(path, what="weights file", limit="weights", error=CheckpointError)
    assert "\n" not in str(err.value) and str(path) in str(err.value)
    with pytest.raises(DataError, match=message):
        files.sha256_file(path)


def test_size_is_bounded_per_kind(tmp_path: Path) -> None:
    path = tmp_path / "results.json"
    path.write_bytes(b" " * 101 + b"{}")
    assert files.read_json(path, limit=200) == {}
    with pytest.raises(DataError, match="more than any JSON file cnnlab reads"):
        files.read_json(path, limit=100)


def test_a_proc_file_that_reports_size_zero_is_still_bounded() -> None:
    status = Path("/proc/self/status")
    if not status.exists():
        pytest.skip("no /proc here")
    assert b"Name:" in files.read_bytes(status)
    with pytest.raises(DataError, match="larger than any"):
        files.read_bytes(status, limit=10)


@pytest.mark.parametrize(
    ("data", "message"),
    [
        (b"\xff\xfe{}", "not UTF-8"),
        (b'{"a": 1', "not valid JSON"),
        (b"[" * 100_000, "not JSON cnnlab wrote"),  # RecursionError in the parser
        (b"1" * 5000, "not JSON cnnlab wrote"),  # int() refuses 5,000 digits
    ],
)
def test_malformed_json_is_one_line(tmp_path: Path, data: bytes, message: str) -> None:
    path = tmp_path / "config.json"
    path.write_bytes(data)
    with pytest.raises(DataError, match=message) as err:
        files.read_json(path)
    assert "\n" not in str(err.value)


def test_a_symlink_to_a_regular_file_is_read(tmp_path: Path) -> None:
    (tmp_path / "real.json").write_text('{"top1": 0.5}')
    (tmp_path / "link.json").symlink_to(tmp_path / "real.json")
    assert files.read_json(tmp_path / "link.json") == {"top1": 0.5}
