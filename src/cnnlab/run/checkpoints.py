"""A run's checkpoints, read side: which pairs exist, which are valid, which file a path means.

A checkpoint is a pair ``checkpoints/step-XXXXXXXX.safetensors`` + ``.json``: the tensors, and a
JSON record written last that holds the size and SHA-256 of its tensors file, so a pair is valid
only when both halves were completely written. Training writes the pairs
(:mod:`cnnlab.train.checkpoint`); evaluation, prediction, reports and ``--resume`` find and
check them here.
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import torch

from cnnlab import files
from cnnlab.errors import CheckpointError
from cnnlab.run.layout import CHECKPOINT_DIR, MODEL_FILE
from cnnlab.run.tensorfile import CHECKPOINT_FORMAT, read_header, read_tensors

_STEP_NAME = re.compile(r"^step-(\d{8,})\.json$")
# Weight files of other tools, named in the refusal so the user knows why they were not used.
_FOREIGN_SUFFIXES = frozenset({".pt", ".pth", ".pkl", ".pickle", ".ckpt", ".bin"})


def checkpoint_name(step: int) -> str:
    return f"step-{step:08d}"


def list_checkpoints(directory: Path) -> list[Path]:
    """JSON halves of the checkpoints in ``directory``, oldest first (by step)."""
    directory = Path(directory)
    if not directory.is_dir():
        return []
    found = [(int(m.group(1)), p) for p in directory.iterdir() if (m := _STEP_NAME.match(p.name))]
    return [p for _, p in sorted(found)]


def validate_checkpoint(json_path: Path) -> dict[str, Any]:
    """Check a checkpoint pair completely; return its JSON record or raise CheckpointError."""
    json_path = Path(json_path)
    try:
        record = json.loads(json_path.read_text())
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as err:
        raise CheckpointError(f"{json_path.name}: unreadable JSON ({err})") from None
    if not isinstance(record, dict) or record.get("format") != CHECKPOINT_FORMAT:
        raise CheckpointError(f"{json_path.name}: not a cnnlab checkpoint record")
    step = int(_STEP_NAME.match(json_path.name).group(1))  # type: ignore[union-attr]
    if record.get("step") != step:
        raise CheckpointError(f"{json_path.name}: records step {record.get('step')}, not {step}")
    weights = json_path.with_suffix(".safetensors")
    if not weights.is_file():
        raise CheckpointError(f"{json_path.name}: its {weights.name} is missing")
    if weights.stat().st_size != record.get("tensors_bytes"):
        raise CheckpointError(f"{weights.name}: size differs from the record (truncated?)")
    meta = read_header(weights)
    if meta.get("step") != step:
        raise CheckpointError(f"{weights.name}: header says step {meta.get('step')}, not {step}")
    if files.sha256_file(weights) != record.get("tensors_sha256"):
        raise CheckpointError(f"{weights.name}: SHA-256 differs from the record (damaged)")
    return record


def latest_valid_checkpoint(directory: Path) -> tuple[Path | None, list[str]]:
    """The newest checkpoint that passes :func:`validate_checkpoint`, and why newer ones failed."""
    rejected = []
    for json_path in reversed(list_checkpoints(directory)):
        try:
            validate_checkpoint(json_path)
        except CheckpointError as err:
            rejected.append(str(err))
            continue
        return json_path, rejected
    return None, rejected


def load_checkpoint(json_path: Path) -> tuple[dict[str, torch.Tensor], dict[str, Any]]:
    """The tensors and JSON record of a validated checkpoint pair."""
    record = validate_checkpoint(json_path)
    return read_tensors(Path(json_path).with_suffix(".safetensors")), record


def resolve_model_file(path: Path) -> Path:
    """The weights file a user means by ``path``: a file, or a run directory's model/checkpoint."""
    path = Path(path)
    if path.is_dir():
        final = path / MODEL_FILE
        if final.exists():
            return final
        latest, _ = latest_valid_checkpoint(path / CHECKPOINT_DIR)
        if latest is not None:
            return latest.with_suffix(".safetensors")
        foreign = sorted(p.name for p in path.iterdir() if p.suffix in _FOREIGN_SUFFIXES)
        hint = (
            f" ({', '.join(foreign)}: pickle/torch.save files, which cnnlab never loads because "
            "unpickling can run code)"
            if foreign
            else ""
        )
        raise CheckpointError(
            f"{path} holds no {MODEL_FILE} and no valid checkpoint{hint}: pass a run directory "
            "written by `cnnlab train`"
        )
    if path.suffix == ".json" and _STEP_NAME.match(path.name):
        return path.with_suffix(".safetensors")
    return path
