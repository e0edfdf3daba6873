"""The run directory: which files a training run writes, and the rules for reusing one.

Layout (every file written atomically, except the append-only ``metrics.jsonl``)::

    RUN_DIR/config.json          the resolved TrainConfig
    RUN_DIR/metrics.jsonl        one JSON object per finished epoch
    RUN_DIR/steps.jsonl          the step log: training loss at most twice a second
                                 (append-only, cnnlab.train.steplog; for live views)
    RUN_DIR/results.json         "status" (finished or failed, with its "reason"), test
                                 metrics, wall time, epochs and steps (written last)
    RUN_DIR/model.safetensors    final weights + RunMeta
    RUN_DIR/model_best.safetensors  the best epoch's weights by validation accuracy + RunMeta
    RUN_DIR/checkpoints/         the newest checkpoint pairs (step-XXXXXXXX.safetensors/.json)
    RUN_DIR/figures/             curves.png, lr.png, confusion.png

Training writes a run through :class:`RunFiles`, and everything that uses one (evaluation,
prediction, reports, ``cnnlab runs``, experiments, the studio) finds and reads its pieces through
it: this module owns the file names, and every read goes through the checked readers of
:mod:`cnnlab.run.records` (one line, ``damaged run DIR: FILE: what``, for a damaged file).
The rules for starting or resuming a run into a directory are training's
(:mod:`cnnlab.train.rundir`).
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from cnnlab.run import records

if TYPE_CHECKING:
    from cnnlab.run.config import TrainConfig
    from cnnlab.run.records import EpochRecord, RunResults, SplitsRecord

MODEL_FILE = "model.safetensors"
BEST_MODEL_FILE = "model_best.safetensors"  # the weights of the best epoch by validation accuracy
CHECKPOINT_DIR = "checkpoints"
SPLITS_FILE = "splits.json"  # the file lists of an image folder's splits
STEPS_FILE = "steps.jsonl"  # the step log (cnnlab.train.steplog)


@dataclass(frozen=True)
class RunFiles:
    """The paths of one run directory's files."""

    root: Path

    @property
    def config(self) -> Path:
        return self.root / "config.json"

    @property
    def metrics(self) -> Path:
        return self.root / "metrics.jsonl"

    @property
    def steps(self) -> Path:
        """The step log: one line per recorded training step (absent when it was off)."""
        return self.root / STEPS_FILE

    @property
    def results(self) -> Path:
        return self.root / "results.json"

    @property
    def model(self) -> Path:
        return self.root / MODEL_FILE

    @property
    def model_best(self) -> Path:
        """The weights of the epoch with the best validation accuracy so far."""
        return self.root / BEST_MODEL_FILE

    @property
    def checkpoints(self) -> Path:
        return self.root / CHECKPOINT_DIR

    @property
    def figures(self) -> Path:
        return self.root / "figures"

    @property
    def splits(self) -> Path:
        """An image folder's file lists (absent for named datasets)."""
        return self.root / SPLITS_FILE

    # --- reading: every file checked (cnnlab.run.records), DamagedRunError naming the field ---

    def read_config(self, resolved: bool = False) -> TrainConfig:
        """``config.json`` (``resolved``: with every recipe setting, as training writes it)."""
        return records.read_config(self.config, self.root, resolved)

    def read_epochs(self) -> list[EpochRecord]:
        """The per-epoch records of ``metrics.jsonl`` ([] when there are none yet)."""
        return records.read_history(self.metrics, self.root)

    def read_steps(self) -> list[dict[str, Any]]:
        """The step log's records ([] when there is none); a damaged line is skipped."""
        return records.read_steps(self.steps, self.root)[0]

    def read_outcome(self) -> RunResults | None:
        """``results.json``, or None while the run has neither finished nor failed."""
        return records.read_results(self.results, self.root)

    def read_splits(self) -> SplitsRecord | None:
        """``splits.json`` of an image folder run (None for named datasets)."""
        return records.read_splits(self.splits, self.root)

    def read_history(self) -> list[dict[str, Any]]:
        """:meth:`read_epochs` as the dicts training keeps in memory and checkpoints."""
        return [record.to_dict() for record in self.read_epochs()]

    def read_results(self) -> dict[str, Any] | None:
        """:meth:`read_outcome` as the JSON object training wrote (checked)."""
        outcome = self.read_outcome()
        return None if outcome is None else outcome.to_dict()

    def write_history(self, history: list[dict[str, Any]]) -> None:
        self.metrics.write_text("".join(json.dumps(h) + "\n" for h in history))

    def append_history(self, record: dict[str, Any]) -> None:
        with open(self.metrics, "a") as f:
            f.write(json.dumps(record) + "\n")
