"""Starting a run in a directory: where it goes by default, and the rules for reusing one.

The directory's layout is :class:`cnnlab.run.layout.RunFiles`; this module decides whether a new
run may start there, and which checkpoint ``--resume`` continues from.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

from cnnlab.errors import ConfigError
from cnnlab.files import remove_temporaries
from cnnlab.run.checkpoints import latest_valid_checkpoint
from cnnlab.run.config import TrainConfig, differences
from cnnlab.run.layout import RunFiles
from cnnlab.run.records import DamagedRunError

# Settings a resumed run may change: the number of epochs, where the schedule does not depend on
# it (a one-cycle or multistep schedule spreads itself over all the epochs).
RESUMABLE_CHANGES = {"plateau": {"epochs"}, "step": {"epochs"}, "constant": {"epochs"}}


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
        CheckpointError: the run's ``config.json`` is damaged (one line naming the setting).
    """
    files = RunFiles(Path(config.out) if config.out else default_run_dir(config))
    run_dir = files.root
    if not config.resume:
        if os.path.lexists(files.config) or any(files.checkpoints.glob("step-*")):
            raise ConfigError(
                f"{run_dir} already holds a run: pass --resume to continue it, or --out NEW_DIR"
            )
        return RunStart(files, None, ())
    if not os.path.lexists(files.config):  # a broken link or a FIFO is a damaged run, not none
        if any(files.checkpoints.glob("step-*")):  # training writes config.json before them
            raise DamagedRunError(
                run_dir,
                files.config.name,
                "missing, though checkpoints/ holds checkpoints: restore it, or start a new run "
                "with --out",
            )
        note = f"note: {run_dir} holds no run yet; --resume starts it from the beginning"
        return RunStart(files, None, (note,))
    old = files.read_config()  # DamagedRunError: one line naming the setting
    allowed = RESUMABLE_CHANGES.get(config.schedule, set())
    diffs = [d for d in differences(old, config) if d.split(":")[0] not in allowed]
    if diffs:
        raise ConfigError(
            f"cannot resume {run_dir}: its config differs ({'; '.join(diffs)}); "
            "resume with the same settings or start a new run with --out"
        )
    if clean:  # files a killed run was writing when it died
        remove_temporaries(run_dir)
        remove_temporaries(files.checkpoints)
    latest, rejected = latest_valid_checkpoint(files.checkpoints)
    notes = [f"note: skipping damaged checkpoint: {reason}" for reason in rejected]
    if latest is None:
        notes.append(f"note: {run_dir} has no valid checkpoint; --resume starts from the beginning")
    return RunStart(files, latest, tuple(notes))
