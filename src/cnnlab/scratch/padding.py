"""Geometry shared by every sliding-window operation: output sizes and padding.

The conv layer, the pooling layers and the image filters all call :func:`output_size` and
:func:`pad2d`, so the border rules live in exactly one place here, and the arithmetic of the
lecture slide ("output size = (W - F + 2P) / S + 1") in :mod:`cnnlab.geometry`, which the
analyzer uses too.

Output size, per spatial axis, as PyTorch computes it (floor division)::

    out = floor((n + pad_before + pad_after - dilation * (k - 1) - 1) / stride) + 1

With ``dilation = 1`` and symmetric padding ``P`` this is the slides' ``(W - F + 2P) / S + 1``.
"""

from __future__ import annotations

from typing import Literal

import numpy as np

from cnnlab import geometry
from cnnlab.choices import PAD_MODES  # the border modes, owned where --help can read them
from cnnlab.errors import GeometryError

PadMode = Literal["zero", "reflect", "replicate", "circular"]

# Our border names (PyTorch's `padding_mode` words) mapped to numpy.pad's.
_NUMPY_MODE = {"zero": "constant", "reflect": "reflect", "replicate": "edge", "circular": "wrap"}

Padding = int | tuple[int, int] | str


def pair(value: int | tuple[int, int], name: str) -> tuple[int, int]:
    """Return ``(v, v)`` for an int and the pair itself for a pair; check both are ints >= 0.

    Raises:
        GeometryError: for a negative, non-integer or malformed value.
    """
    if isinstance(value, (int, np.integer)) and not isinstance(value, bool):
        out = (int(value), int(value))
    elif (
        isinstance(value, (tuple, list))
        and len(value) == 2
        and all(isinstance(v, (int, np.integer)) and not isinstance(v, bool) for v in value)
    ):
        out = (int(value[0]), int(value[1]))
    else:
        raise GeometryError(f"{name}={value!r} is not an int or a pair of ints; pass e.g. {name}=1")
    if min(out) < 0:
        raise GeometryError(f"{name}={value!r} is negative; pass a value >= 0")
    return out


def resolve_padding(
    padding: Padding, kernel: tuple[int, int], dilation: tuple[int, int] = (1, 1)
) -> tuple[int, int, int, int]:
    """Turn a padding spec into explicit ``(top, bottom, left, right)`` pixel counts.

    Args:
        padding: ``"valid"`` (none), ``"same"`` (output as large as the input at stride 1; for an
            even kernel the extra row/column goes to the bottom/right, as in PyTorch),
            ``"full"`` (every position where kernel and input overlap: ``k - 1`` each side),
            an int (the same on all four sides) or a pair ``(rows, cols)``.
        kernel: kernel height and width.
        dilation: spacing between kernel taps; the effective extent is ``d * (k - 1) + 1``.
    """
    extent = [
        d * (k - 1) for k, d in zip(kernel, dilation, strict=True)
    ]  # effective extent minus one
    if isinstance(padding, str):
        if padding == "valid":
            return (0, 0, 0, 0)
        if padding == "same":
            (t, l) = (extent[0] // 2, extent[1] // 2)
            return (t, extent[0] - t, l, extent[1] - l)
        if padding == "full":
            return (extent[0], extent[0], extent[1], extent[1])
        raise GeometryError(
            f"padding={padding!r} is not known; use 'valid', 'same', 'full', an int or a pair"
        )
    ph, pw = pair(padding, "padding")
    return (ph, ph, pw, pw)


def output_size(
    size: int,
    kernel: int,
    stride: int = 1,
    pad_before: int = 0,
    pad_after: int = 0,
    dilation: int = 1,
) -> int:
    """Output length along one axis: ``floor((n + p0 + p1 - d*(k-1) - 1) / s) + 1``.

    Raises:
        GeometryError: if the (dilated) kernel is larger than the padded input, or stride < 1.
    """
    geometry.check_window(size, kernel, stride, pad_before, pad_after, dilation)
    return geometry.output_size(size, kernel, stride, pad_before, pad_after, dilation)


def pad2d(
    x: np.ndarray, pads: tuple[int, int, int, int], mode: str = "zero", value: float = 0.0
) -> np.ndarray:
    """Pad the last two axes of ``x`` by ``(top, bottom, left, right)`` pixels.

    Args:
        x: array whose last two axes are (height, width); any leading axes are left alone.
        pads: pixel counts ``(top, bottom, left, right)``.
        mode: ``"zero"`` (the constant ``value``, 0 unless a caller such as max pooling needs
            ``-inf``), ``"reflect"`` (mirror without repeating the edge: ``d c b | a b c d``),
            ``"replicate"`` (repeat the edge pixel) or ``"circular"`` (wrap around).
        value: the constant for ``"zero"`` mode.

    Returns:
        The padded array (``x`` itself when all pads are zero).

    Shape:
        ``(..., H, W) -> (..., H + top + bottom, W + left + right)``
    """
    if mode not in _NUMPY_MODE:
        raise GeometryError(
            f"padding mode {mode!r} is not known; use one of {', '.join(PAD_MODES)}"
        )
    t, b, l, r = pads
    if not (t or b or l or r):
        return x
    if mode == "reflect" and (max(t, b) >= x.shape[-2] or max(l, r) >= x.shape[-1]):
        # numpy would reflect repeatedly; PyTorch refuses. Refusing keeps the two the same.
        raise GeometryError(
            f"reflect padding of {max(t, b, l, r)} needs an input larger than that "
            f"(got {x.shape[-2]}x{x.shape[-1]}); use 'replicate' or a smaller kernel"
        )
    widths = [(0, 0)] * (x.ndim - 2) + [(t, b), (l, r)]
    if mode == "zero":
        return np.pad(x, widths, mode="constant", constant_values=value)
    return np.pad(x, widths, mode=_NUMPY_MODE[mode])
