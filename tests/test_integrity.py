"""Self-verifying files: every weights file cnnlab writes carries the SHA-256 of its content.

The damage cases that go through whole commands are in ``test_hostile_runs.py`` (the
``integrity`` group) and ``test_hostile_weights.py`` (``damaged-*-data``); these are the
properties of the digest itself.
"""

from __future__ import annotations

import json
import struct
from pathlib import Path

import pytest
import torch
from safetensors import safe_open
from safetensors.torch import save_file

from cnnlab.errors import CheckpointError
from cnnlab.run.tensorfile import (
    DIGEST_KEY,
    file_digest,
    read_tensors,
    record_digest,
    tensors_digest,
    write_safetensors_atomic,
)

META = {"format": "cnnlab.model/1", "classes": ["a", "b"], "mean": [0.5]}


def _tensors() -> dict[str, torch.Tensor]:
    g = torch.Generator().manual_seed(0)
    return {
        "w": torch.randn(3, 4, generator=g),
        "half": torch.randn(5, generator=g).to(torch.bfloat16),
        "count": torch.tensor(7),  # 0-d int64, as batch norm's num_batches_tracked
        "mask": torch.tensor([True, False]),
    }


def test_every_dtype_round_trips_and_the_digest_is_recorded(tmp_path: Path) -> None:
    path = tmp_path / "m.safetensors"
    digest = write_safetensors_atomic(path, _tensors(), META)
    assert file_digest(path) == digest == tensors_digest(_tensors(), META)
    back = read_tensors(path)
    for name, tensor in _tensors().items():
        assert back[name].dtype == tensor.dtype and torch.equal(back[name], tensor)


def test_the_digest_ignores_order_but_sees_every_part() -> None:
    tensors, base = _tensors(), tensors_digest(_tensors(), META)
    assert tensors_digest(dict(reversed(tensors.items())), dict(reversed(META.items()))) == base
    assert tensors_digest(tensors, {**META, DIGEST_KEY: "x"}) == base  # its own field left out
    changed = {
        "value": (
            {**tensors, "w": tensors["w"].clone().index_put_((torch.tensor(0),), torch.zeros(4))},
            META,
        ),
        "name": ({("v" if k == "w" else k): v for k, v in tensors.items()}, META),
        "shape": ({**tensors, "w": tensors["w"].reshape(4, 3)}, META),
        "dtype": ({**tensors, "count": tensors["count"].to(torch.int32)}, META),
        "record": (tensors, {**META, "classes": ["a", "c"]}),
    }
    for what, (t, m) in changed.items():
        assert tensors_digest(t, m) != base, what


def test_a_change_to_any_byte_of_the_data_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "m.safetensors"
    write_safetensors_atomic(path, {"w": torch.arange(12, dtype=torch.float32)}, META)
    data = path.read_bytes()
    start = 8 + struct.unpack("<Q", data[:8])[0]
    for offset in range(start, len(data)):  # all 48 bytes of the tensor
        damaged = bytearray(data)
        damaged[offset] ^= 0x01  # the lowest mantissa bit: a value off by one ulp
        path.write_bytes(bytes(damaged))
        with pytest.raises(CheckpointError, match="does not match the SHA-256") as refused:
            read_tensors(path)
        assert "\n" not in str(refused.value)


def test_an_edited_record_is_refused_and_an_old_file_without_a_digest_still_reads(
    tmp_path: Path,
) -> None:
    path = tmp_path / "m.safetensors"
    write_safetensors_atomic(path, _tensors(), META)
    with safe_open(str(path), framework="pt") as f:
        record = json.loads(f.metadata()["cnnlab"])
    save_file(_tensors(), str(path), metadata={"cnnlab": json.dumps({**record, "mean": [0.4]})})
    with pytest.raises(CheckpointError, match="does not match the SHA-256"):
        read_tensors(path)
    del record[DIGEST_KEY]  # as cnnlab wrote files before the digest existed
    save_file(_tensors(), str(path), metadata={"cnnlab": json.dumps(record)})
    assert file_digest(path) is None and set(read_tensors(path)) == set(_tensors())


def test_a_record_digest_covers_every_field_but_itself() -> None:
    record = {"step": 8, "epoch": 1, "history": [{"epoch": 1, "lr": 0.1}]}
    digest = record_digest(record)
    assert record_digest({**record, "record_sha256": digest}) == digest
    assert record_digest({**record, "epoch": 0}) != digest
    assert record_digest({**record, "history": [{"epoch": 1, "lr": 0.2}]}) != digest
