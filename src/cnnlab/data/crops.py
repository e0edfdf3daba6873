"""Crops of whole batches for photos: the random-resized crop and the centre crop.

The Inception-style training crop (Szegedy et al. 2014, Sec. 6; torchvision's
``RandomResizedCrop``): a box covering a random 8-100% of the image's area, with an aspect ratio
between 3/4 and 4/3 (drawn on a log scale), resized to the output size. Here it is one
``grid_sample`` over the batch, each sample with its own affine box, instead of a loop of PIL
crops; a horizontal flip is folded into the same box. Deviation: where the box would not fit,
torchvision retries ten times and then falls back to a centre crop; here the box's sides are
clipped to the image (one draw, no loop), which keeps the batch a single operation.

Randomness comes only from the ``torch.Generator`` passed in, so a resumed run replays the same
boxes.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F

__all__ = ["RATIO", "SCALE", "center_crop", "random_resized_crop"]

SCALE = (0.08, 1.0)  # fraction of the image's area the box covers (torchvision's default)
RATIO = (3 / 4, 4 / 3)  # box width / height


def center_crop(images: torch.Tensor, size: tuple[int, int]) -> torch.Tensor:
    """The centre ``size`` of each image (no resizing).

    Shape:
        (N, C, H, W) -> (N, C, *size), H >= size[0], W >= size[1].
    """
    h, w = images.shape[-2:]
    top, left = (h - size[0]) // 2, (w - size[1]) // 2
    return images[..., top : top + size[0], left : left + size[1]].contiguous()


def random_resized_crop(
    images: torch.Tensor,
    size: tuple[int, int],
    generator: torch.Generator,
    *,
    flip: bool = False,
    scale: tuple[float, float] = SCALE,
    ratio: tuple[float, float] = RATIO,
) -> torch.Tensor:
    """A random box of each image, bilinearly resized to ``size``; mirrored half the time if
    ``flip``.

    Args:
        images: uint8 or float batch.
        size: ``(H, W)`` of the output.
        generator: the only source of randomness (a CPU generator).
        flip: also mirror each sample left-right with probability 0.5.
        scale: range of the box's area as a fraction of the image's.
        ratio: range of the box's width/height.

    Returns:
        The crops, in the input's dtype (uint8 is rounded back).

    Shape:
        (N, C, H, W) -> (N, C, *size).
    """
    n, _, h, w = images.shape
    u = torch.rand(n, 5, generator=generator, dtype=torch.float64)
    area = (scale[0] + (scale[1] - scale[0]) * u[:, 0]) * (h * w)
    log_r = math.log(ratio[0]) + (math.log(ratio[1]) - math.log(ratio[0])) * u[:, 1]
    aspect = torch.exp(log_r)
    box_w = torch.sqrt(area * aspect).clamp(max=w)
    box_h = torch.sqrt(area / aspect).clamp(max=h)
    left = (w - box_w) * u[:, 2]
    top = (h - box_h) * u[:, 3]
    mirror = (u[:, 4] < 0.5) if flip else torch.zeros(n, dtype=torch.bool)
    # affine_grid maps output coordinates in [-1, 1] to input coordinates in [-1, 1]
    # (align_corners=False: -1 and 1 are the outer edges of the border pixels).
    theta = torch.zeros(n, 2, 3, dtype=torch.float64)
    theta[:, 0, 0] = (box_w / w) * torch.where(mirror, -1.0, 1.0)
    theta[:, 0, 2] = (2 * left + box_w) / w - 1
    theta[:, 1, 1] = box_h / h
    theta[:, 1, 2] = (2 * top + box_h) / h - 1
    x = images if images.is_floating_point() else images.to(torch.float32)
    grid = F.affine_grid(theta.to(x.dtype), [n, x.shape[1], *size], align_corners=False)
    out = F.grid_sample(
        x, grid.to(x.device), mode="bilinear", padding_mode="border", align_corners=False
    )
    if images.dtype == torch.uint8:
        return out.round_().clamp_(0, 255).to(torch.uint8)
    return out
