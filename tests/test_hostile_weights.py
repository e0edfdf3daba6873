"""Hostile weights files, generated, through every command and function that reads one.

Every file cnnlab reads may be hostile. One tiny trained model (tinynet) is written once per
module in each form cnnlab reads weights in: a ``torch.save`` state dict (zip and legacy pickle
format) for ``cnnlab weights import``, a ``model.safetensors`` for ``cnnlab predict`` / ``eval`` and
``cnnlab.load``, an imported weights file for ``cnnlab train --weights``, and an ONNX file (a
hand-built graph carrying the run's record) for ``predict`` / ``eval`` / ``load`` of ``.onnx``.
Each case then puts one hostile file where a command expects one:

- special files: a FIFO, ``/dev/zero``, ``/dev/urandom``, ``/proc/self/mem`` and
  ``/proc/self/status``, a directory, a symlink loop, a dangling link, a missing or empty file;
- truncations at many offsets, and random byte flips in the headers;
- every field of the run record (and of the imported weights' record, and of the ONNX
  metadata) with a value of the wrong type or out of range, each required field left out, and
  the metadata itself of the wrong type;
- tensors that ``load_state_dict`` would convert silently (bool, integers, complex, float8),
  NaN and infinity, wrong shapes, missing and extra names, containers that are not state dicts;
- foreign pickles, with a payload that would create a marker file if it ever ran and without;
- fake ``.onnx`` files (random bytes, text, another format, a graph that does not fit its record);
- output paths ``weights import -o`` cannot write (under a file, under ``/proc``, a directory).

What must hold: exit status 2 with exactly one ``cnnlab: error:`` line (``cnnlab.load``: a
:class:`~cnnlab.errors.CnnlabError` whose message is one line), never a traceback, never a hang
(in-process commands run in a watchdog thread; the cases that could block forever run in one
real process, each command under an alarm), the marker file never appears, and a refused import
writes nothing. A few well-formed controls (float16 weights, a wrapped state dict) must be
accepted, so the harness cannot pass by refusing everything. Byte flips and ONNX truncations
may leave a file that is still valid: those cases accept either outcome, cleanly.
"""

from __future__ import annotations

import builtins
import contextlib
import io
import json
import os
import pickle
import struct
import subprocess
import sys
import threading
import traceback
import warnings
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch
from PIL import Image
from safetensors.torch import save as save_safetensors

import cnnlab
import helpers.models  # noqa: F401  (registers tinynet)
from cnnlab.cli import main
from cnnlab.errors import CheckpointError, CnnlabError
from cnnlab.registry import create_model
from cnnlab.runmeta import RunMeta
from cnnlab.train.checkpoint import save_model
from cnnlab.weights import Preprocessing, convert_pth
from helpers import subprocess_env, tally
from helpers.datasets import has_fashion_mnist
from helpers.optional import needs_onnx
from helpers.runs import SMALL
from helpers.sealing import sealed_metadata
from reliability.harness import pickle_bytes, torch_save_bytes

MODEL = "tinynet"
KEY = "0.weight"  # tinynet's first convolution, (8, 1, 3, 3)
BUFFER = "1.num_batches_tracked"  # its batch norm's int64 counter
WATCHDOG_S = 60  # a command that takes longer hung
ALARM_S = 20  # the same, per command of the child process
NAN, INF = float("nan"), float("inf")


# --- the files every case starts from --------------------------------------------------------


@dataclass(frozen=True)
class Base:
    """The well-formed files, as bytes, and what they were made from."""

    state: dict[str, torch.Tensor]
    record: dict[str, Any]  # model.safetensors' cnnlab metadata
    model: bytes  # model.safetensors
    pth: bytes  # torch.save, zip format
    legacy: bytes  # torch.save, legacy pickle format
    weights: bytes  # what `cnnlab weights import` wrote
    onnx: bytes  # a graph with the run's record
    image: Path


def _raw(text: str) -> _Raw:
    return _Raw(text)


class _Raw(str):
    """ONNX metadata stored as this text, not JSON-encoded."""


def _onnx(meta: dict[str, Any] | None, side: int = 28, classes: int = 10, inputs: int = 1) -> bytes:
    """A small classifier graph (flatten, matmul) with ``meta`` as its ``cnnlab.*`` metadata."""
    from onnx import TensorProto, helper, numpy_helper

    rng = np.random.default_rng(0)
    w = numpy_helper.from_array(rng.standard_normal((side * side, classes)).astype(np.float32), "w")
    nodes = [
        helper.make_node("Flatten", ["input"], ["flat"], axis=1),
        helper.make_node("MatMul", ["flat", "w"], ["logits"]),
    ]
    ins = [helper.make_tensor_value_info("input", TensorProto.FLOAT, ["N", 1, side, side])]
    ins += [helper.make_tensor_value_info("extra", TensorProto.FLOAT, ["N", 1])] * (inputs - 1)
    out = [helper.make_tensor_value_info("logits", TensorProto.FLOAT, ["N", classes])]
    graph = helper.make_graph(nodes, "g", ins, out, [w])
    proto = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 18)])
    proto.ir_version = 9
    for key, value in (meta or {}).items():
        entry = proto.metadata_props.add()
        entry.key = f"cnnlab.{key}"
        entry.value = value if isinstance(value, _Raw) else json.dumps(value, allow_nan=True)
    return proto.SerializeToString()


def _torch_save(obj: object, zip_format: bool = True) -> bytes:
    buf = io.BytesIO()
    torch.save(obj, buf, _use_new_zipfile_serialization=zip_format)
    return buf.getvalue()


@pytest.fixture(scope="module")
def base(tmp_path_factory: pytest.TempPathFactory) -> Base:
    root = tmp_path_factory.mktemp("base")
    torch.manual_seed(0)
    model = create_model(MODEL, num_classes=10, in_channels=1)
    meta = RunMeta(
        model=MODEL,
        num_classes=10,
        in_channels=1,
        input_size=(1, 28, 28),
        classes=tuple(f"class {i}" for i in range(10)),
        mean=(0.286,),
        std=(0.353,),
        dataset="fashion-mnist",
    )
    save_model(root / "model.safetensors", model, meta)
    state = {k: v.clone() for k, v in model.state_dict().items()}
    (root / "t.pth").write_bytes(_torch_save(state))
    pre = Preprocessing(None, 28, (0.286,), (0.353,))
    convert_pth(root / "t.pth", MODEL, root / "w.safetensors", preprocessing=pre)
    image = root / "image.png"
    Image.fromarray(np.full((28, 28), 128, np.uint8)).save(image)
    try:
        onnx = _onnx(meta.to_dict())
    except ImportError:  # the ONNX cases skip themselves
        onnx = b""
    model_bytes = (root / "model.safetensors").read_bytes()
    record = json.loads(_header(model_bytes)["__metadata__"]["cnnlab"])
    return Base(
        state=state,
        record=record,
        model=model_bytes,
        pth=(root / "t.pth").read_bytes(),
        legacy=_torch_save(state, zip_format=False),
        weights=(root / "w.safetensors").read_bytes(),
        onnx=onnx,
        image=image,
    )


# --- making hostile files --------------------------------------------------------------------

# A case writes its file at the path the command is given (``make(base, path)``); the marker a
# payload would create is ``path.parent / "ran"``.
Make = Callable[[Base, Path], None]


def _header(data: bytes) -> dict[str, Any]:
    (n,) = struct.unpack("<Q", data[:8])
    return json.loads(data[8 : 8 + n])


def _with_header(data: bytes, change: Callable[[dict[str, Any]], None]) -> bytes:
    """A safetensors file's bytes with its JSON header changed (tensor bytes kept)."""
    (n,) = struct.unpack("<Q", data[:8])
    header = json.loads(data[8 : 8 + n])
    change(header)
    text = json.dumps(header, allow_nan=True).encode()
    text += b" " * (-len(text) % 8)
    return struct.pack("<Q", len(text)) + text + data[8 + n :]


def _safetensors(tensors: dict[str, torch.Tensor], record: dict[str, Any]) -> bytes:
    """A crafted file: ``record`` and ``tensors`` with a digest that matches them, so the checks
    behind the digest must refuse what is wrong (:mod:`helpers.sealing`)."""
    return save_safetensors(tensors, metadata=sealed_metadata(tensors, record))


def _bytes(of: Callable[[Base], bytes]) -> Make:
    return lambda b, p: p.write_bytes(of(b))


def _link(target: str) -> Make:
    return lambda b, p: p.symlink_to(target)


def _fifo_link(b: Base, p: Path) -> None:
    os.mkfifo(p.with_name("pipe"))
    p.symlink_to("pipe")


# name -> (make, could hang: runs in the child process under an alarm)
SPECIAL: dict[str, tuple[Make, bool]] = {
    "fifo": (lambda b, p: os.mkfifo(p), True),
    "link-to-fifo": (_fifo_link, True),
    "dev-zero": (_link("/dev/zero"), True),
    "dev-urandom": (_link("/dev/urandom"), True),
    "proc-self-mem": (_link("/proc/self/mem"), True),
    "proc-self-status": (_link("/proc/self/status"), False),
    "directory": (lambda b, p: p.mkdir(), False),
    "symlink-loop": (lambda b, p: p.symlink_to(p.name), False),
    "dangling-link": (lambda b, p: p.symlink_to(p.name + ".gone"), False),
    "missing": (lambda b, p: None, False),
    "empty": (lambda b, p: p.write_bytes(b""), False),
}


def _cut(of: Callable[[Base], bytes], keep: Callable[[int], int]) -> Make:
    return lambda b, p: p.write_bytes(of(b)[: keep(len(of(b)))])


def _flip(of: Callable[[Base], bytes], span: Callable[[bytes], range], seed: int) -> Make:
    """One to three random bytes within ``span(data)`` replaced (seeded)."""

    def make(b: Base, p: Path) -> None:
        data = bytearray(of(b))
        where = span(bytes(data))
        rng = np.random.default_rng(seed)
        for i in rng.integers(where.start, where.stop, rng.integers(1, 4)):
            data[i] = int(rng.integers(0, 256))
        p.write_bytes(bytes(data))

    return make


def _data_span(data: bytes) -> range:
    """A safetensors file's tensor bytes, after its header."""
    return range(8 + struct.unpack("<Q", data[:8])[0], len(data))


def _damage_data(of: Callable[[Base], bytes], count: int, seed: int) -> Make:
    """``count`` bytes of the tensor data changed (XOR with a non-zero byte: always a change):
    a file that still parses, and that only its digest can tell from the original."""

    def make(b: Base, p: Path) -> None:
        data = bytearray(of(b))
        rng = np.random.default_rng(seed)
        where = _data_span(bytes(data))
        for i in rng.integers(where.start, where.stop, count):
            data[i] ^= int(rng.integers(1, 256))
        p.write_bytes(bytes(data))

    return make


def _header_span(data: bytes) -> range:
    """A safetensors file's length field and JSON header."""
    return range(8 + struct.unpack("<Q", data[:8])[0])


_DELETE = object()


def _record(key: str, value: Any) -> Make:
    """model.safetensors with one field of its run record set to ``value`` (or deleted)."""

    def make(b: Base, p: Path) -> None:
        record = dict(b.record)
        if value is _DELETE:
            del record[key]
        else:
            record[key] = value
        p.write_bytes(_safetensors(b.state, record))

    return make


def _metadata(value: Any) -> Make:
    """model.safetensors whose ``__metadata__`` is ``value`` (safetensors itself allows only a
    string-to-string map: the header is rewritten)."""

    def change(header: dict[str, Any]) -> None:
        header["__metadata__"] = value

    return lambda b, p: p.write_bytes(_with_header(b.model, change))


def _tensors(change: Callable[[dict[str, torch.Tensor]], Any], form: str) -> Make:
    """The state dict, changed, as ``form``: "pth", "model" or "weights"."""

    def make(b: Base, p: Path) -> None:
        state = {k: v.clone() for k, v in b.state.items()}
        obj = change(state)
        state = state if obj is None else obj
        if form == "pth":
            p.write_bytes(_torch_save(state))
        else:
            record = b.record if form == "model" else _header(b.weights)["__metadata__"]
            if form == "weights":
                p.write_bytes(_safetensors(state, json.loads(record["cnnlab"])))
            else:
                p.write_bytes(_safetensors(state, record))

    return make


def _weights_record(key: str, value: Any, inner: str | None = None) -> Make:
    """The imported weights with one field of their record (``inner``: of the preprocessing)."""

    def make(b: Base, p: Path) -> None:
        def change(header: dict[str, Any]) -> None:
            record = json.loads(header["__metadata__"]["cnnlab"])
            target = record if inner is None else record[inner]
            if value is _DELETE:
                del target[key]
            else:
                target[key] = value
            header["__metadata__"]["cnnlab"] = json.dumps(record, allow_nan=True)

        p.write_bytes(_with_header(b.weights, change))

    return make


def _onnx_meta(changes: dict[str, Any] | None, **graph: int) -> Make:
    """The ONNX file with the run record changed (``_DELETE``: left out; None: no record)."""

    def make(b: Base, p: Path) -> None:
        meta = None
        if changes is not None:
            meta = {k: v for k, v in b.record.items() if k != "format"}
            for key, value in changes.items():
                if value is _DELETE:
                    del meta[key]
                else:
                    meta[key] = value
        p.write_bytes(_onnx(meta, **graph))

    return make


class _System:
    """Unpickling this runs a shell command that creates the marker."""

    def __init__(self, marker: Path) -> None:
        self.marker = str(marker)

    def __reduce__(self) -> tuple[Any, ...]:
        return (os.system, (f"touch '{self.marker}'",))


class _Exec:
    """Unpickling this runs Python code that creates the marker."""

    def __init__(self, marker: Path) -> None:
        self.marker = str(marker)

    def __reduce__(self) -> tuple[Any, ...]:
        return (builtins.exec, (f"open({self.marker!r}, 'w').close()",))


def _payload(make_bytes: Callable[[Base, Path], bytes]) -> Make:
    return lambda b, p: p.write_bytes(make_bytes(b, p.parent / "ran"))


PICKLES: dict[str, tuple[Make, bool]] = {  # name -> (make, carries a payload)
    "pickle-open": (_payload(lambda b, m: pickle_bytes(m)), True),
    "pickle-os-system": (_payload(lambda b, m: pickle.dumps({"state_dict": _System(m)})), True),
    "pickle-exec": (_payload(lambda b, m: pickle.dumps(_Exec(m), protocol=2)), True),
    "pickle-protocol-0": (_payload(lambda b, m: pickle.dumps(_System(m), protocol=0)), True),
    "torch-zip-payload": (_payload(lambda b, m: torch_save_bytes(m, True)), True),
    "torch-legacy-payload": (_payload(lambda b, m: torch_save_bytes(m, False)), True),
    "pickle-plain-lists": (_bytes(lambda b: pickle.dumps({KEY: [1.0, 2.0]}, protocol=4)), False),
    "torch-numpy-array": (_bytes(lambda b: _torch_save({KEY: np.zeros((8, 1, 3, 3))})), False),
    "torch-legacy-state": (_bytes(lambda b: b.legacy), False),
}


# --- cases -----------------------------------------------------------------------------------

# Where each kind of file goes and what reads it.
TARGETS: dict[str, tuple[str, tuple[str, ...]]] = {
    "pth": ("weights.pth", ("import",)),
    "model": ("model.safetensors", ("predict", "load")),
    "weights": ("pretrained.safetensors", ("train",)),
    "pth-train": ("pretrained.pth", ("train",)),
    "onnx": ("model.onnx", ("predict", "load")),
}


@dataclass(frozen=True)
class Case:
    """One hostile file and the commands that read it.

    Attributes:
        id: the test id.
        target: a key of :data:`TARGETS`: the file's name and its readers.
        make: writes the file.
        refused: True: every command must refuse it (exit 2); False: accept it; None: either.
        commands: instead of the target's readers.
        hangs: could block forever: run in the child process, each command under an alarm.
        expect: an exit status per command, where it differs from ``refused``.
        out: ``weights import -o`` (relative to the case's directory; absolute stays).
        source: the path given instead of the file made (``.``, ``/``).
    """

    id: str
    target: str
    make: Make
    refused: bool | None = True
    commands: tuple[str, ...] = ()
    hangs: bool = False
    expect: dict[str, int] = field(default_factory=dict)
    out: str = "out.safetensors"
    source: str | None = None

    @property
    def readers(self) -> tuple[str, ...]:
        return self.commands or TARGETS[self.target][1]


def _special_cases() -> list[Case]:
    return [
        Case(f"{target}-{kind}", target, make, hangs=hangs)
        for kind, (make, hangs) in SPECIAL.items()
        for target in ("pth", "model", "weights", "onnx")
    ]


# Where files are cut: the first bytes, fractions of the length, and the last bytes (a zip's
# end record is its last 22).
CUTS: dict[str, Callable[[int], int]] = {
    "1": lambda n: 1,
    "2": lambda n: 2,
    "8": lambda n: 8,
    "16": lambda n: 16,
    "1/2": lambda n: n // 2,
    "end-1": lambda n: n - 1,
    "1/7": lambda n: n // 7,
    "6/7": lambda n: n * 6 // 7,
    "30": lambda n: 30,
    "end-22": lambda n: n - 22,
    "end-23": lambda n: n - 23,
    "end-100": lambda n: n - 100,
    "2/7": lambda n: n * 2 // 7,
    "3/7": lambda n: n * 3 // 7,
    "4/7": lambda n: n * 4 // 7,
    "5/7": lambda n: n * 5 // 7,
}


def _truncation_cases() -> list[Case]:
    out = []
    for name, of, count, target, refused in (
        ("pth", lambda b: b.pth, 16, "pth", True),
        ("legacy-pth", lambda b: b.legacy, 8, "pth", True),
        ("model", lambda b: b.model, 12, "model", True),
        ("weights", lambda b: b.weights, 4, "weights", True),
        ("onnx", lambda b: b.onnx, 8, "onnx", None),  # a cut between two fields still parses
    ):
        for label, keep in list(CUTS.items())[:count]:
            out.append(Case(f"truncated-{name}-{label}", target, _cut(of, keep), refused))
    return out


def _flip_cases() -> list[Case]:
    model = [
        Case(f"flip-model-header-{s}", "model", _flip(lambda b: b.model, _header_span, s), None)
        for s in range(16)
    ]
    pth = [  # the zip's first entry: its local header and the pickle
        Case(f"flip-pth-head-{s}", "pth", _flip(lambda b: b.pth, lambda d: range(512), s), None)
        for s in range(8)
    ]
    tail = lambda d: range(len(d) - 1024, len(d))  # noqa: E731  (the graph's I/O and metadata)
    onnx = [
        Case(f"flip-onnx-{s}", "onnx", _flip(lambda b: b.onnx, tail, s), None) for s in range(8)
    ]
    # The tensor data: every such file must be refused (its digest), whatever the bytes hit.
    data = [
        Case(f"damaged-{kind}-data-{n}-{s}", kind, _damage_data(of, n, s))
        for kind, of in (("model", lambda b: b.model), ("weights", lambda b: b.weights))
        for n in (1, 400)
        for s in range(4)
    ]
    return model + pth + onnx + data


# (field, wrong value, label): every field of the run record
FIELDS: list[tuple[str, Any, str]] = [
    ("model", ["tinynet"], "list"),
    ("model", 7, "number"),
    ("model", None, "null"),
    ("model", "no_such_net", "unregistered"),
    ("model", "", "empty"),
    ("model", "lenet5", "another-architecture"),
    ("num_classes", "10", "string"),
    ("num_classes", 10.0, "float"),
    ("num_classes", True, "bool"),
    ("num_classes", 0, "zero"),
    ("num_classes", -3, "negative"),
    ("num_classes", 10**9, "billion"),
    ("num_classes", 10**400, "huge-int"),
    ("num_classes", 9, "disagrees-with-classes"),
    ("in_channels", 0, "zero"),
    ("in_channels", 5, "five"),
    ("in_channels", "1", "string"),
    ("in_channels", 3, "disagrees-with-input"),
    ("input_size", [1, 60000, 60000], "huge"),
    ("input_size", [1, 4097, 28], "over-bound"),
    ("input_size", [1, 28], "two"),
    ("input_size", [1, 28, 28, 1], "four"),
    ("input_size", "1x28x28", "string"),
    ("input_size", [3, 28, 28], "other-channels"),
    ("input_size", [1, 0, 28], "zero"),
    ("input_size", [1, -28, 28], "negative"),
    ("input_size", [1, 28.0, 28], "float"),
    ("input_size", [1, 4, 4], "below-minimum"),
    ("input_size", None, "null"),
    ("classes", "0123456789", "string"),
    ("classes", list(range(10)), "numbers"),
    ("classes", ["a"] * 9, "too-few"),
    ("classes", None, "null"),
    ("classes", {"a": 1}, "object"),
    ("mean", [NAN], "nan"),
    ("mean", [INF], "inf"),
    ("mean", ["0.5"], "string"),
    ("mean", [0.5, 0.5], "two-channels"),
    ("mean", 0.5, "scalar"),
    ("mean", [-1.0], "negative"),
    ("mean", [1e300], "huge"),
    ("std", [0.0], "zero"),
    ("std", [-0.1], "negative"),
    ("std", [1e-300], "tiny"),
    ("std", [NAN], "nan"),
    ("std", [1e6], "huge"),
    ("std", [], "empty"),
    ("model_kwargs", {"foo": 1}, "unknown-setting"),
    ("model_kwargs", {"nan_after": 1}, "setting-not-recorded"),
    ("model_kwargs", [], "list"),
    ("model_kwargs", "dropout", "string"),
    ("model_kwargs", {"dropout": "big"}, "dropout-string"),
    ("model_kwargs", {"dropout": 5}, "dropout-range"),
    ("model_kwargs", {"dropout": True}, "dropout-bool"),
    ("model_kwargs", {"dropout": NAN}, "dropout-nan"),
    ("resize", "big", "string"),
    ("resize", 1e6, "float"),
    ("resize", -1, "negative"),
    ("resize", 0, "zero"),
    ("resize", 10**6, "huge"),
    ("resize", True, "bool"),
    ("tta", "yes", "string"),
    ("tta", 1, "number"),
    ("tta", None, "null"),
    ("seed", -1, "negative"),
    ("seed", "7", "string"),
    ("seed", 1.5, "float"),
    ("seed", 2**64, "huge"),
    ("test_top1", "high", "string"),
    ("test_top1", 2.0, "over-one"),
    ("test_top1", NAN, "nan"),
    ("dataset", 5, "number"),
    ("dataset", ["fashion-mnist"], "list"),
    ("precision", 5, "number"),
    ("recipe", [], "list"),
    ("weights", {}, "object"),
    ("cnnlab_version", 3, "number"),
    ("format", "cnnlab.other/9", "unknown"),
    ("format", None, "null"),
    ("format", ["cnnlab.model/1"], "list"),
]
REQUIRED = ("model", "num_classes", "in_channels", "input_size", "classes", "mean", "std")
# The cnnlab metadata text itself, and safetensors' __metadata__ map.
METADATA: dict[str, Make] = {
    "cnnlab-list": _metadata({"cnnlab": "[]"}),
    "cnnlab-null": _metadata({"cnnlab": "null"}),
    "cnnlab-number": _metadata({"cnnlab": "42"}),
    "cnnlab-string": _metadata({"cnnlab": '"model"'}),
    "cnnlab-not-json": _metadata({"cnnlab": "{model: tinynet"}),
    "cnnlab-nesting-bomb": _metadata({"cnnlab": "[" * 100_000}),
    "cnnlab-huge-number": _metadata({"cnnlab": '{"num_classes": 1' + "0" * 5000 + "}"}),
    "cnnlab-not-text": _metadata({"cnnlab": 5}),
    "cnnlab-missing": _metadata({"other": "x"}),
    "metadata-list": _metadata(["cnnlab"]),
    "metadata-string": _metadata("cnnlab"),
    "metadata-number": _metadata(1),
    "no-metadata": _metadata(None),
}


def _field_cases() -> list[Case]:
    # eval reads the same record: a sample of the cases runs it too (refused before any data).
    with_eval = {"input_size-huge", "resize-string", "model-list", "model_kwargs-unknown-setting"}
    out = [
        Case(
            f"record-{key}-{label}",
            "model",
            _record(key, value),
            commands=("predict", "load", "eval") if f"{key}-{label}" in with_eval else (),
        )
        for key, value, label in FIELDS
    ]
    out += [Case(f"record-{key}-missing", "model", _record(key, _DELETE)) for key in REQUIRED]
    out += [Case(f"metadata-{name}", "model", make) for name, make in METADATA.items()]
    return out


def _weights_field_cases() -> list[Case]:
    """The imported weights' record, read by ``train --weights`` before any data is."""
    cases = [
        ("model", ["tinynet"], None, "model-list"),
        ("model", "lenet5", None, "model-other"),
        ("model", _DELETE, None, "model-missing"),
        ("categories", ["a"] * 3, None, "categories-count"),
        ("categories", list(range(10)), None, "categories-numbers"),
        ("categories", "abc", None, "categories-string"),
        ("preprocessing", [28], None, "preprocessing-list"),
        ("preprocessing", _DELETE, None, "preprocessing-missing"),
        ("crop", "28", "preprocessing", "crop-string"),
        ("crop", 0, "preprocessing", "crop-zero"),
        ("crop", 10**6, "preprocessing", "crop-huge"),
        ("resize", "big", "preprocessing", "resize-string"),
        ("resize", 1e6, "preprocessing", "resize-float"),
        ("mean", [NAN], "preprocessing", "mean-nan"),
        ("std", [0.0], "preprocessing", "std-zero"),
        ("mean", [0.5] * 5, "preprocessing", "mean-five-channels"),
        ("source", 5, None, "source-number"),
    ]
    return [
        Case(f"weights-record-{label}", "weights", _weights_record(key, value, inner))
        for key, value, inner, label in cases
    ]


def _set(key: str, value: torch.Tensor) -> Callable[[dict[str, torch.Tensor]], None]:
    return lambda s: s.__setitem__(key, value)


def _poke(value: float, dtype: torch.dtype = torch.float32) -> Callable[[dict], None]:
    """The first convolution's first weight set to ``value`` (as ``dtype``)."""

    def change(s: dict[str, torch.Tensor]) -> None:
        t = s[KEY].to(dtype)
        t.view(-1)[0] = value
        s[KEY] = t

    return change


# name -> (change, refused) for a state dict, whatever the file format
TENSORS: dict[str, tuple[Callable[[dict[str, torch.Tensor]], Any], bool]] = {
    "bool": (lambda s: _set(KEY, s[KEY] > 0)(s), True),
    "int64": (lambda s: _set(KEY, (s[KEY] * 100).to(torch.int64))(s), True),
    "int32": (lambda s: _set(KEY, (s[KEY] * 100).to(torch.int32))(s), True),
    "uint8": (lambda s: _set(KEY, s[KEY].abs().mul(100).to(torch.uint8))(s), True),
    "complex64": (lambda s: _set(KEY, s[KEY].to(torch.complex64) * (1 + 1j))(s), True),
    "float8": (lambda s: _set(KEY, s[KEY].to(torch.float8_e4m3fn))(s), True),
    "nan": (_poke(NAN), True),
    "inf": (_poke(INF), True),
    "minus-inf": (_poke(-INF), True),
    "float64-overflows-float32": (_poke(1e300, torch.float64), True),
    "buffer-as-float": (lambda s: _set(BUFFER, s[BUFFER].float())(s), True),
    "buffer-as-bool": (lambda s: _set(BUFFER, torch.tensor(True))(s), True),
    "wrong-shape": (lambda s: _set(KEY, torch.zeros(8, 1, 5, 5))(s), True),
    "missing-key": (lambda s: s.__delitem__(KEY), True),
    "extra-key": (lambda s: _set("extra.weight", torch.zeros(2))(s), True),
    "float16": (lambda s: _set(KEY, s[KEY].half())(s), False),
    "float64": (lambda s: _set(KEY, s[KEY].double())(s), False),
    "bfloat16": (lambda s: _set(KEY, s[KEY].bfloat16())(s), False),
    "buffer-int32": (lambda s: _set(BUFFER, s[BUFFER].int())(s), False),
}
# Only a torch.save file can hold these.
PTH_ONLY: dict[str, tuple[Callable[[dict[str, torch.Tensor]], Any], bool]] = {
    "sparse": (lambda s: _set(KEY, s[KEY].to_sparse())(s), True),
    "meta-device": (lambda s: _set(KEY, torch.empty(8, 1, 3, 3, device="meta"))(s), True),
    "non-tensor-value": (lambda s: s.__setitem__(KEY, 1.5), True),
    "int-key": (lambda s: s.__setitem__(7, torch.zeros(1)), True),
    "nested": (lambda s: {"a": {"b": s}}, True),
    "empty": (lambda s: {}, True),
    "list": (lambda s: list(s.values()), True),
    "one-tensor": (lambda s: s[KEY], True),
    "wrapped-state-dict": (lambda s: {"state_dict": s}, False),
    "wrapped-model": (lambda s: {"model": s}, False),
}


def _recompressed(b: Base, p: Path) -> None:
    """The torch.save archive with its members deflated, and one more: 64 MiB of zeros in a
    few kilobytes (torch's reader would inflate it)."""
    import zipfile

    with zipfile.ZipFile(io.BytesIO(b.pth)) as src, zipfile.ZipFile(p, "w") as out:
        for info in src.infolist():
            out.writestr(info.filename, src.read(info), compress_type=zipfile.ZIP_DEFLATED)
        out.writestr("archive/data/bomb", bytes(64 * 2**20), compress_type=zipfile.ZIP_DEFLATED)


HOSTILE_NAME = "x\n\x1b[31mcnnlab: error: FAKE\x1b[0m\u202e"  # a line break, colour, bidi


def _tensor_cases() -> list[Case]:
    out = [
        Case("pth-zip-deflated-bomb", "pth", _recompressed),
        Case(
            "pth-tensors-hostile-name", "pth", _tensors(_set(HOSTILE_NAME, torch.zeros(1)), "pth")
        ),
        Case(
            "model-tensors-hostile-name",
            "model",
            _tensors(_set(HOSTILE_NAME, torch.zeros(1)), "model"),
        ),
    ]
    out += [
        Case(f"pth-tensors-{name}", "pth", _tensors(change, "pth"), refused)
        for name, (change, refused) in (TENSORS | PTH_ONLY).items()
    ]
    out += [
        Case(f"model-tensors-{name}", "model", _tensors(change, "model"), refused)
        for name, (change, refused) in TENSORS.items()
    ]
    if has_fashion_mnist():  # these are refused after the run's data is loaded
        out += [
            Case(f"weights-tensors-{name}", "weights", _tensors(TENSORS[name][0], "weights"))
            for name in ("nan", "int64")
        ]
    return out


def _pickle_cases() -> list[Case]:
    out = []
    for name, (make, _) in PICKLES.items():
        for target in ("pth", "model", "weights", "pth-train", "onnx"):
            refused = not (name == "torch-legacy-state" and target == "pth")
            out.append(Case(f"{target}-{name}", target, make, refused))
    return out


def _onnx_cases() -> list[Case]:
    rng = np.random.default_rng(0)
    garbage = {
        **{f"random-{i}": rng.integers(0, 256, 4096, dtype=np.uint8).tobytes() for i in range(4)},
        "text": b"this is not an ONNX model\n" * 20,
        "html": b"<!doctype html><title>404</title><p>not found</p>",
        "json": json.dumps({"cnnlab.model": "tinynet"}).encode(),
        "zeros": bytes(1024),
    }
    out = [Case(f"onnx-{k}", "onnx", _bytes(lambda b, v=v: v)) for k, v in garbage.items()]
    out += [
        Case("onnx-is-safetensors", "onnx", _bytes(lambda b: b.model)),
        Case("onnx-is-torch-save", "onnx", _bytes(lambda b: b.pth)),
    ]
    with_eval = ("predict", "load", "eval")
    meta_cases: list[tuple[str, str | None, Any, dict[str, int], tuple[str, ...]]] = [
        ("no-metadata", None, None, {}, ()),
        ("classes-number", "classes", 5, {}, ()),
        ("classes-missing", "classes", _DELETE, {}, ()),
        ("input-size-string", "input_size", _raw("1x28x28"), {}, ()),
        ("input-size-huge", "input_size", [1, 60000, 60000], {}, with_eval),
        ("num-classes-disagrees", "num_classes", 3, {}, ()),
        ("mean-nan-text", "mean", _raw("[NaN]"), {}, ()),
        ("model-unregistered", "model", "no_such_net", {}, with_eval),
        ("in-channels-string", "in_channels", "1", {}, ()),
        ("tta-string", "tta", "yes", {}, ()),
        ("kwargs-unknown", "model_kwargs", {"foo": 1}, {}, ()),
        ("record-not-json", "std", _raw("{"), {}, ()),
    ]
    out += [
        Case(
            f"onnx-{label}",
            "onnx",
            _onnx_meta(None if key is None else {key: value}),
            expect=expect,
            commands=commands,
        )
        for label, key, value, expect, commands in meta_cases
    ]
    five = {"classes": [f"c{i}" for i in range(5)], "num_classes": 5}
    # Graphs that do not fit their (well-formed) record.
    out += [
        Case("onnx-graph-other-size", "onnx", _onnx_meta({"input_size": [1, 32, 32]})),
        Case("onnx-graph-two-inputs", "onnx", _onnx_meta({}, inputs=2)),
        Case(
            "onnx-graph-other-classes",  # loads, then its logits do not fit: refused at predict
            "onnx",
            _onnx_meta(five, classes=10),
            expect={"load": 0},
        ),
        Case("onnx-control", "onnx", _onnx_meta({}), refused=False),
    ]
    return out


def _output_cases() -> list[Case]:
    """``weights import -o``: paths it cannot write, and two it can."""

    def with_file(b: Base, p: Path) -> None:
        p.write_bytes(b.pth)
        p.with_name("a-file").write_text("x")
        os.mkfifo(p.with_name("pipe"))
        p.with_name("dir").mkdir()
        p.with_name("link").symlink_to("nowhere")
        p.with_name("old.safetensors").write_bytes(b"old")

    cases = {
        "under-a-file": ("a-file/out.safetensors", True),
        "under-proc": ("/proc/out.safetensors", True),
        "under-proc-self": ("/proc/self/out.safetensors", True),
        "a-directory": ("dir", True),
        "a-fifo": ("pipe", True),
        "a-dangling-link": ("link", True),
        "new-directories": ("new/sub/out.safetensors", False),
        "over-a-file": ("old.safetensors", False),
    }
    out = [Case(f"out-{k}", "pth", with_file, r, out=o) for k, (o, r) in cases.items()]
    out += [
        Case("in-dot", "pth", with_file, source=".", out=""),
        Case("in-root", "pth", with_file, source="/", out=""),
        Case("in-unknown-model", "pth", with_file, commands=("import-lenet5",)),
    ]
    return out


GROUPS: dict[str, Callable[[], list[Case]]] = {
    "special": lambda: [c for c in _special_cases() if not c.hangs],
    "truncations": _truncation_cases,
    "flips": _flip_cases,
    "record-fields": _field_cases,
    "weights-fields": _weights_field_cases,
    "tensors": _tensor_cases,
    "pickles": _pickle_cases,
    "onnx": _onnx_cases,
    "outputs": _output_cases,
}


def all_cases() -> list[Case]:
    return [c for make in GROUPS.values() for c in make()] + [
        c for c in _special_cases() if c.hangs
    ]


# --- running ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class Outcome:
    rc: int | None  # None: an exception escaped (its traceback is in ``err``)
    out: str
    err: str


def argv(name: str, case: Case, path: Path, image: Path) -> list[str]:
    """The command line of ``name`` on ``path`` (``load`` is the library: ["load", path])."""
    source = case.source or str(path)
    if name in ("import", "import-lenet5"):
        model = "lenet5" if name == "import-lenet5" else MODEL
        out = ["-o", str(path.parent / case.out)] if case.out else []
        return ["weights", "import", source, "--model", model, *out]
    run = str(path.parent / "run")
    return {
        "predict": ["predict", source, str(image), "--device", "cpu"],
        "eval": ["eval", source, "--limit", "8", "--device", "cpu"],
        "load": ["load", source],
        "train": ["train", MODEL, "--weights", source, *SMALL, "--out", run],
    }[name]


def call(args: list[str]) -> int:
    """``main(args)``, or for ``["load", path]`` :func:`cnnlab.load` with the CLI's error line."""
    if args[0] != "load":
        return main(args)
    try:
        cnnlab.load(args[1], device="cpu")
    except CnnlabError as err:
        print(f"cnnlab: error: {err}", file=sys.stderr)
        return 2
    return 0


def _show_warning(message: Any, category: Any, filename: str, lineno: int, *args: Any) -> None:
    sys.stderr.write(warnings.formatwarning(message, category, filename, lineno))


def _python_default_warnings() -> None:
    """Warnings as ``cnnlab`` run from a shell shows them (pytest records them instead): on
    stderr, with Python's default filters, so a warning breaks the one-line rule here too."""
    warnings.resetwarnings()
    warnings.simplefilter("default")
    for category in (DeprecationWarning, PendingDeprecationWarning, ImportWarning, ResourceWarning):
        warnings.simplefilter("ignore", category)
    warnings.showwarning = _show_warning


def run_in_thread(args: list[str]) -> Outcome:
    """:func:`call` in a watchdog thread, stdout and stderr captured."""
    out, err = io.StringIO(), io.StringIO()
    result: dict[str, Any] = {}

    def target() -> None:
        with (
            contextlib.redirect_stdout(out),
            contextlib.redirect_stderr(err),
            warnings.catch_warnings(),
        ):
            _python_default_warnings()
            try:
                result["rc"] = call(args)
            except SystemExit as done:
                result["rc"] = done.code
            except BaseException:  # a traceback is what the test looks for
                traceback.print_exc(file=sys.stderr)

    threads = torch.get_num_threads()
    worker = threading.Thread(target=target, daemon=True)
    worker.start()
    worker.join(WATCHDOG_S)
    torch.set_num_threads(threads)
    assert not worker.is_alive(), f"{' '.join(args)} hung"
    return Outcome(result.get("rc"), out.getvalue(), err.getvalue())


def build(case: Case, base: Base, work: Path) -> Path:
    work.mkdir(parents=True)
    path = work / TARGETS[case.target][0]
    case.make(base, path)
    return path


def check(case: Case, name: str, path: Path, outcome: Outcome) -> None:
    """One clean line or a clean success, as the case expects; nothing ran; nothing written."""
    where = f"{case.id}: {name}"
    last = (outcome.err.strip().splitlines() or [""])[-1]
    assert "Traceback" not in outcome.out + outcome.err, f"{where}: {last}\n{outcome.err[-2000:]}"
    assert outcome.rc in (0, 2), f"{where}: exit {outcome.rc}\n{outcome.err[-2000:]}"
    if outcome.rc == 2:
        assert outcome.err.startswith("cnnlab: error: "), f"{where}: {outcome.err!r}"
        assert outcome.err.count("\n") == 1 and outcome.err.endswith("\n"), (
            f"{where}: {outcome.err!r}"
        )
    assert "\x1b" not in outcome.out + outcome.err, f"{where}: printed an escape from a file"
    want = case.expect.get(name, None if case.refused is None else 2 if case.refused else 0)
    if want is not None:
        assert outcome.rc == want, f"{where}: exit {outcome.rc} (want {want}) {outcome.err!r}"
    assert not (path.parent / "ran").exists(), f"{where}: a pickle payload ran"
    if name == "import" and case.out:
        written = path.parent / case.out
        if outcome.rc == 2 and case.out != "old.safetensors":
            assert not written.is_file() or written.is_symlink(), f"{where}: refused yet wrote"
        if outcome.rc == 0:
            assert written.is_file() and written.stat().st_size > 8, where


def check_case(case: Case, base: Base, work: Path) -> None:
    path = build(case, base, work)
    for name in case.readers:
        if case.target == "onnx" and not base.onnx:
            return
        check(case, name, path, run_in_thread(argv(name, case, path, base.image)))


@pytest.mark.parametrize("group", list(GROUPS))
def test_hostile_weights_give_one_clean_line(group: str, base: Base, tmp_path: Path) -> None:
    cases = GROUPS[group]()
    assert len({c.id for c in cases}) == len(cases), "case ids repeat"
    failures = []
    for i, case in enumerate(cases):
        try:
            check_case(case, base, tmp_path / f"c{i}")
        except AssertionError as err:
            failures.append(str(err).splitlines()[0] if str(err) else f"{case.id}: failed")
    tally.record("weights files", len(cases), failures)
    assert not failures, f"{len(failures)} of {len(cases)} cases:\n" + "\n".join(failures)


def test_there_are_enough_cases() -> None:
    cases = all_cases()
    runs = sum(len(c.readers) for c in cases)
    assert len(cases) >= 300 and runs >= 450, (len(cases), runs)


# --- files that could block forever: one real process, each command under an alarm -----------

CHILD = """
import contextlib, io, json, signal, sys, traceback
import helpers.models
from test_hostile_weights import call

def alarm(signum, frame):
    raise TimeoutError("hung")

signal.signal(signal.SIGALRM, alarm)
for args in json.loads(sys.argv[1]):
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        signal.alarm(int(sys.argv[2]))
        try:
            rc = call(args)
        except SystemExit as done:
            rc = done.code
        except BaseException:
            rc = None
            traceback.print_exc()
        finally:
            signal.alarm(0)
    print(json.dumps({"rc": rc, "out": out.getvalue(), "err": err.getvalue()}), flush=True)
"""


def test_files_that_could_block_never_hang(base: Base, tmp_path: Path) -> None:
    """FIFOs, /dev/zero, /dev/urandom and /proc/self/mem in place of every kind of weights file,
    through every reader, in a child process (a plain open() of a FIFO blocks until a writer
    comes; /dev/zero never ends): each command must finish within the alarm."""
    plan = []
    for i, case in enumerate(c for c in _special_cases() if c.hangs):
        path = build(case, base, tmp_path / f"c{i}")
        plan += [(case, name, path) for name in case.readers if case.target != "onnx" or base.onnx]
    args = [argv(name, case, path, base.image) for case, name, path in plan]
    child = subprocess.run(
        [sys.executable, "-c", CHILD, json.dumps(args), str(ALARM_S)],
        cwd=Path(__file__).resolve().parent,
        env=subprocess_env(),
        capture_output=True,
        text=True,
        timeout=WATCHDOG_S * 3,
    )
    assert child.returncode == 0, child.stderr[-3000:]
    results = [json.loads(line) for line in child.stdout.splitlines()]
    assert len(results) == len(plan), child.stdout[-3000:]
    failures = []
    for (case, name, path), got in zip(plan, results, strict=True):
        try:
            assert "TimeoutError: hung" not in got["err"], f"{case.id}: {name} hung"
            check(case, name, path, Outcome(got["rc"], got["out"], got["err"]))
        except AssertionError as err:
            failures.append(str(err).splitlines()[0] if str(err) else f"{case.id}: failed")
    tally.record("weights files", len({case.id for case, *_ in plan}), failures)
    assert not failures, "\n".join(failures)


# --- memory: an input size within bounds that still would not fit ---------------------------


def test_an_input_too_large_for_memory_is_refused_before_allocating(
    base: Base, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The analyzer's estimate for one image is compared with the memory a batch may take."""
    import cnnlab.predictor as predictor

    path = tmp_path / "model.safetensors"
    _record("input_size", [1, 4096, 4096])(base, path)
    monkeypatch.setattr(predictor, "MEMORY_SHARE", 1e-4)  # a machine of a few megabytes
    outcome = run_in_thread(["predict", str(path), str(base.image), "--device", "cpu"])
    case = Case("memory", "model", _record("input_size", [1, 4096, 4096]))
    check(case, "predict", path, outcome)
    assert "1x4096x4096 needs about" in outcome.err and "per image" in outcome.err
    with pytest.raises(CheckpointError, match="needs about"):
        cnnlab.load(path, device="cpu")
    # Without the limit the same record loads, and batches shrink to what fits.
    monkeypatch.setattr(predictor, "MEMORY_SHARE", 0.5)
    meta = RunMeta.from_dict(base.record | {"input_size": [1, 4096, 4096]})
    need = predictor.bytes_per_image(meta)
    assert need > 4096 * 4096 * 4 * 8  # the activations count, not only the input
    assert predictor.images_that_fit(meta, torch.device("cpu")) == (
        predictor.memory_budget(torch.device("cpu")) // need
    )


def test_batches_shrink_to_the_memory_a_batch_may_take(
    base: Base, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Where the asked-for batch would not fit, it is made smaller; the answers stay the same."""
    import cnnlab.predictor as predictor

    path = tmp_path / "model.safetensors"
    path.write_bytes(base.model)
    images = torch.randint(0, 256, (10, 1, 28, 28), dtype=torch.uint8)
    want = cnnlab.load(path, device="cpu").logits(images)
    meta = RunMeta.from_dict(base.record)
    need = predictor.bytes_per_image(meta)
    assert need == 28 * 28 * 4  # the model's default size: the input alone, nothing traced
    total = predictor.memory_budget(torch.device("cpu")) / predictor.MEMORY_SHARE
    monkeypatch.setattr(predictor, "MEMORY_SHARE", 3.5 * need / total)  # room for 3 images
    assert predictor.images_that_fit(meta, torch.device("cpu")) == 3
    torch.testing.assert_close(cnnlab.load(path, device="cpu").logits(images), want)
    monkeypatch.setattr(predictor, "MEMORY_SHARE", 0.5 * need / total)  # not even one
    with pytest.raises(CheckpointError, match=r"tinynet at 1x28x28 needs about 3.06 KiB per"):
        cnnlab.load(path, device="cpu")


def test_resnet152_at_the_largest_side_does_not_fit_a_batch_of_one() -> None:
    meta = RunMeta(
        model="resnet152",
        num_classes=1000,
        in_channels=3,
        input_size=(3, 4096, 4096),
        classes=tuple(str(i) for i in range(1000)),
        mean=(0.5,) * 3,
        std=(0.25,) * 3,
    )
    from cnnlab.predictor import bytes_per_image

    assert bytes_per_image(meta) > 50 * 2**30  # about 74 GiB: refused on any ordinary machine


# --- the record's bounds are the documented ones ---------------------------------------------


@needs_onnx
def test_onnx_control_predicts(base: Base, tmp_path: Path) -> None:
    """The well-formed ONNX file every ONNX case starts from runs and names a class."""
    path = tmp_path / "model.onnx"
    path.write_bytes(base.onnx)
    probs = cnnlab.load(path).predict([base.image])
    assert probs.shape == (1, 10) and torch.isfinite(probs).all()


def test_a_payload_really_runs_when_unpickled(tmp_path: Path) -> None:
    """The payloads are live: unpickled the unsafe way (in a child), each creates its marker."""
    for name in ("pickle-os-system", "pickle-exec"):
        marker = tmp_path / name / "ran"
        marker.parent.mkdir()
        PICKLES[name][0](None, marker.with_name("x"))  # type: ignore[arg-type]
        code = "import pickle, sys; pickle.loads(open(sys.argv[1], 'rb').read())"
        subprocess.run(
            [sys.executable, "-c", code, str(marker.with_name("x"))],
            cwd=Path(__file__).resolve().parent,
            env=subprocess_env(),
            check=True,
            timeout=60,
        )
        assert marker.exists(), name
