"""The per-layer table of the lectures, for any model and input: rows, totals and renderers.

:func:`analyze` traces the real model (:mod:`cnnlab.analysis.trace`), turns every operation
into a :class:`Row` with the slides' columns (input and output volume, filters, kernel, stride,
padding, activation memory, parameters, multiply-adds, receptive field and jump), and adds the
totals and the training-memory estimate (:func:`cnnlab.analysis.arith.training_memory`).
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field
from typing import Any

from torch import nn

from cnnlab import formats, table
from cnnlab.analysis import arith
from cnnlab.analysis.trace import Op, trace_model
from cnnlab.errors import GeometryError, InputSizeError

Shape = list[int]


@dataclass
class Row:
    """One line of the table.

    Shapes are per sample ([C, H, W]); ``macs`` and ``activation_bytes`` are for the whole batch.
    ``receptive_field`` and ``jump`` are ints for square fields, ``[h, w]`` otherwise; ``start``
    (the input coordinate of the centre of the first unit's field, see
    :class:`~cnnlab.analysis.trace.Field`) likewise, as a float. Output unit ``(i, j)`` sees the
    input box centred on ``(start + i * jump, start + j * jump)``, ``receptive_field`` wide.
    """

    name: str
    type: str
    input_shape: Shape
    output_shape: Shape
    filters: int | None
    kernel: int | list[int] | None
    stride: int | list[int] | None
    padding: int | list[int] | None
    params: int
    macs: int
    activation_bytes: int
    receptive_field: int | list[int] | None
    jump: int | list[int] | None
    kind: str = "other"
    aliases: bool = False  # output shares memory with an input (in-place op or view)
    input_shapes: list[Shape] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    start: float | list[float] | None = None

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def _square(t: tuple[int, ...] | None) -> int | list[int] | None:
    if t is None or len(t) == 0:
        return None
    return int(t[0]) if len(set(t)) == 1 else [int(v) for v in t]


def _start(t: tuple[float, ...] | None) -> float | list[float] | None:
    if not t:
        return None
    return float(t[0]) if len(set(t)) == 1 else [float(v) for v in t]


def _row(op: Op, count: str) -> Row:
    g = op.geometry
    params = 0
    if op.module is not None and op.first_call:
        params = sum(p.numel() for p in op.module.parameters())
    if op.module is None:
        params = op.param_count  # parameters a functional call used (F.conv2d(x, self.weight))
    filters = g.get("filters")
    if op.kind == "linear":
        filters = op.output_shape[-1]
    return Row(
        name=op.name,
        type=op.type,
        input_shape=list(op.input_shapes[0][1:]),
        output_shape=list(op.output_shape[1:]),
        filters=filters,
        kernel=_square(g.get("kernel")),
        stride=_square(g.get("stride")),
        padding=_square(g.get("padding")),
        params=params,
        macs=op.macs_lecture if count == "lecture" else op.macs_conv_linear,
        activation_bytes=op.output_elements * op.output_itemsize,
        receptive_field=_square(op.rf.rf) if op.rf else None,
        jump=_square(op.rf.jump) if op.rf else None,
        kind=op.kind,
        aliases=op.aliases,
        input_shapes=[list(s[1:]) for s in op.input_shapes],
        notes=list(op.notes),
        start=_start(op.rf.start) if op.rf else None,
    )


def fold(rows: list[Row], depth: int, types: dict[str, str]) -> list[Row]:
    """Merge rows whose name is deeper than ``depth`` into one row per module at that depth.

    A merged row spans its first row's input to its last row's output; parameters,
    multiply-adds and (non-aliasing) activation memory are summed; the receptive field is the
    last row's. ``types`` maps a module path to its class name.
    """
    if depth < 1:
        raise ValueError("depth must be at least 1")
    out: list[Row] = []
    group: list[Row] = []
    key = None

    def flush() -> None:
        if not group:
            return
        if len(group) == 1 and len(group[0].name.split(".")) <= depth:
            out.append(group[0])
            return
        first, last = group[0], group[-1]
        out.append(
            Row(
                name=key,
                type=types.get(key, "group"),
                input_shape=first.input_shape,
                output_shape=last.output_shape,
                filters=None,
                kernel=None,
                stride=None,
                padding=None,
                params=sum(r.params for r in group),
                macs=sum(r.macs for r in group),
                activation_bytes=sum(r.activation_bytes for r in group if not r.aliases),
                receptive_field=last.receptive_field,
                jump=last.jump,
                kind="group",
                aliases=False,
                input_shapes=first.input_shapes,
                notes=[n for r in group for n in r.notes],
                start=last.start,
            )
        )

    for r in rows:
        parts = r.name.split(":")[0].split(".")
        k = ".".join(parts[:depth]) if len(parts) > depth else None
        if k is None or k != key:
            flush()
            group = []
            key = k if k is not None else r.name
        group.append(r)
        if k is None:
            flush()
            group = []
            key = None
    flush()
    return out


@dataclass
class Report:
    """The analysis of one model at one input size and batch size.

    Attributes:
        model: model name (registry name, or the class name of a module).
        input_size: (C, H, W).
        batch_size: samples per batch; multiply-adds and memory are for the whole batch.
        count: "lecture" or "conv-linear" (see :mod:`cnnlab.analysis.arith`).
        rows: the table, in execution order (folded to ``depth`` when one was given).
        totals: params, macs, flops, activation_bytes, param_bytes, training_memory_bytes.
        all_rows: the unfolded table.
    """

    model: str
    input_size: tuple[int, ...]
    batch_size: int
    count: str
    rows: list[Row]
    totals: dict[str, int]
    all_rows: list[Row] = field(repr=False, default_factory=list)
    depth: int | None = None
    unused_params: dict[str, int] = field(default_factory=dict)  # module -> params never run
    module_types: dict[str, str] = field(default_factory=dict, repr=False)  # path -> class

    # -- queries ------------------------------------------------------------------------------
    def row(self, name: str) -> Row:
        """The row called ``name`` (searched in the unfolded table)."""
        for r in self.all_rows or self.rows:
            if r.name == name:
                return r
        raise KeyError(f"no row {name!r} in the analysis of {self.model}")

    @property
    def warnings(self) -> list[str]:
        """Geometry warnings, one per row whose windows do not tile their input."""
        return [f"{r.name}: {n}" for r in self.all_rows or self.rows for n in r.notes]

    def training_memory(self, optimizer: str = "sgd-momentum") -> int:
        """Training-memory estimate for ``optimizer`` ("sgd", "sgd-momentum", "adam")."""
        return arith.training_memory(
            self.totals["param_bytes"], self.totals["activation_bytes"], optimizer
        )

    # -- renderers ----------------------------------------------------------------------------
    def to_dict(self) -> dict[str, Any]:
        """The JSON object of ``cnnlab summary --format json``."""
        return {
            "model": self.model,
            "input_size": list(self.input_size),
            "batch_size": self.batch_size,
            "count": self.count,
            "conventions": arith.CONVENTIONS,
            "rows": [r.to_dict() for r in self.rows],
            "totals": dict(self.totals),
            "warnings": self.warnings,
        }

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), indent=2)

    def to_csv(self) -> str:
        """One line per row; shapes as CxHxW; lists joined with 'x'."""
        keys = [
            "name", "type", "input_shape", "output_shape", "filters", "kernel", "stride",
            "padding", "params", "macs", "activation_bytes", "receptive_field", "jump",
        ]  # fmt: skip
        return table.csv_text(keys, (r.to_dict() for r in self.rows))

    def _table(self) -> tuple[list[str], list[list[str]]]:
        header = [
            "layer", "type", "input", "output", "filters", "kernel", "stride", "pad",
            "memory (KB)", "params", "MACs", "RF", "jump",
        ]  # fmt: skip
        body = []
        for r in self.rows:
            body.append(
                [
                    r.name,
                    r.type,
                    formats.shape(r.input_shape)
                    + (f" (+{len(r.input_shapes) - 1})" if len(r.input_shapes) > 1 else ""),
                    formats.shape(r.output_shape),
                    "" if r.filters is None else str(r.filters),
                    _geom(r.kernel),
                    _geom(r.stride),
                    _geom(r.padding),
                    _kb(r.activation_bytes) + ("*" if r.aliases else ""),
                    f"{r.params:,}",
                    f"{r.macs:,}",
                    _geom(r.receptive_field),
                    _geom(r.jump),
                ]
            )
        return header, body

    def footer(self) -> list[str]:
        """The lines under the table: totals, memory, count mode, conventions, warnings."""
        t, size = self.totals, formats.size
        lines = [
            f"total params {t['params']:,} ({size(t['param_bytes'])} as float32); "
            f"MACs {t['macs']:,} ({formats.count(t['macs'], 'G')}); "
            f"FLOPs = 2 x MACs = {t['flops']:,}",
            f"activation memory {size(t['activation_bytes'])} for batch {self.batch_size} "
            f"(each new tensor once, input included; * = shares memory with its input); "
            f"training estimate {size(t['training_memory_bytes'])} (SGD momentum; "
            f"Adam {size(self.training_memory('adam'))})",
            f"count mode: {self.count} ({_MODE_TEXT[self.count]})",
            arith.CONVENTIONS,
        ]
        if self.unused_params:
            unused = ", ".join(f"{k} ({v:,})" for k, v in self.unused_params.items())
            lines.insert(1, f"parameters of modules this forward pass does not run (counted in "
                         f"the total, in no row): {unused}")  # fmt: skip
        if self.warnings:
            lines.append("geometry warnings:")
            lines += [f"  {w}" for w in self.warnings]
        return lines

    def to_text(self) -> str:
        """A fixed-width table for the terminal, with totals and the counting conventions."""
        header, body = self._table()
        lines = [f"{self.model}  input {formats.shape(self.input_size)}  batch {self.batch_size}"]
        lines += table.fixed_width(header, body, _NUMBER_COLUMNS)
        lines.append("")
        lines += self.footer()
        return "\n".join(lines)

    def to_markdown(self) -> str:
        """A GitHub-flavoured Markdown table with totals and the counting conventions."""
        header, body = self._table()
        lines = [
            f"**{self.model}**, input {formats.shape(self.input_size)}, batch {self.batch_size}",
            "",
            *table.markdown(header, body, _NUMBER_COLUMNS),
            "",
        ]
        lines += [
            f"{line}  " if not line.startswith("  ") else f"- {line.strip()}"
            for line in self.footer()
        ]
        return "\n".join(lines)

    def to_html(self) -> str:
        """An HTML fragment: the table, then the totals and conventions as a list."""
        header, body = self._table()
        title = (
            f"<p><strong>{table.escape(self.model)}</strong>, input "
            f"{formats.shape(self.input_size)}, batch {self.batch_size}</p>"
        )
        items = "".join(f"<li>{table.escape(line)}</li>\n" for line in self.footer())
        return (
            f'<div class="cnnlab-analysis">\n{title}\n'
            f"{table.html(header, body, _NUMBER_COLUMNS)}\n<ul>\n{items}</ul>\n</div>\n"
        )

    def __str__(self) -> str:
        return self.to_text()

    def _repr_html_(self) -> str:
        """The table, totals and conventions in a Jupyter notebook."""
        return self.to_html()

    def _repr_markdown_(self) -> str:
        return self.to_markdown()


# Columns of :meth:`Report._table` from "filters" on hold numbers: aligned right.
_NUMBER_COLUMNS = range(4, 13)

_MODE_TEXT = {
    "lecture": "conv and linear multiply-adds, pooling K*K per output, batch norm, LRN, "
    "activations, additions and softmax at documented costs",
    "conv-linear": "convolution and linear multiply-adds only, without bias (torchvision's "
    "published GFLOPS)",
}


def _geom(v: int | list[int] | None) -> str:
    if v is None:
        return ""
    return formats.shape(v) if isinstance(v, list) else str(v)


def _kb(b: int) -> str:
    kb = b / arith.KB
    return f"{kb:,.0f}" if kb == int(kb) else f"{kb:,.2f}"


def _build(name: str, in_channels: int) -> nn.Module:
    """A registered model built directly on the meta device (no weights are materialized)."""
    from cnnlab.analysis.trace import on_meta
    from cnnlab.registry import create_model

    try:
        with on_meta():
            return create_model(name, in_channels=in_channels)
    except (NotImplementedError, RuntimeError):  # an initializer that needs real storage
        return create_model(name, in_channels=in_channels)


def analyze(
    model: str | nn.Module,
    input_size: tuple[int, int, int] | None = None,
    batch_size: int = 1,
    *,
    count: str = "lecture",
    depth: int | None = None,
    strict: bool = False,
) -> Report:
    """The lecture's per-layer table for ``model`` at ``input_size``, computed without compute.

    Args:
        model: a registry name (see ``cnnlab models``) or any ``nn.Module``.
        input_size: (C, H, W); default: the registered model's input size, else 3x224x224.
        batch_size: samples per batch (multiply-adds and memory scale with it; the analysis
            time does not).
        count: "lecture" (the slides' rules) or "conv-linear" (torchvision's GFLOPS).
        depth: fold modules deeper than this into one row with summed figures.
        strict: raise :class:`~cnnlab.errors.GeometryError` when a filter does not tile its input.

    Returns:
        A :class:`Report`.

    Raises:
        UnknownModelError: ``model`` is not a registered name.
        InputSizeError: the input is too small for the model (or has the wrong channel count).
        GeometryError: with ``strict``, when an output size is not a whole number.

    Example::

        >>> r = analyze("alexnet", (3, 227, 227))
        >>> r.row("features.0").macs
        72855552
    """
    if count not in arith.COUNT_MODES:
        raise ValueError(f"count must be one of {arith.COUNT_MODES}, got {count!r}")
    if batch_size < 1:
        raise InputSizeError(
            f"batch size must be at least 1 (got {batch_size}): pass --batch 1 or more"
        )
    net, label, size = _model_and_size(model, input_size)
    ops = _trace(net, label, size, batch_size)
    rows = [_row(op, count) for op in ops]
    report = Report(
        model=label,
        input_size=tuple(size),
        batch_size=batch_size,
        count=count,
        rows=rows,
        totals=_totals(net, rows),
        all_rows=rows,
        depth=depth,
        unused_params=_unused_params(net, ops),
        module_types={name: type(m).__name__ for name, m in net.named_modules()},
    )
    if strict and report.warnings:
        raise GeometryError(
            f"{label} at {'x'.join(map(str, size))}: {report.warnings[0]}"
            + (f" (and {len(report.warnings) - 1} more)" if len(report.warnings) > 1 else "")
            + "; change the input size, padding or stride so the windows tile the input, "
            "or drop --strict"
        )
    if depth is not None:
        report.rows = fold(rows, depth, report.module_types)
    return report


def _model_and_size(
    model: str | nn.Module, input_size: tuple[int, int, int] | None
) -> tuple[nn.Module, str, tuple[int, ...]]:
    """The module to trace (a registered model is built on the meta device), its label and the
    input volume (the registered default, else 3x224x224)."""
    if isinstance(model, str):
        from cnnlab.registry import model_info

        info = model_info(model)
        size = tuple(input_size) if input_size is not None else info.input_size
        net = _build(model, size[0])
        label = model
    else:
        net = model
        size = tuple(input_size) if input_size is not None else (3, 224, 224)
        label = getattr(getattr(model, "cnnlab_info", None), "name", None) or type(model).__name__
    if len(size) < 2 or any(int(s) < 1 for s in size):
        raise InputSizeError(f"input size {size} is not a volume: give CxHxW with positive sizes")
    return net, label, size


def _trace(net: nn.Module, label: str, size: tuple[int, ...], batch_size: int) -> list[Op]:
    """The traced operations; PyTorch's refusal of a too-small input becomes InputSizeError."""
    shape = (batch_size, *map(int, size))
    try:
        return trace_model(net, shape).ops
    except InputSizeError:
        raise
    except RuntimeError as err:
        first = str(err).strip().splitlines()[0] if str(err).strip() else type(err).__name__
        raise InputSizeError(
            f"{label} cannot take a {'x'.join(map(str, size))} input ({first}): "
            "use a larger --input (see `cnnlab models` for each model's default size)"
        ) from None


def _unused_params(net: nn.Module, ops: list[Op]) -> dict[str, int]:
    """Parameters of modules that never ran (e.g. auxiliary heads, used in training mode only),
    by top-level module."""
    by_name = dict(net.named_parameters())
    seen = {id(p) for op in ops if op.module is not None for p in op.module.parameters()}
    seen |= {id(by_name[n]) for op in ops for n in op.param_names}
    unused: dict[str, int] = {}
    for pname, p in net.named_parameters():
        if id(p) not in seen:
            owner = pname.rsplit(".", 1)[0].split(".")[0] if "." in pname else pname
            unused[owner] = unused.get(owner, 0) + p.numel()
    return unused


def _totals(net: nn.Module, rows: list[Row]) -> dict[str, int]:
    param_bytes = sum(p.numel() * p.element_size() for p in net.parameters())
    macs = sum(r.macs for r in rows)
    act = sum(r.activation_bytes for r in rows if not r.aliases)
    return {
        "params": sum(p.numel() for p in net.parameters()),
        "macs": macs,
        "flops": 2 * macs,
        "activation_bytes": act,
        "param_bytes": param_bytes,
        "training_memory_bytes": arith.training_memory(param_bytes, act),
    }
