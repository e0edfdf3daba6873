"""The architecture view's data: the analyzer's table as a graph, with the lecture's working.

For a zoo model (or a run's model) at any input size, :func:`diagram` returns the analyzer's own
rows and totals (:func:`cnnlab.analysis.analyze`, what ``cnnlab summary --format json`` prints),
and adds what a drawing needs and the table does not hold:

* **data flow**: for each row, the rows whose outputs it reads (``sources``), recorded by a
  second pass over the same model on the meta device (:class:`Flow`); a residual addition
  reads its block's input or its projection, a concatenation its branches (Szegedy et al.
  2014), a dense layer every earlier feature map of its block (Huang et al. 2017);
* **blocks**: the modules that hold several rows (a bottleneck, an inception module, a dense
  block, a stage of 36 bottlenecks), which the page folds and opens, with their sums;
* **formulas**: the lecture's arithmetic with the row's numbers put in, e.g.
  ``(227 - 11 + 2·0)/4 + 1 = 55`` and ``(11·11·3 + 1)·96 = 34,944``; each result is checked
  against the analyzer's figure and a formula that does not reproduce it is left out;
* **errata**: the slides' claims about each row (:mod:`cnnlab.analysis.errata`) and whether
  they hold, at the input size the claim is about.

:func:`compare` is :func:`cnnlab.analysis.compare.compare_models` (``cnnlab summary`` of several
models, with torchvision's published ImageNet accuracy) for the cost-against-accuracy chart
(Canziani et al. 2016, "An Analysis of Deep Neural Network Models for Practical Applications").
"""

from __future__ import annotations

import itertools
import math
import re
import threading
from collections import OrderedDict
from typing import TYPE_CHECKING, Any

from starlette.requests import Request
from starlette.routing import Route

from cnnlab import formats
from cnnlab.studio.api import JSONResponse, run_dir, studio
from cnnlab.studio.security import Refused

if TYPE_CHECKING:
    from torch import nn

    from cnnlab.analysis.report import Report, Row

MAX_SIDE = 4096  # pixels: far beyond any zoo model's default, still a volume the page can draw
MAX_COMPARE = 12  # models in one comparison
CACHE_SIZE = 16  # diagrams kept (densenet201's is the largest, about 1 MB of JSON)
WINDOW_KINDS = ("conv", "pool")
ONE_PER_ELEMENT = ("norm", "act", "elementwise")  # the lecture count's 1 multiply-add each
DOT = "·"  # the lecture's multiplication dot


# --- data flow ---------------------------------------------------------------------------------


def _flow_mode():  # torch is imported on first use, not with the studio
    import torch
    from torch import nn
    from torch.overrides import TorchFunctionMode

    from cnnlab.analysis.trace import canonical_name, tensors_in

    class Flow(TorchFunctionMode):
        """Which earlier call produced each input of every call (tensor identity).

        The analyzer's tracer (:mod:`cnnlab.analysis.trace`) records the same calls under the
        same rule (a call with a tensor output and an input from the data flow) and groups the
        calls of one leaf module's forward into one row, as this does; :func:`data_flow` checks
        that both agree row by row before it trusts the edges.
        """

        def __init__(self, x: torch.Tensor) -> None:
            super().__init__()
            self.producer: dict[int, int] = {id(x): 0}  # tensor id -> group (row) index
            self.keep = [x]  # the tensors stay alive, so their ids stay unique
            self.groups: list[dict[str, Any]] = []  # one per row after the input
            self.stack: list[nn.Module] = []
            self.open_leaf: dict[int, int] = {}  # id(leaf module) -> its group, while it runs

        def pre_hook(self, module: nn.Module, args: Any) -> None:
            self.stack.append(module)

        def post_hook(self, module: nn.Module, args: Any, output: Any) -> None:
            if self.stack and self.stack[-1] is module:
                self.stack.pop()
            self.open_leaf.pop(id(module), None)

        def __torch_function__(self, func, types, args=(), kwargs=None):
            kwargs = kwargs or {}
            x = args[0] if args else kwargs.get("input")
            on_meta = isinstance(x, torch.Tensor) and x.is_meta
            # Shape rules instead of PyTorch's meta decompositions, which are slow in Python
            # (batch norm's is half of a ResNet's trace) or import its compiler (linear's).
            if on_meta and func is nn.functional.linear:
                w = args[1] if len(args) > 1 else kwargs["weight"]
                out = torch.empty((*x.shape[:-1], w.shape[0]), dtype=x.dtype, device="meta")
            elif on_meta and func is nn.functional.batch_norm:
                out = torch.empty_like(x)
            else:
                out = func(*args, **kwargs)
            outputs = list(tensors_in(out))
            inputs = [t for t in tensors_in((args, kwargs)) if id(t) in self.producer]
            if not outputs or not inputs:
                return out
            module = self.stack[-1] if self.stack else None
            leaf = module is not None and next(iter(module.children()), None) is None
            if leaf and id(module) in self.open_leaf:
                index = self.open_leaf[id(module)]
            else:
                self.groups.append({"sources": [], "calls": []})
                index = len(self.groups)
                if leaf:
                    self.open_leaf[id(module)] = index
            group = self.groups[index - 1]
            group["calls"].append(canonical_name(func))
            for t in inputs:
                source = self.producer[id(t)]
                if source != index and source not in group["sources"]:
                    group["sources"].append(source)
            for t in outputs:
                self.producer[id(t)] = index
                self.keep.append(t)
            group["shape"] = list(outputs[0].shape[1:])
            return out

    return Flow


def data_flow(net: nn.Module, report: Report) -> list[list[int]] | None:
    """For each row of ``report`` (the analysis of ``net``), the rows it reads, or None when
    the second pass does not line up with the analyzer's rows (then the page draws a chain)."""
    import torch

    shape = (report.batch_size, *report.input_size)
    x = torch.empty(shape, device="meta")
    state = {
        k: torch.empty_like(v, device="meta")
        for k, v in {**dict(net.named_parameters()), **dict(net.named_buffers())}.items()
    }
    flow = _flow_mode()(x)
    handles = []
    for module in net.modules():
        handles.append(module.register_forward_pre_hook(flow.pre_hook))
        handles.append(module.register_forward_hook(flow.post_hook, always_call=True))
    training = {m: m.training for m in net.modules()}
    net.eval()  # as the analyzer traces
    try:
        with flow, torch.no_grad():
            torch.func.functional_call(net, state, (x,))
    except RuntimeError:
        return None
    finally:
        for h in handles:
            h.remove()
        for m, t in training.items():
            m.training = t
    rows = report.all_rows
    if len(flow.groups) != len(rows) - 1 or any(
        g["shape"] != r.output_shape for g, r in zip(flow.groups, rows[1:], strict=True)
    ):
        return None
    return [[], *[g["sources"] for g in flow.groups]]


# --- blocks --------------------------------------------------------------------------------------


def _container(name: str, modules: dict[str, str]) -> list[str]:
    """The module paths that hold row ``name``, outermost first (the row's own leaf excluded)."""
    parts = name.split(":")[0].split(".")
    paths = [".".join(parts[:i]) for i in range(1, len(parts))]
    return [p for p in paths if p in modules]


def blocks(report: Report, sources: list[list[int]]) -> list[dict[str, Any]]:
    """The modules that hold two rows or more, each a contiguous run of rows, outermost first.

    Each block: ``name`` (module path), ``type`` (its class), ``parent`` (index of the enclosing
    block or None), ``first``/``last`` (row indices), ``kind`` (``residual``: an addition of two
    paths, ``concat``: a concatenation of branches, ``dense``: concatenations that each read
    one more feature map, else ``sequence``), ``shortcut`` (a residual block's: ``identity`` or
    ``projection``), ``summary`` (``36 × Bottleneck`` for a stage), and the sums of ``params``,
    ``macs`` and ``activation_bytes`` as :func:`cnnlab.analysis.report.fold` sums them.

    A module that is one convolution with its batch norm and activation (GoogLeNet's
    ``BasicConv2d``) is no block: the page draws it as the volume it makes.
    """
    rows, modules = report.all_rows, report.module_types
    spans: dict[str, list[int]] = {}
    for i, r in enumerate(rows):
        for path in _container(r.name, modules):
            spans.setdefault(path, []).append(i)
    out: list[dict[str, Any]] = []
    index: dict[str, int] = {}
    for path, members in spans.items():  # insertion order: by first row, outer before inner
        if len(members) < 2 or members[-1] - members[0] + 1 != len(members):
            continue
        if _one_volume(members, rows, sources):
            continue
        outer = [p for p in _container(path + ".x", modules) if p in index and p != path]
        parent = index[outer[-1]] if outer else None
        if parent is not None and (out[parent]["first"], out[parent]["last"]) == (
            members[0],
            members[-1],
        ):
            continue  # a wrapper holding exactly its parent's rows: nothing more to open
        chosen = [rows[i] for i in members]
        index[path] = len(out)
        out.append({
            "name": path,
            "type": modules.get(path, "group"),
            "parent": parent,
            "first": members[0],
            "last": members[-1],
            "params": sum(r.params for r in chosen),
            "macs": sum(r.macs for r in chosen),
            "activation_bytes": sum(r.activation_bytes for r in chosen if not r.aliases),
        })  # fmt: skip
    for n, b in enumerate(out):
        children = [c for c in out if c["parent"] == n]
        inner = {i for c in children for i in range(c["first"], c["last"] + 1)}
        members = list(range(b["first"], b["last"] + 1))
        direct = [i for i in members if i not in inner]
        b.update(_kind(members, direct, rows, sources))
        types: dict[str, int] = {}
        for c in children:
            types[c["type"]] = types.get(c["type"], 0) + 1
        b["summary"] = ", ".join(f"{k} × {t}" for t, k in types.items() if k > 1)
    return out


ATTACHED = ("norm", "act", "dropout")  # drawn as tags of the volume they follow


def _one_volume(members: list[int], rows: list[Row], sources: list[list[int]]) -> bool:
    """A chain of one operation and its batch norm, activation or dropout."""
    chain = all(sources[i] == [i - 1] for i in members[1:])
    return chain and sum(rows[i].kind not in ATTACHED for i in members) <= 1


def _kind(
    members: list[int], direct: list[int], rows: list[Row], sources: list[list[int]]
) -> dict[str, Any]:
    """A block's kind from its data flow, and a residual block's shortcut."""
    cats = [i for i in members if rows[i].kind == "cat"]
    own = [i for i in direct if rows[i].kind == "cat"]
    running = len(own) >= 2 and all(a in sources[b] for a, b in itertools.pairwise(own))
    if (cats and cats[0] == members[0]) or _grows(cats, sources) or running:
        return {"kind": "dense", "shortcut": None}
    inside = set(members)
    entries = {s for i in members for s in sources[i] if s not in inside}
    adds = [i for i in direct if rows[i].kind == "elementwise" and len(sources[i]) >= 2]
    if adds:
        direct_in = any(s in entries for s in sources[adds[-1]])
        return {"kind": "residual", "shortcut": "identity" if direct_in else "projection"}
    if any(rows[i].kind == "cat" and len(sources[i]) >= 2 for i in direct):
        return {"kind": "concat", "shortcut": None}
    return {"kind": "sequence", "shortcut": None}


def _grows(cats: list[int], sources: list[list[int]]) -> bool:
    """Concatenations that each read one more map than the last: DenseNet's dense block."""
    widths = [len(sources[i]) for i in cats]
    return len(widths) >= 3 and all(b == a + 1 for a, b in itertools.pairwise(widths))


# --- formulas ------------------------------------------------------------------------------------


def _n(value: int) -> str:
    return formats.number(int(value))


def _product(values: list[int]) -> str:
    return DOT.join(str(v) for v in values)


def _pair(value: Any, i: int) -> int:
    return value[i] if isinstance(value, list) else value


def _window_size(size: int, k: int, s: int, p: int, d: int, ceil: bool, got: int) -> str | None:
    """``(227 - 11 + 2·0)/4 + 1 = 55``; with its rounding when the windows do not tile."""
    from cnnlab.analysis import arith

    o = arith.output_size(size, k, s, p, d, ceil)
    if o.size != got:
        return None
    extent = str(k) if d == 1 else f"({d}{DOT}({k} - 1) + 1)"
    text = f"({size} - {extent} + 2{DOT}{p})/{s} + 1 = "
    if o.fits:
        return text + str(o.size)
    rounding = "rounded up (ceil_mode)" if ceil else "floored"
    return text + f"{float(o.exact):.2f} → {o.size} ({rounding}: the windows do not tile the input)"


def formulas(
    row: Row, module: nn.Module | None, src: list[Row], batch: int
) -> list[dict[str, str]]:
    """The lecture's working for ``row``; every result equals the analyzer's figure."""
    out: list[dict[str, str]] = []
    shape = row.output_shape
    elements = math.prod(shape) * batch
    if row.kind in WINDOW_KINDS and len(shape) == 3 and row.kernel is not None:
        dilation = getattr(module, "dilation", 1)
        ceil = bool(getattr(module, "ceil_mode", False))
        for i, axis in enumerate(("height", "width")):
            d = dilation[i] if isinstance(dilation, tuple) else dilation
            text = _window_size(row.input_shape[1 + i], _pair(row.kernel, i), _pair(row.stride, i),
                                _pair(row.padding, i), int(d), ceil, shape[1 + i])  # fmt: skip
            if text is None:
                break
            if i == 0 and row.input_shape[1] == row.input_shape[2] and shape[1] == shape[2] and \
                    _pair(row.kernel, 0) == _pair(row.kernel, 1) and \
                    _pair(row.stride, 0) == _pair(row.stride, 1) and \
                    _pair(row.padding, 0) == _pair(row.padding, 1):  # fmt: skip
                out.append({"what": "output width and height (W - F + 2P)/S + 1", "text": text})
                break
            out.append({"what": f"output {axis} (W - F + 2P)/S + 1", "text": text})
    if row.kind == "conv" and len(shape) == 3:
        out += _conv(row, module, elements)
    elif row.kind == "linear":
        c_in, c_out = row.input_shape[-1], shape[-1]
        bias = row.params - c_in * c_out
        if bias in (0, c_out):
            text = f"({c_in} + 1){DOT}{c_out}" if bias else f"{c_in}{DOT}{c_out}"
            out.append({"what": "parameters (inputs + 1 bias)·outputs",
                        "text": f"{text} = {_n(row.params)}"})  # fmt: skip
        if row.macs == elements * c_in:
            out.append({"what": "multiply-adds outputs·inputs",
                        "text": f"{_n(elements)}{DOT}{c_in} = {_n(row.macs)}"})  # fmt: skip
    elif row.kind == "pool" and row.kernel is not None:
        k = [_pair(row.kernel, 0), _pair(row.kernel, 1)] if len(shape) == 3 else [row.kernel]
        if row.macs == elements * math.prod(k):
            out.append({"what": "operations (the slides' rule: K·K per output)",
                        "text": f"({_product(shape[1:] + shape[:1])}){DOT}({_product(k)}) = "
                                f"{_n(row.macs)}"})  # fmt: skip
    elif row.kind in ONE_PER_ELEMENT and row.macs == elements and row.macs:
        out.append({"what": "operations (lecture count: one per element)",
                    "text": f"{_product(_hwc(shape))} = {_n(row.macs)}"})  # fmt: skip
    out += _memory_and_field(row, src, module)
    return out


def _hwc(shape: list[int]) -> list[int]:
    """[C, H, W] as the slides write it, H·W·C."""
    return [*shape[1:], shape[0]] if len(shape) == 3 else list(shape)


def _conv(row: Row, module: nn.Module | None, elements: int) -> list[dict[str, str]]:
    c_in, filters = row.input_shape[0], row.output_shape[0]
    kernel = [_pair(row.kernel, 0), _pair(row.kernel, 1)]
    groups = int(getattr(module, "groups", 0) or 0)
    if not groups:  # a functional convolution: its groups from the analyzer's multiply-adds
        per_output = row.macs // max(elements, 1)
        groups = c_in * math.prod(kernel) // per_output if per_output else 1
    depth = c_in // groups
    out = []
    if groups > 1:
        out.append({"what": "grouped convolution",
                    "text": f"{groups} groups: each filter sees {c_in}/{groups} = {depth} "
                            "channels"})  # fmt: skip
    weights = filters * depth * math.prod(kernel)
    bias = row.params - weights
    if bias in (0, filters):
        inner = _product([*kernel, depth])
        text = f"({inner} + 1){DOT}{filters}" if bias else f"{inner}{DOT}{filters}"
        out.append({"what": "parameters (F·F·C_in + 1)·K" if bias else "parameters F·F·C_in·K",
                    "text": f"{text} = {_n(row.params)}"})  # fmt: skip
    if row.macs == elements * depth * math.prod(kernel):
        out.append({"what": "multiply-adds (H'·W'·K)·(F·F·C_in)",
                    "text": f"({_product(_hwc(row.output_shape))}){DOT}"
                            f"({_product([*kernel, depth])}) = {_n(row.macs)}"})  # fmt: skip
    return out


def _memory_and_field(row: Row, src: list[Row], module: nn.Module | None) -> list[dict[str, str]]:
    from cnnlab.analysis import arith

    out = []
    per = row.activation_bytes // max(math.prod(row.output_shape), 1)
    if row.activation_bytes == math.prod(row.output_shape) * per and row.output_shape:
        out.append(
            {
                "what": "activation memory (elements·4 bytes, float32)",
                "text": f"{_product(_hwc(row.output_shape))}{DOT}{per} B = "
                f"{_n(row.activation_bytes)} B = {formats.size(row.activation_bytes)}",
            }
        )
    square = all(isinstance(v, int) for v in (row.kernel, row.stride, row.receptive_field,
                                              row.jump))  # fmt: skip
    if (
        row.kind in WINDOW_KINDS
        and square
        and src
        and all(isinstance(s.receptive_field, int) and isinstance(s.jump, int) for s in src)
    ):
        r_in = max(s.receptive_field for s in src)
        j_in = max(s.jump for s in src)
        d = getattr(module, "dilation", 1)
        d = d[0] if isinstance(d, tuple) else int(d)
        r, j = arith.receptive_field(r_in, j_in, row.kernel, row.stride, d)
        if (r, j) == (row.receptive_field, row.jump):
            dil = f"{DOT}{d}" if d != 1 else ""
            out.append(
                {
                    "what": "receptive field r = r_in + (F - 1)·j_in",
                    "text": f"{r_in} + ({row.kernel} - 1){dil}{DOT}{j_in} = {r}",
                }
            )
            out.append({"what": "jump j = j_in·S", "text": f"{j_in}{DOT}{row.stride} = {j}"})
    return out


# --- errata --------------------------------------------------------------------------------------


def errata_rows(report: Report, model: str) -> dict[int, list[dict[str, Any]]]:
    """The slides' claims about single rows of ``model`` at this input size, by row index."""
    from cnnlab.analysis import errata

    if model not in _zoo():
        return {}
    from cnnlab.registry import model_info

    default = tuple(model_info(model).input_size)
    where = {id(r): i for i, r in enumerate(report.all_rows)}
    found: dict[int, list[dict[str, Any]]] = {}
    for c in errata.claims():
        q = c.quantity
        net = q.net
        if q.kind != "row" or net is None or net.model != model or net.toy or net.build:
            continue
        if net.count != report.count or tuple(net.input or default) != tuple(report.input_size):
            continue
        selectors = {k: q.params.get(k) for k in ("name", "layer", "position", "module")}
        try:
            chosen = errata.select_rows(report, **selectors)  # the rows the claim is about
            got = errata.row(report, **q.params)
        except (errata.ClaimError, KeyError, IndexError):
            continue
        if len(chosen) != 1:
            continue
        correct = errata.format_correct(c, got)
        found.setdefault(where[id(chosen[0])], []).append({
            "source": c.source, "claim": c.claim, "slide": c.value + _unit(c.scale),
            "correct": correct, "holds": errata.holds(c, got), "reason": c.reason,
        })  # fmt: skip
    return found


def _unit(scale: float) -> str:
    return {1e3: "K", 1e6: "M", 1e9: "G", 1024: "K", 2**20: "MB"}.get(scale, "")


# --- the diagram -------------------------------------------------------------------------------


def _zoo() -> list[str]:
    from cnnlab.registry import list_models

    return list_models()


def _geom(value: Any) -> str:
    if value is None:
        return ""
    return formats.shape(value) if isinstance(value, list) else str(value)


def _table(row: Row) -> list[list[str]]:
    """The analyzer's row as the table prints it: [label, value] pairs."""
    extra = f" (+{len(row.input_shapes) - 1} more)" if len(row.input_shapes) > 1 else ""
    return [
        ["input", formats.shape(row.input_shape) + extra],
        ["output", formats.shape(row.output_shape)],
        ["output volume H×W×C", formats.shape(_hwc(row.output_shape))],
        ["filters", "" if row.filters is None else str(row.filters)],
        ["kernel", _geom(row.kernel)],
        ["stride", _geom(row.stride)],
        ["padding", _geom(row.padding)],
        ["parameters", formats.number(row.params)],
        ["multiply-adds", f"{formats.number(row.macs)} ({formats.count(row.macs)})"],
        ["activation memory", f"{formats.number(row.activation_bytes)} B "
                              f"({formats.size(row.activation_bytes)})"
                              + (", shares its input's memory" if row.aliases else "")],
        ["receptive field", _geom(row.receptive_field)],
        ["jump", _geom(row.jump)],
    ]  # fmt: skip


def _answers(row: Row) -> dict[str, Any]:
    """What question mode asks about a row: its output volume (as the slides write it, H x W x C),
    parameters and multiply-adds."""
    volume = _hwc(row.output_shape)
    return {"volume": volume, "params": row.params, "macs": row.macs}


def build(net: nn.Module, model: str, size: tuple[int, ...], strict: bool) -> dict[str, Any]:
    """The diagram of ``net`` (registered as ``model``, or a run's) at input ``size``."""
    from cnnlab.analysis import analyze

    report = analyze(net, size, strict=strict)
    report.model = model
    sources = data_flow(net, report)
    traced = sources is not None
    if sources is None:
        sources = [[], *[[i] for i in range(len(report.all_rows) - 1)]]
    modules = dict(net.named_modules())
    errata = errata_rows(report, model)
    rows = []
    for i, r in enumerate(report.all_rows):
        leaf = modules.get(r.name.split(":")[0])
        leaf = leaf if leaf is not None and next(iter(leaf.children()), None) is None else None
        src = [report.all_rows[s] for s in sources[i]]
        record = r.to_dict()
        record.update(
            index=i,
            sources=sources[i],
            groups=int(getattr(leaf, "groups", 1) or 1) if r.kind == "conv" else None,
            formulas=formulas(r, leaf, src, report.batch_size),
            errata=errata.get(i, []),
            answers=_answers(r),
            table=_table(r),
        )
        rows.append(record)
    totals = dict(report.totals)
    found = blocks(report, sources)
    for b in found:
        b["text"] = {"params": formats.count(b["params"]), "macs": formats.count(b["macs"]),
                     "activation": formats.size(b["activation_bytes"])}  # fmt: skip
    return {
        "model": model,
        "input_size": list(report.input_size),
        "batch_size": report.batch_size,
        "count": report.count,
        "conventions": _conventions(),
        "totals": totals,
        "totals_text": {
            "params": formats.number(totals["params"]),
            "macs": f"{formats.number(totals['macs'])} ({formats.count(totals['macs'], 'G')})",
            "activation_bytes": formats.size(totals["activation_bytes"]),
            "training_memory_bytes": formats.size(totals["training_memory_bytes"]),
        },
        "warnings": report.warnings,
        "unused_params": report.unused_params,
        "traced": traced,
        "rows": rows,
        "blocks": found,
    }


def _conventions() -> str:
    from cnnlab.analysis.arith import CONVENTIONS

    return CONVENTIONS


class Cache:
    """The last few diagrams (a diagram is a pure function of model and input size)."""

    def __init__(self, size: int = CACHE_SIZE) -> None:
        self.size, self.items, self.lock = size, OrderedDict(), threading.Lock()

    def get(self, key: tuple, make) -> dict[str, Any]:
        with self.lock:
            if key in self.items:
                self.items.move_to_end(key)
                return self.items[key]
        value = make()
        with self.lock:
            self.items[key] = value
            while len(self.items) > self.size:
                self.items.popitem(last=False)
        return value


CACHE = Cache()


def zoo_diagram(model: str, size: tuple[int, ...] | None = None, strict: bool = False) -> dict:
    """The diagram of a zoo model at ``size`` (C, H, W; default: the model's own)."""
    from cnnlab.analysis.trace import on_meta
    from cnnlab.registry import create_model, model_info

    info = model_info(model)  # UnknownModelError names close matches
    size = tuple(size or info.input_size)

    def make() -> dict[str, Any]:
        try:
            with on_meta():
                net = create_model(model, in_channels=size[0])
        except (NotImplementedError, RuntimeError):  # an initializer that needs storage
            net = create_model(model, in_channels=size[0])
        return build(net, model, size, strict)

    return CACHE.get((model, size, strict), make)


# --- routes --------------------------------------------------------------------------------------

SIZE = re.compile(r"(?:(\d{1,4})x)?(\d{1,5})(?:x(\d{1,5}))?")


def parse_size(text: str | None, channels: int) -> tuple[int, int, int] | None:
    """``227`` -> (channels, 227, 227); ``224x160`` -> (channels, 224, 160); ``3x32x32``."""
    if text is None or text.strip() == "":
        return None
    parts = text.strip().lower().replace("×", "x").replace(" ", "").split("x")
    if not 1 <= len(parts) <= 3 or not all(p.isdigit() for p in parts):
        raise Refused(400, f"input size {text!r} is not a size: type 227, 224x160 or 3x227x227")
    values = [int(p) for p in parts]
    if len(values) == 1:
        values = [channels, values[0], values[0]]
    elif len(values) == 2:
        values = [channels, *values]
    if not all(1 <= v <= MAX_SIDE for v in values):
        raise Refused(400, f"input size {text!r}: each side from 1 to {MAX_SIDE}")
    return tuple(values)  # type: ignore[return-value]


def _strict(request: Request) -> bool:
    return request.query_params.get("strict", "") in ("1", "true", "yes")


def catalog(request: Request) -> JSONResponse:
    """Every zoo model with its family, default input and published top-1 (for the pickers)."""
    from cnnlab.analysis.compare import published_accuracy
    from cnnlab.registry import model_info

    models = []
    for name in _zoo():
        info = model_info(name)
        top1, top5 = published_accuracy(info.torchvision)
        models.append({"name": name, "family": info.family, "paper": info.paper,
                       "input_size": list(info.input_size), "fixed_input": info.fixed_input,
                       "min_input_size": list(info.min_input_size), "params": info.num_params,
                       "top1": top1, "top5": top5, "description": info.description})  # fmt: skip
    return JSONResponse({"models": models})


def model_diagram(request: Request) -> JSONResponse:
    from cnnlab.registry import model_info

    model = request.path_params["model"]
    info = model_info(model)
    size = parse_size(request.query_params.get("size"), info.input_size[0])
    return JSONResponse(zoo_diagram(model, size, _strict(request)))


def run_diagram(request: Request) -> JSONResponse:
    """A trained run's model (as ``cnnlab summary`` would analyse it) at its or another size."""
    s, path = studio(request), run_dir(request)
    with s.inspector.lock:
        p = s.inspector.loaded(path)["predictor"]
        meta_size = tuple(p.meta.input_size)
        size = parse_size(request.query_params.get("size"), meta_size[0]) or meta_size
        name = (
            getattr(getattr(p.model, "cnnlab_info", None), "name", None) or type(p.model).__name__
        )
        data = build(p.model, name, size, _strict(request))
    data["run"] = request.path_params["run"]
    return JSONResponse(data)


def compare(request: Request) -> JSONResponse:
    """``cnnlab summary`` totals of several models with their published accuracy."""
    from cnnlab.analysis.compare import compare_models

    names = [n.strip() for n in request.query_params.get("models", "").split(",") if n.strip()]
    if not 1 <= len(names) <= MAX_COMPARE:
        raise Refused(400, f"name 1 to {MAX_COMPARE} models: ?models=resnet50,vgg16")
    size = parse_size(request.query_params.get("size"), 3)
    rows = compare_models(names, size)
    for r in rows:
        r["params_text"] = formats.number(r["params"])
        r["macs_text"] = formats.count(r["macs"], "G")
        r["activation_text"] = formats.size(r["activation_bytes"])
        r["training_text"] = formats.size(r["training_memory_bytes"])
    note = ("top-1/top-5: torchvision's published ImageNet-1K accuracy of the identical "
            "pretrained model; none for models without such weights")  # fmt: skip
    return JSONResponse({"models": rows, "count": "lecture", "note": note})


ROUTES = [
    Route("/api/architecture", catalog),
    Route("/api/architecture/compare", compare),
    Route("/api/architecture/model/{model}", model_diagram),
    Route("/api/runs/{run:path}/architecture", run_diagram),
]
