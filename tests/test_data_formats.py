"""IDX and CIFAR-10 binary readers on small generated files, well-formed and malformed.

Every malformed input must raise a one-line DataError that names the file (and the field). Every
row of the dataset table (``cnnlab.data.datasets.DATASETS``) gets its own tests: a sane row, a
reader that reads generated files laid out as the row says, and its line in ``docs/data.md``.
"""

from __future__ import annotations

import gzip
import io
import struct
import tarfile
from pathlib import Path

import numpy as np
import pytest
import torch

from cnnlab.data import DATASETS, DEFAULT_DATASET, DatasetInfo, load_dataset
from cnnlab.data.cifar import RECORD, read_cifar_archive, read_cifar_files
from cnnlab.data.idx import IMAGES_MAGIC, LABELS_MAGIC, read_idx, read_idx_pair
from cnnlab.errors import DataError

RNG = np.random.default_rng(0)


def idx_bytes(array: np.ndarray, magic: int | None = None) -> bytes:
    magic = magic if magic is not None else 0x00000800 | array.ndim
    return struct.pack(">I", magic) + struct.pack(f">{array.ndim}I", *array.shape) + array.tobytes()


def write(path: Path, data: bytes, gz: bool) -> Path:
    path.write_bytes(gzip.compress(data) if gz else data)
    return path


def write_idx_split(directory: Path, n: int, prefix: str = "train", gz: bool = True, seed: int = 0):
    """A tiny MNIST-style split; returns (images, labels) as written."""
    rng = np.random.default_rng(seed)
    images = rng.integers(0, 256, (n, 28, 28), dtype=np.uint8)
    labels = rng.integers(0, 10, n, dtype=np.uint8)
    suffix = ".gz" if gz else ""
    directory.mkdir(parents=True, exist_ok=True)
    write(directory / f"{prefix}-images-idx3-ubyte{suffix}", idx_bytes(images), gz)
    write(directory / f"{prefix}-labels-idx1-ubyte{suffix}", idx_bytes(labels), gz)
    return images, labels


def assert_one_line(err: pytest.ExceptionInfo, *needles: str) -> None:
    text = str(err.value)
    assert "\n" not in text
    for needle in needles:
        assert needle in text, text


# --- IDX ---------------------------------------------------------------------------------------


@pytest.mark.parametrize("gz", [True, False])
def test_idx_roundtrip_gz_and_raw(tmp_path: Path, gz: bool) -> None:
    images, labels = write_idx_split(tmp_path, 7, gz=gz)
    sfx = ".gz" if gz else ""
    x, y = read_idx_pair(
        tmp_path / f"train-images-idx3-ubyte{sfx}", tmp_path / f"train-labels-idx1-ubyte{sfx}", 10
    )
    assert x.shape == (7, 1, 28, 28) and x.dtype == torch.uint8
    assert y.shape == (7,) and y.dtype == torch.int64
    assert np.array_equal(x[:, 0].numpy(), images)
    assert np.array_equal(y.numpy(), labels)
    x.add_(1)  # writable, not a view of a read-only buffer


def test_idx_gzip_detected_by_content_not_name(tmp_path: Path) -> None:
    arr = RNG.integers(0, 256, (3, 5, 4), dtype=np.uint8)
    p = write(tmp_path / "images.raw", idx_bytes(arr), gz=True)  # gz content, misleading name
    assert np.array_equal(read_idx(p, IMAGES_MAGIC), arr)


@pytest.mark.parametrize("gz", [True, False])
def test_idx_bad_magic(tmp_path: Path, gz: bool) -> None:
    arr = RNG.integers(0, 10, 5, dtype=np.uint8)
    p = write(tmp_path / "labels", idx_bytes(arr, magic=0x00000901), gz)
    with pytest.raises(DataError) as err:
        read_idx(p, LABELS_MAGIC)
    assert_one_line(err, str(p), "magic number 0x00000901", "0x00000801")


def test_idx_labels_given_as_images_says_so(tmp_path: Path) -> None:
    arr = RNG.integers(0, 10, 5, dtype=np.uint8)
    p = write(tmp_path / "labels", idx_bytes(arr), gz=False)
    with pytest.raises(DataError) as err:
        read_idx(p, IMAGES_MAGIC)
    assert_one_line(err, str(p), "1 dimensions", "images")


@pytest.mark.parametrize("gz", [True, False])
def test_idx_truncated(tmp_path: Path, gz: bool) -> None:
    arr = RNG.integers(0, 256, (4, 28, 28), dtype=np.uint8)
    p = write(tmp_path / "img", idx_bytes(arr)[:-100], gz)
    with pytest.raises(DataError) as err:
        read_idx(p, IMAGES_MAGIC)
    assert_one_line(err, str(p), "truncated")


def test_idx_truncated_gzip_stream(tmp_path: Path) -> None:
    arr = RNG.integers(0, 256, (40, 28, 28), dtype=np.uint8)
    blob = gzip.compress(idx_bytes(arr))
    p = tmp_path / "img.gz"
    p.write_bytes(blob[: len(blob) // 2])
    with pytest.raises(DataError) as err:
        read_idx(p, IMAGES_MAGIC)
    assert_one_line(err, str(p), "gzip")


@pytest.mark.parametrize("gz", [True, False])
def test_idx_trailing_bytes(tmp_path: Path, gz: bool) -> None:
    arr = RNG.integers(0, 10, 5, dtype=np.uint8)
    p = write(tmp_path / "lab", idx_bytes(arr) + b"\x00\x01", gz)
    with pytest.raises(DataError) as err:
        read_idx(p, LABELS_MAGIC)
    assert_one_line(err, str(p))
    assert "trailing" in str(err.value) or "continues" in str(err.value)


def test_idx_huge_header_refused_before_allocating(tmp_path: Path) -> None:
    header = struct.pack(">IIII", IMAGES_MAGIC, 0xFFFFFFFF, 0xFFFF, 0xFFFF)
    p = write(tmp_path / "bomb.gz", header + b"\x00" * 64, gz=True)
    with pytest.raises(DataError) as err:
        read_idx(p, IMAGES_MAGIC)
    assert_one_line(err, str(p), "claim")


def test_idx_zero_dimension_and_short_header(tmp_path: Path) -> None:
    p = write(tmp_path / "zero", struct.pack(">IIII", IMAGES_MAGIC, 3, 0, 28), gz=False)
    with pytest.raises(DataError) as err:
        read_idx(p, IMAGES_MAGIC)
    assert_one_line(err, str(p), "rows")
    q = write(tmp_path / "short", b"\x00\x00", gz=False)
    with pytest.raises(DataError) as err:
        read_idx(q, IMAGES_MAGIC)
    assert_one_line(err, str(q), "too short")
    with pytest.raises(DataError) as err:
        read_idx(tmp_path / "missing", IMAGES_MAGIC)
    assert_one_line(err, "missing", "not found")


def test_idx_count_mismatch_between_images_and_labels(tmp_path: Path) -> None:
    write_idx_split(tmp_path, 6)
    labels = np.zeros(5, dtype=np.uint8)
    lp = write(tmp_path / "train-labels-idx1-ubyte.gz", idx_bytes(labels), gz=True)
    ip = tmp_path / "train-images-idx3-ubyte.gz"
    with pytest.raises(DataError) as err:
        read_idx_pair(ip, lp, 10)
    assert_one_line(err, str(ip), "count 6", "5 labels")


def test_idx_label_out_of_range(tmp_path: Path) -> None:
    write_idx_split(tmp_path, 6)
    labels = np.array([0, 1, 2, 12, 3, 4], dtype=np.uint8)
    lp = write(tmp_path / "train-labels-idx1-ubyte.gz", idx_bytes(labels), gz=True)
    with pytest.raises(DataError) as err:
        read_idx_pair(tmp_path / "train-images-idx3-ubyte.gz", lp, 10)
    assert_one_line(err, str(lp), "label 12 at index 3", "10 classes")


def test_load_dataset_error_names_fetch_fix(tmp_path: Path, monkeypatch) -> None:
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    monkeypatch.delenv("CNNLAB_DATA", raising=False)
    d = tmp_path / "mnist"
    write_idx_split(d, 4)
    (d / "train-images-idx3-ubyte.gz").write_bytes(b"\x1f\x8bnot really gzip")
    with pytest.raises(DataError) as err:
        load_dataset("mnist", "train", root=tmp_path, download=False)
    assert_one_line(err, "train-images-idx3-ubyte.gz", "cnnlab data fetch mnist")


# --- CIFAR-10 binary ---------------------------------------------------------------------------


def cifar_batch(n: int, seed: int) -> tuple[bytes, np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    labels = rng.integers(0, 10, n, dtype=np.uint8)
    images = rng.integers(0, 256, (n, 3, 32, 32), dtype=np.uint8)
    records = np.concatenate([labels[:, None], images.reshape(n, -1)], axis=1)
    return records.tobytes(), images, labels


def write_cifar(directory: Path, sizes=(3, 2, 2, 1, 2, 4), as_tar: bool = False):
    """Batches data_batch_1..5 and test_batch; returns {split: (images, labels)}."""
    names = [f"data_batch_{i}.bin" for i in range(1, 6)] + ["test_batch.bin"]
    blobs, parts = {}, {"train": [], "test": []}
    for k, (name, n) in enumerate(zip(names, sizes, strict=True)):
        blob, x, y = cifar_batch(n, k)
        blobs[name] = blob
        parts["test" if name.startswith("test") else "train"].append((x, y))
    directory.mkdir(parents=True, exist_ok=True)
    if as_tar:
        with tarfile.open(directory / "cifar-10-binary.tar.gz", "w:gz") as tar:
            for name, blob in blobs.items():
                info = tarfile.TarInfo(f"cifar-10-batches-bin/{name}")
                info.size = len(blob)
                tar.addfile(info, io.BytesIO(blob))
    else:
        sub = directory / "cifar-10-batches-bin"
        sub.mkdir(exist_ok=True)
        for name, blob in blobs.items():
            (sub / name).write_bytes(blob)
    return {
        s: (np.concatenate([x for x, _ in p]), np.concatenate([y for _, y in p]))
        for s, p in parts.items()
    }


@pytest.mark.parametrize("as_tar", [False, True])
def test_cifar_binary_unpacked_and_tarball(tmp_path: Path, monkeypatch, as_tar: bool) -> None:
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    monkeypatch.delenv("CNNLAB_DATA", raising=False)
    expected = write_cifar(tmp_path / "cifar10", as_tar=as_tar)
    for split in ("train", "test"):
        x, y = load_dataset("cifar10", split, root=tmp_path, download=False, verify=False)
        ex, ey = expected[split]
        assert x.dtype == torch.uint8 and y.dtype == torch.int64
        assert x.shape == (len(ey), 3, 32, 32)
        assert np.array_equal(x.numpy(), ex) and np.array_equal(y.numpy(), ey)


def test_cifar_channel_planes_are_rgb_in_order(tmp_path: Path) -> None:
    # One record whose red plane is 10, green 20, blue 30: the reshape must keep planes apart.
    rec = bytes([7]) + bytes([10]) * 1024 + bytes([20]) * 1024 + bytes([30]) * 1024
    p = tmp_path / "b.bin"
    p.write_bytes(rec)
    x, y = read_cifar_files([p])
    assert y.tolist() == [7]
    assert [int(x[0, c].unique()) for c in range(3)] == [10, 20, 30]


def test_cifar_length_not_multiple_of_record(tmp_path: Path) -> None:
    blob, _, _ = cifar_batch(2, 0)
    p = tmp_path / "data_batch_1.bin"
    p.write_bytes(blob[:-5])
    with pytest.raises(DataError) as err:
        read_cifar_files([p])
    assert_one_line(err, str(p), f"{RECORD}-byte", "length")


def test_cifar_label_out_of_range_names_file_and_record(tmp_path: Path) -> None:
    good, _, _ = cifar_batch(2, 0)
    bad = bytearray(cifar_batch(3, 1)[0])
    bad[RECORD * 2] = 10  # third record's label byte
    a, b = tmp_path / "data_batch_1.bin", tmp_path / "data_batch_2.bin"
    a.write_bytes(good)
    b.write_bytes(bytes(bad))
    with pytest.raises(DataError) as err:
        read_cifar_files([a, b])
    assert_one_line(err, str(b), "record 2", "label 10")


def test_cifar_archive_missing_member_and_garbage(tmp_path: Path) -> None:
    write_cifar(tmp_path, as_tar=True)
    archive = tmp_path / "cifar-10-binary.tar.gz"
    with pytest.raises(DataError) as err:
        read_cifar_archive(archive, ["cifar-10-batches-bin/nope.bin"])
    assert_one_line(err, str(archive), "nope.bin")
    junk = tmp_path / "junk.tar.gz"
    junk.write_bytes(archive.read_bytes()[:200])
    with pytest.raises(DataError) as err:
        read_cifar_archive(junk, ["cifar-10-batches-bin/test_batch.bin"])
    assert_one_line(err, str(junk))


def test_cifar_pickled_python_version_is_not_read(tmp_path: Path, monkeypatch) -> None:
    # Only the python-version folder is present: it must not be found (never unpickled).
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    monkeypatch.delenv("CNNLAB_DATA", raising=False)
    py = tmp_path / "cifar10" / "cifar-10-batches-py"
    py.mkdir(parents=True)
    (py / "data_batch_1").write_bytes(b"\x80\x04not touched")
    with pytest.raises(DataError) as err:
        load_dataset("cifar10", "train", root=tmp_path, download=False)
    assert_one_line(err, "cnnlab data fetch cifar10")


# --- every row of the dataset table ------------------------------------------------------------

ROWS = [pytest.param(info, id=name) for name, info in DATASETS.items()]
DOCS_DATA = Path(__file__).resolve().parents[1] / "docs/data.md"


@pytest.mark.parametrize("info", ROWS)
def test_row_is_complete_and_sane(info: DatasetInfo) -> None:
    assert callable(info.reader), f"{info.name} has no reader"
    assert isinstance(info.flip_preserves_label, bool)
    assert info.num_classes == len(set(info.classes)) >= 2
    assert len(info.mean) == len(info.std) == info.channels in (1, 3)
    assert all(0 < m < 1 for m in info.mean) and all(0 < s < 0.5 for s in info.std)
    assert info.num_train and info.num_test and info.url and info.homepage
    for split in ("train", "test"):
        assert info.split_files(split), (info.name, split)
    for f in info.files:
        assert all(len(d) == 64 and int(d, 16) >= 0 for d in f.sha256), f.name


def test_rows_of_one_format_share_its_reader() -> None:
    readers: dict[str, object] = {}
    for info in DATASETS.values():
        assert readers.setdefault(info.format, info.reader) is info.reader, info.name


def test_the_default_dataset_is_a_row() -> None:
    assert DEFAULT_DATASET in DATASETS


def _fake_split(info: DatasetInfo, directory: Path, split: str, n: int) -> tuple:
    """Every file of ``split`` as the row describes it, ``n`` random samples per file."""
    directory.mkdir(parents=True, exist_ok=True)
    images = RNG.integers(0, 256, (n, info.channels, *info.size), dtype=np.uint8)
    labels = RNG.integers(0, info.num_classes, n, dtype=np.uint8)
    blobs = {
        "images": idx_bytes(images.reshape(n, *info.size) if info.channels == 1 else images),
        "labels": idx_bytes(labels),
        "records": np.concatenate([labels[:, None], images.reshape(n, -1)], axis=1).tobytes(),
    }
    files = info.split_files(split)
    for f in files:
        assert f.role in blobs, f"{info.name}: no test writer for role {f.role!r}"
        (directory / f.name).write_bytes(blobs[f.role])  # IDX is read as gzip by its content
    per_file = len(files) if files[0].role == "records" else 1  # each batch holds n records
    return np.concatenate([images] * per_file), np.concatenate([labels] * per_file)


@pytest.mark.parametrize("info", ROWS)
def test_row_reader_reads_files_laid_out_as_the_row_says(
    info: DatasetInfo, tmp_path: Path, monkeypatch
) -> None:
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    monkeypatch.delenv("CNNLAB_DATA", raising=False)
    for split in ("train", "test"):
        images, labels = _fake_split(info, tmp_path / info.name, split, 5)
        x, y = load_dataset(info.name, split, root=tmp_path, download=False, verify=False)
        assert x.dtype == torch.uint8 and y.dtype == torch.int64
        assert x.shape == (len(labels), info.channels, *info.size)
        assert np.array_equal(x.numpy(), images) and np.array_equal(y.numpy(), labels)


def _docs_table() -> dict[str, dict[str, str]]:
    """docs/data.md's dataset table: for each row's first cell, its cells by column heading."""
    lines = [line for line in DOCS_DATA.read_text().splitlines() if line.startswith("| ")]
    header = next(line for line in lines if line.startswith("| dataset |"))
    heads = [c.strip() for c in header.strip("|").split("|")]
    rows = [[c.strip() for c in line.strip("|").split("|")] for line in lines]
    return {
        cells[0]: dict(zip(heads, cells, strict=True)) for cells in rows if len(cells) == len(heads)
    }


@pytest.mark.parametrize("info", ROWS)
def test_row_has_its_line_in_the_docs_table(info: DatasetInfo) -> None:
    line = _docs_table().get(f"`{info.name}`")
    assert line is not None, f"docs/data.md: the dataset table has no line for {info.name}"
    flips = line["flips keep the class"].startswith("yes")
    assert flips == info.flip_preserves_label, f"docs/data.md: {info.name}'s flips"
    assert f"{info.channels}x{info.size[0]}x{info.size[1]}" == line["image"]


# --- robustness: any damage is a DataError, never a crash or a huge allocation -----------------

from hypothesis import HealthCheck, given, settings  # noqa: E402
from hypothesis import strategies as st  # noqa: E402

_VALID_IMAGES = idx_bytes(np.random.default_rng(1).integers(0, 256, (3, 4, 5), dtype=np.uint8))


@settings(
    max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(
    cut=st.integers(0, len(_VALID_IMAGES)),
    flips=st.lists(
        st.tuples(st.integers(0, len(_VALID_IMAGES) - 1), st.integers(1, 255)), max_size=3
    ),
    gz=st.booleans(),
)
def test_idx_damage_never_crashes(tmp_path: Path, cut: int, flips, gz: bool) -> None:
    blob = bytearray(_VALID_IMAGES[:cut])
    for pos, xor in flips:
        if pos < len(blob):
            blob[pos] ^= xor
    p = write(tmp_path / "fuzz", bytes(blob), gz)
    try:
        arr = read_idx(p, IMAGES_MAGIC)
    except DataError as err:
        assert str(p) in str(err) and "\n" not in str(err)
    else:  # only an intact header with the exact length can succeed
        assert arr.size == len(blob) - 16


@settings(
    max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(blob=st.binary(max_size=4000))
def test_cifar_random_bytes_never_crash(tmp_path: Path, blob: bytes) -> None:
    p = tmp_path / "batch.bin"
    p.write_bytes(blob)
    try:
        x, y = read_cifar_files([p])
    except DataError as err:
        assert str(p) in str(err)
    else:
        assert len(blob) % RECORD == 0 and x.shape[0] == len(y) and int(y.max()) < 10
