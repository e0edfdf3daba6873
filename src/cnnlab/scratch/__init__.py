"""Convolutional-network mechanics from scratch, in NumPy (no PyTorch), forward and backward.

Teaching order (d2l chapters 7-8, lecture 001):

* :mod:`~cnnlab.scratch.correlate` - ``correlate2d`` / ``convolve2d`` on images, four borders;
* :mod:`~cnnlab.scratch.filters` - the classical kernels as data (box, shifts, Sobel, ...);
* :mod:`~cnnlab.scratch.naive` - the conv layer as loops that read like the formula;
* :mod:`~cnnlab.scratch.fast` - the same layer by im2col and one GEMM (the default here);
* :mod:`~cnnlab.scratch.layers` - pooling, ReLU, linear, flatten, softmax cross-entropy;
* :mod:`~cnnlab.scratch.gradcheck` - numerical gradients to check every backward.

Shared pieces, one copy each: :mod:`~cnnlab.scratch.padding` (output size, borders) and
:mod:`~cnnlab.scratch.windows` (which input pixels each window or kernel tap reads).
Image files are read by :mod:`~cnnlab.scratch.io` (Pillow), figures drawn by
:mod:`~cnnlab.scratch.plots` (matplotlib); neither is imported here.
"""

from cnnlab.scratch import fast, naive
from cnnlab.scratch.conv_common import ConvCache
from cnnlab.scratch.correlate import convolve2d, correlate2d
from cnnlab.scratch.fast import Workspace, conv2d_backward, conv2d_forward
from cnnlab.scratch.filters import FILTERS, Filter, apply_filter, gaussian, get_filter
from cnnlab.scratch.gradcheck import gradcheck, numerical_gradient, relative_error
from cnnlab.scratch.layers import (
    avg_pool2d_backward,
    avg_pool2d_forward,
    flatten_backward,
    flatten_forward,
    linear_backward,
    linear_forward,
    max_pool2d_backward,
    max_pool2d_forward,
    relu_backward,
    relu_forward,
    softmax_cross_entropy_backward,
    softmax_cross_entropy_forward,
)
from cnnlab.scratch.padding import output_size, pad2d
from cnnlab.scratch.windows import WindowGeometry, window_geometry

__all__ = [
    "FILTERS",
    "ConvCache",
    "Filter",
    "WindowGeometry",
    "Workspace",
    "apply_filter",
    "avg_pool2d_backward",
    "avg_pool2d_forward",
    "conv2d_backward",
    "conv2d_forward",
    "convolve2d",
    "correlate2d",
    "fast",
    "flatten_backward",
    "flatten_forward",
    "gaussian",
    "get_filter",
    "gradcheck",
    "linear_backward",
    "linear_forward",
    "max_pool2d_backward",
    "max_pool2d_forward",
    "naive",
    "numerical_gradient",
    "output_size",
    "pad2d",
    "relative_error",
    "relu_backward",
    "relu_forward",
    "softmax_cross_entropy_backward",
    "softmax_cross_entropy_forward",
    "window_geometry",
]
