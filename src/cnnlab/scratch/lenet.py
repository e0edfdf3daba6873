"""A LeNet-style network built only from the from-scratch NumPy layers.

LeCun et al. 1998 ("Gradient-based learning applied to document recognition"), in the modern
form the lecture and d2l (section 7.6) teach. Deviations from the paper, all deliberate:

* ReLU instead of the scaled tanh, and max pooling instead of trainable subsampling: both train
  much faster with plain SGD (the paper-faithful net is ``cnnlab.models`` ``lenet5_paper``).
* 28x28 input with 2 pixels of zero padding in the first convolution, which gives C1 the
  paper's 28x28 maps (the paper pads the digits to 32x32 instead).
* C3 connects every S2 map (no partial connection table), and the output is a linear layer with
  softmax cross-entropy instead of RBF units.

Layer names and weight layouts are PyTorch's (``conv1.weight`` (6, 1, 5, 5), ``fc1.weight``
(120, 400), ...), so the same arrays load into an equivalent ``torch.nn`` model; the tests use
that to check forward values and gradients against autograd.
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass

import numpy as np

from cnnlab.scratch import fast
from cnnlab.scratch.conv_common import ConvCache
from cnnlab.scratch.layers import (
    FlattenCache,
    LinearCache,
    MaxPoolCache,
    ReluCache,
    flatten_backward,
    flatten_forward,
    linear_backward,
    linear_forward,
    max_pool2d_backward,
    max_pool2d_forward,
    relu_backward,
    relu_forward,
)

# The architecture as data: (name, in, out, kernel, padding) for the two convolutions, then
# the widths of the fully connected stack. C1 6@28x28, S2 6@14x14, C3 16@10x10, S4 16@5x5,
# then 400 -> 120 -> 84 -> classes (paper: C5 120, F6 84).
CONVS = (("conv1", 6, 5, 2), ("conv2", 16, 5, 0))  # (name, filters, kernel, padding)
POOL = 2  # 2x2 max pooling, stride 2, after each convolution
HIDDEN = (120, 84)


def _flat_features(in_size: tuple[int, int]) -> int:
    """Width of the flattened S4 output, derived from the geometry (400 for 28x28)."""
    h, w = in_size
    for _, _, k, p in CONVS:
        h, w = (h + 2 * p - k + 1) // POOL, (w + 2 * p - k + 1) // POOL
    return CONVS[-1][1] * h * w


def init_params(
    rng: np.random.Generator,
    in_channels: int = 1,
    num_classes: int = 10,
    in_size: tuple[int, int] = (28, 28),
    dtype: type = np.float32,
) -> dict[str, np.ndarray]:
    """He-normal weights (std sqrt(2 / fan_in), right before a ReLU) and zero biases; the
    logits layer, which has no ReLU after it, gets std sqrt(1 / fan_in) (no ReLU gain of 2),
    which keeps the first losses small (2.6-4.7 over seeds 0-2 on Fashion-MNIST; log(10) = 2.3).

    Returns:
        ``{"conv1.weight": (6, C, 5, 5), "conv1.bias": (6,), ..., "fc3.weight": (classes, 84),
        "fc3.bias": (classes,)}``.
    """
    params: dict[str, np.ndarray] = {}
    c = in_channels
    for name, k_out, k, _ in CONVS:
        fan_in = c * k * k
        params[f"{name}.weight"] = rng.normal(0, np.sqrt(2 / fan_in), (k_out, c, k, k))
        params[f"{name}.bias"] = np.zeros(k_out)
        c = k_out
    widths = (_flat_features(in_size), *HIDDEN, num_classes)
    for i, (d_in, d_out) in enumerate(itertools.pairwise(widths), start=1):
        gain = 1.0 if d_out == num_classes and i == len(HIDDEN) + 1 else 2.0
        params[f"fc{i}.weight"] = rng.normal(0, np.sqrt(gain / d_in), (d_out, d_in))
        params[f"fc{i}.bias"] = np.zeros(d_out)
    return {k: v.astype(dtype) for k, v in params.items()}


@dataclass
class LeNetCache:
    """Every layer's cache, in forward order, for :func:`lenet_backward`."""

    convs: list[tuple[ConvCache, ReluCache, MaxPoolCache]]
    flatten: FlattenCache
    fcs: list[tuple[LinearCache, ReluCache | None]]


def lenet_forward(
    params: dict[str, np.ndarray],
    x: np.ndarray,
    workspaces: dict[str, fast.Workspace] | None = None,
) -> tuple[np.ndarray, LeNetCache]:
    """Logits for a batch of images.

    Args:
        params: from :func:`init_params`.
        x: normalised images.
        workspaces: optional ``{"conv1": Workspace(), "conv2": Workspace()}`` to reuse im2col
            buffers between steps (a cache is then valid until the next forward).

    Shape:
        x: (N, C, 28, 28) -> logits (N, classes)
    """
    ws = workspaces or {}
    conv_caches = []
    h = x
    for name, _, _, pad in CONVS:
        h, cc = fast.conv2d_forward(
            h,
            params[f"{name}.weight"],
            params[f"{name}.bias"],
            padding=pad,
            workspace=ws.get(name),
        )
        h, rc = relu_forward(h)
        h, pc = max_pool2d_forward(h, POOL)
        conv_caches.append((cc, rc, pc))
    h, flat = flatten_forward(h)  # (N, 16*5*5)
    fc_caches: list[tuple[LinearCache, ReluCache | None]] = []
    n_fc = len(HIDDEN) + 1
    for i in range(1, n_fc + 1):
        h, lc = linear_forward(h, params[f"fc{i}.weight"], params[f"fc{i}.bias"])
        rc = None
        if i < n_fc:  # no ReLU on the logits
            h, rc = relu_forward(h)
        fc_caches.append((lc, rc))
    return h, LeNetCache(convs=conv_caches, flatten=flat, fcs=fc_caches)


def lenet_backward(
    dlogits: np.ndarray,
    cache: LeNetCache,
    workspaces: dict[str, fast.Workspace] | None = None,
) -> dict[str, np.ndarray]:
    """Gradients of the loss with respect to every parameter, by the layers' backward passes
    in reverse order.

    Shape:
        dlogits: (N, classes) -> ``{name: array shaped like params[name]}``
    """
    ws = workspaces or {}
    grads: dict[str, np.ndarray] = {}
    d = dlogits
    for i in range(len(cache.fcs), 0, -1):
        lc, rc = cache.fcs[i - 1]
        if rc is not None:
            d = relu_backward(d, rc)
        d, grads[f"fc{i}.weight"], grads[f"fc{i}.bias"] = linear_backward(d, lc)
    d = flatten_backward(d, cache.flatten)
    for (name, _, _, _), (cc, rc, pc) in zip(reversed(CONVS), reversed(cache.convs), strict=True):
        d = max_pool2d_backward(d, pc)
        d = relu_backward(d, rc)
        d, grads[f"{name}.weight"], grads[f"{name}.bias"] = fast.conv2d_backward(
            d, cc, workspace=ws.get(name)
        )
    return grads


def predict(params: dict[str, np.ndarray], x: np.ndarray, batch_size: int = 1000) -> np.ndarray:
    """Class indices for a set of images, in batches.

    Shape:
        x: (N, C, H, W) -> (N,) int
    """
    out = [
        lenet_forward(params, x[i : i + batch_size])[0].argmax(axis=1)
        for i in range(0, len(x), batch_size)
    ]
    return np.concatenate(out) if out else np.zeros(0, dtype=np.intp)
