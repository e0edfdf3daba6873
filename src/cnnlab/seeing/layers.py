"""Layers named as the analyzer names them, their outputs tapped, and the default-layer rules.

A layer is a row name of :func:`cnnlab.analyze` (``features.3``, ``layer4.1.relu:2``,
``inception5b.cat``) or a folded row's name, which is a module path (``layer4``). Two kinds of
row exist, and both can be tapped:

* a **module** (leaf or container): a forward hook sees its output. ``name:n`` is the module's
  n-th call in one forward pass (torchvision's ResNet blocks call one ``relu`` twice);
* a **functional call** made inside a container's ``forward`` (``layer4.0.add`` for
  ``out += identity``, ``inception5b.cat``, DenseNet's top-level ``relu``): a
  :class:`~torch.overrides.TorchFunctionMode` follows the data flow exactly as the analyzer's
  tracer does (:mod:`cnnlab.analysis.trace`), so the n-th call it counts is the analyzer's n-th.

The tapped tensor is handed downstream as a *copy*. An in-place ReLU after a convolution
(``nn.ReLU(inplace=True)``, everywhere in the zoo) therefore cannot overwrite the convolution's
output that was tapped, and gradients reach the tap through the copy. Every hook and mode is
removed when the ``with`` block ends, also when the forward pass raises.
"""

from __future__ import annotations

import difflib
import math
import weakref
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import torch
from torch import nn
from torch.overrides import TorchFunctionMode

from cnnlab.analysis.trace import tensors_in
from cnnlab.errors import ConfigError
from cnnlab.seeing import views

if TYPE_CHECKING:
    from cnnlab.analysis.report import Report, Row

# Rows that finish a convolution's block without changing its map's shape: batch norm, the
# activation, a residual addition, an Inception/DenseNet concatenation, dropout.
_BLOCK_KINDS = ("norm", "act", "elementwise", "cat", "dropout")

# A one-line error lists every valid name up to this many; beyond it, the containers and the
# closest matches (``cnnlab summary MODEL`` prints all of them).
_LIST_ALL = 80


@dataclass(frozen=True)
class Layer:
    """A resolved layer name.

    Attributes:
        name: the name asked for (an analyzer row or a module path).
        module: the module whose output this is; None for the input and for functional rows.
        call: which call of ``module`` (or of ``function`` in ``container``), counted from 1.
        container: for a functional row, the module whose own ``forward`` makes the call.
        function: for a functional row, the analyzer's canonical function name (``add``).
    """

    name: str
    module: nn.Module | None = None
    call: int = 1
    container: nn.Module | None = None
    function: str | None = None

    @property
    def is_input(self) -> bool:
        return self.name == "input"


def model_name(net: nn.Module) -> str:
    """The registry name of a zoo model, else its class name (for messages)."""
    return getattr(getattr(net, "cnnlab_info", None), "name", None) or type(net).__name__


# --- the analyzer's view of a model, cached per model and input size ----------------------------

_REPORTS: weakref.WeakKeyDictionary[nn.Module, dict[tuple[int, ...], Report]] = (
    weakref.WeakKeyDictionary()
)


def analysis(net: nn.Module, input_size: tuple[int, ...]) -> Report:
    """``cnnlab.analyze(net, input_size)``, computed once per model and input size.

    The trace runs on the meta device, so it does not depend on the weights: a model whose
    weights change (re-initialised, trained further) keeps its cached rows, which stay right.
    """
    from cnnlab.analysis import analyze

    size = tuple(int(s) for s in input_size)
    per_model = _REPORTS.setdefault(net, {})
    if size not in per_model:
        per_model[size] = analyze(net, size)  # type: ignore[arg-type]
    return per_model[size]


def _split_call(name: str) -> tuple[str, int]:
    """``"layer4.1.relu:2"`` -> ``("layer4.1.relu", 2)``; no suffix is the first call."""
    base, sep, n = name.rpartition(":")
    if sep and n.isdigit() and int(n) >= 1:
        return base, int(n)
    return name, 1


def resolve(net: nn.Module, name: str, input_size: tuple[int, ...] | None = None) -> Layer:
    """The layer called ``name`` in ``net``.

    A module path needs no analysis; a functional row (``layer4.0.add``) is checked against the
    analyzer's rows at ``input_size``.

    Raises:
        ConfigError: no such layer; the one-line message lists the valid names.
    """
    if name == "input":
        return Layer("input")
    modules = dict(net.named_modules())
    base, call = _split_call(name)
    if base in modules and base != "":
        return Layer(name, module=modules[base], call=call)
    prefix, _, function = base.rpartition(".")
    container = modules.get(prefix)
    is_container = container is not None and next(iter(container.children()), None) is not None
    if (
        is_container
        and function.isidentifier()
        and input_size is not None
        and any(r.name == name for r in analysis(net, input_size).all_rows)
    ):
        return Layer(name, call=call, container=container, function=function)
    raise unknown_layer(net, name, input_size)


def remap(layer: Layer, src: nn.Module, dst: nn.Module) -> Layer:
    """``layer`` of ``src`` as the same layer of ``dst``, a copy of ``src`` (a float32 copy)."""
    if src is dst:
        return layer
    paths = {m: p for p, m in src.named_modules()}
    mods = dict(dst.named_modules())

    def same(m: nn.Module | None) -> nn.Module | None:
        return None if m is None else mods[paths[m]]

    return Layer(layer.name, same(layer.module), layer.call, same(layer.container), layer.function)


def layer_names(net: nn.Module, input_size: tuple[int, ...]) -> list[str]:
    """Every name :func:`resolve` accepts: the analyzer's rows, then the containers that ran."""
    rows = [r.name for r in analysis(net, input_size).all_rows]
    seen = set(rows)
    ran = {r.split(":")[0].rsplit(".", 1)[0] for r in rows}
    containers = [
        path
        for path, module in net.named_modules()
        if path
        and path not in seen
        and next(iter(module.children()), None) is not None
        and any(r == path or r.startswith(path + ".") for r in ran)
    ]
    return rows + containers


def unknown_layer(net: nn.Module, name: str, input_size: tuple[int, ...] | None) -> ConfigError:
    """The one-line error for a layer name ``net`` does not have."""
    model = model_name(net)
    if input_size is None:
        valid = [p for p, _ in net.named_modules() if p]
    else:
        valid = layer_names(net, input_size)
    close = difflib.get_close_matches(name, valid, n=3, cutoff=0.6)
    hint = f" (did you mean {', '.join(close)}?)" if close else ""
    if len(valid) <= _LIST_ALL:
        listed = ", ".join(valid)
    else:
        tops = [v for v in valid if "." not in v and ":" not in v]
        listed = f"{', '.join(tops)} and {len(valid) - len(tops)} more inside them"
    size = "x".join(map(str, input_size)) if input_size else "its input"
    return ConfigError(
        f"{model} has no layer {name!r}{hint}: valid layers are {listed} "
        f"(`cnnlab summary {model} --input {size}` lists every row with its shape)"
    )


# --- default layers ----------------------------------------------------------------------------

# Each rule below (first_conv ... penultimate) takes the analyzer's report of a model and names
# the layer a picture looks at when none is given; a row of cnnlab.seeing.views.VIEWS names its
# rule, and default_layer applies it.


def _hw(row: Row) -> int:
    """Spatial positions of a row's output (0 for a flat vector)."""
    return math.prod(row.output_shape[1:]) if len(row.output_shape) == 3 else 0


def _block_end(rows: list[Row], i: int) -> int:
    """The last row of the block that row ``i`` (a convolution) starts: the rows after it that
    keep its map's height and width and only normalise, activate, add or concatenate."""
    hw = rows[i].output_shape[1:]
    while (
        i + 1 < len(rows)
        and rows[i + 1].kind in _BLOCK_KINDS
        and rows[i + 1].output_shape[1:] == hw
    ):
        i += 1
    return i


def friendly_name(report: Report, row: Row) -> str:
    """The shortest name for ``row``'s output: the outermost container whose output it is
    (``layer4`` for ``layer4.1.relu:2``), else the row's own name. The model itself and
    containers that start with a functional call are not candidates."""
    rows = report.all_rows
    index = rows.index(row)
    last_of: dict[str, int] = {}
    for i, r in enumerate(rows):
        parts = r.name.split(":")[0].split(".")
        for depth in range(1, len(parts)):
            last_of[".".join(parts[:depth])] = i
    candidates = [p for p, i in last_of.items() if i == index and p in report.module_types]
    return min(candidates, key=lambda p: (p.count("."), p)) if candidates else row.name


def _convs(report: Report) -> list[int]:
    """The rows of the convolutions whose output is a map."""
    convs = [i for i, r in enumerate(report.all_rows) if r.kind == "conv" and _hw(r) > 0]
    if not convs:
        raise ConfigError(
            f"{report.model} has no convolution: name a layer with a CxHxW output (--layer)"
        )
    return convs


def first_conv(report: Report) -> str:
    """The first convolution, by its own name: its weights are the picture."""
    return report.all_rows[_convs(report)[0]].name


def first_block(report: Report) -> str:
    """The first convolution's block (with its batch norm and activation)."""
    rows = report.all_rows
    return friendly_name(report, rows[_block_end(rows, _convs(report)[0])])


def last_spatial_block(report: Report) -> str:
    """The block of the last convolution whose map is still spatial (more than one position).

    FastNet's global max-pool and LeNet-5's 1x1 ``c5`` come after it, and so do a VGG's last
    max-pool and adaptive pooling.
    """
    rows = report.all_rows
    convs = _convs(report)
    spatial = [i for i in convs if _hw(rows[i]) > 1]
    return friendly_name(report, rows[_block_end(rows, (spatial or convs)[-1])])


def deepest_half_field(report: Report) -> str:
    """The deepest spatial map whose units see at most half the input's side, so a top patch is
    a part of the image and a unit's box fits inside it (else the first convolution's block)."""
    rows = report.all_rows
    convs = _convs(report)
    side = min(report.input_size[1:])
    fits = [
        r
        for r in rows[1:]
        if _hw(r) > 1 and r.kind != "reshape" and max(_pair(r.receptive_field)) * 2 <= side
    ]
    return friendly_name(report, fits[-1] if fits else rows[_block_end(rows, convs[0])])


def penultimate(report: Report) -> str:
    """The last row before the logits whose output differs in size from them (the penultimate
    features: ``flatten`` of a ResNet, ``classifier.5`` of a VGG)."""
    rows = report.all_rows
    logits = math.prod(rows[-1].output_shape)
    for r in reversed(rows[1:-1]):
        if math.prod(r.output_shape) != logits:
            return friendly_name(report, r)
    raise ConfigError(f"{report.model} has no layer before its output to embed")


# Grad-CAM's default layer per zoo family, chosen by measurement: among the candidate layers
# (gradcam_candidates) of useful resolution, the deepest whose mean deletion score
# (cnnlab.seeing.faithfulness) on a trained network's held-out images is within one standard
# error of the lowest (benchmarks/faithfulness.py's `choose`). The numbers, the runs and the
# command are in benchmarks/results/faithfulness.json and docs/seeing.md. A family not listed
# was not measured and keeps last_spatial_block; so does a model of a listed family that has no
# such layer (or whose map there is not spatial).
GRADCAM_LAYERS: dict[str, str] = {
    "lenet": "features.c3",  # 10x10; c1 scored lower by less than its standard error
    "fastnet": "stages.1",  # 7x7; the 3x3 `stages` (the old default) is too coarse
    # measured on ResNet-18 at 112x112 (layer4 4x4, too coarse there); 14x14 at 224x224
    "resnet": "layer3",
}

# A Grad-CAM map is of useful resolution when both its sides are at least this (a 7x7 map,
# ResNet's last stage at 224x224), or, in a model with no such map, as large as any candidate.
USEFUL_SIDE = 7


def gradcam_candidates(report: Report) -> list[str]:
    """The layers Grad-CAM's default is chosen among: every convolution whose output is a map
    of more than one position, and the end of its block (:func:`friendly_name`), in order."""
    rows = report.all_rows
    out: list[str] = []
    for i in _convs(report):
        if _hw(rows[i]) <= 1:
            continue
        for name in (rows[i].name, friendly_name(report, rows[_block_end(rows, i)])):
            if name not in out:
                out.append(name)
    return out


def _side(report: Report, name: str) -> int:
    """The shorter side of ``name``'s map (a row, or a container's last row); 0 for a vector."""
    rows = [r for r in report.all_rows if r.name == name or r.name.startswith(name + ".")]
    shape = rows[-1].output_shape if rows else []
    return min(shape[1:]) if len(shape) == 3 else 0


def useful(report: Report, names: list[str]) -> list[str]:
    """The ``names`` whose maps are of useful resolution (see :data:`USEFUL_SIDE`)."""
    sides = {n: _side(report, n) for n in names}
    need = min(USEFUL_SIDE, max(sides.values(), default=0))
    return [n for n in names if sides[n] >= need and sides[n] > 0]


def measured_gradcam(report: Report) -> str:
    """Grad-CAM's default: the family's measured layer (:data:`GRADCAM_LAYERS`), else
    :func:`last_spatial_block`."""
    from cnnlab.registry import list_models, model_info

    family = model_info(report.model).family if report.model in list_models() else None
    name = GRADCAM_LAYERS.get(family or "")
    if name is not None and _side(report, name) > 1:
        return name
    return last_spatial_block(report)


def default_layer(net: nn.Module, input_size: tuple[int, ...], view: str) -> str:
    """The layer the picture ``view`` (a ``--what`` word) looks at when none is given: its rule
    (:data:`cnnlab.seeing.views.VIEWS`) applied to the analyzer's rows at ``input_size``.

    Raises:
        ConfigError: an unknown picture, one that looks at no layer, or a model the rule cannot
            serve (no convolution, nothing before the logits).
    """
    rule = views.lookup(view).default_layer_rule()
    return rule(analysis(net, input_size))


def _pair(v: int | list[int] | None) -> tuple[int, int]:
    if v is None:
        return (0, 0)
    return (v, v) if isinstance(v, int) else (int(v[0]), int(v[-1]))


# --- tapping a layer's output ------------------------------------------------------------------


class _Stop(Exception):
    """Raised by a tap to end a forward pass once the layer's output is in hand."""


@dataclass
class Tap:
    """What :func:`tap` caught: the layer's output (``value``), once the forward pass ran."""

    layer: Layer
    grad_from_here: bool
    stop: bool
    value: torch.Tensor | None = None
    calls: int = field(default=0, repr=False)

    def take(self, out: Any) -> Any:
        """Keep ``out``; hand the rest of the network a copy (see the module docstring)."""
        t = out[0] if isinstance(out, (tuple, list)) else out
        if not isinstance(t, torch.Tensor):
            raise ConfigError(
                f"layer {self.layer.name!r} outputs a {type(t).__name__}, not a tensor: "
                "pick another layer"
            )
        if self.grad_from_here:
            # The forward pass so far ran without a graph; record from this tensor on.
            t = t.detach().requires_grad_(True)
            torch.set_grad_enabled(True)
        self.value = t
        if self.stop:
            raise _Stop
        copy = t.clone()
        if isinstance(out, (tuple, list)):
            return type(out)([copy, *out[1:]])
        return copy

    def result(self) -> torch.Tensor:
        if self.value is None:
            raise ConfigError(
                f"layer {self.layer.name!r} did not run in the forward pass (an auxiliary "
                "head, or fewer calls than its ':n' suffix): pick another layer"
            )
        return self.value


class _FunctionTap(TorchFunctionMode):
    """Follows the data flow as the analyzer's tracer does, and taps one functional row."""

    def __init__(self, tap: Tap, net: nn.Module) -> None:
        super().__init__()
        from cnnlab.analysis.trace import canonical_name

        self.tap = tap
        self.canonical = canonical_name
        self.stack: list[nn.Module] = []
        self.flow: dict[int, torch.Tensor] = {}  # id -> tensor, kept alive so ids stay unique
        self.leaves = {m for m in net.modules() if next(iter(m.children()), None) is None}

    def mark(self, x: torch.Tensor) -> None:
        self.flow[id(x)] = x

    def __torch_function__(self, func, types, args=(), kwargs=None):  # type: ignore[override]
        kwargs = kwargs or {}
        out = func(*args, **kwargs)
        inputs = [t for t in tensors_in((args, kwargs)) if id(t) in self.flow]
        if not inputs:
            return out
        for t in tensors_in(out):
            self.flow[id(t)] = t
        module = self.stack[-1] if self.stack else None
        lay = self.tap.layer
        if (
            module is lay.container
            and module not in self.leaves
            and self.canonical(func) == lay.function
        ):
            self.tap.calls += 1
            if self.tap.calls == lay.call:
                out = self.tap.take(out)
                for t in tensors_in(out):
                    self.flow[id(t)] = t
        return out


@contextmanager
def tap(
    net: nn.Module, layer: Layer, *, grad_from_here: bool = False, stop: bool = False
) -> Iterator[tuple[Tap, Any]]:
    """Catch ``layer``'s output during the forward passes run inside the block.

    Yields ``(tap, run)``: call ``run(x)`` instead of ``net(x)``; afterwards ``tap.result()`` is
    the layer's output. With ``grad_from_here`` the caller runs the pass under
    ``torch.no_grad()`` and the graph is recorded from the layer on (Grad-CAM needs nothing
    before it); with ``stop`` the pass ends at the layer (feature maps need nothing after it),
    and ``run`` returns None.

    Every hook, and the function mode, is gone when the block ends, also on an error.
    """
    t = Tap(layer, grad_from_here, stop)
    handles: list[Any] = []
    mode: _FunctionTap | None = None

    def run(x: torch.Tensor) -> Any:
        t.calls = 0
        t.value = None
        try:
            if layer.is_input:
                x = t.take(x)
                return net(x)
            if mode is None:
                return net(x)
            mode.flow.clear()
            mode.mark(x)
            with mode:
                return net(x)
        except _Stop:
            return None

    try:
        if layer.module is not None:
            module = layer.module

            def hook(_: nn.Module, __: Any, out: Any) -> Any:
                t.calls += 1
                return t.take(out) if t.calls == layer.call else None

            handles.append(module.register_forward_hook(hook))
        elif layer.container is not None:
            mode = _FunctionTap(t, net)

            def push(m: nn.Module, _: Any) -> None:
                mode.stack.append(m)  # type: ignore[union-attr]

            def pop(m: nn.Module, _: Any, __: Any) -> None:
                if mode.stack and mode.stack[-1] is m:  # type: ignore[union-attr]
                    mode.stack.pop()  # type: ignore[union-attr]

            for m in net.modules():
                handles.append(m.register_forward_pre_hook(push))
                handles.append(m.register_forward_hook(pop, always_call=True))
        yield t, run
    finally:
        for h in handles:
            h.remove()
        if mode is not None:
            mode.flow.clear()
            mode.stack.clear()
