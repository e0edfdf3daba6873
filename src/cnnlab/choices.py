"""Choice lists that the library owns and the command line offers, in one module that imports
nothing heavy: ``cnnlab COMMAND --help`` reads them without importing PyTorch or NumPy, and the
library modules that act on them (:mod:`cnnlab.scratch.padding`, :mod:`cnnlab.export`) import
them from here, so each list has one owner. ``cnnlab show --what``'s pictures are a table of
their own, :data:`cnnlab.seeing.views.VIEWS`, light in the same way.
"""

from __future__ import annotations

# Border modes of the from-scratch padding (cnnlab.scratch.padding): PyTorch's `padding_mode` words.
PAD_MODES: tuple[str, ...] = ("zero", "reflect", "replicate", "circular")

# ONNX opsets of cnnlab.export.
DEFAULT_OPSET = 18
MIN_OPSET = 18  # lowest opset the dynamo exporter emits natively (see cnnlab.export's docstring)
MAX_OPSET = 23  # highest opset torch 2.14's exporter implements (torch.onnx._constants)
