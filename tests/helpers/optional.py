"""Optional dependencies as pytest skip markers."""

from __future__ import annotations

import importlib

import pytest


def importable(*modules: str) -> bool:
    """True when every one of ``modules`` imports (what ``pytest.importorskip`` checks)."""
    try:
        for module in modules:
            importlib.import_module(module)
    except ImportError:
        return False
    return True


needs_onnx = pytest.mark.skipif(
    not importable("onnx", "onnxruntime", "onnxscript"),
    reason="onnx, onnxruntime and onnxscript not installed",
)
