"""The other layers of a from-scratch CNN, each forward beside its backward.

Pooling (max and average), ReLU, a fully connected (linear) layer, flatten, and softmax with
cross-entropy. Every ``*_forward`` returns ``(out, cache)`` with a named cache and every
``*_backward(dout, cache)`` returns the gradient(s) of the loss with respect to its input(s).
Semantics and layouts follow ``torch.nn.functional`` (NCHW; linear weight (out, in)); the tests
compare against it in float64.

Pooling uses the same window geometry and padding helper as the conv layer, and loops over the
``kh * kw`` kernel taps (one strided slice each), not over pixels.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from cnnlab.errors import GeometryError, InputSizeError
from cnnlab.scratch.padding import pad2d
from cnnlab.scratch.windows import WindowGeometry, window_geometry

# --------------------------------------------------------------------------------------------
# Pooling


@dataclass
class MaxPoolCache:
    """What ``max_pool2d_backward`` needs.

    Attributes:
        geom: the window geometry.
        argmax: for each output pixel, the flat tap index ``u * kw + v`` of the maximum in its
            window, (N, C, Ho, Wo). Ties go to the first tap in row-major order and a NaN
            is the maximum (PyTorch's CPU rule).
    """

    geom: WindowGeometry
    argmax: np.ndarray


@dataclass
class AvgPoolCache:
    """What ``avg_pool2d_backward`` needs: the window geometry and the input shape."""

    geom: WindowGeometry
    x_shape: tuple[int, ...]


def _pool_geometry(
    x: np.ndarray, kernel_size, stride, padding
) -> tuple[WindowGeometry, tuple[int, int]]:
    if x.ndim != 4:
        raise InputSizeError(f"pooling input has shape {x.shape}; pass (N, C, H, W)")
    geom = window_geometry(
        x.shape[2:], kernel_size, kernel_size if stride is None else stride, padding
    )
    kh, kw = geom.kernel
    t, _, l, _ = geom.pads
    if 2 * t > kh or 2 * l > kw:
        # PyTorch's rule: padding beyond half the window would make all-padding windows.
        raise GeometryError(
            f"pooling padding {geom.pads} is more than half the {kh}x{kw} window; "
            "use padding <= kernel_size // 2"
        )
    return geom, (kh, kw)


def max_pool2d_forward(
    x: np.ndarray,
    kernel_size: int | tuple[int, int],
    stride: int | tuple[int, int] | None = None,
    padding: int | tuple[int, int] = 0,
) -> tuple[np.ndarray, MaxPoolCache]:
    """Max pooling: the largest value in each window.

    Args:
        x: input.
        kernel_size: window size, int or (kh, kw).
        stride: step between windows; defaults to ``kernel_size`` (non-overlapping).
        padding: implicit ``-inf`` border (never chosen as a maximum), at most half the window.

    Returns:
        ``(out, cache)``.

    Shape:
        - x: (N, C, H, W)
        - out: (N, C, Ho, Wo), Ho = floor((H + 2*ph - kh) / sh) + 1, likewise Wo.
    """
    geom, (kh, kw) = _pool_geometry(x, kernel_size, stride, padding)
    xp = pad2d(x, geom.pads, value=-np.inf)
    out = np.full((*x.shape[:2], *geom.out_size), -np.inf, dtype=x.dtype)
    argmax = np.zeros(out.shape, dtype=np.intp)
    for u in range(kh):
        for v in range(kw):
            rows, cols = geom.tap(u, v)
            tap = xp[:, :, rows, cols]  # (N, C, Ho, Wo)
            # Strict '>' keeps the earlier tap on ties; a NaN wins and propagates, as in PyTorch.
            better = (tap > out) | np.isnan(tap)
            out = np.where(better, tap, out)
            argmax = np.where(better, u * kw + v, argmax)
    return out, MaxPoolCache(geom=geom, argmax=argmax)


def max_pool2d_backward(dout: np.ndarray, cache: MaxPoolCache) -> np.ndarray:
    """Gradient of max pooling: each output's gradient goes to the input that was the maximum.

    Shape:
        - dout: (N, C, Ho, Wo)
        - dx: (N, C, H, W)
    """
    geom = cache.geom
    kw = geom.kernel[1]
    dxp = np.zeros((*dout.shape[:2], *geom.padded_size), dtype=dout.dtype)
    for u in range(geom.kernel[0]):
        for v in range(kw):
            rows, cols = geom.tap(u, v)
            # Overlapping windows (stride < kernel) can pick the same pixel: add, never assign.
            dxp[:, :, rows, cols] += np.where(cache.argmax == u * kw + v, dout, 0)
    rows, cols = geom.interior()
    return dxp[:, :, rows, cols]


def avg_pool2d_forward(
    x: np.ndarray,
    kernel_size: int | tuple[int, int],
    stride: int | tuple[int, int] | None = None,
    padding: int | tuple[int, int] = 0,
) -> tuple[np.ndarray, AvgPoolCache]:
    """Average pooling: the mean of each window.

    Zero padding counts in the mean (PyTorch's default ``count_include_pad=True``): every window
    is divided by ``kh * kw``.

    Args:
        x: input.
        kernel_size: window size, int or (kh, kw).
        stride: step between windows; defaults to ``kernel_size``.
        padding: zero border, at most half the window.

    Returns:
        ``(out, cache)``.

    Shape:
        - x: (N, C, H, W)
        - out: (N, C, Ho, Wo), Ho = floor((H + 2*ph - kh) / sh) + 1, likewise Wo.
    """
    geom, (kh, kw) = _pool_geometry(x, kernel_size, stride, padding)
    xp = pad2d(x, geom.pads)
    out = np.zeros((*x.shape[:2], *geom.out_size), dtype=np.result_type(x, np.float32))
    for u in range(kh):
        for v in range(kw):
            rows, cols = geom.tap(u, v)
            out += xp[:, :, rows, cols]
    out /= kh * kw
    return out, AvgPoolCache(geom=geom, x_shape=x.shape)


def avg_pool2d_backward(dout: np.ndarray, cache: AvgPoolCache) -> np.ndarray:
    """Gradient of average pooling: each output's gradient is shared equally by its window.

    Shape:
        - dout: (N, C, Ho, Wo)
        - dx: (N, C, H, W)
    """
    geom = cache.geom
    kh, kw = geom.kernel
    share = dout / (kh * kw)
    dxp = np.zeros((*dout.shape[:2], *geom.padded_size), dtype=share.dtype)
    for u in range(kh):
        for v in range(kw):
            rows, cols = geom.tap(u, v)
            dxp[:, :, rows, cols] += share
    rows, cols = geom.interior()
    return dxp[:, :, rows, cols]


# --------------------------------------------------------------------------------------------
# Elementwise and dense layers


@dataclass
class ReluCache:
    """Where the input was positive (the only places gradient passes)."""

    positive: np.ndarray


def relu_forward(x: np.ndarray) -> tuple[np.ndarray, ReluCache]:
    """``max(x, 0)`` elementwise.

    Shape:
        any shape -> the same shape.
    """
    positive = x > 0
    return np.where(positive, x, 0).astype(x.dtype, copy=False), ReluCache(positive=positive)


def relu_backward(dout: np.ndarray, cache: ReluCache) -> np.ndarray:
    """Gradient of ReLU: ``dout`` where the input was positive, 0 elsewhere (0 at exactly 0,
    as PyTorch)."""
    return np.where(cache.positive, dout, 0).astype(dout.dtype, copy=False)


@dataclass
class LinearCache:
    """The input and weight of a linear layer."""

    x: np.ndarray
    w: np.ndarray
    has_bias: bool


def linear_forward(
    x: np.ndarray, w: np.ndarray, b: np.ndarray | None
) -> tuple[np.ndarray, LinearCache]:
    """Fully connected layer ``x @ w.T + b`` (PyTorch's weight layout).

    Shape:
        - x: (N, D_in); w: (D_out, D_in); b: (D_out,)
        - out: (N, D_out)
    """
    if x.ndim != 2 or w.ndim != 2 or x.shape[1] != w.shape[1]:
        raise InputSizeError(
            f"linear layer got input {x.shape} and weight {w.shape}; "
            "pass input (N, D_in) and weight (D_out, D_in), flattening the input first"
        )
    out = x @ w.T
    if b is not None:
        out = out + b
    return out, LinearCache(x=x, w=w, has_bias=b is not None)


def linear_backward(
    dout: np.ndarray, cache: LinearCache
) -> tuple[np.ndarray, np.ndarray, np.ndarray | None]:
    """Gradients of the linear layer: ``dx = dout @ w``, ``dw = dout.T @ x``, ``db = sum(dout)``.

    Shape:
        - dout: (N, D_out)
        - dx: (N, D_in); dw: (D_out, D_in); db: (D_out,)
    """
    dx = dout @ cache.w
    dw = dout.T @ cache.x
    db = dout.sum(axis=0) if cache.has_bias else None
    return dx, dw, db


@dataclass
class FlattenCache:
    """The shape to restore in backward."""

    x_shape: tuple[int, ...]


def flatten_forward(x: np.ndarray) -> tuple[np.ndarray, FlattenCache]:
    """Flatten everything but the batch axis (C, H, W order, as ``torch.flatten(x, 1)``).

    Shape:
        (N, C, H, W) -> (N, C*H*W)
    """
    return x.reshape(x.shape[0], -1), FlattenCache(x_shape=x.shape)


def flatten_backward(dout: np.ndarray, cache: FlattenCache) -> np.ndarray:
    """Reshape the gradient back. Shape: (N, C*H*W) -> (N, C, H, W)."""
    return dout.reshape(cache.x_shape)


# --------------------------------------------------------------------------------------------
# Loss


@dataclass
class SoftmaxCrossEntropyCache:
    """The class probabilities and the labels."""

    probs: np.ndarray
    labels: np.ndarray


def softmax_cross_entropy_forward(
    logits: np.ndarray, labels: np.ndarray
) -> tuple[float, SoftmaxCrossEntropyCache]:
    """Mean cross-entropy of softmax(logits) against integer labels (``F.cross_entropy``).

    Computed with the log-sum-exp shift (subtract each row's maximum) so large logits do not
    overflow.

    Shape:
        - logits: (N, classes); labels: (N,) integers in [0, classes)
        - loss: scalar
    """
    if logits.ndim != 2 or labels.shape != (logits.shape[0],):
        raise InputSizeError(
            f"cross-entropy got logits {logits.shape} and labels {labels.shape}; "
            "pass logits (N, classes) and labels (N,)"
        )
    if labels.size and (labels.min() < 0 or labels.max() >= logits.shape[1]):
        raise InputSizeError(
            f"labels span [{labels.min()}, {labels.max()}] but there are {logits.shape[1]} "
            "classes; pass labels in [0, classes)"
        )
    shifted = logits - logits.max(axis=1, keepdims=True)
    log_probs = shifted - np.log(np.exp(shifted).sum(axis=1, keepdims=True))
    n = logits.shape[0]
    loss = -log_probs[np.arange(n), labels].mean()
    return float(loss), SoftmaxCrossEntropyCache(probs=np.exp(log_probs), labels=labels)


def softmax_cross_entropy_backward(dout: float, cache: SoftmaxCrossEntropyCache) -> np.ndarray:
    """Gradient of the mean cross-entropy: ``(softmax(logits) - onehot(labels)) / N * dout``.

    Shape:
        - dout: scalar (1.0 when the loss is the final output)
        - dlogits: (N, classes)
    """
    n = cache.probs.shape[0]
    dlogits = cache.probs.copy()
    dlogits[np.arange(n), cache.labels] -= 1
    return dlogits * (dout / n)
