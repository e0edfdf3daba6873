"""Arguments of the small ``cnnlab train tinynet`` runs the training and CLI tests share."""

from __future__ import annotations

from pathlib import Path

import torch
from safetensors.torch import load_file

# 512 training images in batches of 64: 8 steps an epoch, a few seconds on one CPU thread.
# tinynet is still at chance after so few steps, so these runs, which test other things, turn
# the stall guard off (tests/test_train_run.py tests the guard itself).
SMALL = [
    "--stall-patience",
    "0",
    "--limit-train",
    "512",
    "--val-size",
    "256",
    "--limit-test",
    "300",
    "--epochs",
    "1",
    "--batch-size",
    "64",
    "--no-progress",
    "--device",
    "cpu",
    "--threads",
    "1",
]
SMALL_STEPS_PER_EPOCH = 512 // 64
TIMINGS = frozenset({"seconds", "images_per_s"})  # the metrics that differ between equal runs


def weights(run: Path) -> dict[str, torch.Tensor]:
    """The final ``model.safetensors`` of a run directory."""
    return load_file(str(Path(run) / "model.safetensors"))


def bitwise_differences(a: dict[str, torch.Tensor], b: dict[str, torch.Tensor]) -> list[str]:
    """Names of the tensors whose bytes differ (or that only one side has); empty when equal."""
    if a.keys() != b.keys():
        return sorted(set(a) ^ set(b))
    return [
        name
        for name in a
        if a[name].dtype != b[name].dtype
        or a[name].shape != b[name].shape
        or not a[name].reshape(-1).view(torch.uint8).equal(b[name].reshape(-1).view(torch.uint8))
    ]
