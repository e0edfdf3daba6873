"""The convolution layer as one matrix product (im2col), forward and backward.

Same arguments, results and cache as :mod:`cnnlab.scratch.naive`; tested equal to it and to
``torch.nn.functional.conv2d`` in float64.

How it is fast:

* **im2col by kernel taps.** For each of the ``kh * kw`` taps ``(u, v)`` the pixels that tap
  reads across all output positions form one strided grid of the padded input
  (:meth:`WindowGeometry.tap`); copying that grid into row block ``(c, u, v)`` of the column matrix
  is one vectorised copy, so building ``col`` (C*kh*kw, N*Ho*Wo) costs ``kh * kw`` copies and no
  Python loop over pixels.
* **One GEMM per product.** ``col`` is laid out (C*kh*kw, N*Ho*Wo) so that the forward pass is
  a single ``w (K, C*kh*kw) @ col`` and backward is ``dw = dout @ col.T`` and
  ``dcol = w.T @ dout``, each one large BLAS call. (A batched ``np.matmul`` over N with a
  broadcast weight looked natural but measured 4x to 20x slower: numpy does not hand broadcast
  batches to BLAS.) The price is one transpose of the output between (K, N, ...) and NCHW.
* **col2im by kernel taps.** The input gradient adds each tap's block of ``dcol`` back onto its
  strided grid: ``kh * kw`` strided adds, instead of an ``np.add.at`` scatter over every
  (pixel, tap) pair (measured 45x slower on an 8x64x32x32 input, same result).
* **Workspaces.** An optional :class:`Workspace` keeps the padded input, ``col`` and ``dcol``
  buffers between calls of the same shape, so a training loop or benchmark does not allocate
  (and page-fault) hundreds of megabytes per step.
"""

from __future__ import annotations

import numpy as np

from cnnlab.scratch.conv_common import ConvCache, check_conv_args
from cnnlab.scratch.padding import Padding, pad2d
from cnnlab.scratch.windows import WindowGeometry


class Workspace:
    """Reusable scratch buffers for one conv layer (one per layer: buffers are overwritten).

    A :class:`ConvCache` made with a workspace refers to its ``col`` buffer, so it stays valid
    only until the next forward call with the same workspace: forward, backward, forward, ...
    as a training loop does. Without a workspace every call allocates fresh arrays.
    """

    def __init__(self) -> None:
        self._buffers: dict[str, np.ndarray] = {}

    def get(
        self, name: str, shape: tuple[int, ...], dtype: np.dtype, zero: bool = False
    ) -> np.ndarray:
        """Return the buffer ``name`` with this shape and dtype, allocating it on first use.

        A new buffer is zero-filled; an existing one keeps its old contents unless ``zero``.
        """
        buf = self._buffers.get(name)
        if buf is None or buf.shape != tuple(shape) or buf.dtype != dtype:
            buf = np.zeros(shape, dtype=dtype)
            self._buffers[name] = buf
        elif zero:
            buf.fill(0)
        return buf


def _padded(x: np.ndarray, geom: WindowGeometry, ws: Workspace | None) -> np.ndarray:
    """The zero-padded input; with a workspace the border is zeroed once and only the interior
    is rewritten on later calls."""
    if ws is None or not any(geom.pads):
        return pad2d(x, geom.pads)
    # Keyed by the pads: a border written under one padding is never read under another.
    xp = ws.get(f"xp{geom.pads}", (*x.shape[:2], *geom.padded_size), x.dtype)
    rows, cols = geom.interior()
    xp[:, :, rows, cols] = x
    return xp


def im2col(
    x: np.ndarray, geom: WindowGeometry, out: np.ndarray | None = None, *, padded: bool = False
) -> np.ndarray:
    """Unfold every (C, kh, kw) window of ``x`` into a column.

    Args:
        x: input; already padded when ``padded`` is true.
        geom: the window geometry.
        out: optional buffer to write into, (C*kh*kw, N*Ho*Wo) or the same size.
        padded: whether ``x`` already carries ``geom.pads``.

    Returns:
        ``col`` with ``col[(c, u, v), (n, i, j)] = xp[n, c, i*sh + u*dh, j*sw + v*dw]``.

    Shape:
        (N, C, H, W) -> (C*kh*kw, N*Ho*Wo)
    """
    xp = x if padded else pad2d(x, geom.pads)
    n, c = xp.shape[:2]
    (kh, kw), (ho, wo) = geom.kernel, geom.out_size
    col = np.empty((c, kh, kw, n, ho, wo), dtype=xp.dtype) if out is None else out
    col = col.reshape(c, kh, kw, n, ho, wo)
    xp_cn = xp.transpose(1, 0, 2, 3)  # (C, N, Hp, Wp) view, to match col's (c, ..., n) order
    for u in range(kh):
        for v in range(kw):
            rows, cols = geom.tap(u, v)
            col[:, u, v] = xp_cn[:, :, rows, cols]  # (C, N, Ho, Wo): one strided copy per tap
    return col.reshape(c * kh * kw, n * ho * wo)


def col2im(dcol: np.ndarray, geom: WindowGeometry, channels: int) -> np.ndarray:
    """Adjoint of :func:`im2col`: add every column back onto the pixels it came from.

    Returns the gradient with respect to the *unpadded* input.

    Shape:
        (C*kh*kw, N*Ho*Wo) -> (N, C, H, W)
    """
    (kh, kw), (ho, wo) = geom.kernel, geom.out_size
    dcol6 = dcol.reshape(channels, kh, kw, -1, ho, wo)  # (C, kh, kw, N, Ho, Wo)
    n = dcol6.shape[3]
    dxp = np.zeros((n, channels, *geom.padded_size), dtype=dcol.dtype)
    dxp_cn = dxp.transpose(1, 0, 2, 3)  # (C, N, Hp, Wp) view
    for u in range(kh):
        for v in range(kw):
            rows, cols = geom.tap(u, v)
            dxp_cn[:, :, rows, cols] += dcol6[:, u, v]  # windows overlap: add, never assign
    rows, cols = geom.interior()
    return dxp[:, :, rows, cols] if any(geom.pads) else dxp


def conv2d_forward(
    x: np.ndarray,
    w: np.ndarray,
    b: np.ndarray | None,
    *,
    stride: int | tuple[int, int] = 1,
    padding: Padding = 0,
    dilation: int | tuple[int, int] = 1,
    workspace: Workspace | None = None,
) -> tuple[np.ndarray, ConvCache]:
    """2-D convolution layer (cross-correlation, as in deep learning) by im2col + GEMM.

    Args:
        x: input images.
        w: filters.
        b: one bias per filter, or ``None``.
        stride: step between windows, int or (sh, sw).
        padding: zeros around the input: int, (rows, cols), 'valid', 'same' or 'full'.
        dilation: spacing between kernel taps, int or (dh, dw).
        workspace: optional buffers to reuse between calls (see :class:`Workspace`).

    Returns:
        ``(out, cache)``; ``out`` has the dtype of ``x`` and ``w`` combined.

    Shape:
        - x: (N, C, H, W)
        - w: (K, C, kh, kw); b: (K,)
        - out: (N, K, Ho, Wo) with Ho = floor((H + 2*ph - dh*(kh-1) - 1) / sh) + 1, likewise Wo.
    """
    geom = check_conv_args(x, w, b, stride, padding, dilation)
    dtype = np.result_type(x, w)
    x, w = x.astype(dtype, copy=False), w.astype(dtype, copy=False)
    n, c = x.shape[:2]
    k, (kh, kw), (ho, wo) = w.shape[0], geom.kernel, geom.out_size
    buf = None if workspace is None else workspace.get("col", (c * kh * kw, n * ho * wo), dtype)
    col = im2col(_padded(x, geom, workspace), geom, buf, padded=True)  # (C*kh*kw, N*Ho*Wo)
    out_kn = w.reshape(k, c * kh * kw) @ col  # (K, N*Ho*Wo): the one GEMM
    out = np.ascontiguousarray(out_kn.reshape(k, n, ho, wo).transpose(1, 0, 2, 3))
    if b is not None:
        out += b.astype(dtype, copy=False).reshape(1, k, 1, 1)
    return out, ConvCache(x=x, w=w, has_bias=b is not None, geom=geom, col=col)


def conv2d_backward(
    dout: np.ndarray, cache: ConvCache, *, workspace: Workspace | None = None
) -> tuple[np.ndarray, np.ndarray, np.ndarray | None]:
    """Gradients of the conv layer by two GEMMs and a tap-wise col2im.

    Args:
        dout: gradient of the loss with respect to the layer output.
        cache: from ``conv2d_forward`` (fast or naive; a naive cache has no ``col`` and it is
            rebuilt here).
        workspace: optional buffers to reuse for ``dcol``.

    Returns:
        ``(dx, dw, db)``; ``db`` is ``None`` when the forward pass had no bias.

    Shape:
        - dout: (N, K, Ho, Wo)
        - dx: (N, C, H, W); dw: (K, C, kh, kw); db: (K,)
    """
    x, w, geom = cache.x, cache.w, cache.geom
    c, k = x.shape[1], w.shape[0]
    dtype = np.result_type(dout, x, w)
    col = cache.col if cache.col is not None else im2col(x, geom)  # (CKK, N*L)
    # (N, K, Ho, Wo) -> (K, N*Ho*Wo), the layout of the forward GEMM's output.
    dout_kn = np.ascontiguousarray(dout.astype(dtype, copy=False).transpose(1, 0, 2, 3))
    dout_kn = dout_kn.reshape(k, -1)
    # dw[k, ckk] = sum over (n, l) of dout[k, (n, l)] * col[ckk, (n, l)]. Computed as
    # (col @ dout.T).T: OpenBLAS runs this long-reduction product about 8x faster in this
    # orientation than as dout @ col.T (measured on the 64x576x65536 benchmark layer).
    dw = (col @ dout_kn.T).T.reshape(w.shape)
    dcol_buf = None if workspace is None else workspace.get("dcol", col.shape, dtype)
    dcol = np.matmul(w.reshape(k, -1).T, dout_kn, out=dcol_buf)  # (CKK, K) @ (K, N*L)
    dx = col2im(dcol, geom, c)
    db = dout_kn.sum(axis=1) if cache.has_bias else None
    return dx, dw, db
