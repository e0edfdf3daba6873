"""Hostile run directories, generated from one real run, through every command that reads one.

Every file cnnlab reads may be hostile. One small finished run is trained per module (tinynet on
a Fashion-MNIST subset, with a mid-epoch checkpoint, so ``checkpoints/`` holds two pairs); each
case copies it and damages one file: valid JSON of the wrong type (null, a list, a number, a
string, true), every field of every JSON record replaced by a value of another type, truncations,
garbage bytes, a directory, a symlink loop, a dangling link, a missing file, a FIFO, records
that are well typed but disagree with themselves (a ragged confusion matrix, a top-1 the matrix
does not give, a checkpoint whose position is not its history's), tensors that passed their
digest but do not fit the model, and text with terminal controls (ANSI escapes, newlines, a
fake ``cnnlab: error:`` line) in a reason, a model, dataset or class name, or the run's own
directory name. Then the commands that read that file run on it: ``cnnlab runs``, ``report``,
``eval``, ``predict``, ``show`` and ``train --resume``.

What must hold, whatever the case:

- exit status 0, or 2 with exactly one ``cnnlab: error:`` line; never a traceback, never a hang
  (commands run in a watchdog thread; the FIFO cases in a real ``cnnlab`` process under a
  timeout);
- nothing from a file reaches the terminal raw: no ESC, no line break of its own, no line that
  starts with the planted fake error (stdout and stderr are encoded as a terminal would, strict
  UTF-8, so a lone surrogate fails here as it would for a user);
- the answer is right, not just clean: ``runs`` lists a damaged run as ``damaged`` (and the good
  run beside it as ``finished``), ``report`` refuses it, ``eval`` of a run whose newest
  checkpoint is damaged uses the older one (never the damaged one), and ``--resume`` falls back
  to the older checkpoint with a note.
"""

from __future__ import annotations

import contextlib
import io
import json
import math
import os
import shutil
import struct
import subprocess
import sys
import threading
import traceback
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch
from PIL import Image
from safetensors import safe_open
from safetensors.torch import save_file

import helpers.models  # noqa: F401  (registers tinynet)
from cnnlab.cli import main
from helpers import subprocess_env, tally
from helpers.datasets import has_fashion_mnist
from helpers.runs import SMALL
from helpers.sealing import reseal, sealed_record

RUN_ARGS = ["tinynet", *SMALL, "--checkpoint-every", "4"]  # 8 steps: checkpoints 4 and 8
NEWEST, OLDER = "checkpoints/step-00000008", "checkpoints/step-00000004"
WATCHDOG_S = 60
# Text a crafted file plants: a line break, a carriage return, ANSI colour, a Unicode line
# separator, a bidi override, and a fake error line after them.
FAKE = "FAKE-LINE"
HOSTILE_TEXT = f"ok\n\r\x1b[31mcnnlab: error: {FAKE}\x1b[0m\u2028{FAKE}\u202e\x85{FAKE}"
SPLITS = {
    "root": "/data/photos",
    "classes": [str(i) for i in range(10)],
    "origin": {"train": "folder", "val": "fraction", "test": "folder"},
    "train": [["0/a.png", 0], ["1/b.png", 1]],
    "val": [["0/c.png", 0]],
    "test": [["1/d.png", 1]],
}


# --- the run every case starts from ---------------------------------------------------------


@pytest.fixture(scope="module")
def pristine(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A finished 1-epoch tinynet run (checkpoints at steps 4 and 8) and an image beside it."""
    if not has_fashion_mnist():
        pytest.skip("Fashion-MNIST not installed")
    root = tmp_path_factory.mktemp("pristine")
    with contextlib.redirect_stdout(io.StringIO()), contextlib.redirect_stderr(io.StringIO()):
        assert main(["train", *RUN_ARGS, "--out", str(root / "run")]) == 0
    (root / "run" / "splits.json").write_text(json.dumps(SPLITS))  # checked wherever present
    Image.fromarray(np.full((28, 28), 128, np.uint8)).save(root / "image.png")
    return root / "run"


# --- damage ---------------------------------------------------------------------------------

Damage = Callable[[Path], None]


def _write_json(value: Any) -> Damage:
    return lambda p: p.write_text(json.dumps(value))


def _write_text(text: str) -> Damage:
    return lambda p: p.write_text(text, encoding="utf-8", errors="surrogatepass")


def _write_bytes(data: bytes) -> Damage:
    return lambda p: p.write_bytes(data)


def _truncate(keep: Callable[[int], int]) -> Damage:
    return lambda p: p.write_bytes(p.read_bytes()[: keep(p.stat().st_size)])


def _replace(make: Callable[[Path], None]) -> Damage:
    def damage(p: Path) -> None:
        p.unlink(missing_ok=True)
        make(p)

    return damage


def _edit(path: tuple[str | int, ...], value: Any, line: int | None = None) -> Damage:
    """Set one field (``path`` into the JSON; ``line``: of metrics.jsonl) to ``value``."""

    def damage(p: Path) -> None:
        if line is None:
            data = json.loads(p.read_text())
        else:
            lines = p.read_text().splitlines()
            data = json.loads(lines[line])
        target = data
        for key in path[:-1]:
            target = target[key]
        if value is _DELETE:
            del target[path[-1]]
        else:
            target[path[-1]] = value
        if line is None:
            p.write_text(json.dumps(data, allow_nan=True))
        else:
            lines[line] = json.dumps(data, allow_nan=True)
            p.write_text("\n".join(lines) + "\n")

    return damage


def _transform(change: Callable[[Any], Any]) -> Damage:
    """Rewrite the whole JSON value."""
    return lambda p: p.write_text(json.dumps(change(json.loads(p.read_text())), allow_nan=True))


def _lines(change: Callable[[list[str]], list[str]]) -> Damage:
    return lambda p: p.write_text("\n".join(change(p.read_text().splitlines())) + "\n")


_DELETE = object()
FIFO = _replace(lambda p: os.mkfifo(p))
SPECIAL: dict[str, Damage] = {
    "directory": _replace(lambda p: p.mkdir()),
    "symlink-loop": _replace(lambda p: p.symlink_to(p.name)),
    "dangling-link": _replace(lambda p: p.symlink_to(p.name + ".gone")),
    "missing": _replace(lambda p: None),
}
WRONG_TYPES: dict[str, Any] = {
    "null": None,
    "list": [1, 2, 3],
    "number": 42,
    "string": "results",
    "true": True,
    "deep": json.loads("[" * 40 + "1" + "]" * 40),
}
GARBAGE: dict[str, bytes] = {
    "zeros": bytes(4096),
    "binary": bytes(range(256)) * 8,
    "not-utf8": b'{"status": "\xff\xfe"}',
    "nesting-bomb": b"[" * 200_000,
}


def _other_type(value: Any) -> Any:
    """A value of another JSON type than ``value``'s, that no field of that type accepts."""
    if isinstance(value, bool):
        return "yes"
    if isinstance(value, (int, float)):
        return str(value)
    if isinstance(value, str):
        return 7
    if isinstance(value, list):
        return {"a": 1}
    if isinstance(value, dict):
        return [1]
    return []  # null


def _paths(value: Any, depth: int, prefix: tuple[str | int, ...] = ()) -> Iterator[tuple]:
    """Every field of a JSON value down to ``depth`` (the first element of each list only)."""
    if depth == 0 or not isinstance(value, (dict, list)) or not value:
        return
    children = list(value.items()) if isinstance(value, dict) else [(0, value[0])]
    for key, child in children:
        yield (*prefix, key)
        yield from _paths(child, depth - 1, (*prefix, key))


# --- cases ----------------------------------------------------------------------------------


@dataclass(frozen=True)
class Case:
    """One damaged run.

    Attributes:
        id: the test id.
        file: the file damaged, relative to the run.
        damage: what is done to it.
        commands: the commands that run on the result.
        refused: True: the run must be refused (runs: damaged; report, config read: exit 2;
            a checkpoint: skipped); False: accepted as it is; None: either.
        dirname: the run directory's name.
        remove: files removed before the damage (``model.safetensors``, so that eval and
            predict use a checkpoint).
        expect: per command, what overrides ``refused``: an exit status, a run status for
            ``runs``, or a note ``--resume`` must print.
    """

    id: str
    file: str
    damage: Damage
    commands: tuple[str, ...]
    refused: bool | None = True
    dirname: str = "run"
    remove: tuple[str, ...] = ()
    expect: dict[str, Any] = field(default_factory=dict)


# What reads each file (eval/predict/show read checkpoints only without a final model).
READERS: dict[str, tuple[str, ...]] = {
    "config.json": ("runs", "report"),
    "results.json": ("runs", "report"),
    "metrics.jsonl": ("runs", "report"),
    "splits.json": ("runs", "report"),
    f"{NEWEST}.json": ("eval",),
    f"{NEWEST}.safetensors": ("eval",),
    "model.safetensors": ("eval", "predict", "show"),
}
# --resume on a sample of the cases: each is a second of training.
RESUMED = {"config.json", f"{NEWEST}.json", f"{NEWEST}.safetensors"}


def _reads(file: str) -> tuple[str, ...]:
    return READERS[file]


def _removes(file: str) -> tuple[str, ...]:
    return ("model.safetensors",) if file.startswith("checkpoints/") else ()


def _generic_cases() -> list[Case]:
    """Wrong types, truncations, garbage and special files, for every file."""
    out = []
    for file in READERS:
        is_json = not file.endswith(".safetensors")
        kinds: dict[str, Damage] = dict(SPECIAL.items())
        if is_json:
            kinds |= {f"json-{k}": _write_json(v) for k, v in WRONG_TYPES.items()}
        kinds |= {f"garbage-{k}": _write_bytes(v) for k, v in GARBAGE.items()}
        kinds |= {
            "truncated-0": _truncate(lambda n: 0),
            "truncated-1": _truncate(lambda n: 1),
            "truncated-half": _truncate(lambda n: n // 2),
            "truncated-end": _truncate(lambda n: n - 2),
        }
        for kind, damage in kinds.items():
            refused: bool | None = True
            if kind == "missing" and file in ("results.json", "metrics.jsonl", "splits.json"):
                refused = False  # an unfinished run, a run without epochs, a named dataset
            if kind == "missing" and file == "model.safetensors":
                refused = False  # the newest checkpoint stands in, as documented
            if kind == "truncated-0" and file == "metrics.jsonl":
                refused = False  # no epoch finished
            commands = _reads(file)
            if file in RESUMED and kind in ("json-null", "truncated-half", "directory"):
                commands += ("resume",)
            if file == "model.safetensors" and kind in ("truncated-half", "missing"):
                commands += ("report",)
            # A directory where --resume writes the next checkpoint: refused in one line, never
            # removed (it is the user's).
            expect = (
                {"resume": 2} if kind == "directory" and file.startswith("checkpoints/") else {}
            )
            remove = _removes(file)
            out.append(
                Case(f"{file}-{kind}", file, damage, commands, refused, "run", remove, expect)
            )
    return out


def _json_field_cases(run: Path, file: str, depth: int) -> list[Case]:
    """Every field of a JSON record (down to ``depth``), replaced by a value of another type."""
    data = json.loads((run / file).read_text())
    out = []
    for n, path in enumerate(_paths(data, depth)):
        value = data
        for key in path:
            value = value[key]
        resume = ("resume",) if file == "config.json" and n % 12 == 0 else ()
        name = ".".join(map(str, path))
        out.append(
            Case(f"{file}-{name}", file, _edit(path, _other_type(value)), _reads(file) + resume)
        )
    return out


def _metrics_field_cases(run: Path) -> list[Case]:
    """Every field of an epoch record: another type, and left out."""
    first = json.loads((run / "metrics.jsonl").read_text().splitlines()[0])
    out = []
    for key, value in first.items():
        for how, new in (("type", _other_type(value)), ("deleted", _DELETE)):
            damage = _edit((key,), new, line=0)
            out.append(
                Case(f"metrics.jsonl-{key}-{how}", "metrics.jsonl", damage, _reads("metrics.jsonl"))
            )
    return out


def _checkpoint_field_cases(run: Path) -> list[Case]:
    """Every field of the newest checkpoint's record, replaced by a value of another type: the
    record is refused like a torn pair, eval (without a final model) uses the older checkpoint
    and --resume resumes from it."""
    file = f"{NEWEST}.json"
    record = json.loads((run / file).read_text())
    out = []
    for n, path in enumerate(_paths(record, 4)):
        if path[0] == "config" and len(path) > 1:
            continue  # config.json's own cases check every setting
        if path[:3] == ("optimizer", "param_groups", 0) and path[3:] not in (("params",), ("lr",)):
            continue  # torch's own hyperparameters: any scalar is one torch may take
        value = record
        for key in path:
            value = value[key]
        commands = ("eval", "resume") if n % 16 == 0 else ("eval",)
        name = ".".join(map(str, path))
        damage = _edit(path, _other_type(value))
        out.append(Case(f"checkpoint-{name}", file, damage, commands, remove=_removes(file)))
    return out


def _ragged(rows: list[list[int]]) -> list[list[int]]:
    return [*rows[:3], rows[3][:-1], *rows[4:]]


def _semantic_cases() -> list[Case]:
    """Well-typed records that disagree with themselves or with their range."""
    runs = _reads("results.json")
    ck = f"{NEWEST}.json"
    results = {
        "confusion-ragged-row": _transform(
            lambda d: {**d, "test": {**d["test"], "confusion": _ragged(d["test"]["confusion"])}}
        ),
        "confusion-extra-row": _transform(
            lambda d: {**d, "test": {**d["test"], "confusion": [*d["test"]["confusion"], [0] * 10]}}
        ),
        "confusion-negative": _edit(("test", "confusion", 0, 0), -1),
        "confusion-float": _edit(("test", "confusion", 0, 0), 0.5),
        "count-off-by-one": _transform(
            lambda d: {**d, "test": {**d["test"], "count": d["test"]["count"] + 1}}
        ),
        "top1-not-the-trace": _edit(("test", "top1"), 0.99),
        "top1-above-one": _edit(("test", "top1"), 1.5),
        "top5-below-top1": _edit(("test", "top5"), 0.0),
        "loss-nan": _edit(("test", "loss"), math.nan),
        "loss-infinite": _edit(("test", "loss"), math.inf),
        "loss-negative": _edit(("test", "loss"), -1.0),
        "per-class-missing-a-class": _transform(
            lambda d: {
                **d,
                "test": {**d["test"], "per_class": dict(list(d["test"]["per_class"].items())[:9])},
            }
        ),
        "per-class-not-the-matrix": _edit(("test", "per_class", "Shirt"), 0.01),
        "status-unknown": _edit(("status",), "exploded"),
        "failed-without-reason": _transform(lambda d: {"status": "failed"}),
        "failed-empty-reason": _transform(lambda d: {"status": "failed", "reason": "  "}),
        "finished-without-test": _transform(lambda d: {k: v for k, v in d.items() if k != "test"}),
        "empty-object": _write_json({}),
        "seconds-negative": _edit(("seconds",), -5.0),
        "huge-number": _write_text('{"status": "finished", "test": {"top1": 1e999}}'),
        "huge-integer": _write_text('{"status": "finished", "steps": ' + "9" * 5000 + "}"),
        "huge-integer-as-number": _edit(("seconds",), 10**400),
    }
    out = [Case(f"results.json-{k}", "results.json", d, runs) for k, d in results.items()]
    metrics = {
        "line-number": _lines(lambda ls: ["42", *ls[1:]]),
        "line-null": _lines(lambda ls: ["null", *ls[1:]]),
        "line-list": _lines(lambda ls: ["[1, 2]", *ls[1:]]),
        "line-string": _lines(lambda ls: ['"epoch"', *ls[1:]]),
        "line-torn": _lines(lambda ls: [ls[0][:40]]),
        "line-repeated": _lines(lambda ls: [*ls, ls[-1]]),
        "blank-line-between": _lines(lambda ls: ["", *ls]),
        "epoch-out-of-order": _edit(("epoch",), 2, 0),
        "step-zero": _edit(("step",), 0, 0),
        "accuracy-above-one": _edit(("val_acc",), 1.5, 0),
        "accuracy-nan": _edit(("val_acc",), math.nan, 0),
        "loss-negative": _edit(("train_loss",), -0.5, 0),
        "lr-infinite": _edit(("lr",), math.inf, 0),
    }
    out += [Case(f"metrics.jsonl-{k}", "metrics.jsonl", d, runs) for k, d in metrics.items()]
    accepted = {
        "unknown-key": _edit(("colour",), "red", 0),
        "loss-nan": _edit(("val_loss",), math.nan, 0),  # a diverged model: shown as n/a
    }
    out += [
        Case(f"metrics.jsonl-{k}", "metrics.jsonl", d, runs, refused=False)
        for k, d in accepted.items()
    ]
    config = {
        "unknown-setting": _edit(("colour",), "red"),
        "choice-unknown": _edit(("optimizer",), "rmsprop"),
        "epochs-zero": _edit(("epochs",), 0),
        "lr-nan": _edit(("lr",), math.nan),
        "bool-as-number": _edit(("nesterov",), 1),
        "number-as-bool": _edit(("epochs",), True),
    }
    out += [
        Case(f"config.json-{k}", "config.json", d, ("runs", "report", "resume"))
        for k, d in config.items()
    ]
    splits = {
        "label-out-of-range": _edit(("train", 0, 1), 10),
        "origin-unknown": _edit(("origin", "val"), "guess"),
        "no-classes": _edit(("classes",), []),
    }
    out += [Case(f"splits.json-{k}", "splits.json", d, runs) for k, d in splits.items()]
    checkpoint = {
        "step-not-its-name": _edit(("step",), 9),
        "epoch-not-its-history": _edit(("epoch",), 0),
        "batch-not-its-step": _edit(("batch",), 3),
        "sha256-edited": _edit(("tensors_sha256",), "0" * 64),
        "sha256-not-hex": _edit(("tensors_sha256",), "z" * 64),
        "tensors-file-elsewhere": _edit(("tensors_file",), "../../model.safetensors"),
        "tensors-bytes-off": _transform(lambda d: {**d, "tensors_bytes": d["tensors_bytes"] + 1}),
        "format-other": _edit(("format",), "cnnlab.checkpoint/9"),
        "plateau-unknown-key": _edit(("plateau", "optimizer"), None),
        "plateau-mode": _edit(("plateau", "mode"), "sideways"),
        "numpy-rng-kind": _edit(("rng", "numpy", "kind"), "PCG64"),
        "numpy-rng-pos": _edit(("rng", "numpy", "pos"), 625),
        "history-lr-negative": _edit(("history", 0, "lr"), -0.1),
        "history-removed": _edit(("history",), []),
        "epoch-sums-two": _edit(("epoch_sums",), [0.0, 0.0]),
        "watch-best-after-epoch": _edit(("watch", "best_epoch"), 5),
        "training-state-removed": _transform(
            lambda d: {
                k: d[k]
                for k in ("format", "step", "tensors_file", "tensors_bytes", "tensors_sha256")
            }
        ),
    }
    for k, d in checkpoint.items():
        commands = (
            ("eval", "resume")
            if k in ("sha256-edited", "history-removed", "training-state-removed")
            else ("eval",)
        )
        refused = None if k == "training-state-removed" else True  # a weights-only pair is valid
        out.append(Case(f"checkpoint-{k}", ck, d, commands, refused, remove=_removes(ck)))
    return out


def _rewrite_tensors(
    change: Callable[[dict[str, torch.Tensor], dict[str, str]], None], crafted: bool
) -> Damage:
    """Rewrite a safetensors file's tensors or metadata. Left at that, the file's own digest
    refuses it; ``crafted`` re-seals it as a forger would (its digest, its checkpoint record's
    size and digests, the run's results.json: :func:`helpers.sealing.reseal`), so the checks
    behind the digests must refuse it, or its text must be shown safely.
    """

    def damage(p: Path) -> None:
        with safe_open(str(p), framework="pt") as f:
            meta = dict(f.metadata())
            tensors = {k: f.get_tensor(k) for k in f.keys()}  # noqa: SIM118
        change(tensors, meta)
        save_file(tensors, str(p), metadata=meta)
        if crafted:
            reseal(p)

    return damage


def _cnnlab_meta(change: Callable[[dict[str, Any]], None]) -> Callable[[dict, dict], None]:
    def edit(tensors: dict[str, torch.Tensor], meta: dict[str, str]) -> None:
        data = json.loads(meta["cnnlab"])
        change(data)
        meta["cnnlab"] = json.dumps(data)

    return edit


def _tensor_cases() -> list[Case]:
    """Tensors files that are well formed safetensors but hold the wrong things."""
    first = "0.weight"  # tinynet's first convolution

    def reshape(prefix: str) -> Callable[[dict, dict], None]:
        def change(tensors: dict[str, torch.Tensor], meta: dict[str, str]) -> None:
            tensors[prefix + first] = torch.zeros(3)

        return change

    def nan(tensors: dict[str, torch.Tensor], meta: dict[str, str]) -> None:
        key = next(k for k in tensors if k.endswith(first))
        tensors[key] = torch.full_like(tensors[key], float("nan"))

    def rng_gone(tensors: dict[str, torch.Tensor], meta: dict[str, str]) -> None:
        del tensors["rng.rank0.numpy"]

    model = "model.safetensors"
    ck = f"{NEWEST}.safetensors"
    out = [
        Case(
            "model-wrong-shape",
            model,
            _rewrite_tensors(reshape(""), False),
            ("eval", "predict", "show"),
        ),
        Case("model-nan-weights", model, _rewrite_tensors(nan, False), ("eval", "predict")),
        Case(
            "model-unknown-model",
            model,
            _rewrite_tensors(_cnnlab_meta(lambda m: m.update(model="nonet")), False),
            ("eval",),
        ),
        Case(
            "model-classes-not-a-list",
            model,
            _rewrite_tensors(_cnnlab_meta(lambda m: m.update(classes="abc")), False),
            ("eval", "predict"),
        ),
        Case(
            "model-huge-input",
            model,
            _rewrite_tensors(_cnnlab_meta(lambda m: m.update(input_size=[1, 60000, 60000])), False),
            ("eval", "predict"),
        ),
        Case(
            "model-meta-not-json",
            model,
            _rewrite_tensors(lambda t, m: m.update(cnnlab="{not json"), False),
            ("eval",),
        ),
        # Crafted pairs: digest and size recomputed, so validation passes and loading must refuse.
        Case(
            "checkpoint-crafted-wrong-shape",
            ck,
            _rewrite_tensors(reshape("model."), True),
            ("eval", "resume"),
            None,
            remove=_removes(ck),
            expect={"eval": 2, "resume": "cannot resume from"},
        ),
        Case(
            "checkpoint-crafted-rng-gone",
            ck,
            _rewrite_tensors(rng_gone, True),
            ("resume",),
            None,
            remove=_removes(ck),
            expect={"resume": "cannot resume from"},
        ),
        Case(
            "checkpoint-header-step",
            ck,
            _rewrite_tensors(
                lambda t, m: m.update(cnnlab=json.dumps({**json.loads(m["cnnlab"]), "step": 9})),
                True,
            ),
            ("eval",),
            remove=_removes(ck),
        ),
        Case(
            "checkpoint-world-of-two",
            f"{NEWEST}.json",
            _crafted(_edit(("world_size",), 2)),
            ("eval", "resume"),
            None,
            remove=_removes(ck),
            expect={"resume": "cannot resume from"},
        ),
    ]
    return out


def _text_cases() -> list[Case]:
    """Terminal controls in every string cnnlab prints from a run."""
    failed = _write_json({"status": "failed", "reason": HOSTILE_TEXT, "epochs": 1, "steps": 8})
    everywhere = ("runs", "runs-formats")
    out = [
        Case(
            "text-reason",
            "results.json",
            failed,
            everywhere,
            refused=False,
            expect={"runs": "failed"},
        ),
        Case(
            "text-model-name",
            "config.json",
            _edit(("model",), HOSTILE_TEXT),
            everywhere,
            refused=False,
        ),
        Case(
            "text-dataset-name",
            "config.json",
            _edit(("data",), HOSTILE_TEXT),
            everywhere,
            refused=False,
        ),
        Case("text-recipe-choice", "config.json", _edit(("recipe",), HOSTILE_TEXT), everywhere),
        Case(
            "text-class-names-results",
            "results.json",
            _transform(
                lambda d: {
                    **d,
                    "test": {
                        **d["test"],
                        "per_class": {
                            HOSTILE_TEXT + k: v for k, v in d["test"]["per_class"].items()
                        },
                    },
                }
            ),
            ("runs", "report"),
            None,
            expect={"runs": "finished", "report": 2},
        ),
        Case(
            "text-class-names-model",
            "model.safetensors",
            _rewrite_tensors(
                _cnnlab_meta(lambda m: m.update(classes=[HOSTILE_TEXT + c for c in m["classes"]])),
                True,
            ),
            ("eval", "show"),
            refused=False,
        ),
        Case(
            "text-dataset-in-model",
            "model.safetensors",
            _rewrite_tensors(_cnnlab_meta(lambda m: m.update(dataset=HOSTILE_TEXT)), False),
            ("eval",),
        ),
        Case(
            "text-lone-surrogate-reason",
            "results.json",
            _write_text('{"status": "failed", "reason": "x\\ud800y"}'),
            everywhere,
            refused=False,
            expect={"runs": "failed"},
        ),
        Case(
            "text-run-dir-name",
            "results.json",
            lambda p: None,
            everywhere,
            refused=False,
            dirname="run\n\x1b[31mcnnlab: error: FAKE-LINE\x1b[0m",
            expect={"runs": "finished"},
        ),
    ]
    return out


@dataclass(frozen=True)
class Outcome:
    """What a command did: its exit status (None: an exception escaped) and what it printed."""

    rc: int | None
    out: str
    err: str


# The cases, in groups (one test each, so the two test workers share them); a group needs the
# pristine run because the field cases are generated from its records.
def _crafted(damage: Damage) -> Damage:
    """``damage`` to a checkpoint record, then the record's own digest made to match."""

    def craft(p: Path) -> None:
        damage(p)
        p.write_text(json.dumps(sealed_record(json.loads(p.read_text()))))

    return craft


def _flip_data(count: int, seed: int) -> Damage:
    """Flip ``count`` random bytes of a safetensors file's tensor data (its header untouched):
    a file that still parses, with different weights."""

    def damage(p: Path) -> None:
        data = bytearray(p.read_bytes())
        start = 8 + struct.unpack("<Q", data[:8])[0]
        rng = np.random.default_rng(seed)
        for offset in rng.integers(start, len(data), count):
            data[offset] ^= 1 << int(rng.integers(8))
        p.write_bytes(bytes(data))

    return damage


def _swap_with(other: str) -> Damage:
    """Replace a weights file by another valid one of the same run (same architecture)."""
    return lambda p: p.write_bytes((p.parent / other).read_bytes())


def _drop_digest(p: Path) -> None:
    """Remove a weights file's own digest, as if an older cnnlab had written it."""
    with safe_open(str(p), framework="pt") as f:
        meta = dict(f.metadata())
        tensors = {k: f.get_tensor(k) for k in f.keys()}  # noqa: SIM118
    record = json.loads(meta["cnnlab"])
    del record["sha256"]
    save_file(tensors, str(p), metadata={**meta, "cnnlab": json.dumps(record)})


def _integrity_cases() -> list[Case]:
    """Damage that leaves every file well formed: only the digests can tell."""
    model, best = "model.safetensors", "model_best.safetensors"
    uses = _reads(model)
    out = [
        Case(f"model-flipped-{n}-bytes-{seed}", model, _flip_data(n, seed), uses)
        for n in (1, 8, 400)
        for seed in range(3)
    ]
    out += [
        Case("model-swapped-for-best", model, _swap_with(best), uses),
        # The digest gone from the file: the run's results.json still vouches for another.
        Case("model-digest-removed", model, _drop_digest, uses),
        Case(
            "checkpoint-flipped-byte",
            f"{NEWEST}.safetensors",
            _flip_data(1, 0),
            ("eval", "resume"),
            remove=_removes(NEWEST),
        ),
        # Well typed, in range, consistent with its tensors: only the record's digest differs.
        Case(
            "checkpoint-record-edited-epoch",
            f"{NEWEST}.json",
            _edit(("epoch",), 0),
            ("eval", "resume"),
            remove=_removes(NEWEST),
        ),
    ]
    return out


GROUPS: dict[str, Callable[[Path], list[Case]]] = {
    "generic-records": lambda run: [
        c for c in _generic_cases() if not c.file.startswith(("checkpoints", "model"))
    ],
    "generic-weights": lambda run: [
        c for c in _generic_cases() if c.file.startswith(("checkpoints", "model"))
    ],
    "fields-config": lambda run: _json_field_cases(run, "config.json", 1),
    "fields-results": lambda run: _json_field_cases(run, "results.json", 4),
    "fields-splits": lambda run: _json_field_cases(run, "splits.json", 3),
    "fields-metrics": _metrics_field_cases,
    "fields-checkpoint": _checkpoint_field_cases,
    "semantic": lambda run: _semantic_cases(),
    "tensors": lambda run: _tensor_cases(),
    "text": lambda run: _text_cases(),
    "integrity": lambda run: _integrity_cases(),
}


def all_cases(run: Path) -> list[Case]:
    return [case for make in GROUPS.values() for case in make(run)]


# --- running commands -----------------------------------------------------------------------


def _terminal() -> io.TextIOWrapper:
    """A stream that encodes like a UTF-8 terminal: a lone surrogate cannot be printed."""
    return io.TextIOWrapper(io.BytesIO(), encoding="utf-8", errors="strict", write_through=True)


def run_cli(argv: list[str]) -> Outcome:
    """``main(argv)`` in a watchdog thread, stdout and stderr captured as a terminal's."""
    out, err = _terminal(), _terminal()
    result: dict[str, Any] = {}

    def target() -> None:
        with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
            try:
                result["rc"] = main(argv)
            except SystemExit as done:
                result["rc"] = done.code
            except BaseException:  # a traceback is what the test looks for
                result["rc"] = None
                traceback.print_exc(file=sys.stderr)

    threads = torch.get_num_threads()
    worker = threading.Thread(target=target, daemon=True)
    worker.start()
    worker.join(WATCHDOG_S)
    torch.set_num_threads(threads)
    assert not worker.is_alive(), f"cnnlab {' '.join(argv)} hung"

    def text(stream: io.TextIOWrapper) -> str:
        return stream.buffer.getvalue().decode("utf-8")  # type: ignore[attr-defined]

    return Outcome(result.get("rc"), text(out), text(err))


def command(name: str, run: Path, work: Path, pristine_run: Path) -> list[str]:
    """The argv of ``name`` on ``run``."""
    image = str(pristine_run.parent / "image.png")
    return {
        "runs": ["runs", str(run.parent), str(pristine_run.parent), "--format", "json"],
        "report": ["report", str(run), "--limit", "16", "-o", str(work / "report.html")],
        "eval": ["eval", str(run), "--limit", "32", "--device", "cpu", "--format", "json"],
        "predict": ["predict", str(run), image, "--device", "cpu"],
        "show": ["show", str(run), "--what", "filters", "-o", str(work / "filters.png")],
        "resume": ["train", *RUN_ARGS, "--out", str(run), "--resume"],
    }[name]


def check_clean(outcome: Outcome, argv: list[str]) -> None:
    """Exit 0, or 2 with one error line; no traceback; nothing planted reaches the terminal."""
    where = f"cnnlab {' '.join(argv)}"
    both = outcome.out + outcome.err
    assert "Traceback" not in both, f"{where}:\n{outcome.err}"
    assert outcome.rc in (0, 2), f"{where}: exit {outcome.rc}\n{outcome.err}"
    if outcome.rc == 2:  # one error line, the last (training may have warned before it)
        errors = [line for line in outcome.err.splitlines() if line.startswith("cnnlab: error:")]
        assert len(errors) == 1, f"{where}: {outcome.err!r}"
        assert outcome.err.endswith(errors[0] + "\n"), f"{where}: {outcome.err!r}"
    for char in ("\x1b", "\r", "\u2028", "\u202e", "\x85"):
        assert char not in both, f"{where} printed {char!r} from a file"
    for line in both.splitlines():
        assert not line.lstrip().startswith((FAKE, f"cnnlab: error: {FAKE}")), f"{where}: {line}"


def build(case: Case, pristine_run: Path, tmp_path: Path) -> Path:
    """A copy of the pristine run under ``tmp_path/case/``, damaged as ``case`` says."""
    run = tmp_path / "case" / case.dirname
    shutil.copytree(pristine_run, run, symlinks=True)
    for name in case.remove:
        (run / name).unlink()
    case.damage(run / case.file)
    return run


def _run_status(listing: list[dict[str, Any]], run: Path) -> dict[str, Any]:
    mine = [r for r in listing if Path(r["run"]).resolve() == run.resolve()]
    assert len(mine) == 1, f"{run} is listed {len(mine)} times: {listing}"
    return mine[0]


def check_case(case: Case, pristine_run: Path, tmp_path: Path) -> None:
    run = build(case, pristine_run, tmp_path)
    for name in case.commands:
        if name == "runs-formats":
            for fmt in ("text", "markdown", "csv", "html"):
                argv = ["runs", str(run.parent), "--format", fmt]
                outcome = run_cli(argv)
                check_clean(outcome, argv)
                assert outcome.rc == 0
            continue
        argv = command(name, run, tmp_path, pristine_run)
        outcome = run_cli(argv)
        check_clean(outcome, argv)
        check_answer(case, name, run, outcome, pristine_run)


def check_answer(case: Case, name: str, run: Path, outcome: Outcome, pristine_run: Path) -> None:
    """Right, not just clean: the status, the exit, the checkpoint used."""
    expected = case.expect.get(name)
    where = f"{case.id}: {name}"
    if isinstance(expected, int):
        assert outcome.rc == expected, f"{where}: exit {outcome.rc}, {outcome.err}"
        return
    if name == "runs":
        assert outcome.rc == 0, where
        listing = json.loads(outcome.out)
        assert _run_status(listing, pristine_run)["status"] == "finished", where  # still listed
        status = _run_status(listing, run)["status"]
        if expected is not None:
            assert status == expected, f"{where}: {status}"
        elif case.refused:
            assert status == "damaged", f"{where}: {status}"
            assert _run_status(listing, run)["reason"], where
        elif case.refused is False:
            assert status != "damaged", f"{where}: {_run_status(listing, run)['reason']}"
        return
    if name == "resume":
        assert outcome.rc in (0, 2), where
        if case.file == "config.json":
            want = 2 if case.refused else 0
            assert outcome.rc == want, f"{where}: exit {outcome.rc}, {outcome.err}"
        else:
            assert outcome.rc == 0, f"{where}: {outcome.err}"
            notes = outcome.out + outcome.err
            if isinstance(expected, str):
                assert expected in notes, f"{where}: {notes}"
            elif case.refused:
                assert "skipping damaged checkpoint" in notes and OLDER.split("/")[1] in notes, (
                    notes
                )
        return
    if case.file.startswith("checkpoints/"):  # eval without a final model: a checkpoint
        assert outcome.rc == 0, f"{where}: {outcome.err}"
        source = json.loads(outcome.out)["source"]
        if case.refused:
            assert OLDER in source, f"{where}: used {source}, a damaged checkpoint"
        return
    if case.refused is not None:
        want = 2 if case.refused else 0
        assert outcome.rc == want, f"{where}: exit {outcome.rc}, {outcome.err}"


@pytest.mark.parametrize("group", sorted(GROUPS))
def test_damaged_runs_give_one_clean_line_or_a_damaged_row(
    group: str, pristine: Path, tmp_path: Path
) -> None:
    cases = GROUPS[group](pristine)
    assert len({c.id for c in cases}) == len(cases), "case ids repeat"
    failures = []
    for i, case in enumerate(cases):
        try:
            check_case(case, pristine, tmp_path / f"c{i}")
        except AssertionError as err:
            failures.append(f"{case.id}: {str(err).splitlines()[0] if str(err) else 'failed'}")
    tally.record("run directories", len(cases), failures)
    assert not failures, f"{len(failures)} of {len(cases)} cases:\n" + "\n".join(failures)


def test_there_are_enough_cases(pristine: Path) -> None:
    cases = all_cases(pristine)
    invocations = sum(len(c.commands) for c in cases)
    assert len(cases) >= 200 and invocations >= 400, (len(cases), invocations)


# --- FIFOs: a real process under a timeout ---------------------------------------------------

# Runs each argv of a JSON list through cnnlab's main, one JSON line per command.
CHILD = """
import contextlib, io, json, sys, traceback
import helpers.models
from cnnlab.cli import main
for argv in json.loads(sys.argv[1]):
    out = io.TextIOWrapper(io.BytesIO(), encoding="utf-8", errors="strict", write_through=True)
    err = io.TextIOWrapper(io.BytesIO(), encoding="utf-8", errors="strict", write_through=True)
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        try:
            rc = main(argv)
        except SystemExit as done:
            rc = done.code
        except BaseException:
            rc = None
            traceback.print_exc()
    text = [s.buffer.getvalue().decode() for s in (out, err)]
    print(json.dumps({"rc": rc, "out": text[0], "err": text[1]}), flush=True)
"""


def test_a_fifo_in_place_of_any_run_file_never_hangs(pristine: Path, tmp_path: Path) -> None:
    """Every file that may be a FIFO, through every command that reads it, in one real process
    under a timeout (a plain open() of a FIFO blocks until a writer comes: forever)."""
    plan = []
    for i, file in enumerate(READERS):
        resume = ("resume",) if file in RESUMED else ()
        case = Case(f"{file}-fifo", file, FIFO, _reads(file) + resume, remove=_removes(file))
        run = build(case, pristine, tmp_path / f"c{i}")
        plan += [
            (case, name, run, command(name, run, tmp_path / f"c{i}", pristine))
            for name in case.commands
        ]
    child = subprocess.run(
        [sys.executable, "-c", CHILD, json.dumps([argv for *_, argv in plan])],
        # The test's own directory: `cnnlab runs` prints paths relative to it, as in-process.
        cwd=Path.cwd(),
        env=subprocess_env(),
        capture_output=True,
        text=True,
        timeout=WATCHDOG_S * 2,
    )
    assert child.returncode == 0, child.stderr[-3000:]
    results = [json.loads(line) for line in child.stdout.splitlines()]
    assert len(results) == len(plan), child.stdout[-3000:]
    failures = []
    for (case, name, run, argv), got in zip(plan, results, strict=True):
        outcome = Outcome(got["rc"], got["out"], got["err"])
        try:
            check_clean(outcome, argv)
            check_answer(case, name, run, outcome, pristine)
        except AssertionError as err:
            failures.append(f"{case.id}: {str(err).splitlines()[0] if str(err) else 'failed'}")
    tally.record("run directories", len({case.id for case, *_ in plan}), failures)
    assert not failures, "\n".join(failures)
