"""What the naive and the fast convolution layer share: argument checks and the cache.

Both :mod:`cnnlab.scratch.naive` and :mod:`cnnlab.scratch.fast` take the same arguments and return
the same :class:`ConvCache`, so a cache from either forward can be handed to either backward
(the tests do exactly that).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from cnnlab.errors import GeometryError, InputSizeError
from cnnlab.scratch.padding import Padding
from cnnlab.scratch.windows import WindowGeometry, window_geometry


@dataclass
class ConvCache:
    """What ``conv2d_backward`` needs from the forward pass.

    Attributes:
        x: the input, (N, C, H, W), unpadded.
        w: the weights, (K, C, kh, kw).
        has_bias: whether the forward pass added a bias (``db`` is ``None`` otherwise).
        geom: the window geometry (stride, padding, dilation, output size).
        col: the fast version's im2col matrix, (C*kh*kw, N*Ho*Wo), or ``None`` (the naive
            version, or a fast forward that was not asked to keep it); backward rebuilds it.
    """

    x: np.ndarray
    w: np.ndarray
    has_bias: bool
    geom: WindowGeometry
    col: np.ndarray | None = None


def check_conv_args(
    x: np.ndarray,
    w: np.ndarray,
    b: np.ndarray | None,
    stride: int | tuple[int, int],
    padding: Padding,
    dilation: int | tuple[int, int],
) -> WindowGeometry:
    """Check the shapes of a conv layer's operands and return its window geometry.

    Raises:
        InputSizeError: if ``x`` is not (N, C, H, W), ``w`` not (K, C, kh, kw) with the same C,
            or ``b`` not (K,).
        GeometryError: if the kernel does not fit, or a stride/padding/dilation is invalid.
    """
    if x.ndim != 4:
        raise InputSizeError(f"conv2d input has shape {x.shape}; pass (N, C, H, W)")
    if w.ndim != 4:
        raise InputSizeError(f"conv2d weight has shape {w.shape}; pass (K, C, kh, kw)")
    if w.shape[1] != x.shape[1]:
        raise InputSizeError(
            f"conv2d weight expects {w.shape[1]} input channels but the input has {x.shape[1]}; "
            "make weight.shape[1] equal input.shape[1]"
        )
    if b is not None and b.shape != (w.shape[0],):
        raise InputSizeError(f"conv2d bias has shape {b.shape}; pass ({w.shape[0]},) or None")
    if isinstance(padding, str) and padding not in ("valid", "same", "full"):
        raise GeometryError(f"padding={padding!r}; use 'valid', 'same', 'full', an int or a pair")
    return window_geometry(x.shape[2:], w.shape[2:], stride, padding, dilation)
