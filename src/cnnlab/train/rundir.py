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

Reports, ``cnnlab runs`` and experiments find a run's pieces through :class:`RunFiles`.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from cnnlab.errors import ConfigError
from cnnlab.train import checkpoint as ckpt
from cnnlab.train.config import TrainConfig, differences, from_dict

# Settings a resumed run may change: the number of epochs, where the schedule does not depend on
# it (a one-cycle or multistep schedule spreads itself over all the epochs).
RESUMABLE_CHANGES = {"plateau": {"epochs"}, "step": {"epochs"}, "constant": {"epochs"}}


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
        return self.root / ckpt.MODEL_FILE

    @property
    def model_best(self) -> Path:
        """The weights of the epoch with the best validation accuracy so far."""
        return self.root / ckpt.BEST_MODEL_FILE

    @property
    def checkpoints(self) -> Path:
        return self.root / ckpt.CHECKPOINT_DIR

    @property
    def figures(self) -> Path:
        return self.root / "figures"

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


def default_run_dir(config: TrainConfig) -> Path:
    return Path("runs") / f"{config.model}-{Path(str(config.data)).name}"


@dataclass(frozen=True)
class RunStart:
    """How a run begins: its files, the checkpoint to resume from, and notes for the user."""

    files: RunFiles
    resume_from: Path | None
    notes: tuple[str, ...]


def check_run_dir(config: TrainConfig, clean: bool = True) -> RunStart:
    """Check the run directory against ``config`` and find the checkpoint to resume from.

    Args:
        config: the resolved config (``out``, ``resume`` and the settings to compare).
        clean: remove temporary files a killed run left (rank 0 only: one writer).

    Raises:
        ConfigError: a new run into a directory that holds one, or a resume whose settings differ.
    """
    files = RunFiles(Path(config.out) if config.out else default_run_dir(config))
    run_dir = files.root
    if not config.resume:
        if files.config.exists() or any(files.checkpoints.glob("step-*")):
            raise ConfigError(
                f"{run_dir} already holds a run: pass --resume to continue it, or --out NEW_DIR"
            )
        return RunStart(files, None, ())
    if not files.config.exists():
        note = f"note: {run_dir} holds no run yet; --resume starts it from the beginning"
        return RunStart(files, None, (note,))
    try:
        old = from_dict(json.loads(files.config.read_text()))
    except (json.JSONDecodeError, TypeError) as err:
        raise ConfigError(
            f"{files.config} is damaged ({err}): start a new run with --out"
        ) from None
    allowed = RESUMABLE_CHANGES.get(config.schedule, set())
    diffs = [d for d in differences(old, config) if d.split(":")[0] not in allowed]
    if diffs:
        raise ConfigError(
            f"cannot resume {run_dir}: its config differs ({'; '.join(diffs)}); "
            "resume with the same settings or start a new run with --out"
        )
    if clean:  # files a killed run was writing when it died
        ckpt.remove_temporaries(run_dir)
        ckpt.remove_temporaries(files.checkpoints)
    latest, rejected = ckpt.latest_valid_checkpoint(files.checkpoints)
    notes = [f"note: skipping damaged checkpoint: {reason}" for reason in rejected]
    if latest is None:
        notes.append(f"note: {run_dir} has no valid checkpoint; --resume starts from the beginning")
    return RunStart(files, latest, tuple(notes))
