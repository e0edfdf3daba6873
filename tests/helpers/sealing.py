"""Crafted files that pass cnnlab's integrity checks, for tests of the checks behind them.

cnnlab's weights files carry their own SHA-256 (:func:`cnnlab.run.tensorfile.tensors_digest`),
checkpoint records theirs (:func:`~cnnlab.run.tensorfile.record_digest`), and ``results.json``
the digests of a finished run's weights. A test that edits a field to see the field's own check
fire must re-seal the file, as a deliberate forger would; otherwise the digest refuses the file
first and the check behind it is never reached.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import torch
from safetensors import safe_open
from safetensors.torch import save_file

from cnnlab import files
from cnnlab.run.tensorfile import (
    DIGEST_KEY,
    RECORD_DIGEST_KEY,
    record_digest,
    tensors_digest,
)


def sealed_metadata(tensors: dict[str, torch.Tensor], record: dict[str, Any]) -> dict[str, str]:
    """safetensors metadata holding ``record`` (a cnnlab record) with a matching digest."""
    record = {k: v for k, v in record.items() if k != DIGEST_KEY}
    record[DIGEST_KEY] = tensors_digest(tensors, record)
    return {"cnnlab": json.dumps(record, allow_nan=True)}


def sealed_record(record: dict[str, Any]) -> dict[str, Any]:
    """A checkpoint record with its own digest made to match."""
    return {**record, RECORD_DIGEST_KEY: record_digest(record)}


def reseal(path: Path) -> None:
    """Make a crafted weights file pass every digest check that covers it.

    Rewrites the file with a digest of its present content; then, where they exist, updates the
    checkpoint record beside it (size, file digest, record digest) and the ``results.json`` of
    the run it sits in.
    """
    path = Path(path)
    with safe_open(str(path), framework="pt") as f:
        metadata = dict(f.metadata() or {})
        tensors = {k: f.get_tensor(k) for k in f.keys()}  # noqa: SIM118
    record = json.loads(metadata["cnnlab"])
    if isinstance(record, dict):
        metadata.update(sealed_metadata(tensors, record))
        digest = json.loads(metadata["cnnlab"])[DIGEST_KEY]
    else:
        digest = None
    save_file(tensors, str(path), metadata=metadata)
    pair = path.with_suffix(".json")
    if pair.is_file():
        data = json.loads(pair.read_text())
        data["tensors_bytes"] = path.stat().st_size
        data["tensors_sha256"] = files.sha256_file(path)
        pair.write_text(json.dumps(sealed_record(data)))
    results = path.parent / "results.json"
    if digest is not None and results.is_file():
        data = json.loads(results.read_text())
        if isinstance(data, dict) and path.name in (data.get("files") or {}):
            data["files"][path.name] = digest
            results.write_text(json.dumps(data))
