"""From a stored uint8 batch to what a trained model takes: the one preparation function.

Training, evaluation, ``cnnlab predict``, the report and ``cnnlab.seeing`` all call
:func:`make_prepare` with the run's recorded input size and normalisation, so a trained model
always sees its inputs prepared the same way.
"""

from __future__ import annotations

from collections.abc import Callable

import torch


def make_prepare(
    size: tuple[int, int],
    mean: tuple[float, ...],
    std: tuple[float, ...],
    device: torch.device,
    channels_last: bool = False,
) -> Callable[[torch.Tensor], torch.Tensor]:
    """A function from a uint8 batch ``(N, C, H, W)`` to the model's float input on ``device``.

    Steps: move to the device, normalise with the training split's per-channel mean and std
    (pixels scaled to [0, 1] first), resize to ``size`` when the batch is another size.

    Shape:
        uint8 ``(N, C, H, W)`` on the CPU -> float32 ``(N, C, *size)`` on ``device``.
    """
    from cnnlab.data import augment

    memory = torch.channels_last if channels_last else torch.contiguous_format

    def prepare(batch: torch.Tensor) -> torch.Tensor:
        x = augment.normalize(batch.to(device, non_blocking=True), mean, std)
        if tuple(x.shape[-2:]) != tuple(size):
            x = augment.resize(x, size)
        return x.contiguous(memory_format=memory)

    return prepare
