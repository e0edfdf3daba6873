"""Sliding-window geometry shared by convolution and pooling.

A 2-D sliding-window operation (convolution, cross-correlation, max or average pooling) is fixed
by its kernel size, stride, padding and dilation. :func:`window_geometry` checks those once and
computes the output size; the :class:`WindowGeometry` it returns then hands out the two kinds of
slice every implementation needs:

* :meth:`WindowGeometry.window` - the input patch under output pixel ``(i, j)`` (what the
  formula ``out[i, j] = sum_{u,v} x[i*s + u*d, j*s + v*d] * w[u, v]`` reads; the naive loops use
  it);
* :meth:`WindowGeometry.tap` - for kernel tap ``(u, v)``, the strided grid of input pixels that
  tap touches across *all* output positions (the fast im2col / col2im and pooling use it: a loop
  over the ``kh * kw`` taps with one strided copy or add each, instead of a loop over pixels).
"""

from __future__ import annotations

from dataclasses import dataclass

from cnnlab.errors import GeometryError
from cnnlab.scratch.padding import Padding, output_size, pair, resolve_padding


@dataclass(frozen=True)
class WindowGeometry:
    """Where every window of a 2-D sliding-window operation lies in the padded input.

    Attributes:
        in_size: input (H, W) before padding.
        kernel: (kh, kw).
        stride: (sh, sw).
        dilation: (dh, dw), spacing between kernel taps (1 = dense).
        pads: (top, bottom, left, right) padding in pixels.
        out_size: (Ho, Wo) = floor((H + top + bottom - dh*(kh-1) - 1) / sh) + 1, and likewise W.
    """

    in_size: tuple[int, int]
    kernel: tuple[int, int]
    stride: tuple[int, int]
    dilation: tuple[int, int]
    pads: tuple[int, int, int, int]
    out_size: tuple[int, int]

    def window(self, i: int, j: int) -> tuple[slice, slice]:
        """Rows and columns of the padded input under output pixel (i, j): a (kh, kw) patch."""
        (sh, sw), (dh, dw), (kh, kw) = self.stride, self.dilation, self.kernel
        return (
            slice(i * sh, i * sh + dh * (kh - 1) + 1, dh),
            slice(j * sw, j * sw + dw * (kw - 1) + 1, dw),
        )

    def tap(self, u: int, v: int) -> tuple[slice, slice]:
        """Rows and columns of the padded input that kernel tap (u, v) reads: an (Ho, Wo) grid."""
        (sh, sw), (dh, dw), (ho, wo) = self.stride, self.dilation, self.out_size
        return (
            slice(u * dh, u * dh + sh * (ho - 1) + 1, sh),
            slice(v * dw, v * dw + sw * (wo - 1) + 1, sw),
        )

    @property
    def padded_size(self) -> tuple[int, int]:
        """(H + top + bottom, W + left + right)."""
        t, b, l, r = self.pads
        return (self.in_size[0] + t + b, self.in_size[1] + l + r)

    def interior(self) -> tuple[slice, slice]:
        """Rows and columns of the padded input that hold the original input."""
        t, _, l, _ = self.pads
        return (slice(t, t + self.in_size[0]), slice(l, l + self.in_size[1]))


def window_geometry(
    in_size: tuple[int, int],
    kernel: int | tuple[int, int],
    stride: int | tuple[int, int] = 1,
    padding: Padding = 0,
    dilation: int | tuple[int, int] = 1,
) -> WindowGeometry:
    """Check a window configuration and compute its output size.

    Args:
        in_size: input (H, W).
        kernel: kernel size, int or (kh, kw).
        stride: int or (sh, sw), each >= 1.
        padding: see :func:`cnnlab.scratch.padding.resolve_padding` (int, pair, 'valid',
            'same', 'full').
        dilation: int or (dh, dw), each >= 1.

    Raises:
        GeometryError: if a value is invalid or the kernel does not fit the padded input.
    """
    k, s, d = pair(kernel, "kernel"), pair(stride, "stride"), pair(dilation, "dilation")
    if min(k) < 1 or min(s) < 1 or min(d) < 1:
        raise GeometryError(
            f"kernel={kernel!r}, stride={stride!r}, dilation={dilation!r}: each must be >= 1"
        )
    pads = resolve_padding(padding, k, d)
    out = (
        output_size(in_size[0], k[0], s[0], pads[0], pads[1], d[0]),
        output_size(in_size[1], k[1], s[1], pads[2], pads[3], d[1]),
    )
    return WindowGeometry(
        in_size=(int(in_size[0]), int(in_size[1])),
        kernel=k,
        stride=s,
        dilation=d,
        pads=pads,
        out_size=out,
    )
