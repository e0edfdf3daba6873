"""``tinynet``: a tiny registered CNN that keeps end-to-end training tests to a few seconds.

Importing this module registers it (once per process, however often it is imported) together
with the paper recipe of its family ``test``, which every registered family needs.

Two test knobs, neither of which changes a number the network computes:

* ``TINYNET_STEP_DELAY`` (environment, seconds): each training forward sleeps this long, so a
  test can kill a run at a chosen moment on a machine of any speed.
* ``nan_after`` (builder argument): after that many training forwards the logits become NaN.
"""

from __future__ import annotations

import os
import time

import torch
from torch import nn

from cnnlab.registry import list_models, register_model
from cnnlab.run.recipes import add_paper_recipe

NAME = "tinynet"
FAMILY = "test"
# What the family silently got before every family needed a recipe: LeNet's, whose only
# non-base setting that matters to 28x28 digits and clothes is no augmentation.
PAPER_RECIPE = {"augment": "none"}
STEP_DELAY = float(os.environ.get("TINYNET_STEP_DELAY", "0"))


class NaNAfter(nn.Module):
    """Identity until ``steps`` training forwards have run, then NaN (0: never)."""

    def __init__(self, steps: int) -> None:
        super().__init__()
        self.steps, self.calls = steps, 0

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        self.calls += self.training
        if self.training and STEP_DELAY:
            time.sleep(STEP_DELAY)
        return x * float("nan") if self.steps and self.calls > self.steps else x


def tinynet(
    *, num_classes: int, in_channels: int, dropout: float = 0.1, nan_after: int = 0
) -> nn.Module:
    """A tiny CNN for tests: conv-BN-ReLU-pool, conv-ReLU, global pool, dropout, linear."""
    return nn.Sequential(
        nn.Conv2d(in_channels, 8, 3, padding=1),  # (N, 8, H, W)
        nn.BatchNorm2d(8),
        nn.ReLU(),
        nn.MaxPool2d(2),  # (N, 8, H/2, W/2)
        nn.Conv2d(8, 16, 3, padding=1),  # (N, 16, H/2, W/2)
        nn.ReLU(),
        nn.AdaptiveAvgPool2d(1),
        nn.Flatten(),  # (N, 16)
        nn.Dropout(dropout),
        nn.Linear(16, num_classes),
        NaNAfter(nan_after),
    )


if NAME not in list_models(NAME):
    register_model(
        family=FAMILY,
        paper="cnnlab tests",
        input_size=(1, 28, 28),
        min_input_size=(8, 8),
        num_params=1_434,
        num_classes=10,
    )(tinynet)
    add_paper_recipe(FAMILY, PAPER_RECIPE)
