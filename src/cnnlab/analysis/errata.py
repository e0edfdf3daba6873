"""The slides, checked: every numeric claim in the lecture sources, recomputed by the analyzer.

The claims are data: ``errata_claims.toml``, shipped beside this module, holds one table per
claim (where it is, what it says, the value as printed, and which computation recomputes it,
with its parameters). This module reads that file, recomputes each claim with
:func:`cnnlab.analyze` on the real zoo model (or with the pure formulas of
:mod:`cnnlab.analysis.arith` for the slides' toy examples) and renders the errata. A claim
*holds* when the correct figure, rounded to the digits the slide prints, equals the slide's
figure; otherwise the errata give the correct figure and the reason. ``expect`` records the
verdict we reviewed; ``tests/test_analysis_errata.py`` fails if a recomputation changes it.

The computations are a handful of named kinds (:data:`KINDS`): an output size, a total of the
analysis, a field of some rows, a sum over modules, a ratio. The data file's header documents
each kind and its parameters; a row that names an unknown kind or parameter is refused with
a :class:`ClaimError` that names the claim and the fix.

:func:`render` gives the text of ``docs/errata.md``; ``python -m cnnlab.dev generate`` writes it
(``--check`` exits 1 when it is out of date).

Out of scope: accuracy claims (top-5 error, ImageNet results), which need trained weights and
the ImageNet validation set, and claims whose numbers did not survive text extraction.
"""

from __future__ import annotations

import difflib
import inspect
import math
import re
import tomllib
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from decimal import Decimal
from functools import cache
from importlib import resources
from typing import Any

from torch import nn

from cnnlab.analysis import arith
from cnnlab.analysis.report import Report, Row, analyze
from cnnlab.analysis.trace import on_meta
from cnnlab.errors import CnnlabError

DATA = "errata_claims.toml"  # package data of cnnlab.analysis (see pyproject.toml)
SCALES = {"K": 1e3, "M": 1e6, "G": 1e9, "KiB": 1024, "MiB": 2**20}
K, M, G, KIB, MIB = SCALES.values()


class ClaimError(CnnlabError, ValueError):
    """A claim of the data file is malformed, or its computation cannot be carried out."""


# -- the networks the claims are about ----------------------------------------------------------

TOY_LAYERS: dict[str, type[nn.Module]] = {
    "Conv2d": nn.Conv2d,
    "Linear": nn.Linear,
    "Flatten": nn.Flatten,
}
NET_KEYS = ("model", "toy", "input", "count", "build")


@dataclass(frozen=True)
class Layer:
    """One layer of a toy network: ``TOY_LAYERS[type](*args, **kwargs)``, ``repeat`` times."""

    type: str
    args: tuple[int, ...] = ()
    kwargs: tuple[tuple[str, Any], ...] = ()
    repeat: int = 1

    def build(self) -> list[nn.Module]:
        return [TOY_LAYERS[self.type](*self.args, **dict(self.kwargs)) for _ in range(self.repeat)]


@dataclass(frozen=True)
class Net:
    """A network to analyse: a zoo ``model`` (built with ``build``) or a ``toy`` stack of layers.

    Hashable, so that each network is analysed once however many claims read it.
    """

    model: str | None = None
    toy: tuple[Layer, ...] = ()
    input: tuple[int, ...] | None = None
    count: str = "lecture"
    build: tuple[tuple[str, Any], ...] = ()

    def report(self) -> Report:
        return _analyze(self)


@cache
def _analyze(net: Net) -> Report:
    """The analysis of ``net``; built on the meta device, as the analyzer needs no weights."""
    if net.toy:
        with on_meta():
            module = nn.Sequential(*[m for layer in net.toy for m in layer.build()])
        return analyze(module, net.input, count=net.count)
    if net.build:
        from cnnlab.registry import create_model, model_info

        with on_meta():
            module = create_model(net.model, **dict(net.build))
        return analyze(module, net.input or model_info(net.model).input_size, count=net.count)
    return analyze(net.model, net.input, count=net.count)


# -- what a claim reads from an analysis ------------------------------------------------------


def hwc(row: Row) -> str:
    """The slides' ``HxWxC`` (or ``N`` for vectors)."""
    s = row.output_shape
    return f"{s[1]}x{s[2]}x{s[0]}" if len(s) == 3 else str(s[0])


def weights(row: Row, r: Report) -> int:
    """Weights of a conv/linear row without its bias: MACs / output positions (conv-linear)."""
    positions = math.prod(row.output_shape[1:])  # 1 for a vector (a linear row)
    return row.macs // (r.batch_size * positions)


ROW_FIELDS: dict[str, Callable[[Row, Report], Any]] = {
    "params": lambda x, r: x.params,
    "macs": lambda x, r: x.macs,
    "activation_bytes": lambda x, r: x.activation_bytes,
    "elements": lambda x, r: x.activation_bytes // 4,  # the slides count float32 elements
    "weights": weights,
    "volume": lambda x, r: hwc(x),
    "shape": lambda x, r: "x".join(map(str, x.output_shape)),
    "features": lambda x, r: x.output_shape[0],
    "height": lambda x, r: x.output_shape[1],
    "receptive_field": lambda x, r: x.receptive_field,
    "kernel": lambda x, r: x.kernel,
    "stride": lambda x, r: x.stride,
    "filters": lambda x, r: x.filters,
}


def select_rows(
    r: Report,
    name: str | None,
    layer: list | None,
    position: int | None,
    module: str | None,
) -> list[Row]:
    """The rows a ``row`` claim reads: exactly one of the four selectors is given."""
    chosen = {"name": name, "layer": layer, "position": position, "module": module}
    if len(given := [k for k, v in chosen.items() if v is not None]) != 1:
        raise ClaimError(f"give exactly one of name, layer, position, module (got {given})")
    if name is not None:
        return [r.row(name)]
    if position is not None:
        return [r.all_rows[position]]
    if module is not None:
        inside = [x for x in r.all_rows if x.name == module or x.name.startswith(module + ".")]
        if not inside:
            raise ClaimError(f"no row inside module {module!r} of {r.model}")
        return inside[-1:]
    if not isinstance(layer, list) or not 1 <= len(layer) <= 3:
        raise ClaimError(
            f'layer is [kind], [kind, i] or [kind, start, stop] ("conv"), not {layer!r}'
        )
    kind, *span = layer
    of_kind = [x for x in r.all_rows if x.kind == kind]
    if len(span) == 1:
        return [of_kind[span[0]]]
    return of_kind[span[0] : span[1]] if span else of_kind


def _field(name: str) -> Callable[[Row, Report], Any]:
    if name not in ROW_FIELDS:
        raise ClaimError(f"unknown row field {name!r}: use one of {', '.join(ROW_FIELDS)}")
    return ROW_FIELDS[name]


# -- the kinds of computation: each takes a claim's parameters and returns the correct figure ----


def output_size(size: int, kernel: int, stride: int, padding: int = 0) -> str:
    """Output size as the slides write it: an integer, or the fraction when it does not fit."""
    o = arith.output_size(size, kernel, stride, padding)
    return str(o.size) if o.fits else f"{float(o.exact):.2f}"


def exact_output_size(size: int, kernel: int, stride: int, padding: int = 0) -> float:
    """The exact (fractional) output size, ``(size - kernel + 2 * padding) / stride + 1``."""
    return float(arith.output_size(size, kernel, stride, padding).exact)


def product(factors: list[int]) -> int:
    """Plain arithmetic the slide does by hand."""
    return math.prod(factors)


def total(r: Report, of: str, per: float | None = None) -> float | int:
    """A total of the analysis (``elements`` = activation bytes / 4), optionally ``/ per``."""
    if of == "elements":
        value = r.totals["activation_bytes"] // 4
    elif of in r.totals:
        value = r.totals[of]
    else:
        raise ClaimError(f"unknown total {of!r}: use one of elements, {', '.join(r.totals)}")
    return value if per is None else value / per


def row(
    r: Report,
    of: str | list[str],
    name: str | None = None,
    layer: list | None = None,
    position: int | None = None,
    module: str | None = None,
) -> Any:
    """Field(s) ``of`` of the selected row(s); several values are joined with ","."""
    fields = [_field(f) for f in ([of] if isinstance(of, str) else of)]
    values = [f(x, r) for x in select_rows(r, name, layer, position, module) for f in fields]
    if not values:
        raise ClaimError(f"no rows selected in {r.model}")
    return values[0] if len(values) == 1 else ",".join(map(str, values))


def module_sum(r: Report, modules: list[str], of: str) -> int:
    """Conv/linear ``weights`` or ``macs`` summed over the rows of some modules."""
    if of not in ("weights", "macs"):
        raise ClaimError(f"module_sum sums weights or macs, not {of!r}")
    sel = [
        x
        for m in modules
        for x in r.all_rows
        if x.kind in ("conv", "linear") and x.name.startswith(m)
    ]
    return sum(weights(x, r) if of == "weights" else x.macs for x in sel)


def table_memory(r: Report) -> int:
    """The slides' memory total: outputs of conv, pool, flatten and fc rows (no input, no ReLU)."""
    return sum(
        x.activation_bytes
        for x in r.all_rows
        if x.kind in ("conv", "pool", "linear") or x.type == "flatten"
    )


def ratio(num: Quantity, den: Quantity) -> float:
    return num.compute() / den.compute()


def reduction(num: Quantity, den: Quantity) -> float:
    """Percent saved going from ``den`` to ``num``."""
    return 100 * (1 - num.compute() / den.compute())


@dataclass(frozen=True)
class Kind:
    """A named computation; ``on_net``: it reads the analysis of the claim's network."""

    fn: Callable[..., Any]
    on_net: bool


KINDS: dict[str, Kind] = {
    "output_size": Kind(output_size, False),
    "exact_output_size": Kind(exact_output_size, False),
    "product": Kind(product, False),
    "total": Kind(total, True),
    "row": Kind(row, True),
    "module_sum": Kind(module_sum, True),
    "table_memory": Kind(table_memory, True),
    "ratio": Kind(ratio, False),
    "reduction": Kind(reduction, False),
}


@dataclass(frozen=True)
class Quantity:
    """A figure to recompute: a :data:`KINDS` name, its parameters and (if it needs one) a net."""

    kind: str
    params: Mapping[str, Any]
    net: Net | None = None

    def compute(self) -> Any:
        fn = KINDS[self.kind].fn
        return fn(self.net.report(), **self.params) if self.net else fn(**self.params)


# -- the claims, read from the data file ------------------------------------------------------

REQUIRED = ("source", "claim", "value", "expect", "how", "kind")
OPTIONAL = ("reason", "scale")


@dataclass(frozen=True)
class Claim:
    """One numeric statement of the slides (a table of ``errata_claims.toml``).

    Attributes:
        source: deck and slide, as the errata cite it.
        claim: the statement, as the slide makes it.
        value: the figure as printed, in units of ``scale`` ("35" with scale 1000 for "35K"),
            or a volume "55x55x96".
        quantity: what recomputes the correct figure in base units (or the volume string).
        how: how the analyzer computes it.
        expect: the verdict we reviewed (True = holds).
        reason: why it does not hold (or a remark when it holds only under a convention).
        scale: unit of ``value``.
    """

    source: str
    claim: str
    value: str
    quantity: Quantity
    how: str
    expect: bool
    reason: str = ""
    scale: float = 1


@dataclass(frozen=True)
class ClaimsFile:
    decks: Mapping[str, str]  # deck id -> how the errata cite the deck
    claims: tuple[Claim, ...]


def parse(text: str, name: str = DATA) -> ClaimsFile:
    """Read a claims file; raises :class:`ClaimError` naming the first malformed claim."""
    try:
        doc = tomllib.loads(text)
    except tomllib.TOMLDecodeError as err:
        raise ClaimError(f"{name} is not valid TOML: {err}") from err
    if extra := sorted(set(doc) - {"decks", "section"}):
        raise ClaimError(f"{name}: unknown top-level {extra}: a claim is a [[section.claim]] table")
    decks = doc.get("decks", {})
    rows = [
        {**{k: v for k, v in section.items() if k != "claim"}, **row}  # section = defaults
        for section in doc.get("section", [])
        for row in section.get("claim", [])
    ]
    claims = tuple(
        _parse_claim(row, decks, f"{name}, claim {i} ({row.get('claim', '?')!r})")
        for i, row in enumerate(rows, 1)
    )
    return ClaimsFile(decks, claims)


@cache
def claims_file() -> ClaimsFile:
    """The claims shipped with cnnlab (read through importlib, so it works when installed)."""
    return parse(resources.files("cnnlab.analysis").joinpath(DATA).read_text(encoding="utf-8"))


def claims() -> tuple[Claim, ...]:
    """All claims, in lecture order."""
    return claims_file().claims


def cite(source: str, decks: Mapping[str, str] | None = None, where: str = "") -> str:
    """``source`` with each ``{deck}`` replaced by the deck's citation ("{002}, VGG")."""
    decks = claims_file().decks if decks is None else decks
    where = where or repr(source)

    def deck(m: re.Match[str]) -> str:
        if m[1] not in decks:
            raise ClaimError(f"{where}: unknown deck {{{m[1]}}}: use one of {', '.join(decks)}")
        return decks[m[1]]

    return re.sub(r"\{(\w+)\}", deck, source)


def _parse_claim(row: dict[str, Any], decks: Mapping[str, str], where: str) -> Claim:
    if missing := [k for k in REQUIRED if k not in row]:
        raise ClaimError(f"{where}: missing {', '.join(missing)} (a claim needs {REQUIRED})")
    meta = {k: row[k] for k in (*REQUIRED, *OPTIONAL) if k in row}
    if not isinstance(meta["value"], str):
        raise ClaimError(
            f'{where}: write the value as printed, a string: value = "{meta["value"]}"'
        )
    if not isinstance(meta["expect"], bool):
        raise ClaimError(f"{where}: expect is true (the claim holds) or false")
    if "scale" in meta and meta["scale"] not in SCALES:
        raise ClaimError(
            f"{where}: unknown scale {meta['scale']!r}: use one of {', '.join(SCALES)}"
        )
    params = {k: v for k, v in row.items() if k not in meta}
    return Claim(
        source=cite(meta["source"], decks, where),
        claim=meta["claim"],
        value=meta["value"],
        quantity=_parse_quantity(meta["kind"], params, where),
        how=meta["how"],
        expect=meta["expect"],
        reason=meta.get("reason", ""),
        scale=SCALES[meta["scale"]] if "scale" in meta else 1,
    )


def _parse_quantity(kind: Any, params: dict[str, Any], where: str) -> Quantity:
    """Check ``params`` against the kind's signature, so a typo fails on reading, not later."""
    if kind is None:
        raise ClaimError(f"{where}: missing kind: use one of {', '.join(KINDS)}")
    if kind not in KINDS:
        close = difflib.get_close_matches(str(kind), KINDS, n=1)
        hint = f" (did you mean {close[0]!r}?)" if close else ""
        raise ClaimError(f"{where}: unknown kind {kind!r}{hint}; the kinds are {', '.join(KINDS)}")
    spec, params = KINDS[kind], dict(params)
    net = _parse_net(params, where) if spec.on_net else None
    if not spec.on_net and (extra := [k for k in NET_KEYS if k in params]):
        raise ClaimError(f"{where}: kind {kind!r} analyses no network: remove {', '.join(extra)}")
    for key, value in params.items():  # a table-valued parameter is a nested quantity (ratio)
        if isinstance(value, dict):
            inner = {k: v for k, v in value.items() if k != "kind"}
            params[key] = _parse_quantity(value.get("kind"), inner, f"{where}, {key}")
    signature = inspect.signature(spec.fn)
    try:
        signature.bind(*[None] * spec.on_net, **params)
    except TypeError as err:
        takes = ", ".join(list(signature.parameters)[spec.on_net :])
        takes += " and a network (model or toy, input, count, build)" if spec.on_net else ""
        raise ClaimError(f"{where}: kind {kind!r} takes {takes} ({err})") from None
    return Quantity(kind, params, net)


def _parse_net(params: dict[str, Any], where: str) -> Net:
    """Pop the network keys (:data:`NET_KEYS`) from ``params``."""
    model, toy, size = params.pop("model", None), params.pop("toy", None), params.pop("input", None)
    count, build = params.pop("count", "lecture"), params.pop("build", {})
    if (model is None) == (toy is None):
        raise ClaimError(f"{where}: name the network: model = a zoo name, or toy = [layers]")
    if toy is not None and (size is None or build):
        raise ClaimError(f"{where}: a toy network needs input = [C, H, W] and takes no build")
    if count not in arith.COUNT_MODES:
        raise ClaimError(f"{where}: count is one of {arith.COUNT_MODES}, not {count!r}")
    if not isinstance(build, dict):
        raise ClaimError(f"{where}: build is a table of builder arguments, {{ towers = 1 }}")
    layers = tuple(_parse_layer(spec, where) for spec in toy or ())
    return Net(model, layers, tuple(size) if size else None, count, tuple(sorted(build.items())))


def _parse_layer(spec: Any, where: str) -> Layer:
    if not isinstance(spec, dict) or spec.get("layer") not in TOY_LAYERS:
        raise ClaimError(
            f"{where}: a toy layer is {{ layer = ..., args = [...] }} with layer one of "
            f"{', '.join(TOY_LAYERS)}, not {spec!r}"
        )
    kwargs = {k: v for k, v in spec.items() if k not in ("layer", "args", "repeat")}
    args = tuple(spec.get("args", ()))
    return Layer(spec["layer"], args, tuple(sorted(kwargs.items())), spec.get("repeat", 1))


# -- verdicts and the errata ----------------------------------------------------------------


def holds(c: Claim, got: float | int | str) -> bool:
    """True when ``got``, rounded to the digits ``c.value`` prints, equals it.

    Trailing zeros of a whole number are not significant ("800K" is 8 x 10^2 K, so 802,816
    holds; "60M" is 6 x 10^1 M): the tolerance is half a unit of the last nonzero digit.
    """
    if isinstance(got, str):
        return got == c.value
    d = Decimal(c.value).normalize()
    exponent = d.as_tuple().exponent if d != 0 else min(0, Decimal(c.value).as_tuple().exponent)
    return abs(got / c.scale - float(c.value)) <= 0.5 * 10.0**exponent + 1e-9


@dataclass(frozen=True)
class Verdict:
    claim: Claim
    correct: float | int | str
    holds: bool


def recompute(c: Claim) -> float | int | str:
    """The correct figure of ``c``; a failure names the claim."""
    try:
        return c.quantity.compute()
    except Exception as err:  # add which claim failed; the cause stays chained
        raise ClaimError(f"{c.source}: {c.claim!r}: {type(err).__name__}: {err}") from err


def check_all() -> list[Verdict]:
    """Recompute every claim."""
    out = []
    for c in claims():
        got = recompute(c)
        out.append(Verdict(c, got, holds(c, got)))
    return out


def format_correct(c: Claim, got: float | int | str) -> str:
    """The correct value of claim ``c`` in the claim's own unit, e.g. "34,944" or "1.2 M"."""
    if isinstance(got, str):
        return got
    unit = {K: "K", M: "M", G: "G", KIB: "KiB-units", MIB: "MiB"}.get(c.scale, "")
    exact = f"{got:,}" if isinstance(got, int) or float(got).is_integer() else f"{got:,.4g}"
    if c.scale == 1:
        return exact
    scaled = got / c.scale
    label = {"KiB-units": "K (÷1024)"}.get(unit, unit)
    return f"{scaled:,.2f}{label} ({exact})"


def render(verdicts: list[Verdict]) -> str:
    """docs/errata.md."""
    n_ok = sum(v.holds for v in verdicts)
    lines = [
        "# The slides, checked",
        "",
        "<!-- generated by `python -m cnnlab.dev generate`; do not edit by hand -->",
        "",
        f"Every numeric claim of the lecture sources (`../shared/seeds/`) about volumes, "
        f"parameters, memory and operations, recomputed by cnnlab's analyzer from the real "
        f"models of the zoo. **{n_ok} of {len(verdicts)} claims hold; "
        f"{len(verdicts) - n_ok} do not.**",
        "",
        "A claim holds when the correct figure, rounded to the digits the slide prints, equals "
        "the slide's figure. Conventions: 1 flop on the slides = 1 multiply-add (MAC); "
        "memory = elements x 4 bytes; KB = 1024 bytes, MB in the slides' totals is read as "
        "MiB; 'K' in GoogLeNet's Table 1 is 1024 weights (biases excluded), which is the only "
        "reading under which most of its rows hold. Accuracy claims are out of scope (they "
        "need trained weights and ImageNet). The claims and how to recompute each are data in "
        "`src/cnnlab/analysis/errata_claims.toml`, read by `src/cnnlab/analysis/errata.py`; "
        "`tests/test_analysis_errata.py` recomputes them all.",
        "",
        "| # | source | claim | slide | correct | verdict | reason / how computed |",
        "|---:|---|---|---:|---:|---|---|",
    ]
    for i, v in enumerate(verdicts, 1):
        c = v.claim
        unit = {K: "K", M: "M", G: "G", KIB: "K", MIB: "MB"}.get(c.scale, "")
        verdict = "holds" if v.holds else "**does not hold**"
        note = c.reason + ("; " if c.reason else "") + c.how
        correct = format_correct(c, v.correct)
        cells = [str(i), c.source, c.claim, c.value + unit, correct, verdict, note]
        lines.append("| " + " | ".join(x.replace("|", "\\|") for x in cells) + " |")
    lines.append("")
    return "\n".join(lines)
