"""Lookup order and the download path, against a local HTTP server on 127.0.0.1.

Nothing here touches the network: the server runs in a thread and serves files the tests
generate; the registry's digests are swapped for the generated files' digests where needed.
"""

from __future__ import annotations

import dataclasses
import gzip
import hashlib
import io
import socket
import struct
import tarfile
from pathlib import Path

import numpy as np
import pytest

import cnnlab.data.fetch as fetch_mod
from cnnlab.data import DATASETS, fetch_dataset, find_dataset, load_dataset
from cnnlab.data.fetch import download
from cnnlab.errors import DataError
from helpers.http_server import Server


def idx_gz(array: np.ndarray) -> bytes:
    head = struct.pack(">I", 0x800 | array.ndim) + struct.pack(f">{array.ndim}I", *array.shape)
    return gzip.compress(head + array.tobytes())


def fake_idx_dataset(n: int = 5, seed: int = 0) -> dict[str, bytes]:
    rng = np.random.default_rng(seed)
    files = {}
    for prefix in ("train", "t10k"):
        files[f"{prefix}-images-idx3-ubyte.gz"] = idx_gz(
            rng.integers(0, 256, (n, 28, 28), dtype=np.uint8)
        )
        files[f"{prefix}-labels-idx1-ubyte.gz"] = idx_gz(rng.integers(0, 10, n, dtype=np.uint8))
    return files


def sha(blob: bytes) -> str:
    return hashlib.sha256(blob).hexdigest()


@pytest.fixture
def isolated(tmp_path: Path, monkeypatch) -> Path:
    """No real cache, no real system copies, no environment overrides."""
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    for var in ("CNNLAB_DATA", "CNNLAB_DATA_URL", "CNNLAB_DOWNLOAD_TIMEOUT"):
        monkeypatch.delenv(var, raising=False)
    monkeypatch.setattr(fetch_mod, "SYSTEM_DIRS", (tmp_path / "system",))
    return tmp_path


def with_digests(monkeypatch, name: str, files: dict[str, bytes]) -> None:
    """Make the registry accept the generated files (as if they were the published ones)."""
    info = DATASETS[name]
    new_files = tuple(
        dataclasses.replace(f, sha256=(sha(files[f.name]),)) if f.name in files else f
        for f in info.files
    )
    monkeypatch.setitem(DATASETS, name, dataclasses.replace(info, files=new_files))


def put(directory: Path, files: dict[str, bytes]) -> Path:
    directory.mkdir(parents=True, exist_ok=True)
    for name, blob in files.items():
        (directory / name).write_bytes(blob)
    return directory


# --- lookup order ------------------------------------------------------------------------------


def test_lookup_order_root_env_cache_system(isolated: Path, monkeypatch) -> None:
    files = fake_idx_dataset()
    system = put(isolated / "system" / "mnist", files)
    assert find_dataset("mnist", "train").step == "system copy"
    cache = put(isolated / "cache" / "cnnlab" / "mnist", files)
    loc = find_dataset("mnist", "train")
    assert (loc.step, loc.directory) == ("user cache", cache)
    env = put(isolated / "env" / "mnist", files)
    monkeypatch.setenv("CNNLAB_DATA", str(isolated / "env"))
    loc = find_dataset("mnist", "train")
    assert (loc.step, loc.directory) == ("$CNNLAB_DATA", env)
    root = put(isolated / "mine", files)  # root pointing straight at the files
    loc = find_dataset("mnist", "train", root=root)
    assert (loc.step, loc.directory) == ("--data-dir", root)
    assert system.is_dir()


def test_lookup_accepts_raw_copies_and_torchvision_layout(isolated: Path) -> None:
    files = {k[:-3]: gzip.decompress(v) for k, v in fake_idx_dataset().items()}
    raw = put(isolated / "tv" / "FashionMNIST" / "raw", files)
    loc = find_dataset("fashion-mnist", "test", root=isolated / "tv")
    assert loc.directory == raw
    x, y = load_dataset("fashion-mnist", "test", root=isolated / "tv", download=False, verify=False)
    assert x.shape == (5, 1, 28, 28) and len(y) == 5


def test_not_found_without_download_says_fetch(isolated: Path) -> None:
    with pytest.raises(DataError, match=r"cnnlab data fetch mnist"):
        load_dataset("mnist", "test", download=False)


def test_unknown_name_and_split(isolated: Path) -> None:
    with pytest.raises(DataError, match=r"unknown dataset 'imagenet'.*fashion-mnist"):
        load_dataset("imagenet")
    with pytest.raises(DataError, match="unknown split 'val'"):
        load_dataset("mnist", "val")


# --- download ----------------------------------------------------------------------------------


def test_download_ok_atomic_and_verified(tmp_path: Path, server: Server) -> None:
    blob = b"x" * 3_000_000
    server.routes["/f.bin"] = (blob, "ok")
    dest = download(f"{server.url}/f.bin", tmp_path / "d" / "f.bin", (sha(blob),), progress=False)
    assert dest.read_bytes() == blob
    assert [p.name for p in dest.parent.iterdir()] == ["f.bin"]  # no temp left behind


def test_download_checksum_mismatch_leaves_nothing(tmp_path: Path, server: Server) -> None:
    server.routes["/f.bin"] = (b"tampered", "ok")
    with pytest.raises(DataError) as err:
        download(f"{server.url}/f.bin", tmp_path / "f.bin", (sha(b"original"),), progress=False)
    text = str(err.value)
    assert "checksum mismatch" in text and "/f.bin" in text and sha(b"tampered") in text
    assert "\n" not in text
    assert list(tmp_path.iterdir()) == []


def test_download_truncated_leaves_nothing(tmp_path: Path, server: Server) -> None:
    blob = bytes(range(256)) * 1000
    server.routes["/t.bin"] = (blob, "truncate")
    with pytest.raises(DataError, match=r"truncated|broke off") as err:
        download(f"{server.url}/t.bin", tmp_path / "t.bin", (sha(blob),), progress=False)
    assert "/t.bin" in str(err.value)
    assert list(tmp_path.iterdir()) == []


def test_download_http_404_and_offline(tmp_path: Path, server: Server) -> None:
    with pytest.raises(DataError, match="HTTP 404"):
        download(f"{server.url}/missing", tmp_path / "m", ("0" * 64,), progress=False)
    with socket.socket() as s:  # a port nobody listens on: connection refused, like offline
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    with pytest.raises(DataError, match=r"cannot reach http://127\.0\.0\.1.*copy"):
        download(f"http://127.0.0.1:{port}/x", tmp_path / "x", ("0" * 64,), progress=False)
    assert list(tmp_path.iterdir()) == []


def test_download_timeout(tmp_path: Path, server: Server, monkeypatch) -> None:
    server.routes["/slow"] = (b"late", "slow")
    monkeypatch.setenv("CNNLAB_DOWNLOAD_TIMEOUT", "0.3")
    with pytest.raises(DataError, match=r"0\.3 s"):
        download(f"{server.url}/slow", tmp_path / "s", (sha(b"late"),), progress=False)
    monkeypatch.setenv("CNNLAB_DOWNLOAD_TIMEOUT", "soon")
    with pytest.raises(DataError, match="CNNLAB_DOWNLOAD_TIMEOUT"):
        download(f"{server.url}/slow", tmp_path / "s", (sha(b"late"),), progress=False)


def test_fetch_idx_dataset_from_mirror(isolated: Path, server: Server, monkeypatch) -> None:
    files = fake_idx_dataset(n=6)
    with_digests(monkeypatch, "mnist", files)
    for name, blob in files.items():
        server.routes[f"/mnist/{name}"] = (blob, "ok")
    monkeypatch.setenv("CNNLAB_DATA_URL", server.url)
    # load_dataset finds nothing, downloads into the cache, then reads it
    x, y = load_dataset("mnist", "train")
    assert x.shape == (6, 1, 28, 28) and len(y) == 6
    assert len(server.hits) == 4
    assert find_dataset("mnist", "test").step == "user cache"
    # a second fetch finds everything and downloads nothing
    fetch_dataset("mnist")
    assert len(server.hits) == 4


def test_fetch_with_damaged_mirror_file_fails_and_keeps_nothing(
    isolated: Path, server: Server, monkeypatch
) -> None:
    files = fake_idx_dataset()
    with_digests(monkeypatch, "mnist", files)
    for name, blob in files.items():
        server.routes[f"/mnist/{name}"] = (blob, "ok")
    server.routes["/mnist/t10k-labels-idx1-ubyte.gz"] = (b"\x1f\x8bbroken", "ok")
    with pytest.raises(DataError, match=r"checksum mismatch.*t10k-labels"):
        fetch_dataset("mnist", isolated / "data", base_url=server.url, progress=False)
    assert not (isolated / "data" / "mnist" / "t10k-labels-idx1-ubyte.gz").exists()


def test_fetch_cifar_unpacks_known_members_only(
    isolated: Path, server: Server, monkeypatch
) -> None:
    rng = np.random.default_rng(0)
    members = {}
    for name in [f"data_batch_{i}.bin" for i in range(1, 6)] + ["test_batch.bin"]:
        rec = np.concatenate(
            [rng.integers(0, 10, (2, 1)), rng.integers(0, 256, (2, 3072))], axis=1
        ).astype(np.uint8)
        members[f"cifar-10-batches-bin/{name}"] = rec.tobytes()
    members["../evil.bin"] = b"outside"  # path traversal must be ignored
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w:gz") as tar:
        for name, blob in members.items():
            info = tarfile.TarInfo(name)
            info.size = len(blob)
            tar.addfile(info, io.BytesIO(blob))
    archive = buf.getvalue()
    info = DATASETS["cifar10"]
    new = tuple(
        dataclasses.replace(f, sha256=(sha(members[f.member] if f.member else archive),))
        for f in info.files
    )
    monkeypatch.setitem(DATASETS, "cifar10", dataclasses.replace(info, files=new))
    server.routes["/cifar10/cifar-10-binary.tar.gz"] = (archive, "ok")
    directory = fetch_dataset("cifar10", isolated / "d", base_url=server.url, progress=False)
    assert directory == isolated / "d" / "cifar10"
    assert not (directory / "cifar-10-binary.tar.gz").exists()  # unpacked, then removed
    assert not (isolated / "d" / "evil.bin").exists()
    x, y = load_dataset("cifar10", "train", root=isolated / "d", download=False)  # verified
    assert x.shape == (10, 3, 32, 32) and len(y) == 10


def test_download_into_unwritable_place(isolated: Path, server: Server) -> None:
    blocker = isolated / "file"
    blocker.write_text("not a folder")
    server.routes["/a"] = (b"a", "ok")
    with pytest.raises(DataError, match=r"cannot write to .*--data-dir"):
        download(f"{server.url}/a", blocker / "sub" / "a", (sha(b"a"),), progress=False)


def test_fetch_replaces_a_foreign_copy(isolated: Path, server: Server, monkeypatch) -> None:
    good, foreign = fake_idx_dataset(seed=1), fake_idx_dataset(seed=2)
    with_digests(monkeypatch, "mnist", good)
    put(isolated / "cache" / "cnnlab" / "mnist", foreign)  # same names, other content
    for name, blob in good.items():
        server.routes[f"/mnist/{name}"] = (blob, "ok")
    directory = fetch_dataset("mnist", base_url=server.url, progress=False)
    assert len(server.hits) == 4
    assert all((directory / n).read_bytes() == b for n, b in good.items())
