"""cnnlab's tensor files: safetensors with cnnlab's metadata, written atomically, read safely.

Every weights file cnnlab writes (``model.safetensors``, checkpoint tensors, imported pretrained
weights) is a safetensors file whose metadata key ``cnnlab`` holds a JSON object (the model's
:class:`~cnnlab.runmeta.RunMeta`, or a checkpoint's step and model metadata). This module owns
that format: :func:`read_header` validates a file's framing and returns the metadata before any
tensor is read; :func:`read_tensors` reads the tensors of a validated file. Nothing here uses
``pickle`` or ``torch.load``: a file that is not well-formed safetensors is refused with a
:class:`~cnnlab.errors.CheckpointError` before any of it is interpreted.

Writes go to a temporary name in the same directory, fsynced, then renamed
(:func:`cnnlab.files.write_atomic`), so a crash leaves the old file or the new one.
"""

from __future__ import annotations

import json
import struct
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

import torch
from safetensors import SafetensorError, safe_open
from safetensors.torch import save_file

from cnnlab import files
from cnnlab.errors import CheckpointError

MODEL_FORMAT = "cnnlab.model/1"
CHECKPOINT_FORMAT = "cnnlab.checkpoint/1"
# A safetensors header larger than this is not one we wrote (ours are a few kB to a few MB).
_MAX_HEADER_BYTES = 100 * 2**20
# A hook called with a file's temporary name once it is written, before it is committed.
Hook = Callable[[Path], None] | None


# --- writing ------------------------------------------------------------------------------------


def _write_atomic(path: Path, write: Callable[[Path], object], before_commit: Hook = None) -> None:
    """:func:`cnnlab.files.write_atomic` with cnnlab's checkpoint error for a failed write.

    Raises:
        CheckpointError: the write failed (full disk, no permission); the temporary file is
            removed and whatever ``path`` held before is still there.
    """

    def write_then_notify(tmp: Path) -> None:
        write(tmp)
        if before_commit is not None:
            before_commit(tmp)

    try:
        files.write_atomic(path, write_then_notify)
    except (OSError, SafetensorError) as err:
        reason = getattr(err, "strerror", None) or str(err).splitlines()[0]
        raise CheckpointError(
            f"cannot write {path}: {reason}; free some space (or pass --out on another disk) "
            "and resume with --resume: the previous checkpoint is intact"
        ) from None


def write_json_atomic(path: Path, obj: Any, before_commit: Hook = None) -> None:
    """Write ``obj`` as JSON to ``path`` atomically (CheckpointError when the disk refuses)."""
    text = json.dumps(obj, indent=1) + "\n"
    _write_atomic(Path(path), lambda tmp: tmp.write_text(text), before_commit)


def write_safetensors_atomic(
    path: Path,
    tensors: dict[str, torch.Tensor],
    meta: Mapping[str, Any],
    before_commit: Hook = None,
) -> None:
    """Write tensors (moved to CPU, made contiguous) and cnnlab metadata to ``path`` atomically."""
    cpu = {k: v.detach().to("cpu").contiguous() for k, v in tensors.items()}
    _write_atomic(
        Path(path),
        lambda tmp: save_file(cpu, str(tmp), metadata={"cnnlab": json.dumps(dict(meta))}),
        before_commit,
    )


# --- reading safely -----------------------------------------------------------------------------


def read_header(path: Path) -> dict[str, Any]:
    """Validate a safetensors file's framing and return its cnnlab metadata, reading no tensors.

    Raises:
        CheckpointError: the file is missing, is a pickle or ``torch.save`` archive, is truncated,
            or carries no cnnlab metadata.
    """
    path = Path(path)
    if not path.is_file():
        raise CheckpointError(f"{path}: no such file: pass a run directory or a .safetensors file")
    size = path.stat().st_size
    with open(path, "rb") as f:
        head = f.read(9)
        # A safetensors file starts with its header's length (little-endian) and then "{"; a
        # length of 0x..80 bytes starts with the pickle opcode byte, so only a file without
        # that framing can be a pickle.
        framed = len(head) == 9 and head[8:] == b"{"
        head = head[:8]
        if not framed and (head[:1] == b"\x80" or head[:2] == b"PK"):
            raise CheckpointError(
                f"{path} is a pickle/torch.save file, which can run code when loaded; cnnlab "
                "only reads the safetensors files it writes: retrain with `cnnlab train`"
            )
        if len(head) < 8:
            raise CheckpointError(f"{path} is truncated ({size} bytes): use another checkpoint")
        (n,) = struct.unpack("<Q", head)
        if n > min(_MAX_HEADER_BYTES, size - 8):
            raise CheckpointError(
                f"{path} is not a safetensors file (or is truncated): header claims {n} bytes "
                f"in a {size}-byte file; use a file written by `cnnlab train`"
            )
        f.seek(8)
        raw = f.read(n)
    try:
        header = json.loads(raw)
    except (UnicodeDecodeError, json.JSONDecodeError):
        raise CheckpointError(
            f"{path} has a damaged safetensors header: use a file written by `cnnlab train`"
        ) from None
    if not isinstance(header, dict):
        raise CheckpointError(f"{path} has a malformed safetensors header: not written by cnnlab")
    end = 0
    for key, entry in header.items():
        if key == "__metadata__":
            continue
        try:
            end = max(end, int(entry["data_offsets"][1]))
        except (TypeError, KeyError, IndexError, ValueError):
            raise CheckpointError(f"{path}: malformed entry {key!r} in the header") from None
    if 8 + n + end != size:
        raise CheckpointError(
            f"{path} is truncated or padded ({size} bytes, header describes {8 + n + end}): "
            "use another checkpoint or retrain"
        )
    meta_raw = (header.get("__metadata__") or {}).get("cnnlab")
    if meta_raw is None:
        raise CheckpointError(
            f"{path} has no cnnlab metadata (not written by `cnnlab train`): cnnlab needs the "
            "model name, classes and input size it records"
        )
    try:
        meta = json.loads(meta_raw)
    except json.JSONDecodeError:
        raise CheckpointError(f"{path}: its cnnlab metadata is not valid JSON") from None
    if not isinstance(meta, dict):
        raise CheckpointError(f"{path}: its cnnlab metadata is not a JSON object")
    return meta


def read_tensors(path: Path, prefix: str = "") -> dict[str, torch.Tensor]:
    """All tensors of a validated safetensors file whose names start with ``prefix`` (stripped)."""
    try:
        with safe_open(str(path), framework="pt", device="cpu") as f:
            return {k[len(prefix) :]: f.get_tensor(k) for k in f.keys() if k.startswith(prefix)}  # noqa: SIM118
    except Exception as err:  # safetensors raises its own error types
        raise CheckpointError(f"{path}: cannot read tensors ({err}); use another file") from None
