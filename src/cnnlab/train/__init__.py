"""Training, evaluation and use of zoo models on real data.

* :func:`train` -- the training loop (``cnnlab train``), configured by :class:`TrainConfig` with
  per-family recipes (:mod:`cnnlab.train.recipes`).
* :func:`load_trained` -- the one loader of trained models, used by ``cnnlab eval``,
  ``cnnlab predict`` and ``cnnlab export``; it reads only safetensors files cnnlab wrote.
* :func:`evaluate` -- top-1/top-5/loss/per-class/confusion on uint8 images.

Heavy imports (the loop, matplotlib) happen on first use, so importing this package is cheap.
"""

from __future__ import annotations

import importlib
from typing import Any

from cnnlab.train.checkpoint import load_trained
from cnnlab.train.config import TrainConfig

__all__ = ["EvalResult", "TrainConfig", "evaluate", "load_trained", "train"]

_LAZY = {
    "train": "cnnlab.train.loop",
    "evaluate": "cnnlab.train.metrics",
    "EvalResult": "cnnlab.train.metrics",
}


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        return getattr(importlib.import_module(_LAZY[name]), name)
    raise AttributeError(f"module 'cnnlab.train' has no attribute {name!r}")
