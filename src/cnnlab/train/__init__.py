"""Making a run: training zoo models on real data.

* :func:`fit` -- train a model as a :class:`TrainConfig` says (``cnnlab train``), with per-family
  recipes (:mod:`cnnlab.run.recipes`); ``quiet=True`` prints nothing and ``callbacks`` observe
  the run (:class:`Callback`). The stages live in :class:`~cnnlab.train.trainer.Trainer`.
* :func:`~cnnlab.train.step.train_step` -- the one training step, for benchmarks and experiments.

Using a finished run (loading, evaluating, preparing inputs, the run directory's files) is the
floor below, :mod:`cnnlab.run`, which never imports this package.

Heavy imports (the trainer, matplotlib) happen on first use, so importing this package is cheap.
"""

from __future__ import annotations

from cnnlab.lazy import lazy_exports
from cnnlab.run.config import TrainConfig
from cnnlab.train.callbacks import Callback

__all__ = [
    "Callback",
    "RunResult",
    "TrainConfig",
    "Trainer",
    "fit",
    "train",
    "train_step",
]

__getattr__ = lazy_exports(
    __name__,
    {
        "fit": "cnnlab.train.trainer",
        "train": "cnnlab.train.trainer",
        "Trainer": "cnnlab.train.trainer",
        "RunResult": "cnnlab.train.trainer",
        "train_step": "cnnlab.train.step",
    },
)
