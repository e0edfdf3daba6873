"""Cross-correlation and convolution of images with one kernel, as the image-filtering slides
define them (lecture 001, slides 7-27).

Cross-correlation (what deep-learning "convolution" layers compute)::

    g[i, j] = sum_{u, v} f[i*s + u, j*s + v] * h[u, v]

Convolution is the same with the kernel flipped in both axes (``h[-u, -v]``), which is what
makes it commutative and associative. Both work on a 2-D grayscale array or per channel on an
(H, W, C) colour image, with four ways to fill the border.

One implementation: the border comes from the same :func:`~cnnlab.scratch.padding.pad2d` the conv
layer uses, and the sum is the conv layer itself (:func:`cnnlab.scratch.fast.conv2d_forward`, with
the channels of the image as the batch and one 1-channel filter).
"""

from __future__ import annotations

import numpy as np

from cnnlab.errors import InputSizeError
from cnnlab.scratch import fast
from cnnlab.scratch.padding import Padding, pad2d
from cnnlab.scratch.windows import window_geometry


def correlate2d(
    image: np.ndarray,
    kernel: np.ndarray,
    padding: Padding = "valid",
    mode: str = "zero",
    stride: int | tuple[int, int] = 1,
) -> np.ndarray:
    """Cross-correlate an image with a kernel (the kernel is not flipped).

    Args:
        image: grayscale (H, W) or colour (H, W, C); filtered channel by channel.
        kernel: (kh, kw).
        padding: ``"valid"`` (no border: output shrinks by kh-1, kw-1), ``"same"`` (output the
            size of the input at stride 1; an even kernel puts its extra row/column of border at
            the bottom/right), ``"full"`` (kh-1, kw-1 on every side), an int or (rows, cols).
        mode: how the border is filled: ``"zero"``, ``"reflect"`` (mirror, edge not repeated),
            ``"replicate"`` (edge repeated) or ``"circular"`` (wrap around).
        stride: step between output pixels, int or (sh, sw).

    Returns:
        Float array (float64 unless image and kernel are both float32), same layout as ``image``.

    Shape:
        - image: (H, W) or (H, W, C); kernel: (kh, kw)
        - out: (Ho, Wo) or (Ho, Wo, C), Ho = floor((H + top + bottom - kh) / sh) + 1, likewise Wo.
    """
    image, kernel = np.asarray(image), np.asarray(kernel)
    if kernel.ndim != 2:
        raise InputSizeError(f"kernel has shape {kernel.shape}; pass a 2-D (kh, kw) kernel")
    if image.ndim not in (2, 3):
        raise InputSizeError(
            f"image has shape {image.shape}; pass a 2-D (H, W) or an (H, W, C) image"
        )
    dtype = np.result_type(image.dtype, kernel.dtype, np.float32)
    if image.dtype == np.uint8 or not np.issubdtype(dtype, np.floating):
        dtype = np.float64
    # (H, W[, C]) -> (C, 1, H, W): channels become the batch of a 1-in, 1-out conv layer.
    planes = image[None] if image.ndim == 2 else np.moveaxis(image, -1, 0)
    x = planes[:, None].astype(dtype, copy=False)
    geom = window_geometry(image.shape[:2], kernel.shape, stride, padding)
    xp = pad2d(x, geom.pads, mode)
    out, _ = fast.conv2d_forward(xp, kernel[None, None].astype(dtype), None, stride=stride)
    out = out[:, 0]  # (C, Ho, Wo)
    return out[0] if image.ndim == 2 else np.moveaxis(out, 0, -1)


def convolve2d(
    image: np.ndarray,
    kernel: np.ndarray,
    padding: Padding = "valid",
    mode: str = "zero",
    stride: int | tuple[int, int] = 1,
) -> np.ndarray:
    """Convolve an image with a kernel: cross-correlation with the kernel flipped in both axes.

    Arguments, result and shapes as :func:`correlate2d`. With ``padding="full"`` and zero
    border this is the textbook convolution (``scipy.signal.convolve2d(mode="full")``), which is
    commutative and associative.
    """
    kernel = np.asarray(kernel)
    if kernel.ndim != 2:
        raise InputSizeError(f"kernel has shape {kernel.shape}; pass a 2-D (kh, kw) kernel")
    return correlate2d(image, kernel[::-1, ::-1], padding=padding, mode=mode, stride=stride)
