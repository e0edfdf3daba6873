"""The output size of a sliding window (convolution or pooling), along one axis.

The lecture's formula, with a dilated filter and PyTorch's rounding::

    F    = d * (K - 1) + 1                              the dilated filter's extent
    W'   = (W + P_before + P_after - F) / S + 1         exact; a whole number when it fits
    out  = floor(W')                                    PyTorch's default
    out  = ceil(W'), less one if that last window would start in the right padding
                                                        (ceil_mode; PyTorch's pooling rule)

With ``d = 1`` and symmetric padding ``P`` this is the slides' ``(W - F + 2P) / S + 1``.

Pure Python on purpose: the NumPy layers (:mod:`cnnlab.scratch`) and the analyzer
(:mod:`cnnlab.analysis.arith`) both use it, and the NumPy side must not import torch.
"""

from __future__ import annotations

from fractions import Fraction

from cnnlab.errors import GeometryError

__all__ = ["check_window", "exact_output_size", "output_size", "window_extent"]


def window_extent(kernel: int, dilation: int = 1) -> int:
    """Input pixels a dilated filter spans: ``d * (K - 1) + 1`` (a 3-tap filter at d=2 spans 5)."""
    return dilation * (kernel - 1) + 1


def exact_output_size(
    size: int,
    kernel: int,
    stride: int = 1,
    pad_before: int = 0,
    pad_after: int = 0,
    dilation: int = 1,
) -> Fraction:
    """``(W + P_before + P_after - F) / S + 1`` before rounding, as an exact fraction.

    Example: ``exact_output_size(7, 3, 3) == Fraction(7, 3)`` (the slides' "2.33": a 3x3 filter
    at stride 3 does not tile a 7x7 input).
    """
    span = size + pad_before + pad_after - window_extent(kernel, dilation)
    return Fraction(span, stride) + 1


def output_size(
    size: int,
    kernel: int,
    stride: int = 1,
    pad_before: int = 0,
    pad_after: int = 0,
    dilation: int = 1,
    ceil_mode: bool = False,
) -> int:
    """The output length PyTorch produces: :func:`exact_output_size` floored, or ceiled with
    ``ceil_mode``.

    In ceil mode the last window may hang over the right edge, but PyTorch drops it when it
    would start in the right padding (it must start inside the input or the left padding).
    Nothing is checked here; :func:`check_window` says whether the window fits at all.
    """
    span = size + pad_before + pad_after - window_extent(kernel, dilation)
    if not ceil_mode:
        return span // stride + 1
    out = -(-span // stride) + 1
    if (out - 1) * stride >= size + pad_before:
        out -= 1
    return out


def check_window(
    size: int,
    kernel: int,
    stride: int = 1,
    pad_before: int = 0,
    pad_after: int = 0,
    dilation: int = 1,
) -> None:
    """Raise unless the window has positive sizes and fits the padded input at least once.

    Raises:
        GeometryError: stride, kernel or dilation below 1, or a (dilated) kernel larger than the
            padded input.
    """
    if stride < 1 or kernel < 1 or dilation < 1:
        raise GeometryError(
            f"stride={stride}, kernel={kernel}, dilation={dilation}: each must be >= 1"
        )
    if size + pad_before + pad_after - window_extent(kernel, dilation) < 0:
        raise GeometryError(
            f"a {kernel}-tap kernel (dilation {dilation}) does not fit an input of {size} "
            f"padded by {pad_before}+{pad_after}; use a smaller kernel or more padding"
        )
