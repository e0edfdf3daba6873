"""The lecture's arithmetic as pure functions: output size, parameters, multiply-adds, memory.

Every number the analyzer prints is computed by one of these functions from the shapes and
hyperparameters that the tracer (:mod:`cnnlab.analysis.trace`) observed on the real model. They
take plain integers, so they are also what the errata (:mod:`cnnlab.analysis.errata`) and the
tests use to redo a slide's hand calculation.

Conventions (docs/analyzer.md, "Counting"; printed under every table by :data:`CONVENTIONS`):

* One multiply-add (MAC) is what the slides call one "flop"; ``flops = 2 * macs``.
* Convolution and linear multiply-adds exclude the bias: ``(C_out * H' * W') * (C_in/g * K * K)``
  (slide "AlexNet conv1 = 200,704 * 363 = 72,855,552"; torchvision's published GFLOPS use the
  same rule). Parameters include the bias.
* Activation memory is elements x 4 bytes (float32); 1 KB = 1024 bytes.
* The receptive field grows as ``r_out = r_in + (k - 1) * d * j_in`` and the jump (distance in
  input pixels between neighbouring outputs) as ``j_out = j_in * s``
  (Araujo et al., "Computing Receptive Fields of Convolutional Neural Networks", Distill 2019).

``--count lecture`` also charges the operations the slides charge (pooling: K*K per output,
slide "pool1 = 64*27*27*3*3 = 419,904") and a documented cost for the rest (batch norm,
activations and additions 1 per element, LRN size + 2, softmax 3; the tracer applies them, see
:mod:`cnnlab.analysis.trace`). ``--count conv-linear`` counts convolution and linear
multiply-adds only.

The output size is :mod:`cnnlab.geometry`'s formula, shared with the NumPy layers.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from fractions import Fraction

from cnnlab import geometry

BYTES_PER_ELEMENT = 4  # float32
KB = 1024  # the slides' KB (784 KB = 200,704 * 4 / 1024)

COUNT_MODES = ("lecture", "conv-linear")

CONVENTIONS = (
    "Counting: 1 MAC = one multiply-add = the slides' 'flop'; FLOPs = 2 x MACs. "
    "Conv/linear MACs exclude the bias; params include it. "
    "Memory = elements x 4 bytes (float32), 1 KB = 1024 B; activation memory and MACs are for "
    "the whole batch. RF = receptive field in input pixels, jump = input pixels between "
    "neighbouring outputs."
)


@dataclass(frozen=True)
class OutputSize:
    """One spatial dimension of a sliding-window layer.

    Attributes:
        size: the size PyTorch produces (floor, or ceil with ``ceil_mode``).
        exact: ``(W - d*(K-1) - 1 + 2P) / S + 1`` as an exact fraction.
    """

    size: int
    exact: Fraction

    @property
    def fits(self) -> bool:
        """True when the windows tile the padded input exactly (no row or column left over)."""
        return self.exact.denominator == 1


def output_size(
    size: int,
    kernel: int,
    stride: int = 1,
    padding: int = 0,
    dilation: int = 1,
    ceil_mode: bool = False,
) -> OutputSize:
    """Output length of a convolution or pooling window along one dimension.

    ``W' = (W - F + 2P) / S + 1`` with the dilated filter ``F = d*(K-1) + 1``, floored as
    PyTorch does (ceiled with ``ceil_mode``, where the last window may start in the padding only
    if it starts inside the input, as PyTorch's pooling rule says); see :mod:`cnnlab.geometry`.

    Example: ``output_size(7, 3, 3).exact == Fraction(7, 3)`` (the slides' "2.33").
    """
    return OutputSize(
        size=geometry.output_size(size, kernel, stride, padding, padding, dilation, ceil_mode),
        exact=geometry.exact_output_size(size, kernel, stride, padding, padding, dilation),
    )


def conv_params(
    c_in: int, c_out: int, kernel: tuple[int, ...], groups: int = 1, bias: bool = True
) -> int:
    """Weights ``C_out * C_in/g * prod(K)`` plus ``C_out`` biases (slide: 64*3*11*11 + 64)."""
    return c_out * (c_in // groups) * math.prod(kernel) + (c_out if bias else 0)


def conv_macs(output_elements: int, c_in: int, kernel: tuple[int, ...], groups: int = 1) -> int:
    """Multiply-adds of a convolution: ``(C_out*H'*W') * (C_in/g * K*K)``, bias excluded."""
    return output_elements * (c_in // groups) * math.prod(kernel)


def linear_params(in_features: int, out_features: int, bias: bool = True) -> int:
    """``C_in * C_out + C_out`` (slide: 9216*4096 + 4096)."""
    return in_features * out_features + (out_features if bias else 0)


def linear_macs(output_elements: int, in_features: int) -> int:
    """``C_in`` multiply-adds per output element, bias excluded (slide: 9216*4096)."""
    return output_elements * in_features


def pool_macs(output_elements: int, kernel: tuple[int, ...]) -> int:
    """The slides' pooling cost: ``(C*H'*W') * (K*K)`` (AlexNet pool1: 419,904)."""
    return output_elements * math.prod(kernel)


def adaptive_window(in_size: int, out_size: int) -> tuple[int, int]:
    """The (largest window, stride) of PyTorch's adaptive pooling along one dimension.

    Output ``i`` covers input ``[floor(i*W/O), ceil((i+1)*W/O))``; when ``O`` divides ``W``
    that is an ordinary pooling with kernel = stride = ``W/O``.
    """
    windows = [
        math.ceil((i + 1) * in_size / out_size) - math.floor(i * in_size / out_size)
        for i in range(out_size)
    ]
    stride = max(1, in_size // out_size)
    return max(windows), stride


def adaptive_pool_macs(c_out: int, in_hw: tuple[int, ...], out_hw: tuple[int, ...]) -> int:
    """Exact sum of the adaptive windows' areas times the channel count (batch of one)."""
    total = c_out
    for w, o in zip(in_hw, out_hw, strict=True):
        total *= sum(math.ceil((i + 1) * w / o) - math.floor(i * w / o) for i in range(o))
    return total


def receptive_field(
    r_in: int, j_in: int, kernel: int, stride: int = 1, dilation: int = 1
) -> tuple[int, int]:
    """``(r_out, j_out)`` after a window of ``kernel`` at ``stride`` and ``dilation``.

    ``r_out = r_in + (k - 1) * d * j_in`` and ``j_out = j_in * s``. Three stacked 3x3 stride-1
    convolutions from ``(1, 1)`` give 3, 5, 7: one 7x7 (slide "three 3x3 = one 7x7").
    """
    return r_in + (kernel - 1) * dilation * j_in, j_in * stride


def field_start(
    start_in: float, j_in: int, kernel: int, padding: int = 0, dilation: int = 1
) -> float:
    """Input coordinate of the centre of the first output unit's receptive field.

    ``start_out = start_in + ((k - 1) * d / 2 - p) * j_in``: the first window covers input
    positions ``-p .. -p + (k - 1) * d`` of its own input, whose centre is mapped back through
    ``start_in`` and ``j_in``. A 3x3 convolution with padding 1 keeps the centre (0 stays 0);
    AlexNet's 11x11, stride 4, padding 2 conv1 moves it to 3.
    """
    return start_in + ((kernel - 1) * dilation / 2 - padding) * j_in


def activation_bytes(elements: int, bytes_per_element: int = BYTES_PER_ELEMENT) -> int:
    """Memory of a tensor of ``elements`` values (slide: 200,704 * 4 = 802,816 B = 784 KB)."""
    return elements * bytes_per_element


# Buffers an optimizer keeps per parameter (PyTorch's SGD keeps one momentum buffer, Adam the
# first and second moments).
OPTIMIZER_STATE = {"sgd": 0, "sgd-momentum": 1, "adam": 2}


def training_memory(
    param_bytes: int, saved_activation_bytes: int, optimizer: str = "sgd-momentum"
) -> int:
    """Estimate of the memory one training step needs.

    ``weights + gradients + optimizer state + saved activations``, that is
    ``(2 + state) * param_bytes + saved_activation_bytes`` where ``state`` is the number of
    per-parameter buffers of the optimizer (:data:`OPTIMIZER_STATE`). Saved activations are every
    tensor the forward pass creates (the analyzer's activation total, input included): autograd
    keeps most of them for the backward pass. Not counted: workspace of the convolution
    algorithms, the allocator's slack, the gradients of activations during backward (freed as it
    goes) and the framework itself. ``benchmarks/analyzer_memory.py`` compares this with measured
    peaks.
    """
    if optimizer not in OPTIMIZER_STATE:
        raise ValueError(f"unknown optimizer {optimizer!r}: use one of {sorted(OPTIMIZER_STATE)}")
    return (2 + OPTIMIZER_STATE[optimizer]) * param_bytes + saved_activation_bytes
