"""An experiment's training runs: ordinary cnnlab runs, trained once and reused after that.

A run inside an experiment folder is treated as ``cnnlab train`` treats a run directory: a
finished run is reused as it is, an interrupted one resumed from its checkpoint, and one made
with other settings refused (:meth:`cnnlab.experiments.base.Context.train` calls these).
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from cnnlab.run.config import TrainConfig
    from cnnlab.run.metrics import EvalResult
    from cnnlab.train.callbacks import Callback
    from cnnlab.train.trainer import RunResult


def train_or_reuse(
    run_dir: Path,
    config: TrainConfig,
    given: set[str] | None,
    callbacks: Sequence[Callback] = (),
) -> RunResult:
    """A finished run with the same resolved settings as it is, else ``fit`` (which resumes).

    ``config`` has ``resume=True``: ``fit`` starts an empty directory from the beginning,
    continues an interrupted run from its newest valid checkpoint (bitwise as an uninterrupted
    run on the CPU), and refuses a directory trained with other settings. ``given`` names the
    settings set explicitly (as for :func:`~cnnlab.run.recipes.resolve`; None: every one that
    is not None, e.g. a run's own ``config.json``).
    """
    from cnnlab.run.config import differences, from_dict
    from cnnlab.run.layout import RunFiles
    from cnnlab.run.recipes import resolve
    from cnnlab.train.trainer import RunResult, fit

    run = RunFiles(run_dir)
    done = run.read_results()
    if done is not None and done.get("status") == "finished" and run.config.exists():
        stored = from_dict(json.loads(run.config.read_text()))
        if not differences(stored, resolve(config, given)[0]):
            test = _eval_result(done["test"])
            return RunResult(run_dir, stored, test, run.read_history(), done["seconds"], [])
    return fit(config, given=given, quiet=True, callbacks=list(callbacks))


def run_threads(run_dir: Path) -> int | None:
    """The CPU threads a run trained with, from its newest checkpoint (None: not recorded)."""
    from cnnlab import files
    from cnnlab.errors import CnnlabError
    from cnnlab.run.checkpoints import list_checkpoints

    found = list_checkpoints(run_dir / "checkpoints")
    if not found:
        return None
    try:
        threads = files.read_json(found[-1]).get("threads")
    except (CnnlabError, AttributeError):  # a damaged record: the count is only reported
        return None
    return threads if isinstance(threads, int) and not isinstance(threads, bool) else None


def _eval_result(test: Mapping[str, Any]) -> EvalResult:
    """The :class:`EvalResult` a finished run's ``results.json["test"]`` holds."""
    from cnnlab.run.metrics import EvalResult

    per_class = [float("nan") if v is None else v for v in test["per_class"].values()]
    return EvalResult(
        test["count"], test["loss"], test["top1"], test["top5"], per_class, test["confusion"]
    )


# --- results --------------------------------------------------------------------------------------


def training_seconds(history: Sequence[Mapping[str, Any]]) -> float:
    """Seconds the run spent training: the sum of its epochs' times (its history).

    The same for a run trained now, resumed after a kill, or reused from an earlier invocation
    (whose ``RunResult.seconds`` is only what its last invocation spent). Validation and the
    final test are not included; an epoch interrupted mid-way counts its resumed part.
    """
    return float(sum(h.get("seconds", 0.0) for h in history))
