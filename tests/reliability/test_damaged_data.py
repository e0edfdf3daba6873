"""Damaged data: mutated IDX and image files, decompression bombs and every image mode.

About 100 mutated files of each kind here (the benchmark runs 1,000+ of each). Every read must
end in a decoded array or a one-line :class:`cnnlab.errors.DataError`, in under 5 s, with bounded
memory; each image mode must convert exactly as ``cnnlab.data.images`` documents.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from reliability import harness


@pytest.fixture(scope="module")
def results(work: Path) -> list:
    """[mutated IDX, mutated images, decompression bombs, image folder] results."""
    return harness.damaged_data_trials(work, 100, 100, quick=True, seed=3)


def _bad(result) -> str:
    rows = [
        d
        for d in result.details
        if d.get("outcome") not in ("decoded", "DataError")
        or not d.get("one_line", True)
        or d.get("ok") is False
    ]
    return f"{result.outcome}\n{json.dumps(rows[:10], indent=1, default=str)}"


@pytest.mark.parametrize("group", range(4), ids=["idx", "images", "bombs", "folder"])
def test_only_documented_errors_fast_and_bounded(results: list, group: int) -> None:
    r = results[group]
    assert r.ok, _bad(r)
    assert r.count >= (100 if group < 2 else 4)


@pytest.mark.parametrize("group", range(2), ids=["idx", "images"])
def test_mutations_are_mostly_detected(results: list, group: int) -> None:
    # Damage in headers or gzip framing must be detected, not decoded into garbage; flips in
    # pixel bytes cannot be (the formats have no checksum over raw pixels).
    r = results[group]
    refused = sum(d["outcome"] == "DataError" for d in r.details)
    assert refused >= r.count // 3, r.outcome


def test_image_mode_matrix(work: Path) -> None:
    r = harness.image_mode_trials(work)
    assert r.ok, _bad(r)
    assert r.count >= 14


def test_gzip_idx_peak_memory_close_to_the_array(work: Path) -> None:
    path = work / "bomb-honest-64.idx.gz"
    path.write_bytes(harness.bomb_idx_gz(64, honest=True))
    [record] = harness.read_files([(str(path), "idx")])
    assert record["outcome"] == "decoded"
    assert record["peak_mb"] <= 1.3 * 64 + 16, f"peak growth {record['peak_mb']:.0f} MB"
