"""The convolution layer as the formula reads: explicit loops, forward and backward.

Forward, for every image ``n``, filter ``k`` and output pixel ``(i, j)``::

    out[n, k, i, j] = b[k] + sum_{c, u, v} xp[n, c, i*sh + u*dh, j*sw + v*dw] * w[k, c, u, v]

where ``xp`` is the zero-padded input. Backward follows by the chain rule from the same sum: each
output gradient ``dout[n, k, i, j]`` flows to the weights as ``dout * patch`` and to the patch as
``dout * w[k]``. This is the reference the fast version (:mod:`cnnlab.scratch.fast`) and PyTorch
are tested against; it is slow (four Python loops) and meant for reading and for small tests.
Same signature and cache as the fast version. The layout and semantics are PyTorch's
``torch.nn.functional.conv2d`` (cross-correlation, NCHW, weight (K, C, kh, kw)), without groups.
"""

from __future__ import annotations

import numpy as np

from cnnlab.scratch.conv_common import ConvCache, check_conv_args
from cnnlab.scratch.padding import Padding, pad2d


def conv2d_forward(
    x: np.ndarray,
    w: np.ndarray,
    b: np.ndarray | None,
    *,
    stride: int | tuple[int, int] = 1,
    padding: Padding = 0,
    dilation: int | tuple[int, int] = 1,
) -> tuple[np.ndarray, ConvCache]:
    """2-D convolution layer (cross-correlation, as in deep learning), naive loops.

    Args:
        x: input images.
        w: filters.
        b: one bias per filter, or ``None``.
        stride: step between windows, int or (sh, sw).
        padding: zeros around the input: int, (rows, cols), 'valid', 'same' or 'full'.
        dilation: spacing between kernel taps, int or (dh, dw).

    Returns:
        ``(out, cache)``.

    Shape:
        - x: (N, C, H, W)
        - w: (K, C, kh, kw); b: (K,)
        - out: (N, K, Ho, Wo) with Ho = floor((H + 2*ph - dh*(kh-1) - 1) / sh) + 1, likewise Wo.
    """
    geom = check_conv_args(x, w, b, stride, padding, dilation)
    xp = pad2d(x, geom.pads)
    n_img, n_filt = x.shape[0], w.shape[0]
    ho, wo = geom.out_size
    out = np.zeros((n_img, n_filt, ho, wo), dtype=np.result_type(x, w))
    for n in range(n_img):
        for k in range(n_filt):
            for i in range(ho):
                for j in range(wo):
                    rows, cols = geom.window(i, j)
                    out[n, k, i, j] = np.sum(xp[n, :, rows, cols] * w[k])
            if b is not None:
                out[n, k] += b[k]
    return out, ConvCache(x=x, w=w, has_bias=b is not None, geom=geom)


def conv2d_backward(
    dout: np.ndarray, cache: ConvCache
) -> tuple[np.ndarray, np.ndarray, np.ndarray | None]:
    """Gradients of the conv layer, naive loops.

    Args:
        dout: gradient of the loss with respect to the layer output.
        cache: from ``conv2d_forward`` (naive or fast).

    Returns:
        ``(dx, dw, db)``; ``db`` is ``None`` when the forward pass had no bias.

    Shape:
        - dout: (N, K, Ho, Wo)
        - dx: (N, C, H, W); dw: (K, C, kh, kw); db: (K,)
    """
    x, w, geom = cache.x, cache.w, cache.geom
    xp = pad2d(x, geom.pads)
    dxp = np.zeros(xp.shape, dtype=np.result_type(dout, x))
    dw = np.zeros(w.shape, dtype=np.result_type(dout, w))
    ho, wo = geom.out_size
    for n in range(x.shape[0]):
        for k in range(w.shape[0]):
            for i in range(ho):
                for j in range(wo):
                    rows, cols = geom.window(i, j)
                    dw[k] += dout[n, k, i, j] * xp[n, :, rows, cols]
                    dxp[n, :, rows, cols] += dout[n, k, i, j] * w[k]
    rows, cols = geom.interior()
    dx = dxp[:, :, rows, cols]
    db = dout.sum(axis=(0, 2, 3)) if cache.has_bias else None
    return dx, dw, db
