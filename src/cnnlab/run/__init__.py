"""Using a trained run: its files, its model, its inputs, its evaluation.

The floor between the zoo and training (``docs/architecture.md``): training writes a run with
these pieces, and everything that uses one (``cnnlab eval``, ``predict``, ``export``, ``show``,
``report``, ``runs``, :mod:`cnnlab.seeing`, the studio) reads it with them. Nothing here imports
:mod:`cnnlab.train`.

* :class:`~cnnlab.run.layout.RunFiles` -- the run directory's file names and readers.
* :mod:`~cnnlab.run.records` -- typed, checked readers of every run file (``results.json``,
  ``metrics.jsonl``, ``config.json``, checkpoint records, ``splits.json``): a damaged file is one
  line, ``damaged run DIR: FILE: what is wrong`` (:class:`~cnnlab.run.records.DamagedRunError`).
* :mod:`~cnnlab.run.tensorfile` -- cnnlab's safetensors files, validated before any tensor is
  read, each carrying the SHA-256 of its content and refused when it no longer matches.
* :mod:`~cnnlab.run.checkpoints` -- which checkpoint pairs exist and which are valid.
* :func:`~cnnlab.run.load.load_trained` -- the network back from a run or a file cnnlab wrote;
  :func:`cnnlab.load` wraps it with preprocessing for prediction.
* :func:`~cnnlab.run.inputs.make_prepare` -- uint8 images to the model's float input.
* :func:`~cnnlab.run.metrics.evaluate` -- top-1/top-5/loss/per-class/confusion on uint8 images;
  :func:`~cnnlab.run.metrics.logits_of` -- logits with flip test-time augmentation.
* :mod:`~cnnlab.run.device` -- the device, the thread count and restoring process state.

Torch loads on first use, so importing this package is cheap.
"""

from __future__ import annotations

from cnnlab.lazy import lazy_exports

__all__ = ["EvalResult", "RunFiles", "TrainedModel", "evaluate", "load_trained"]

__getattr__ = lazy_exports(
    __name__,
    {
        "EvalResult": "cnnlab.run.metrics",
        "evaluate": "cnnlab.run.metrics",
        "RunFiles": "cnnlab.run.layout",
        "TrainedModel": "cnnlab.run.load",
        "load_trained": "cnnlab.run.load",
    },
)
