"""Files cnnlab did not write, planted where it looks for a model: each must be refused unread.

The pickle-based ones carry a payload that creates a marker file if it is ever unpickled, so a
test can tell a refusal from a load that ran code.
"""

from __future__ import annotations

import pickle
import struct
from pathlib import Path

import torch
from safetensors.torch import save_file

KINDS = ("pickle", "pickle-in-dir", "torch.save", "truncated", "no-metadata", "garbage")


class Payload:
    """Unpickling this creates ``marker``."""

    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self) -> tuple:
        return (Path.touch, (self.marker,))


def plant(kind: str, run: Path, marker: Path) -> Path:
    """Write a foreign file of ``kind`` (one of :data:`KINDS`) into the directory ``run``.

    Returns:
        The planted file (``run/model.safetensors``, or ``run/model.pt`` for ``pickle-in-dir``).
    """
    run.mkdir(parents=True, exist_ok=True)
    target = run / "model.safetensors"
    if kind == "pickle":
        target.write_bytes(pickle.dumps(Payload(marker)))
    elif kind == "pickle-in-dir":
        target = run / "model.pt"
        target.write_bytes(pickle.dumps(Payload(marker)))
    elif kind == "torch.save":
        torch.save({"w": torch.zeros(2), "p": Payload(marker)}, target)
    elif kind == "truncated":
        save_file({"w": torch.zeros(100)}, str(target), metadata={"cnnlab": "{}"})
        target.write_bytes(target.read_bytes()[:-10])
    elif kind == "no-metadata":
        save_file({"w": torch.zeros(2)}, str(target))
    elif kind == "garbage":  # a header length of 1 TiB
        target.write_bytes(struct.pack("<Q", 2**40) + b"x" * 64)
    else:
        raise ValueError(f"unknown kind {kind!r}: one of {', '.join(KINDS)}")
    return target
