"""A run's checkpoints, read side: which pairs exist, which are valid, which file a path means.

A checkpoint is a pair ``checkpoints/step-XXXXXXXX.safetensors`` + ``.json``: the tensors, and a
JSON record written last that holds the size and SHA-256 of its tensors file, so a pair is valid
only when both halves were completely written. The record is checked field by field as it is
read (:class:`~cnnlab.run.records.CheckpointRecord`), so an edited record is refused like a torn
one, and then the pair against itself (:data:`CHECKS`). Training writes the pairs
(:mod:`cnnlab.train.checkpoint`); evaluation, prediction, reports and ``--resume`` find and
check them here.
"""

from __future__ import annotations

import os
import re
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from cnnlab import files
from cnnlab.errors import CheckpointError
from cnnlab.formats import printable
from cnnlab.run.layout import CHECKPOINT_DIR, MODEL_FILE
from cnnlab.run.records import CheckpointRecord, DamagedRunError, read_checkpoint_record

if TYPE_CHECKING:
    import torch

# cnnlab.run.tensorfile (which imports torch) is imported by the checks that read tensors, not
# here: listing a run's checkpoints (`cnnlab runs`, the studio's runs list) needs no torch.

_STEP_NAME = re.compile(r"^step-(\d{8,})\.json$")
# Weight files of other tools, named in the refusal so the user knows why they were not used.
_FOREIGN_SUFFIXES = frozenset({".pt", ".pth", ".pkl", ".pickle", ".ckpt", ".bin"})


def checkpoint_name(step: int) -> str:
    return f"step-{step:08d}"


def list_checkpoints(directory: Path) -> list[Path]:
    """JSON halves of the checkpoints in ``directory``, oldest first (by step)."""
    directory = Path(directory)
    try:
        names = list(directory.iterdir()) if directory.is_dir() else []
    except OSError:  # unreadable: no checkpoint can be used from it
        return []
    found = [(int(m.group(1)), p) for p in names if (m := _STEP_NAME.match(p.name))]
    return [p for _, p in sorted(found)]


@dataclass(frozen=True)
class CheckpointPair:
    """A checkpoint's two halves and its record, while they are checked.

    Attributes:
        record_path: the JSON half (``step-XXXXXXXX.json``).
        record: its fields, each of the right type (:class:`~cnnlab.run.records.CheckpointRecord`).
        run_dir: the run directory it belongs to (for messages).
    """

    record_path: Path
    record: CheckpointRecord
    run_dir: Path

    @property
    def tensors_path(self) -> Path:
        return self.record_path.with_suffix(".safetensors")

    @property
    def step(self) -> int:
        """The step the file name says."""
        return int(_STEP_NAME.match(self.record_path.name).group(1))  # type: ignore[union-attr]

    def damaged(self, what: str) -> DamagedRunError:
        """The error of a check that failed: names the run, this checkpoint and ``what``."""
        file = str(self.record_path.relative_to(self.run_dir))
        return DamagedRunError(self.run_dir, file, what)


def _record_format(pair: CheckpointPair) -> None:
    from cnnlab.run.tensorfile import CHECKPOINT_FORMAT

    if pair.record.format != CHECKPOINT_FORMAT:
        shown = printable(repr(pair.record.format), 60)
        raise pair.damaged(f"not a cnnlab checkpoint record (format {shown})")


def _record_digest(pair: CheckpointPair) -> None:
    from cnnlab.run.tensorfile import record_digest

    recorded = pair.record.record_sha256
    if recorded is not None and recorded != record_digest(pair.record.raw):
        raise pair.damaged("the record was changed after it was written (its SHA-256 differs)")


def _record_step(pair: CheckpointPair) -> None:
    if pair.record.step != pair.step:
        raise pair.damaged(f"records step {pair.record.step}, not {pair.step}")


def _tensors_file(pair: CheckpointPair) -> None:
    if pair.record.tensors_file != pair.tensors_path.name:
        raise pair.damaged(
            f"names tensors file {printable(repr(pair.record.tensors_file), 80)}, not "
            f"{pair.tensors_path.name}"
        )
    if not pair.tensors_path.is_file():
        gone = not os.path.lexists(pair.tensors_path)
        raise pair.damaged(
            f"its {pair.tensors_path.name} is {'missing' if gone else 'not a regular file'}"
        )


def _tensors_size(pair: CheckpointPair) -> None:
    if pair.tensors_path.stat().st_size != pair.record.tensors_bytes:
        raise pair.damaged(f"{pair.tensors_path.name}: size differs from the record (truncated?)")


def _tensors_header(pair: CheckpointPair) -> None:
    from cnnlab.run.tensorfile import read_header

    meta = read_header(pair.tensors_path)
    if meta.get("step") != pair.step:
        raise pair.damaged(
            f"{pair.tensors_path.name}: header says step {printable(repr(meta.get('step')), 40)},"
            f" not {pair.step}"
        )


def _tensors_digest(pair: CheckpointPair) -> None:
    if files.sha256_file(pair.tensors_path, error=CheckpointError) != pair.record.tensors_sha256:
        raise pair.damaged(f"{pair.tensors_path.name}: SHA-256 differs from the record (damaged)")


# What makes a pair valid, cheapest first. The record's own fields were checked as it was read
# (cnnlab.run.records), so an edited record fails like a torn one, and its own digest catches an
# edit that is still well-typed (an epoch number changed by hand).
CHECKS: tuple[Callable[[CheckpointPair], None], ...] = (
    _record_format,
    _record_digest,
    _record_step,
    _tensors_file,
    _tensors_size,
    _tensors_header,
    _tensors_digest,
)


def _run_dir_of(json_path: Path) -> Path:
    """The run a checkpoint belongs to: the folder above ``checkpoints/``."""
    parent = json_path.parent
    return parent.parent if parent.name == CHECKPOINT_DIR else parent


def check_checkpoint(json_path: Path) -> CheckpointRecord:
    """Check a checkpoint pair completely: every field of its record, then :data:`CHECKS`.

    Raises:
        DamagedRunError: the record is unreadable or holds a wrong value, or a check failed;
            one line naming the run, the checkpoint and what is wrong.
    """
    json_path = Path(json_path)
    run_dir = _run_dir_of(json_path)
    record = read_checkpoint_record(json_path, run_dir)
    pair = CheckpointPair(json_path, record, run_dir)
    for check in CHECKS:
        try:
            check(pair)
        except DamagedRunError:
            raise
        except CheckpointError as err:  # the tensors file's own reader, naming it by its path
            what = str(err).replace(str(pair.tensors_path), pair.tensors_path.name, 1)
            raise pair.damaged(what) from None
        except OSError as err:
            raise pair.damaged(f"{pair.tensors_path.name}: {err.strerror or err}") from None
    return record


def validate_checkpoint(json_path: Path) -> dict[str, Any]:
    """:func:`check_checkpoint`, returning the record as the JSON object it was read from."""
    return check_checkpoint(json_path).raw


def latest_valid_checkpoint(
    directory: Path, before: int | None = None
) -> tuple[Path | None, list[str]]:
    """The newest checkpoint that passes :func:`check_checkpoint`, and why newer ones failed.

    Args:
        directory: a run's ``checkpoints/``.
        before: consider only checkpoints of fewer steps (the fallback when one that passed
            could not be loaded after all).
    """
    rejected = []
    for json_path in reversed(list_checkpoints(directory)):
        if before is not None and checkpoint_step(json_path) >= before:
            continue
        try:
            check_checkpoint(json_path)
        except CheckpointError as err:
            rejected.append(str(err))
            continue
        return json_path, rejected
    return None, rejected


def read_checkpoint(json_path: Path) -> tuple[dict[str, torch.Tensor], CheckpointRecord]:
    """The tensors and the checked record of a valid checkpoint pair."""
    from cnnlab.run.tensorfile import read_tensors

    record = check_checkpoint(json_path)
    return read_tensors(Path(json_path).with_suffix(".safetensors")), record


def load_checkpoint(json_path: Path) -> tuple[dict[str, torch.Tensor], dict[str, Any]]:
    """:func:`read_checkpoint`, with the record as the JSON object it was read from."""
    tensors, record = read_checkpoint(json_path)
    return tensors, record.raw


def checkpoint_step(json_path: Path) -> int:
    """The step a checkpoint's file name says (``step-00000040.json`` -> 40)."""
    return int(_STEP_NAME.match(Path(json_path).name).group(1))  # type: ignore[union-attr]


def resolve_model_file(path: Path) -> Path:
    """The weights file a user means by ``path``: a file, or a run directory's model/checkpoint.

    A checkpoint (either half, or the newest of a run without a final model) is checked as a
    pair first (:func:`check_checkpoint`), so a torn or edited one is refused, never loaded.
    """
    path = Path(path)
    if path.is_dir():
        final = path / MODEL_FILE
        if os.path.lexists(final):  # even a broken link: say so rather than load something else
            return final
        latest, _ = latest_valid_checkpoint(path / CHECKPOINT_DIR)
        if latest is not None:
            return latest.with_suffix(".safetensors")
        raise CheckpointError(
            f"{printable(str(path))} holds no {MODEL_FILE} and no valid checkpoint"
            f"{_foreign_hint(path)}: pass a run directory written by `cnnlab train`"
        )
    if _STEP_NAME.match(path.with_suffix(".json").name) and path.suffix in (
        ".json",
        ".safetensors",
    ):
        record = path.with_suffix(".json")
        if path.suffix == ".json" or os.path.lexists(record):
            check_checkpoint(record)
        return path.with_suffix(".safetensors")
    return path


def _foreign_hint(path: Path) -> str:
    """Names the weight files of other tools in ``path``, which cnnlab never loads."""
    try:
        foreign = sorted(p.name for p in path.iterdir() if p.suffix in _FOREIGN_SUFFIXES)
    except OSError:
        return ""
    if not foreign:
        return ""
    return (
        f" ({printable(', '.join(foreign))}: pickle/torch.save files, which cnnlab never loads "
        "because unpickling can run code)"
    )
