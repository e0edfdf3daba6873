"""The step log: training loss at a bounded rate, for a live view of a run (``steps.jsonl``).

``metrics.jsonl`` gets one line per epoch, which is minutes apart on a real run; a page that
watches training (``cnnlab studio``) wants the loss as it moves. :class:`StepLog` appends one
JSON line per recorded step to ``RUN_DIR/steps.jsonl``::

    {"step": 120, "epoch": 0.256, "loss": 0.8123, "lr": 0.05, "t": 1767000000.123}

``step`` counts optimizer steps (as ``metrics.jsonl`` does), ``epoch`` is ``step`` over the
steps of one epoch (so epoch ``k`` of ``metrics.jsonl`` ends at ``epoch == k`` here: both curves
share one axis), ``loss`` is that one batch's training loss, ``lr`` the learning rate the step
used and ``t`` the Unix time it was recorded.

The rate is bounded: a line at most every :data:`MIN_SECONDS` (the first step is always
written), each written and flushed at once, so a watcher sees it within a poll and the log of a
day-long run stays a few megabytes. The loss is the float the step already returned, so logging
adds no device synchronisation (``benchmarks/results/studio_steplog.json`` measures the cost).
A resumed run drops the lines past its checkpoint's step first: those steps are trained again.
Lines are read back by :func:`cnnlab.run.records.read_steps`, which skips a damaged line.
"""

from __future__ import annotations

import json
import time
from typing import IO, TYPE_CHECKING

from cnnlab.run.records import read_steps
from cnnlab.train.callbacks import Callback

if TYPE_CHECKING:
    from cnnlab.train.step import StepResult
    from cnnlab.train.trainer import Trainer

MIN_SECONDS = 0.5  # at most two lines a second: enough for a live curve, bounded for long runs


class StepLog(Callback):
    """Append ``{"step", "epoch", "loss", "lr", "t"}`` to ``steps.jsonl`` (rank 0 only).

    Args:
        min_seconds: the least time between two lines.
    """

    def __init__(self, min_seconds: float = MIN_SECONDS) -> None:
        self.min_seconds = min_seconds
        self.file: IO[str] | None = None
        self.last = -float("inf")  # time.monotonic() of the last line

    def on_train_start(self, trainer: Trainer) -> None:
        if not trainer.dist.is_main:
            return
        path = trainer.files.steps
        done = trainer.progress.step
        kept = ""
        if done > 0:  # resumed: the steps after the checkpoint are trained again
            records, _ = read_steps(path, trainer.files.root)
            kept = "".join(json.dumps(r) + "\n" for r in records if r["step"] <= done)
        path.write_text(kept)
        self.file = open(path, "a")  # noqa: SIM115 -- open for the whole run, closed at its end

    def on_step_end(self, trainer: Trainer, result: StepResult) -> None:
        now = time.monotonic()
        if self.file is None or now - self.last < self.min_seconds:
            return
        self.last = now
        p = trainer.progress
        record = {
            "step": p.step,
            "epoch": round(p.step / max(1, trainer.steps_per_epoch), 4),
            "loss": result.loss,
            "lr": trainer.optimizer.param_groups[0]["lr"],
            "t": round(time.time(), 3),
        }
        self.file.write(json.dumps(record) + "\n")
        self.file.flush()

    def on_train_end(self, trainer: Trainer, result: object) -> None:
        self.close()

    def close(self) -> None:
        if self.file is not None:
            self.file.close()
            self.file = None

    def __del__(self) -> None:  # an interrupted run never reaches on_train_end
        self.close()
