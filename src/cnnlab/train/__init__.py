"""Training, evaluation and use of zoo models on real data.

* :func:`fit` -- train a model as a :class:`TrainConfig` says (``cnnlab train``), with per-family
  recipes (:mod:`cnnlab.train.recipes`); ``quiet=True`` prints nothing and ``callbacks`` observe
  the run (:class:`Callback`). The stages live in :class:`~cnnlab.train.trainer.Trainer`.
* :func:`~cnnlab.train.step.train_step` -- the one training step, for benchmarks and experiments.
* :func:`load_trained` -- rebuild a trained model from a run directory or a file cnnlab wrote
  (safetensors only); :func:`cnnlab.load` wraps it with preprocessing for prediction.
* :func:`evaluate` -- top-1/top-5/loss/per-class/confusion on uint8 images.

Heavy imports (the trainer, matplotlib) happen on first use, so importing this package is cheap.
"""

from __future__ import annotations

import importlib
from typing import Any

from cnnlab.train.callbacks import Callback
from cnnlab.train.config import TrainConfig

__all__ = [
    "Callback",
    "EvalResult",
    "RunResult",
    "TrainConfig",
    "Trainer",
    "evaluate",
    "fit",
    "load_trained",
    "train",
    "train_step",
]

_LAZY = {
    "load_trained": "cnnlab.train.checkpoint",
    "fit": "cnnlab.train.trainer",
    "train": "cnnlab.train.trainer",
    "Trainer": "cnnlab.train.trainer",
    "RunResult": "cnnlab.train.trainer",
    "train_step": "cnnlab.train.step",
    "evaluate": "cnnlab.train.metrics",
    "EvalResult": "cnnlab.train.metrics",
}


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        return getattr(importlib.import_module(_LAZY[name]), name)
    raise AttributeError(f"module 'cnnlab.train' has no attribute {name!r}")
