"""One training step and what it is made of: the optimizer, the learning rate, the loss.

These are plain functions of their arguments, so a benchmark, an experiment or a notebook can
run exactly the step ``cnnlab train`` runs without a run directory::

    optimizer = make_optimizer(config, model)
    result = train_step(model, optimizer, x, y, config)   # x: float input, y: int64 labels
"""

from __future__ import annotations

import math
from contextlib import AbstractContextManager, nullcontext
from dataclasses import dataclass

import torch
from torch import nn
from torch.nn import functional as F

from cnnlab.errors import TrainingError
from cnnlab.run.config import TrainConfig


class NonFiniteLossError(TrainingError):
    """The loss of a step was NaN or infinite; raised before the weights are touched."""

    def __init__(self, value: float) -> None:
        super().__init__(f"the loss became {value}")
        self.value = value


@dataclass(frozen=True)
class StepResult:
    """What one step measured on its batch.

    Attributes:
        loss: the mean training loss of the batch (what was back-propagated).
        correct: images whose top-1 prediction was right.
        count: images in the batch.
        aux_heads: auxiliary classifiers whose losses were added (GoogLeNet's two in training).
    """

    loss: float
    correct: int
    count: int
    aux_heads: int = 0


def make_optimizer(config: TrainConfig, model: nn.Module) -> torch.optim.Optimizer:
    """SGD (the lectures' optimizer) or AdamW, with the config's weight decay on every weight."""
    if config.optimizer == "sgd":
        return torch.optim.SGD(
            model.parameters(),
            lr=config.lr,
            momentum=config.momentum,
            nesterov=config.nesterov and config.momentum > 0,
            weight_decay=config.weight_decay,
        )
    return torch.optim.AdamW(
        model.parameters(),
        lr=config.lr,
        betas=(config.momentum, 0.999),
        weight_decay=config.weight_decay,
    )


def set_lr(optimizer: torch.optim.Optimizer, lr: float) -> None:
    for group in optimizer.param_groups:
        group["lr"] = lr


def loss_and_logits(
    output: torch.Tensor | tuple[torch.Tensor, ...],
    labels: torch.Tensor,
    config: TrainConfig,
) -> tuple[torch.Tensor, torch.Tensor]:
    """Cross-entropy of the main output plus weighted auxiliary losses (GoogLeNet in training).

    A model with auxiliary classifiers returns a tuple ``(logits, aux2, aux1)`` in train mode;
    Szegedy et al. 2014 (Sec. 5) add each auxiliary loss with weight 0.3.
    """
    smoothing = config.label_smoothing
    if isinstance(output, torch.Tensor):
        return F.cross_entropy(output, labels, label_smoothing=smoothing), output
    logits, *aux = output
    loss = F.cross_entropy(logits, labels, label_smoothing=smoothing)
    for a in aux:
        if a is not None:
            loss = loss + config.aux_loss_weight * F.cross_entropy(
                a, labels, label_smoothing=smoothing
            )
    return loss, logits


def autocast_for(config: TrainConfig, device: torch.device) -> AbstractContextManager:
    """bf16 autocast for ``--precision bf16``, else nothing. Enter it once per step."""
    if config.precision == "bf16":
        return torch.autocast(device.type, dtype=torch.bfloat16)
    return nullcontext()


def train_step(
    model: nn.Module,
    optimizer: torch.optim.Optimizer,
    images: torch.Tensor,
    labels: torch.Tensor,
    config: TrainConfig,
    autocast: AbstractContextManager | None = None,
) -> StepResult:
    """Forward, loss, backward and one optimizer update on one prepared batch.

    Args:
        model: the network in train mode (a DDP wrapper all-reduces the gradients).
        optimizer: its optimizer, learning rate already set for this step.
        images: the model's input, ``(N, C, H, W)`` float on its device.
        labels: ``(N,)`` int64 on the same device.
        config: the loss settings (label smoothing, auxiliary loss weight), precision and
            gradient clipping (``grad_clip``: the global norm, 0 or ``None`` for none).
        autocast: the precision context (default: :func:`autocast_for`).

    Raises:
        NonFiniteLossError: the loss is NaN or infinite; nothing was updated.
    """
    with autocast_for(config, images.device) if autocast is None else autocast:
        output = model(images)
        loss, logits = loss_and_logits(output, labels, config)
    aux = 0 if isinstance(output, torch.Tensor) else sum(a is not None for a in output[1:])
    value = loss.item()
    if not math.isfinite(value):
        raise NonFiniteLossError(value)
    optimizer.zero_grad(set_to_none=True)
    loss.backward()
    if config.grad_clip:  # after backward: under DDP the gradients are already all-reduced
        torch.nn.utils.clip_grad_norm_(model.parameters(), config.grad_clip)
    optimizer.step()
    return StepResult(value, int((logits.argmax(1) == labels).sum().item()), len(labels), aux)
