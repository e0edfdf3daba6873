"""Writes checkpoint pairs of real LeNet-5 state forever, until it is killed; a script.

Usage::

    python tests/reliability/checkpoint_writer.py CHECKPOINT_DIR LOG

Saves :func:`lenet_state` of step 1, 2, ... with :func:`cnnlab.train.checkpoint.save_checkpoint`
and appends each committed step to ``LOG`` (one write per line, so a SIGKILL loses nothing
logged). The write-kill trials of ``harness.py`` kill it at a random moment and check what a
reader then finds.
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

import torch


def lenet_state(step: int) -> tuple[dict[str, torch.Tensor], dict[str, Any]]:
    """Deterministic checkpoint content for ``step``: LeNet-5 weights + step, optimizer buffers."""
    from cnnlab.registry import create_model

    torch.manual_seed(0)
    model = create_model("lenet5", num_classes=10)
    tensors = {f"model.{k}": v + step for k, v in model.state_dict().items()}
    tensors |= {f"optim.{i}.momentum_buffer": v * step for i, v in enumerate(model.parameters())}
    meta = {
        "model": "lenet5",
        "model_kwargs": {},
        "num_classes": 10,
        "in_channels": 1,
        "input_size": [1, 28, 28],
        "classes": [str(i) for i in range(10)],
        "mean": [0.5],
        "std": [0.25],
        "dataset": "fashion-mnist",
    }
    return tensors, meta


def main(directory: Path, log_path: Path) -> None:
    from cnnlab.train import checkpoint as ckpt

    torch.set_num_threads(1)
    with open(log_path, "a", buffering=1) as log:
        step = 1
        while True:
            tensors, meta = lenet_state(step)
            ckpt.save_checkpoint(directory, step, tensors, {"note": "x" * 2000}, meta)
            log.write(f"{step}\n")
            step += 1


if __name__ == "__main__":
    main(Path(sys.argv[1]), Path(sys.argv[2]))
