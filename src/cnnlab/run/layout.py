"""The run directory: which files a training run writes, and the rules for reusing one.

Layout (every file written atomically, except the append-only ``metrics.jsonl``)::

    RUN_DIR/config.json          the resolved TrainConfig
    RUN_DIR/metrics.jsonl        one JSON object per finished epoch
    RUN_DIR/results.json         "status" (finished or failed, with its "reason"), test
                                 metrics, wall time, epochs and steps (written last)
    RUN_DIR/model.safetensors    final weights + RunMeta
    RUN_DIR/model_best.safetensors  the best epoch's weights by validation accuracy + RunMeta
    RUN_DIR/checkpoints/         the newest checkpoint pairs (step-XXXXXXXX.safetensors/.json)
    RUN_DIR/figures/             curves.png, lr.png, confusion.png

Training writes a run through :class:`RunFiles`, and everything that uses one (evaluation,
prediction, reports, ``cnnlab runs``, experiments, the studio) finds its pieces through it: this
module owns the file names. The rules for starting or resuming a run into a directory are
training's (:mod:`cnnlab.train.rundir`).
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

MODEL_FILE = "model.safetensors"
BEST_MODEL_FILE = "model_best.safetensors"  # the weights of the best epoch by validation accuracy
CHECKPOINT_DIR = "checkpoints"
SPLITS_FILE = "splits.json"  # the file lists of an image folder's splits


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

    def read_history(self) -> list[dict[str, Any]]:
        """The per-epoch records of ``metrics.jsonl`` ([] when there are none yet)."""
        if not self.metrics.exists():
            return []
        return [json.loads(line) for line in self.metrics.read_text().splitlines() if line]

    def read_results(self) -> dict[str, Any] | None:
        """``results.json``, or None while the run has neither finished nor failed."""
        return json.loads(self.results.read_text()) if self.results.exists() else None

    def write_history(self, history: list[dict[str, Any]]) -> None:
        self.metrics.write_text("".join(json.dumps(h) + "\n" for h in history))

    def append_history(self, record: dict[str, Any]) -> None:
        with open(self.metrics, "a") as f:
            f.write(json.dumps(record) + "\n")
