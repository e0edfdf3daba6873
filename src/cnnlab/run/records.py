"""Typed, validated readers of the files in a run directory.

Any file a run holds may be damaged or edited: a full disk, a half-copied folder, a hand edit, a
crafted file. A reader that trusts one fails far from the cause -- a traceback in a table
renderer, a crash in the middle of ``--resume``, a number that is silently wrong -- so each file is
read here, once, through :func:`cnnlab.files.read_json` (regular files only, bounded size, never
a hang), into a small frozen dataclass whose every field has been checked: its type, its range,
and its agreement with the other fields (a confusion matrix is square, its total is the image
count, its trace gives top-1). A file that fails raises :class:`DamagedRunError`, one line that
names the run, the file and the field: ``damaged run runs/lenet5: results.json: test.top1 must be
a number, not a string``.

* ``config.json`` -> :class:`~cnnlab.run.config.TrainConfig` (:func:`read_config`; the settings
  are checked by :func:`cnnlab.run.config.from_dict`).
* ``metrics.jsonl`` -> one :class:`EpochRecord` per line (:func:`read_history`).
* ``results.json`` -> :class:`RunResults`, with :class:`TestMetrics` and :class:`BestEpoch`
  (:func:`read_results`).
* a checkpoint's JSON half -> :class:`CheckpointRecord`, with the :class:`TrainingRecord` that
  ``--resume`` restores (:func:`read_checkpoint_record`).
* ``splits.json`` -> :class:`SplitsRecord` (:func:`read_splits`).

The readers take a file's path and its run directory (for the message);
:class:`~cnnlab.run.layout.RunFiles` knows where each file lives and calls them. A value from a
file that ends up in a message is passed through :func:`cnnlab.formats.printable`, so a crafted
file cannot print a second line.
"""

from __future__ import annotations

import dataclasses
import json
import math
import os
import re
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from cnnlab import files
from cnnlab.errors import CheckpointError, CnnlabError
from cnnlab.formats import printable
from cnnlab.run.config import TrainConfig, from_dict, recipe_fields

__all__ = [
    "BestEpoch",
    "CheckpointRecord",
    "DamagedRunError",
    "EpochRecord",
    "EpochWatch",
    "OptimizerRecord",
    "RunResults",
    "SplitsRecord",
    "TestMetrics",
    "TrainingRecord",
    "read_checkpoint_record",
    "read_config",
    "read_history",
    "read_results",
    "read_splits",
]

RESULT_STATUSES = ("finished", "failed")
# Recipe settings a resolved config may leave unset: the model's own dropout, the data's size.
UNSET_AFTER_RESOLVE = frozenset({"dropout", "image_size"})
TOLERANCE = 1e-9  # how far a derived figure (top-1 from the confusion matrix) may be off
_SHA256 = re.compile(r"^[0-9a-f]{64}$")


class DamagedRunError(CheckpointError):
    """A run file that is unreadable, or holds a value of the wrong type, range or shape.

    Attributes:
        run_dir: the run directory.
        file: the file, relative to it (``results.json``, ``checkpoints/step-00000040.json``).
        what: what is wrong, naming the field.
    """

    def __init__(self, run_dir: Path, file: str, what: str) -> None:
        self.run_dir, self.file, self.what = Path(run_dir), file, what
        super().__init__(f"damaged run {printable(str(run_dir))}: {self.detail}")

    @property
    def detail(self) -> str:
        """``FILE: what is wrong``, without the run directory (a table row names it already)."""
        return f"{printable(self.file)}: {self.what}"


class _Bad(Exception):
    """What is wrong with a value; the reader that caught it adds the run and the file."""


# --- checking JSON values ------------------------------------------------------------------------

_REQUIRED = object()


def _kind(value: Any) -> str:
    """What a JSON value is, for a message: ``a list``, ``null``, ``a string``."""
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "true/false"
    names = {
        int: "an integer",
        float: "a number",
        str: "a string",
        list: "a list",
        dict: "an object",
    }
    return names.get(type(value), "a value")


def _shown(value: Any) -> str:
    return printable(repr(value), 60)


def _object(value: Any, name: str) -> dict[str, Any]:
    """``value`` if it is a JSON object (``name`` "": the whole file)."""
    if not isinstance(value, dict):
        raise _Bad(f"{name or 'the file'} must be a JSON object, not {_kind(value)}")
    return value


def _list(value: Any, name: str, length: int | None = None) -> list[Any]:
    if not isinstance(value, list):
        raise _Bad(f"{name} must be a list, not {_kind(value)}")
    if length is not None and len(value) != length:
        raise _Bad(f"{name} must hold {length} values, not {len(value)}")
    return value


def _string(value: Any, name: str) -> str:
    if not isinstance(value, str):
        raise _Bad(f"{name} must be a string, not {_kind(value)}")
    return value


def _bool(value: Any, name: str) -> bool:
    if not isinstance(value, bool):
        raise _Bad(f"{name} must be true or false, not {_kind(value)}")
    return value


def _int(value: Any, name: str, low: int | None = 0, high: int | None = None) -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        raise _Bad(f"{name} must be an integer, not {_kind(value)}")
    if (low is not None and value < low) or (high is not None and value > high):
        raise _Bad(f"{name} is {_shown(value)}, out of range ({_range(low, high)})")
    return value


def _number(
    value: Any,
    name: str,
    low: float | None = None,
    high: float | None = None,
    finite: bool = True,
) -> float:
    """A JSON number as a float; NaN and infinities only where ``finite`` is False."""
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise _Bad(f"{name} must be a number, not {_kind(value)}")
    try:
        value = float(value)
    except OverflowError:  # an integer of hundreds of digits
        raise _Bad(f"{name} is {_shown(value)}, out of range") from None
    if math.isnan(value) or math.isinf(value):
        if finite:
            raise _Bad(f"{name} must be a finite number, not {value}")
        if math.isnan(value):
            return value
    if (low is not None and value < low) or (high is not None and value > high):
        raise _Bad(f"{name} is {_shown(value)}, out of range ({_range(low, high)})")
    return value


def _sha256(value: Any, name: str) -> str:
    if not (isinstance(value, str) and _SHA256.match(value)):
        raise _Bad(f"{name} is {_shown(value)}, not a SHA-256 in hex")
    return value


def _digests(value: Any, name: str) -> dict[str, str]:
    """``files``: names of files in the run directory (no folders) to their SHA-256."""
    data = _object(value, name)
    for key in data:
        if "/" in key or "\\" in key or key in ("", ".", ".."):
            raise _Bad(f"{name} names {_shown(key)}, not a file of the run directory")
    return {key: _sha256(data[key], _where(name, key)) for key in data}


def _fraction(value: Any, name: str) -> float:
    return _number(value, name, 0.0, 1.0)


def _range(low: float | None, high: float | None) -> str:
    if high is None:
        return f"at least {low}"
    return f"at most {high}" if low is None else f"{low} to {high}"


def _optional(check: Callable[..., Any]) -> Callable[..., Any]:
    """``check`` that lets null through."""

    def checked(value: Any, name: str, *args: Any, **kwargs: Any) -> Any:
        return None if value is None else check(value, name, *args, **kwargs)

    return checked


def _field(
    data: dict[str, Any],
    key: str,
    prefix: str,
    check: Callable[..., Any],
    *args: Any,
    default: Any = _REQUIRED,
    **kwargs: Any,
) -> Any:
    """``data[key]`` checked by ``check`` (named ``prefix.key``), or ``default`` when absent."""
    name = _where(prefix, key)
    if key not in data:
        if default is _REQUIRED:
            raise _Bad(f"{name} is missing")
        return default
    return check(data[key], name, *args, **kwargs)


def _where(prefix: str, key: str | int) -> str:
    """The name of a field: ``test.top1``, ``history[2]``, ``line 3: lr``."""
    if isinstance(key, int):
        return f"{prefix}[{key}]"
    if not prefix:
        return key
    return f"{prefix}: {key}" if " " in prefix else f"{prefix}.{key}"


# --- metrics.jsonl -------------------------------------------------------------------------------


@dataclass(frozen=True)
class EpochRecord:
    """One finished epoch, one line of ``metrics.jsonl`` (and of a checkpoint's history).

    Losses are mean cross-entropies (NaN or infinite where the model diverged, never negative);
    accuracies are fractions; ``lr`` is the learning rate of the epoch's last step.
    """

    epoch: int  # 1-based
    step: int  # optimizer steps done at its end
    train_loss: float
    train_acc: float
    val_loss: float
    val_acc: float
    lr: float
    seconds: float
    images_per_s: float
    test_acc: float | None = None  # --test-every-epoch only, as the next two
    test_seconds: float | None = None
    ended_at: float | None = None  # Unix time

    @classmethod
    def from_json(cls, data: Any, name: str = "") -> EpochRecord:
        """Check one record (``name``: where it is, for the message).

        Raises:
            _Bad: a field is missing or of the wrong type or range.
        """
        data = _object(data, name or "the record")
        loss = {"low": 0.0, "finite": False}
        return cls(
            epoch=_field(data, "epoch", name, _int, 1),
            step=_field(data, "step", name, _int, 1),
            train_loss=_field(data, "train_loss", name, _number, **loss),
            train_acc=_field(data, "train_acc", name, _fraction),
            val_loss=_field(data, "val_loss", name, _number, **loss),
            val_acc=_field(data, "val_acc", name, _fraction),
            lr=_field(data, "lr", name, _number, 0.0),
            seconds=_field(data, "seconds", name, _number, 0.0),
            images_per_s=_field(data, "images_per_s", name, _number, 0.0),
            test_acc=_field(data, "test_acc", name, _optional(_fraction), default=None),
            test_seconds=_field(data, "test_seconds", name, _optional(_number), 0.0, default=None),
            ended_at=_field(data, "ended_at", name, _optional(_number), 0.0, default=None),
        )

    def to_dict(self) -> dict[str, Any]:
        """The JSON object training writes (the optional fields only when set)."""
        return {k: v for k, v in dataclasses.asdict(self).items() if v is not None}


def check_history(records: list[Any], name: str = "") -> list[EpochRecord]:
    """Check a list of epoch records: each one, and that epochs count 1, 2, ... and steps grow.

    Raises:
        _Bad: as :meth:`EpochRecord.from_json`, or out of order.
    """
    out: list[EpochRecord] = []
    for i, data in enumerate(records):
        where = _where(name, i) if name else f"line {i + 1}"
        record = EpochRecord.from_json(data, where)
        if record.epoch != i + 1:
            raise _Bad(f"{where}: epoch is {record.epoch}, not {i + 1}: records are out of order")
        if out and record.step <= out[-1].step:
            raise _Bad(f"{where}: step {record.step} is not after {out[-1].step}")
        out.append(record)
    return out


def read_history(path: Path, run_dir: Path) -> list[EpochRecord]:
    """``metrics.jsonl``: one checked record per line ([] when the file is absent).

    Raises:
        DamagedRunError: unreadable, a line that is not a JSON object, or a record out of range.
    """
    file = _relative(path, run_dir)
    if not _present(path):
        return []
    data = _read_bytes(path, run_dir, limit="jsonl")
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError:
        raise DamagedRunError(run_dir, file, "not UTF-8 text") from None
    lines = text.split("\n")
    if lines[-1] == "":  # the newline that ends the last record
        lines.pop()
    records = []
    for n, line in enumerate(lines, 1):
        try:
            records.append(json.loads(line))
        except (ValueError, RecursionError):
            raise DamagedRunError(run_dir, file, f"line {n} is not a JSON object") from None
    return _checked(run_dir, file, check_history, records)


# --- steps.jsonl (the step log, cnnlab.train.steplog) --------------------------------------------

STEP_LOG = "steps.jsonl"


def check_step(value: Any, name: str = "step record") -> dict[str, Any]:
    """One line of ``steps.jsonl``: a step count, its epoch, a finite loss and lr, a time."""
    data = _object(value, name)
    return {
        "step": _field(data, "step", name, _int, 1),
        "epoch": _field(data, "epoch", name, _number, 0),
        "loss": _field(data, "loss", name, _number),
        "lr": _field(data, "lr", name, _number, 0),
        "t": _field(data, "t", name, _number, 0),
    }


def read_steps(path: Path, run_dir: Path, offset: int = 0) -> tuple[list[dict[str, Any]], int]:
    """The step log from byte ``offset``: its checked records and the offset to read on from.

    Only complete lines count (a line being written is read at the next call, from the returned
    offset). A line that is not a valid record is skipped, never an error: the log is a live
    view, and one torn or edited line must not hide the others. A missing, unreadable or
    non-regular file reads as no records.
    """
    try:
        with files.open_regular(path, what=STEP_LOG, limit="jsonl") as f:
            f.seek(offset)
            data = f.read()
    except (CnnlabError, OSError):
        return [], offset
    end = data.rfind(b"\n") + 1  # past the last complete line
    records = []
    for line in data[:end].split(b"\n")[:-1]:
        try:
            records.append(check_step(json.loads(line)))
        except (ValueError, RecursionError, _Bad):
            continue
    return records, offset + end


# --- results.json --------------------------------------------------------------------------------


@dataclass(frozen=True)
class TestMetrics:
    """The test evaluation at the end of training (:class:`~cnnlab.run.metrics.EvalResult`).

    Attributes:
        count: test images.
        top1, top5: accuracies (fractions); top-1 is the confusion matrix's trace over ``count``.
        loss: mean cross-entropy.
        per_class: ``(class name, recall)`` in label order; recall is None for a class without
            test images.
        confusion: ``confusion[true][predicted]`` counts, K x K for the K classes.
    """

    count: int
    top1: float
    top5: float
    loss: float
    per_class: tuple[tuple[str, float | None], ...]
    confusion: tuple[tuple[int, ...], ...]

    @property
    def classes(self) -> tuple[str, ...]:
        return tuple(name for name, _ in self.per_class)

    @classmethod
    def from_json(cls, data: Any, name: str = "test") -> TestMetrics:
        data = _object(data, name)
        per_class = _field(data, "per_class", name, _object)
        k = len(per_class)
        if k == 0:
            raise _Bad(f"{name}.per_class names no class")
        recalls = tuple(
            (label, _optional(_fraction)(value, f"{name}.per_class[{_shown(label)}]"))
            for label, value in per_class.items()
        )
        rows = _field(data, "confusion", name, _list, k)
        confusion = tuple(
            tuple(
                _int(c, f"{name}.confusion[{i}][{j}]")
                for j, c in enumerate(_list(row, f"{name}.confusion[{i}]", k))
            )
            for i, row in enumerate(rows)
        )
        metrics = cls(
            count=_field(data, "count", name, _int),
            top1=_field(data, "top1", name, _fraction),
            top5=_field(data, "top5", name, _fraction),
            loss=_field(data, "loss", name, _number, 0.0),
            per_class=recalls,
            confusion=confusion,
        )
        metrics._check_agreement(name)
        return metrics

    def _check_agreement(self, name: str) -> None:
        """The figures derived from the confusion matrix are the ones recorded."""
        total = sum(map(sum, self.confusion))
        if total != self.count:
            raise _Bad(f"{name}.count is {self.count} but the confusion matrix holds {total}")
        top1 = sum(self.confusion[i][i] for i in range(len(self.confusion))) / max(total, 1)
        if abs(top1 - self.top1) > TOLERANCE:
            raise _Bad(f"{name}.top1 is {self.top1} but the confusion matrix gives {top1}")
        if self.top5 < self.top1 - TOLERANCE:
            raise _Bad(f"{name}.top5 ({self.top5}) is below top1 ({self.top1})")
        for i, ((label, recall), row) in enumerate(
            zip(self.per_class, self.confusion, strict=True)
        ):
            want = self.confusion[i][i] / sum(row) if sum(row) else None
            if (want is None) != (recall is None) or (
                want is not None and abs(want - recall) > TOLERANCE  # type: ignore[operator]
            ):
                raise _Bad(
                    f"{name}.per_class[{_shown(label)}] is {recall} but the confusion matrix "
                    f"gives {want}"
                )

    def to_dict(self) -> dict[str, Any]:
        """The JSON object training writes under ``"test"``."""
        return {
            "count": self.count,
            "top1": self.top1,
            "top5": self.top5,
            "loss": self.loss,
            "per_class": dict(self.per_class),
            "confusion": [list(row) for row in self.confusion],
        }


@dataclass(frozen=True)
class BestEpoch:
    """The epoch with the best validation accuracy (its weights: ``model_best.safetensors``)."""

    epoch: int
    val_acc: float | None

    @classmethod
    def from_json(cls, data: Any, name: str = "best") -> BestEpoch:
        data = _object(data, name)
        return cls(
            epoch=_field(data, "epoch", name, _int),
            val_acc=_field(data, "val_acc", name, _optional(_fraction)),
        )


@dataclass(frozen=True)
class RunResults:
    """``results.json``: how a run ended, written last.

    Attributes:
        status: ``finished`` (tested, final model written) or ``failed`` (stopped on purpose).
        reason: why a run failed (text from the file: print it through
            :func:`~cnnlab.formats.printable`).
        test: the test evaluation of a finished run.
        seconds: wall time of the whole run.
        epochs, epochs_done, steps: epochs it was set to train, epochs and steps done.
        best: the best epoch by validation accuracy.
        stopped_early: ``--early-stop`` ended it before its last epoch.
        files: the SHA-256 each weights file of a finished run records in itself
            (:func:`~cnnlab.run.tensorfile.tensors_digest`), by file name: whoever reads the
            file compares (a file swapped for another, or one that lost its digest, is damaged).
    """

    status: str
    reason: str = ""
    test: TestMetrics | None = None
    seconds: float | None = None
    epochs: int | None = None
    epochs_done: int | None = None
    steps: int | None = None
    best: BestEpoch | None = None
    stopped_early: bool = False
    files: dict[str, str] = field(default_factory=dict)

    @classmethod
    def from_json(cls, data: Any) -> RunResults:
        data = _object(data, "")
        # Runs written before "status" existed were all finished ones.
        status = _field(data, "status", "", _string, default="finished")
        if status not in RESULT_STATUSES:
            raise _Bad(f"status is {_shown(status)}, not one of {', '.join(RESULT_STATUSES)}")
        failed = status == "failed"
        reason = _field(data, "reason", "", _string, default="" if not failed else _REQUIRED)
        if failed and not reason.strip():
            raise _Bad("reason is empty: a failed run says why")
        test = _field(
            data, "test", "", TestMetrics.from_json, default=_REQUIRED if not failed else None
        )
        return cls(
            status=status,
            reason=reason,
            test=test if not failed else None,
            seconds=_field(data, "seconds", "", _optional(_number), 0.0, default=None),
            epochs=_field(data, "epochs", "", _optional(_int), 1, default=None),
            epochs_done=_field(data, "epochs_done", "", _optional(_int), default=None),
            steps=_field(data, "steps", "", _optional(_int), default=None),
            best=_field(data, "best", "", _optional(BestEpoch.from_json), default=None),
            stopped_early=_field(data, "stopped_early", "", _bool, default=False),
            files=_field(data, "files", "", _digests, default={}),
        )

    def to_dict(self) -> dict[str, Any]:
        """The JSON object training writes (absent fields left out)."""
        out: dict[str, Any] = {"status": self.status}
        if self.reason:
            out["reason"] = self.reason
        if self.test is not None:
            out["test"] = self.test.to_dict()
        for key in ("seconds", "epochs", "epochs_done", "steps"):
            if getattr(self, key) is not None:
                out[key] = getattr(self, key)
        if self.best is not None:
            out["best"] = dataclasses.asdict(self.best)
        if self.status == "finished":
            out["stopped_early"] = self.stopped_early
        if self.files:
            out["files"] = dict(self.files)
        return out


def read_results(path: Path, run_dir: Path) -> RunResults | None:
    """``results.json``, checked; None while the run has neither finished nor failed.

    Raises:
        DamagedRunError: present but unreadable, not a JSON object (``null`` included), or a
            field of the wrong type or range.
    """
    if not _present(path):
        return None
    return _checked(run_dir, _relative(path, run_dir), RunResults.from_json, _read(path, run_dir))


# --- config.json ---------------------------------------------------------------------------------


def read_config(path: Path, run_dir: Path, resolved: bool = False) -> TrainConfig:
    """``config.json`` as a :class:`TrainConfig`, every setting checked.

    Args:
        path: the file.
        run_dir: its run directory (for the message).
        resolved: also require the settings a recipe fills (every config training writes has
            them; code that formats them, such as the report, needs them).

    Raises:
        DamagedRunError: missing, unreadable, or a setting unknown, of the wrong type or out of
            range.
    """
    file = _relative(path, run_dir)
    if not _present(path):
        raise DamagedRunError(run_dir, file, "missing: every run starts by writing it")
    data = _read(path, run_dir)
    try:
        config = from_dict(data)
    except CnnlabError as err:
        raise DamagedRunError(run_dir, file, str(err)) from None
    if resolved:
        unset = [
            name
            for name in ("model", *recipe_fields())
            if name not in UNSET_AFTER_RESOLVE and getattr(config, name) is None
        ]
        if unset:
            raise DamagedRunError(
                run_dir, file, f"{', '.join(unset[:5])} unset: training writes resolved settings"
            )
    return config


# --- checkpoint records --------------------------------------------------------------------------


@dataclass
class EpochWatch:
    """What the trainer tracks across epochs to decide when to stop; part of every checkpoint.

    Attributes:
        best_val_acc: the best validation accuracy so far (``None`` before the first epoch).
        best_epoch: its 1-based epoch (the weights in ``model_best.safetensors``).
        epochs_since_best: epochs since then (``--early-stop`` counts these).
        stalled_epochs: consecutive epochs at chance, up to the last (the stall guard counts
            these).
        stopped_early: ``--early-stop`` ended training before the last epoch.
    """

    best_val_acc: float | None = None
    best_epoch: int = 0
    epochs_since_best: int = 0
    stalled_epochs: int = 0
    stopped_early: bool = False

    @classmethod
    def from_json(cls, data: Any, name: str = "watch") -> EpochWatch:
        data = _object(data, name)
        return cls(
            best_val_acc=_field(data, "best_val_acc", name, _optional(_fraction)),
            best_epoch=_field(data, "best_epoch", name, _int),
            epochs_since_best=_field(data, "epochs_since_best", name, _int),
            stalled_epochs=_field(data, "stalled_epochs", name, _int),
            stopped_early=_field(data, "stopped_early", name, _bool),
        )


@dataclass(frozen=True)
class NumpyRng:
    """The scalar half of ``numpy.random.get_state()`` (the 624 keys are a tensor)."""

    kind: str
    pos: int
    has_gauss: int
    cached: float

    @classmethod
    def from_json(cls, data: Any, name: str) -> NumpyRng:
        data = _object(data, name)
        kind = _field(data, "kind", name, _string)
        if kind != "MT19937":
            raise _Bad(f"{name}.kind is {_shown(kind)}, not 'MT19937'")
        return cls(
            kind=kind,
            pos=_field(data, "pos", name, _int, 0, 624),
            has_gauss=_field(data, "has_gauss", name, _int, 0, 1),
            cached=_field(data, "cached", name, _number),
        )


@dataclass(frozen=True)
class PythonRng:
    """The scalar half of ``random.getstate()`` (the 625 words are a tensor)."""

    version: int
    gauss_next: float | None

    @classmethod
    def from_json(cls, data: Any, name: str) -> PythonRng:
        data = _object(data, name)
        return cls(
            version=_field(data, "version", name, _int, 3, 3),
            gauss_next=_field(data, "gauss_next", name, _optional(_number)),
        )


# A ReduceLROnPlateau state_dict: torch owns the keys (load_state_dict copies each one onto the
# scheduler, so an unknown key could replace any attribute); these are the ones torch 2 writes.
_PLATEAU: dict[str, Callable[[Any, str], Any]] = {
    "factor": lambda v, n: _number(v, n, 0.0, 1.0),
    "min_lrs": lambda v, n: [_number(x, f"{n}[{i}]", 0.0) for i, x in enumerate(_list(v, n))],
    "patience": lambda v, n: _int(v, n),
    "cooldown": lambda v, n: _int(v, n),
    "eps": lambda v, n: _number(v, n, 0.0),
    "last_epoch": lambda v, n: _int(v, n, None),
    "mode_worse": lambda v, n: _number(v, n, finite=False),
    "mode": lambda v, n: _choice(v, n, ("min", "max")),
    "threshold": lambda v, n: _number(v, n, 0.0),
    "threshold_mode": lambda v, n: _choice(v, n, ("rel", "abs")),
    "best": lambda v, n: _number(v, n, finite=False),
    "cooldown_counter": lambda v, n: _int(v, n),
    "num_bad_epochs": lambda v, n: _int(v, n),
}
_PLATEAU_OPTIONAL: dict[str, Callable[[Any, str], Any]] = {
    "default_min_lr": lambda v, n: _number(v, n, 0.0),
    "_last_lr": lambda v, n: [_number(x, f"{n}[{i}]", 0.0) for i, x in enumerate(_list(v, n))],
    "verbose": lambda v, n: _bool(v, n),
    "_get_lr_called_within_step": lambda v, n: _bool(v, n),
}


def _choice(value: Any, name: str, choices: tuple[str, ...]) -> str:
    if _string(value, name) not in choices:
        raise _Bad(f"{name} is {_shown(value)}, not one of {', '.join(choices)}")
    return value


def _plateau(data: Any, name: str = "plateau") -> dict[str, Any]:
    data = _object(data, name)
    unknown = sorted(set(data) - set(_PLATEAU) - set(_PLATEAU_OPTIONAL))
    if unknown:
        raise _Bad(f"{name} has unknown entries {', '.join(map(_shown, unknown[:5]))}")
    checks = {**_PLATEAU, **_PLATEAU_OPTIONAL}
    for key in _PLATEAU:
        if key not in data:
            raise _Bad(f"{name}.{key} is missing")
    for key, value in data.items():
        checks[key](value, f"{name}.{key}")
    return dict(data)  # as written: torch reads these values back exactly


def _group_value(value: Any, name: str) -> Any:
    """An optimizer hyperparameter, as written: a scalar, or a list of numbers (Adam's betas)."""
    if isinstance(value, list):
        for i, v in enumerate(value):
            _number(v, f"{name}[{i}]")
    elif not (value is None or isinstance(value, (bool, str))):
        _number(value, name)
    return value


@dataclass(frozen=True)
class OptimizerRecord:
    """The JSON half of ``optimizer.state_dict()`` (its tensors are in the safetensors half).

    Attributes:
        param_groups: per group, its hyperparameters and the indices of its ``params``.
        state_scalars: per parameter index (a string), its non-tensor state.
    """

    param_groups: tuple[dict[str, Any], ...]
    state_scalars: dict[str, dict[str, Any]]

    @property
    def params(self) -> list[int]:
        return [i for g in self.param_groups for i in g["params"]]

    @classmethod
    def from_json(cls, data: Any, name: str = "optimizer") -> OptimizerRecord:
        data = _object(data, name)
        groups = []
        for i, group in enumerate(_field(data, "param_groups", name, _list)):
            where = f"{name}.param_groups[{i}]"
            group = _object(group, where)
            for j, p in enumerate(_field(group, "params", where, _list)):
                _int(p, f"{where}.params[{j}]")
            _field(group, "lr", where, _number, 0.0)
            for k, v in group.items():
                if k != "params":
                    _group_value(v, f"{where}.{k}")
            groups.append(dict(group))
        record = cls(tuple(groups), {})
        if not groups:
            raise _Bad(f"{name}.param_groups is empty")
        if len(set(record.params)) != len(record.params):
            raise _Bad(f"{name}.param_groups list a parameter twice")
        scalars = {}
        for key, entry in _field(data, "state_scalars", name, _object).items():
            where = f"{name}.state_scalars[{_shown(key)}]"
            if not key.isdigit() or int(key) not in record.params:
                raise _Bad(f"{where} names no parameter of the groups")
            entry = _object(entry, where)
            scalars[key] = {k: _group_value(v, f"{where}.{k}") for k, v in entry.items()}
        return cls(tuple(groups), scalars)

    def to_dict(self) -> dict[str, Any]:
        return {
            "param_groups": [dict(g) for g in self.param_groups],
            "state_scalars": self.state_scalars,
        }


@dataclass(frozen=True)
class TrainingRecord:
    """The training state a checkpoint's JSON half holds: everything ``--resume`` restores that
    is not a tensor (see :class:`cnnlab.train.checkpoint.TrainingState`).

    Attributes:
        epoch: 0-based epoch in progress; equals the finished epochs in ``history``.
        batch: first batch of ``epoch`` still to run (0 at an epoch boundary).
        world_size: DDP ranks.
        threads: intra-op threads (None: not recorded).
        config: the run's settings.
        optimizer: the optimizer's scalars.
        plateau: the ``ReduceLROnPlateau`` state (torch's keys).
        numpy_rng, python_rng: rank 0's scalar RNG state.
        epoch_sums: ``[loss * n, correct, n]`` of the unfinished epoch.
        history: the finished epochs.
        watch: best epoch, early-stopping and stall counters.
    """

    epoch: int
    batch: int
    world_size: int
    threads: int | None
    config: TrainConfig
    optimizer: OptimizerRecord
    plateau: dict[str, Any]
    numpy_rng: NumpyRng
    python_rng: PythonRng
    epoch_sums: tuple[float, float, float]
    history: tuple[EpochRecord, ...]
    watch: EpochWatch

    FIELDS = ("epoch", "batch", "world_size", "config", "optimizer", "plateau", "rng",
              "epoch_sums", "history")  # fmt: skip

    @classmethod
    def from_json(cls, data: dict[str, Any], step: int) -> TrainingRecord:
        rng = _field(data, "rng", "", _object)
        try:
            config = from_dict(_field(data, "config", "", _object))
        except CnnlabError as err:
            raise _Bad(f"config: {err}") from None
        history = tuple(check_history(_field(data, "history", "", _list), "history"))
        sums = tuple(
            _number(v, f"epoch_sums[{i}]", 0.0)
            for i, v in enumerate(_field(data, "epoch_sums", "", _list, 3))
        )
        record = cls(
            epoch=_field(data, "epoch", "", _int),
            batch=_field(data, "batch", "", _int),
            world_size=_field(data, "world_size", "", _int, 1),
            threads=_field(data, "threads", "", _optional(_int), 1, default=None),
            config=config,
            optimizer=_field(data, "optimizer", "", OptimizerRecord.from_json),
            plateau=_field(data, "plateau", "", _plateau),
            numpy_rng=_field(rng, "numpy", "rng", NumpyRng.from_json),
            python_rng=_field(rng, "python", "rng", PythonRng.from_json),
            epoch_sums=sums,  # type: ignore[arg-type]
            history=history,
            # Absent in checkpoints written before the watch existed: fresh counters.
            watch=_field(data, "watch", "", EpochWatch.from_json, default=EpochWatch()),
        )
        record._check_agreement(step)
        return record

    def _check_agreement(self, step: int) -> None:
        """Position, history, sums and counters describe one moment of one run."""
        if self.epoch != len(self.history):
            raise _Bad(f"epoch is {self.epoch} but history holds {len(self.history)} epochs")
        done = self.history[-1].step if self.history else 0
        if step != done + self.batch:
            raise _Bad(
                f"step {step} is not the {done} steps of the finished epochs plus batch "
                f"{self.batch}"
            )
        _, correct, n = self.epoch_sums
        if correct > n or (self.batch == 0 and n != 0):
            raise _Bad(f"epoch_sums {list(self.epoch_sums)} do not fit batch {self.batch}")
        if self.watch.best_epoch > self.epoch:
            raise _Bad(f"watch.best_epoch {self.watch.best_epoch} is after epoch {self.epoch}")
        groups = len(self.optimizer.param_groups)
        if len(self.plateau["min_lrs"]) != groups:
            raise _Bad(
                f"plateau.min_lrs has {len(self.plateau['min_lrs'])} values for {groups} groups"
            )

    @property
    def rng_scalars(self) -> dict[str, Any]:
        """The JSON half of :func:`cnnlab.train.checkpoint.capture_rng`."""
        return {
            "numpy": dataclasses.asdict(self.numpy_rng),
            "python": dataclasses.asdict(self.python_rng),
        }


@dataclass(frozen=True)
class CheckpointRecord:
    """A checkpoint's JSON half: the commit marker of its tensors file, and the training state.

    Attributes:
        format: ``cnnlab.checkpoint/1``.
        step: optimizer steps done (also in the file name and the tensors' header).
        tensors_file: the name of its tensors file, beside it.
        tensors_bytes, tensors_sha256: that file's size and digest when it was committed.
        record_sha256: the digest of this record itself
            (:func:`~cnnlab.run.tensorfile.record_digest`); None in records written before it.
        cnnlab_version: the version that wrote it.
        training: what ``--resume`` restores; None in a record that holds only tensors (a
            checkpoint written by a tool rather than by training).
        raw: the record as read, for code that passes the JSON on.
    """

    format: str
    step: int
    tensors_file: str
    tensors_bytes: int
    tensors_sha256: str
    record_sha256: str | None = None
    cnnlab_version: str = ""
    training: TrainingRecord | None = None
    raw: dict[str, Any] = field(default_factory=dict, repr=False, compare=False)

    @classmethod
    def from_json(cls, data: Any) -> CheckpointRecord:
        data = _object(data, "")
        sha = _field(data, "tensors_sha256", "", _sha256)
        step = _field(data, "step", "", _int)
        has_training = any(key in data for key in TrainingRecord.FIELDS)
        return cls(
            format=_field(data, "format", "", _string),
            step=step,
            tensors_file=_field(data, "tensors_file", "", _string),
            tensors_bytes=_field(data, "tensors_bytes", "", _int),
            tensors_sha256=sha,
            record_sha256=_field(data, "record_sha256", "", _sha256, default=None),
            cnnlab_version=_field(data, "cnnlab_version", "", _string, default=""),
            training=TrainingRecord.from_json(data, step) if has_training else None,
            raw=data,
        )


def read_checkpoint_record(path: Path, run_dir: Path) -> CheckpointRecord:
    """A checkpoint's JSON half, every field checked (not yet against its tensors file: that
    is :func:`cnnlab.run.checkpoints.validate_checkpoint`'s job).

    Raises:
        DamagedRunError: unreadable, not an object, or a field of the wrong type or range; a
            record that holds any training field must hold all of them.
    """
    data = _read(path, run_dir)
    return _checked(run_dir, _relative(path, run_dir), CheckpointRecord.from_json, data)


# --- splits.json ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class SplitsRecord:
    """An image folder's file lists (:meth:`cnnlab.data.folder.FolderSplits.to_dict`).

    Attributes:
        root: the folder.
        classes: class names in label order.
        origin: per split, ``folder`` (its own sub-folder) or ``fraction`` (held out).
        train, val, test: ``(file relative to root, label)`` pairs.
    """

    root: str
    classes: tuple[str, ...]
    origin: dict[str, str]
    train: tuple[tuple[str, int], ...]
    val: tuple[tuple[str, int], ...]
    test: tuple[tuple[str, int], ...]

    @classmethod
    def from_json(cls, data: Any) -> SplitsRecord:
        data = _object(data, "")
        classes = tuple(
            _string(c, f"classes[{i}]") for i, c in enumerate(_field(data, "classes", "", _list))
        )
        if not classes:
            raise _Bad("classes is empty")
        origin = _field(data, "origin", "", _object)
        splits = {}
        for split in ("train", "val", "test"):
            _choice(
                _field(origin, split, "origin", _string), f"origin.{split}", ("folder", "fraction")
            )
            splits[split] = tuple(
                _sample(s, f"{split}[{i}]", len(classes))
                for i, s in enumerate(_field(data, split, "", _list))
            )
        return cls(
            root=_field(data, "root", "", _string),
            classes=classes,
            origin={k: origin[k] for k in ("train", "val", "test")},
            **splits,  # type: ignore[arg-type]
        )


def _sample(value: Any, name: str, classes: int) -> tuple[str, int]:
    file, label = _list(value, name, 2)
    return _string(file, f"{name}[0]"), _int(label, f"{name}[1]", 0, classes - 1)


def read_splits(path: Path, run_dir: Path) -> SplitsRecord | None:
    """``splits.json``, checked; None when absent (runs on named datasets have none).

    Raises:
        DamagedRunError: unreadable, or a field of the wrong type or range.
    """
    if not _present(path):
        return None
    return _checked(run_dir, _relative(path, run_dir), SplitsRecord.from_json, _read(path, run_dir))


# --- reading -------------------------------------------------------------------------------------


def _present(path: Path) -> bool:
    """Whether anything has the file's name (a broken symlink, a FIFO, a directory: yes, and
    reading it says what is wrong with it)."""
    return os.path.lexists(path)


def _relative(path: Path, run_dir: Path) -> str:
    try:
        return str(Path(path).relative_to(run_dir))
    except ValueError:
        return Path(path).name


def _file_error(err: CnnlabError, path: Path) -> str:
    """A :mod:`cnnlab.files` message without the path it starts with (the reader names it)."""
    return str(err).removeprefix(str(path)).lstrip(": ")


def _read_bytes(path: Path, run_dir: Path, limit: str) -> bytes:
    try:
        return files.read_bytes(path, what=Path(path).name, limit=limit, error=CheckpointError)
    except CheckpointError as err:
        raise DamagedRunError(run_dir, _relative(path, run_dir), _file_error(err, path)) from None


def _read(path: Path, run_dir: Path) -> Any:
    try:
        return files.read_json(path, what=Path(path).name, error=CheckpointError)
    except CheckpointError as err:
        raise DamagedRunError(run_dir, _relative(path, run_dir), _file_error(err, path)) from None


def _checked(run_dir: Path, file: str, parse: Callable[[Any], Any], data: Any) -> Any:
    """``parse(data)``, with what is wrong turned into a :class:`DamagedRunError`."""
    try:
        return parse(data)
    except _Bad as bad:
        raise DamagedRunError(run_dir, file, str(bad)) from None
    except RecursionError:  # nesting deeper than any record cnnlab writes
        raise DamagedRunError(run_dir, file, "nested too deeply") from None
