"""Numerical gradient checks: central differences against a backward pass.

For a function ``y = f(x1, x2, ...)`` and an upstream gradient ``dout`` (the same shape as
``y``), the gradient of the scalar ``L = sum(y * dout)`` with respect to each element of each
input is estimated as::

    dL/dx[i] ~= (L(x[i] + eps) - L(x[i] - eps)) / (2 * eps)

and compared with the analytic gradient by the relative error
``max |a - n| / max(max |a|, max |n|)``, about 1e-8 or smaller in float64 when the backward is
right and of order 1 when it is wrong. (Scaling by the largest entry rather than elementwise
keeps an entry that is ~0 in both from turning finite-difference noise into a large ratio.)
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np


def numerical_gradient(
    f: Callable[..., np.ndarray],
    inputs: Sequence[np.ndarray],
    dout: np.ndarray | float,
    *,
    eps: float = 1e-6,
) -> list[np.ndarray]:
    """Central-difference gradients of ``sum(f(*inputs) * dout)`` with respect to each input.

    The inputs are perturbed one element at a time in place and restored afterwards; use
    float64 inputs (float32 differences are too coarse for ``eps`` around 1e-6).

    Shape:
        each returned gradient has the shape of the corresponding input.
    """
    grads = []
    for x in inputs:
        grad = np.zeros(x.shape, dtype=np.float64)
        flat, gflat = x.reshape(-1), grad.reshape(-1)  # views: writes reach x
        if not np.shares_memory(flat, x):
            raise ValueError("numerical_gradient needs contiguous input arrays")
        for i in range(flat.size):
            old = flat[i]
            flat[i] = old + eps
            plus = np.sum(np.asarray(f(*inputs)) * dout)
            flat[i] = old - eps
            minus = np.sum(np.asarray(f(*inputs)) * dout)
            flat[i] = old
            gflat[i] = (plus - minus) / (2 * eps)
        grads.append(grad)
    return grads


def relative_error(a: np.ndarray, b: np.ndarray) -> float:
    """``max |a - b| / max(max |a|, max |b|)``; 0 when both are all zeros."""
    a, b = np.asarray(a, dtype=np.float64), np.asarray(b, dtype=np.float64)
    if a.shape != b.shape:
        raise ValueError(f"shapes differ: {a.shape} vs {b.shape}")
    if a.size == 0:
        return 0.0
    scale = max(float(np.max(np.abs(a))), float(np.max(np.abs(b))))
    return float(np.max(np.abs(a - b)) / scale) if scale > 0 else 0.0


@dataclass
class GradcheckResult:
    """Per-input relative errors of a gradient check and whether all are below ``tol``."""

    errors: list[float]
    tol: float

    @property
    def ok(self) -> bool:
        return all(e <= self.tol for e in self.errors)


def gradcheck(
    f: Callable[..., np.ndarray],
    inputs: Sequence[np.ndarray],
    analytic: Sequence[np.ndarray],
    dout: np.ndarray | float,
    *,
    eps: float = 1e-6,
    tol: float = 1e-6,
) -> GradcheckResult:
    """Compare analytic gradients with central differences.

    Args:
        f: the forward function; ``f(*inputs)`` returns the output (not the cache).
        inputs: float64 arrays to differentiate with respect to.
        analytic: the backward pass's gradients, one per input, same order.
        dout: upstream gradient, the shape of ``f``'s output (or a scalar for a scalar output).
        eps: finite-difference step.
        tol: largest acceptable relative error.
    """
    numeric = numerical_gradient(f, inputs, dout, eps=eps)
    return GradcheckResult(
        [relative_error(a, n) for a, n in zip(analytic, numeric, strict=True)], tol
    )
