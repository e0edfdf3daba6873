"""The slides, checked: every numeric claim in the lecture sources, recomputed by the analyzer.

Each claim is data (:data:`CLAIMS`): where it is, what it says, the value as printed, and a
function that computes the same quantity from the real model with :func:`cnnlab.analyze` (or
from the pure formulas of :mod:`cnnlab.analysis.arith` for the slides' toy examples). A claim
*holds* when the correct figure, rounded to the digits the slide prints, equals the slide's
figure; otherwise the errata give the correct figure and the reason. ``expect`` records the
verdict we reviewed; ``tests/test_analysis_errata.py`` fails if a recomputation changes it.

Run ``python -m cnnlab.analysis.errata`` to regenerate ``docs/errata.md``
(``--check`` exits 1 when the file is out of date, ``-o -`` prints it).

Out of scope: accuracy claims (top-5 error, ImageNet results), which need trained weights and
the ImageNet validation set, and claims whose numbers did not survive text extraction.
"""

from __future__ import annotations

import argparse
import math
import sys
from collections.abc import Callable
from dataclasses import dataclass
from decimal import Decimal
from functools import cache
from pathlib import Path

import torch
from torch import nn

from cnnlab.analysis import arith
from cnnlab.analysis.report import Report, Row, analyze

K, M, G, KIB, MIB = 1e3, 1e6, 1e9, 1024, 2**20

SEED = {
    "000": "seeds/000 (AlexNet/ResNet case study)",
    "001": "seeds/001 (CNN lecture)",
    "002": "seeds/002 (Deep Neural Network Architectures)",
    "003": "seeds/003 (tutorial)",
    "004": "seeds/004 (AlexNet/VGG/Inception/ResNet)",
}


# -- the models the claims are about, analysed once each ----------------------------------------


@cache
def report(name: str, count: str = "lecture", size: tuple[int, ...] | None = None, **kw) -> Report:
    """Cached analysis of a zoo model (built on the meta device with ``kw``)."""
    if kw:
        from cnnlab.registry import create_model, model_info

        with torch.device("meta"):
            net = create_model(name, **kw)
        return analyze(net, size or model_info(name).input_size, count=count)
    return analyze(name, size, count=count)


def rows(r: Report, kind: str) -> list[Row]:
    return [x for x in r.all_rows if x.kind == kind]


def hwc(row: Row) -> str:
    """The slides' ``HxWxC`` (or ``N`` for vectors)."""
    s = row.output_shape
    return f"{s[1]}x{s[2]}x{s[0]}" if len(s) == 3 else str(s[0])


def weights(row: Row, r: Report) -> int:
    """Weights of a conv/linear row without its bias: MACs / output positions (conv-linear)."""
    positions = r.batch_size * math.prod(row.output_shape[1:]) if len(row.output_shape) > 1 else 1
    return row.macs // positions if len(row.output_shape) > 1 else row.macs // r.batch_size


def module_sum(r: Report, prefix: str, what: str) -> int:
    """Sum of conv/linear ``weights`` or ``macs`` over the rows of one module (conv-linear)."""
    sel = [x for x in r.all_rows if x.kind in ("conv", "linear") and x.name.startswith(prefix)]
    return sum(weights(x, r) if what == "weights" else x.macs for x in sel)


def table_memory(r: Report) -> int:
    """The slides' memory total: outputs of conv, pool, flatten and fc rows (no input, no ReLU)."""
    return sum(
        x.activation_bytes
        for x in r.all_rows
        if x.kind in ("conv", "pool", "linear") or x.type == "flatten"
    )


def alexnet() -> Report:
    return report("alexnet", size=(3, 227, 227))


def alexnet_cl() -> Report:
    return report("alexnet", "conv-linear", size=(3, 227, 227))


def paper_alexnet() -> Report:
    return report("alexnet_paper")


def googlenet_paper() -> Report:
    return report("googlenet_paper", "conv-linear", aux_logits=False)


def vgg16() -> Report:
    return report("vgg16")


def vgg16_cl() -> Report:
    return report("vgg16", "conv-linear")


def toy(net: nn.Module, size: tuple[int, int, int], count: str = "lecture") -> Report:
    return analyze(net, size, count=count)


def fits(size: int, kernel: int, stride: int, padding: int = 0) -> str:
    """Output size as the slides write it: an integer, or the fraction when it does not fit."""
    o = arith.output_size(size, kernel, stride, padding)
    return str(o.size) if o.fits else f"{float(o.exact):.2f}"


# -- the claims -------------------------------------------------------------------------------


@dataclass(frozen=True)
class Claim:
    """One numeric statement of the slides.

    Attributes:
        source: seed file and slide.
        claim: the statement, as the slide makes it.
        value: the figure as printed, in units of ``scale`` ("35" with scale 1000 for "35K"),
            or a volume "55x55x96".
        compute: returns the correct figure in base units (or the volume string).
        how: how the analyzer computes it.
        expect: the verdict we reviewed (True = holds).
        reason: why it does not hold (or a remark when it holds only under a convention).
        scale: unit of ``value``.
    """

    source: str
    claim: str
    value: str
    compute: Callable[[], float | int | str]
    how: str
    expect: bool
    reason: str = ""
    scale: float = 1


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


def _conv_stack(n: int, k: int, c: int = 64) -> nn.Module:
    return nn.Sequential(*[nn.Conv2d(c, c, k, padding=k // 2, bias=False) for _ in range(n)])


def _table_row(i: int, name: str, col: str, value: str, scale: float, fn, ok: bool, why=""):
    return Claim(
        SEED["002"] + ", AlexNet table",
        f"{name} {col}",
        value,
        fn,
        f"`cnnlab summary alexnet --input 3x227x227`, row {name}",
        ok,
        why,
        scale,
    )


_AX = [  # (row label, analyzer row, memory KB, params k, flop M, expected verdicts)
    ("conv1", "features.0", "784", "23", "73"),
    ("pool1", "features.2", "182", "0", "0"),
    ("conv2", "features.3", "547", "307", "224"),
    ("pool2", "features.5", "127", "0", "0"),
    ("conv3", "features.6", "254", "664", "112"),
    ("conv4", "features.8", "169", "885", "145"),
    ("conv5", "features.10", "169", "590", "100"),
    ("pool5", "features.12", "36", "0", "0"),
    ("flatten", "flatten", "36", "0", "0"),
    ("fc6", "classifier.1", "16", "37749", "38"),
]


def _alexnet_table() -> list[Claim]:
    out = []
    for label, row, mem, par, flop in _AX:

        def get(attr: str, row: str = row) -> Callable[[], int]:
            return lambda: getattr(alexnet().row(row), attr)

        out.append(_table_row(0, label, "memory (KB)", mem, KIB, get("activation_bytes"), True))
        ok_p = label != "fc6"
        out.append(
            _table_row(
                0,
                label,
                "params (k)",
                par,
                K,
                get("params"),
                ok_p,
                ""
                if ok_p
                else "37,749 is the multiply-add count 9216*4096/1000; with the "
                "bias the layer has 37,752,832 parameters (arithmetic slip)",
            )
        )
        ok_f = label != "conv4"
        out.append(
            _table_row(
                0,
                label,
                "flop (M)",
                flop,
                M,
                get("macs"),
                ok_f,
                ""
                if ok_f
                else "13*13*256 outputs x 384*3*3 = 149,520,384 multiply-adds: arithmetic slip",
            )
        )
    return out


def _vgg16_walkthrough() -> list[Claim]:
    """seeds/001 slides 111-113 and seeds/002: VGG-16 memory (elements) and params (weights)."""
    layers = [  # (label, kind, index among that kind, memory as printed, scale, weights)
        ("CONV3-64", 0, "3.2", M, "1728"),
        ("CONV3-64", 1, "3.2", M, "36864"),
        ("POOL2", "p0", "800", K, None),
        ("CONV3-128", 2, "1.6", M, "73728"),
        ("CONV3-128", 3, "1.6", M, "147456"),
        ("POOL2", "p1", "400", K, None),
        ("CONV3-256", 4, "800", K, "294912"),
        ("CONV3-256", 5, "800", K, "589824"),
        ("CONV3-256", 6, "800", K, "589824"),
        ("POOL2", "p2", "200", K, None),
        ("CONV3-512", 7, "400", K, "1179648"),
        ("CONV3-512", 8, "400", K, "2359296"),
        ("CONV3-512", 9, "400", K, "2359296"),
        ("POOL2", "p3", "100", K, None),
        ("CONV3-512", 10, "100", K, "2359296"),
        ("CONV3-512", 11, "100", K, "2359296"),
        ("CONV3-512", 12, "100", K, "2359296"),
        ("POOL2", "p4", "25", K, None),
        ("FC-4096", "l0", "4096", 1, "102760448"),
        ("FC-4096", "l1", "4096", 1, "16777216"),
        ("FC-1000", "l2", "1000", 1, "4096000"),
    ]
    src = SEED["001"] + " slide 111"
    how = (
        "`cnnlab summary vgg16`: output elements = activation bytes / 4; weights = "
        "conv-linear MACs / output positions (no bias)"
    )

    def pick(key) -> Callable[[Report], Row]:
        if isinstance(key, int):
            return lambda r: rows(r, "conv")[key]
        kind = {"p": "pool", "l": "linear"}[key[0]]
        return lambda r: rows(r, kind)[int(key[1:])]

    out = [
        Claim(
            src,
            "INPUT memory 224*224*3 = 150K",
            "150",
            lambda: vgg16().rows[0].activation_bytes // 4,
            how,
            True,
            scale=K,
        )
    ]
    for label, key, mem, scale, w in layers:
        p = pick(key)
        out.append(
            Claim(
                src,
                f"{label} ({hwc(p(vgg16()))}) memory",
                mem,
                lambda p=p: p(vgg16()).activation_bytes // 4,
                how,
                True,
                scale=scale,
            )
        )
        if w:
            out.append(
                Claim(
                    src,
                    f"{label} ({hwc(p(vgg16()))}) params (not counting biases)",
                    w,
                    lambda p=p: weights(p(vgg16_cl()), vgg16_cl()),
                    how,
                    True,
                )
            )
    total_elems = lambda: vgg16().totals["activation_bytes"] // 4  # noqa: E731
    why_24 = (
        "the listed layer outputs (input included) add up to 15.3M elements = 58.2 MiB "
        "(61 MB), not 24M"
    )
    out += [
        Claim(
            SEED["001"] + " slide 112",
            "TOTAL memory: 24M (elements) per image",
            "24",
            total_elems,
            how + "; total = every new tensor, input included",
            False,
            why_24,
            M,
        ),
        Claim(
            SEED["001"] + " slide 112",
            "TOTAL memory: 24M * 4 bytes ≈ 93MB / image",
            "93",
            lambda: vgg16().totals["activation_bytes"],
            "totals.activation_bytes",
            False,
            why_24 + "; and 24M * 4 B is 96 MB = 91.6 MiB, not 93 (arithmetic slip)",
            MIB,
        ),
        Claim(
            SEED["002"] + ", VGG-16",
            "Total memory: 24M * 4 bytes = 96MB / image",
            "96",
            lambda: vgg16().totals["activation_bytes"],
            "totals.activation_bytes",
            False,
            why_24 + " (96 MB is right for 24M elements, but the count is wrong)",
            M,
        ),
        Claim(
            SEED["001"] + " slide 112",
            "TOTAL params: 138M",
            "138",
            lambda: vgg16().totals["params"],
            "totals.params",
            True,
            scale=M,
        ),
        Claim(
            SEED["002"] + ", VGG-16",
            "parameters: 138M",
            "138",
            lambda: vgg16().totals["params"],
            "totals.params",
            True,
            scale=M,
        ),
    ]
    return out


def _googlenet_table() -> list[Claim]:
    """seeds/001 slide 115: Szegedy et al. 2014, Table 1 (params in K = 1024 weights)."""
    src = SEED["001"] + " slide 115 (GoogLeNet Table 1)"
    how = (
        "`googlenet_paper` (true 5x5 branches), conv-linear count: weights = conv MACs / "
        "output positions, no biases; ops = multiply-adds"
    )
    table = [  # (row, module prefix, output size, params K, ops M)
        ("convolution 7x7/2", "conv1", "112x112x64", "2.7", "34"),
        ("convolution 3x3/1 (with 1x1 reduce)", ("conv2", "conv3"), "56x56x192", "112", "360"),
        ("inception (3a)", "inception3a", "28x28x256", "159", "128"),
        ("inception (3b)", "inception3b", "28x28x480", "380", "304"),
        ("inception (4a)", "inception4a", "14x14x512", "364", "73"),
        ("inception (4b)", "inception4b", "14x14x512", "437", "88"),
        ("inception (4c)", "inception4c", "14x14x512", "463", "100"),
        ("inception (4d)", "inception4d", "14x14x528", "580", "119"),
        ("inception (4e)", "inception4e", "14x14x832", "840", "170"),
        ("inception (5a)", "inception5a", "7x7x832", "1072", "54"),
        ("inception (5b)", "inception5b", "7x7x1024", "1388", "71"),
        ("linear", "fc", "1000", "1000", "1"),
    ]
    wrong = {  # (row, column) -> reason
        ("convolution 7x7/2", "params"): "a 7x7x3 -> 64 convolution has 9,408 weights (9.2K); "
        "the table's 2.7K is not any count of this layer, and its 34M ops = 2.7K x 112x112 "
        "inherit the slip (118M multiply-adds)",
        ("convolution 7x7/2", "ops"): "112x112x64 outputs x 7*7*3 = 118,013,952 multiply-adds; "
        "34M = 112*112 x the table's wrong 2.7K params",
        ("inception (4a)", "params"): "376,176 - biases = 375,552 weights = 366.75K (arithmetic "
        "slip in the paper's table)",
        ("inception (4b)", "params"): "448,512 weights = 438.0K exactly; the table's 437K is off "
        "by one (arithmetic slip)",
        ("inception (4c)", "params"): "509,440 weights = 497.5K: the table's 463K is 34K short "
        "(arithmetic slip in the paper's table)",
        ("inception (4d)", "params"): "604,672 weights = 590.5K (arithmetic slip in the paper's "
        "table)",
        ("inception (4e)", "params"): "867,328 weights = 847.0K (arithmetic slip in the paper's "
        "table)",
        ("inception (5a)", "params"): "1,042,432 weights = 1,018K: the paper's 1072K is 54K "
        "over (arithmetic slip)",
        ("inception (4a)", "ops"): "73,608,192 multiply-adds round to 74M (the paper truncates)",
        ("inception (5a)", "ops"): "51,079,168 multiply-adds = 51M; the table's 54M = its wrong "
        "1072K x 7x7 positions",
        ("inception (5b)", "params"): "1,442,816 weights = 1,409K (arithmetic slip in the "
        "paper's table)",
        ("linear", "params"): "1024 x 1000 = 1,024,000 weights = 1000K with K = 1024 (holds); ",
    }
    out = []
    for label, prefix, size, par, ops in table:
        prefixes = prefix if isinstance(prefix, tuple) else (prefix,)

        def total(what: str, prefixes=prefixes) -> Callable[[], int]:
            return lambda: sum(module_sum(googlenet_paper(), p, what) for p in prefixes)

        def shape(p=prefixes[-1]) -> str:
            r = googlenet_paper()
            last = [x for x in r.all_rows if x.name == p or x.name.startswith(p + ".")][-1]
            return hwc(last)

        out.append(Claim(src, f"{label} output size", size, shape, how, True))
        for col, value, fn, scale in (
            ("params", par, total("weights"), KIB),
            ("ops", ops, total("macs"), M),
        ):
            why = wrong.get((label, col), "")
            ok = not why or why.endswith("(holds); ")
            if label == "linear" and col == "params":
                ok, why = True, ""
            if label == "convolution 3x3/1 (with 1x1 reduce)" and col == "params":
                why = ""
            out.append(Claim(src, f"{label} {col}", value, fn, how, ok, why, scale))
    out += [
        Claim(
            src,
            "Only 5 million params! (GoogLeNet)",
            "5",
            lambda: googlenet_paper().totals["params"],
            "googlenet_paper without auxiliary heads: totals.params",
            False,
            "the network has 6,998,552 parameters (7.0M, of "
            "which 1.0M in the classifier); the paper's 'about 5 million' does not hold",
            M,
        ),
        Claim(
            src,
            "Compared to AlexNet: 12X less params",
            "12",
            lambda: paper_alexnet().totals["params"] / googlenet_paper().totals["params"],
            "alexnet_paper params / googlenet_paper params",
            False,
            "60,965,224 / 6,998,552 = 8.7x, because GoogLeNet has 7.0M parameters, not 5M",
        ),
        Claim(
            src,
            "Compared to AlexNet: 2x more compute",
            "2",
            lambda: (
                googlenet_paper().totals["macs"]
                / report("alexnet_paper", "conv-linear").totals["macs"]
            ),
            "conv-linear MACs of googlenet_paper / alexnet_paper",
            True,
        ),
        Claim(
            SEED["002"] + ", Inception network",
            "“Only” 6M parameters",
            "6",
            lambda: googlenet_paper().totals["params"],
            "googlenet_paper totals.params",
            False,
            "6,998,552 parameters = 7.0M",
            M,
        ),
    ]
    return out


def _claims() -> list[Claim]:
    s1, s2, s3, s4, s0 = SEED["001"], SEED["002"], SEED["003"], SEED["004"], SEED["000"]
    out: list[Claim] = []
    # -- fully connected vs locally connected vs convolution (seeds/001 slides 4-53)
    out += [
        Claim(
            s1 + " slide 4",
            "200x200x3 image, fully connected layer of 1000 units: ~120,000,000 parameters",
            "120",
            lambda: toy(
                nn.Sequential(nn.Flatten(), nn.Linear(200 * 200 * 3, 1000)), (3, 200, 200)
            ).totals["params"],
            "analyze(Flatten + Linear(120000, 1000))",
            True,
            "holds (120,001,000 with biases)",
            M,
        ),
        Claim(
            s1 + " slide 5",
            "1000 hidden units on 10x10 patches: 100,000 parameters",
            "100000",
            lambda: 1000 * 10 * 10 * 3,
            "1000 units x a 10x10x3 patch of the 200x200x3 image",
            False,
            "counts a single input channel: on the slide's RGB "
            "image each unit sees 10x10x3 = 300 values, 300,000 weights (+1000 biases)",
        ),
        Claim(
            s1 + " slide 53",
            "200x200x3 image, 100 filters of 10x10: only 10,000 parameters",
            "10000",
            lambda: toy(nn.Conv2d(3, 100, 10, bias=False), (3, 200, 200)).totals["params"],
            "analyze(Conv2d(3, 100, 10))",
            False,
            "counts a single input channel: 10x10x3 filters have 30,000 weights "
            "(30,100 with biases)",
        ),
    ]
    # -- the conv layer (seeds/001 slides 55-85)
    out += [
        Claim(
            s1 + " slide 58",
            "5x5x3 filter on a 32x32x3 image: 75-dimensional dot product",
            "75",
            lambda: toy(nn.Conv2d(3, 1, 5, bias=False), (3, 32, 32)).totals["params"],
            "weights of one 5x5x3 filter",
            True,
        ),
        Claim(
            s1 + " slide 61",
            "6 5x5 filters on 32x32x3: a 28x28x6 volume",
            "28x28x6",
            lambda: hwc(toy(nn.Conv2d(3, 6, 5), (3, 32, 32)).rows[-1]),
            "output volume",
            True,
        ),
        Claim(
            s1 + " slide 69",
            "7x7 input, 3x3 filter, stride 1: 5x5 output",
            "5",
            lambda: fits(7, 3, 1),
            "arith.output_size(7, 3, 1)",
            True,
        ),
        Claim(
            s1 + " slide 72",
            "7x7 input, 3x3 filter, stride 2: 3x3 output",
            "3",
            lambda: fits(7, 3, 2),
            "arith.output_size(7, 3, 2)",
            True,
        ),
        Claim(
            s1 + " slide 75",
            "7x7 input, 3x3 filter, stride 3: (7-3)/3+1 = 2.33, does not fit",
            "2.33",
            lambda: fits(7, 3, 3),
            "arith.output_size(7, 3, 3); the analyzer flags it and --strict raises GeometryError",
            True,
        ),
        Claim(
            s1 + " slides 76-78",
            "7x7 input, 3x3 filter, stride 1, pad 1: 7x7 output",
            "7",
            lambda: fits(7, 3, 1, 1),
            "arith.output_size(7, 3, 1, 1)",
            True,
        ),
        Claim(
            s1 + " slide 81",
            "32x32 input through 5x5 filters: 32 -> 28 -> 24",
            "24",
            lambda: (
                toy(
                    _conv_stack(2, 5, 1).apply(
                        lambda m: (
                            setattr(m, "padding", (0, 0)) if isinstance(m, nn.Conv2d) else None
                        )
                    ),
                    (1, 32, 32),
                )
                .rows[-1]
                .output_shape[1]
            ),
            "two 5x5 convolutions without padding",
            True,
        ),
        Claim(
            s1 + " slide 83",
            "32x32x3, 10 5x5 filters, stride 1, pad 2: output 32x32x10",
            "32x32x10",
            lambda: hwc(toy(nn.Conv2d(3, 10, 5, padding=2), (3, 32, 32)).rows[-1]),
            "output volume",
            True,
        ),
        Claim(
            s1 + " slide 85",
            "each filter has 5*5*3 + 1 = 76 params, 760 in all",
            "760",
            lambda: toy(nn.Conv2d(3, 10, 5, padding=2), (3, 32, 32)).totals["params"],
            "totals.params of Conv2d(3, 10, 5)",
            True,
        ),
    ]
    # -- AlexNet, the 2012 network (seeds/000, 001, 002, 003)
    pa = paper_alexnet
    out += [
        Claim(
            s1 + " slide 101",
            "CONV1 96 11x11 filters, stride 4 on 227x227x3: (227-11)/4+1 = 55",
            "55x55x96",
            lambda: hwc(rows(pa(), "conv")[0]),
            "`cnnlab summary alexnet_paper`, conv1",
            True,
        ),
        Claim(
            s0,
            "CONV1 parameters: (11*11*3 + 1)*96 = 35K",
            "35",
            lambda: rows(pa(), "conv")[0].params,
            "conv1 params (bias included)",
            True,
            "holds: 34,944",
            K,
        ),
        Claim(
            s1 + " slide 103",
            "CONV1 parameters: (11x11x3)x96 = 35K",
            "35",
            lambda: weights(
                rows(report("alexnet_paper", "conv-linear"), "conv")[0],
                report("alexnet_paper", "conv-linear"),
            ),
            "conv1 weights (bias omitted)",
            True,
            "holds: 34,848 weights; with the 96 biases 34,944",
            K,
        ),
        Claim(
            s1 + " slide 104",
            "POOL1 3x3 stride 2 on 55x55x96: (55-3)/2+1 = 27",
            "27x27x96",
            lambda: hwc(rows(pa(), "pool")[0]),
            "pool1 output",
            True,
        ),
        Claim(
            s1 + " slide 106",
            "POOL1 parameters: 0",
            "0",
            lambda: rows(pa(), "pool")[0].params,
            "pool1 params",
            True,
        ),
    ]
    arch = [
        ("CONV2", "conv", 1, "27x27x256"),
        ("MAX POOL2", "pool", 1, "13x13x256"),
        ("CONV3", "conv", 2, "13x13x384"),
        ("CONV4", "conv", 3, "13x13x384"),
        ("CONV5", "conv", 4, "13x13x256"),
        ("MAX POOL3", "pool", 2, "6x6x256"),
        ("FC6", "linear", 0, "4096"),
        ("FC7", "linear", 1, "4096"),
        ("FC8", "linear", 2, "1000"),
    ]
    for label, kind, i, vol in arch:
        out.append(
            Claim(
                s1 + " slide 108",
                f"full architecture: [{vol}] {label}",
                vol,
                lambda kind=kind, i=i: hwc(rows(pa(), kind)[i]),
                "`cnnlab summary alexnet_paper`",
                True,
            )
        )
    out += [
        Claim(
            s2 + ", AlexNet",
            "60M params",
            "60",
            lambda: pa().totals["params"],
            "`cnnlab summary alexnet_paper` totals",
            True,
            "holds at one significant digit: 60,965,224",
            M,
        ),
        Claim(
            s3 + ", AlexNet linear block",
            "Flatten 256x6x6 = 9216",
            "9216",
            lambda: alexnet().row("flatten").output_shape[0],
            "flatten row",
            True,
        ),
    ]
    # -- the AlexNet per-layer table (seeds/002, torchvision's 64-filter AlexNet at 227)
    ax = alexnet
    out += [
        Claim(
            s2 + ", AlexNet table",
            "conv1: W' = (227 - 11 + 2*2)/4 + 1 = 56",
            "64x56x56",
            lambda: "x".join(map(str, ax().row("features.0").output_shape)),
            "row features.0",
            True,
        ),
        Claim(
            s2 + ", AlexNet table",
            "conv1 output elements 64*56*56 = 200,704",
            "200704",
            lambda: ax().row("features.0").activation_bytes // 4,
            "activation bytes / 4",
            True,
        ),
        Claim(
            s2 + ", AlexNet table",
            "conv1 memory 200704*4/1024 = 784 KB",
            "784",
            lambda: ax().row("features.0").activation_bytes,
            "activation bytes",
            True,
            scale=KIB,
        ),
        Claim(
            s2 + ", AlexNet table",
            "conv1 weights 64*3*11*11 + 64 = 23,296",
            "23296",
            lambda: ax().row("features.0").params,
            "params",
            True,
        ),
        Claim(
            s2 + ", AlexNet table",
            "conv1 flop (64*56*56)*(3*11*11) = 72,855,552",
            "72855552",
            lambda: ax().row("features.0").macs,
            "macs",
            True,
        ),
        Claim(
            s2 + ", AlexNet table",
            "pool1 W' = floor(53/2 + 1) = floor(27.5) = 27",
            "27.50",
            lambda: float(arith.output_size(56, 3, 2).exact),
            "arith.output_size(56, 3, 2) (the analyzer flags pool1)",
            True,
        ),
        Claim(
            s2 + ", AlexNet table",
            "pool1 memory 64*27*27*4/1024 = 182.25 KB",
            "182.25",
            lambda: ax().row("features.2").activation_bytes,
            "activation bytes",
            True,
            scale=KIB,
        ),
        Claim(
            s2 + ", AlexNet table",
            "pool1 flop (64*27*27)*(3*3) = 419,904",
            "419904",
            lambda: ax().row("features.2").macs,
            "macs (lecture count)",
            True,
        ),
        Claim(
            s2 + ", AlexNet table",
            "FC params = 9216*4096 + 4096 = 37,725,832",
            "37725832",
            lambda: ax().row("classifier.1").params,
            "params of fc6",
            False,
            "9216*4096 + 4096 = 37,752,832 (digits transposed: arithmetic slip)",
        ),
        Claim(
            s2 + ", AlexNet table",
            "FC flops = 9216*4096 = 37,748,736",
            "37748736",
            lambda: ax().row("classifier.1").macs,
            "macs of fc6",
            True,
        ),
    ]
    out += _alexnet_table()
    out += [
        Claim(
            s2 + ", VGG x AlexNet",
            "AlexNet total memory: 1.9 MB",
            "1.9",
            lambda: table_memory(ax()),
            "sum of the table's own memory column (conv, pool, flatten, fc outputs)",
            False,
            "the table's own rows add up to 2,339 KB = 2.28 MiB "
            "(2.9 MiB with the input and the adaptive pool); no convention we tried gives "
            "1.9",
            MIB,
        ),
        Claim(
            s2 + ", VGG x AlexNet",
            "VGG-16 total memory: 48.6 MB (25x)",
            "48.6",
            lambda: table_memory(vgg16()),
            "the same sum for vgg16",
            False,
            "conv, pool, flatten and fc outputs add up to 57.6 MiB (58.2 MiB with the input)",
            MIB,
        ),
        Claim(
            s2 + ", VGG x AlexNet",
            "memory ratio VGG-16 / AlexNet: 25x",
            "25",
            lambda: table_memory(vgg16()) / table_memory(ax()),
            "ratio of the two sums",
            True,
            "holds: 57.6 MiB / 2.28 MiB = 25.2x, although both totals are wrong",
        ),
        Claim(
            s2 + ", VGG x AlexNet",
            "AlexNet total: 61M (params)",
            "61",
            lambda: ax().totals["params"],
            "totals.params",
            True,
            scale=M,
        ),
        Claim(
            s2 + ", VGG x AlexNet",
            "VGG-16 total: 138M (2.3x)",
            "2.3",
            lambda: vgg16().totals["params"] / ax().totals["params"],
            "params ratio",
            True,
        ),
        Claim(
            s2 + ", VGG x AlexNet",
            "AlexNet total: 0.7 GFLOP",
            "0.7",
            lambda: alexnet_cl().totals["macs"],
            "conv-linear MACs",
            True,
            scale=G,
        ),
        Claim(
            s2 + ", VGG x AlexNet",
            "VGG-16 total: 13.6 GFLOP",
            "13.6",
            lambda: vgg16_cl().totals["macs"],
            "conv-linear MACs (torchvision: 15.470)",
            False,
            "VGG-16 has 15.47 G multiply-adds (15.49 G with pooling); no counting convention "
            "gives 13.6",
            G,
        ),
        Claim(
            s2 + ", VGG x AlexNet",
            "VGG-16 / AlexNet compute: 19.4x",
            "19.4",
            lambda: vgg16_cl().totals["macs"] / alexnet_cl().totals["macs"],
            "MACs ratio",
            False,
            "15.47 / 0.717 = 21.6x (AlexNet at 227x227), with the wrong 13.6 above",
        ),
    ]
    out += _vgg16_walkthrough()
    # -- VGG configurations (seeds/001 slide 110; Simonyan & Zisserman Table 2, millions)
    for label, name, value in [
        ("A", "vgg11", "133"),
        ("A-LRN", "vgg11_lrn", "133"),
        ("B", "vgg13", "133"),
        ("C", "vgg16_c", "134"),
        ("D", "vgg16", "138"),
        ("E", "vgg19", "144"),
    ]:
        out.append(
            Claim(
                s1 + " slide 110",
                f"VGG configuration {label}: {value}M parameters",
                value,
                lambda name=name: report(name, "conv-linear").totals["params"],
                f"`cnnlab summary {name}` totals.params",
                True,
                scale=M,
            )
        )
    # -- VGG-11 at 224 and at 32 (seeds/003 table)
    for name, size, vols in [
        ("vgg11", "224", ["112x112x64", "56x56x128", "28x28x256", "14x14x512", "7x7x512"]),
        ("vgg11_cifar", "32", ["16x16x64", "8x8x128", "4x4x256", "2x2x512", "1x1x512"]),
    ]:
        for i, vol in enumerate(vols):
            out.append(
                Claim(
                    s3 + ", VGG-11 table",
                    f"input {size}: MaxPool {i + 1} out {vol}",
                    vol,
                    lambda name=name, i=i: hwc(rows(report(name), "pool")[i]),
                    f"`cnnlab summary {name}`",
                    True,
                )
            )
    out += [
        Claim(
            s3 + ", VGG-11 table",
            "input 224: FC in 25088",
            "25088",
            lambda: report("vgg11").row("flatten").output_shape[0],
            "flatten row",
            True,
        ),
        Claim(
            s3 + ", VGG-11 table",
            "input 32: FC in 512, out 2048, 2048, 10",
            "2048,2048,10",
            lambda: ",".join(str(x.output_shape[0]) for x in rows(report("vgg11_cifar"), "linear")),
            "`cnnlab summary vgg11_cifar` linear rows",
            True,
        ),
    ]
    # -- receptive field of stacked 3x3 convolutions (seeds/002, seeds/004)
    out += [
        Claim(
            s4,
            "two 3x3 stride-1 convolutions = one 5x5 (receptive field)",
            "5",
            lambda: toy(_conv_stack(2, 3), (64, 32, 32)).rows[-1].receptive_field,
            "receptive field of the last row",
            True,
        ),
        Claim(
            s4 + " and " + s2,
            "three 3x3 convolutions = one 7x7",
            "7",
            lambda: toy(_conv_stack(3, 3), (64, 32, 32)).rows[-1].receptive_field,
            "receptive field of the last row",
            True,
        ),
        Claim(
            s4,
            "one 3x3 layer: 3x3xCxC = 9C² parameters",
            "9",
            lambda: toy(_conv_stack(1, 3), (64, 32, 32)).totals["params"] / 64**2,
            "params / C² with C = 64, no bias",
            True,
        ),
        Claim(
            s4,
            "three 3x3 layers: 3 x 9C² = 27C²",
            "27",
            lambda: toy(_conv_stack(3, 3), (64, 32, 32)).totals["params"] / 64**2,
            "params / C² with C = 64, no bias",
            True,
        ),
        Claim(
            s4,
            "one 7x7 layer: 49C²",
            "49",
            lambda: toy(_conv_stack(1, 7), (64, 32, 32)).totals["params"] / 64**2,
            "params / C² with C = 64, no bias",
            True,
        ),
        Claim(
            s4,
            "27C² vs 49C²: ~45% reduction",
            "45",
            lambda: (
                100
                * (
                    1
                    - toy(_conv_stack(3, 3), (64, 32, 32)).totals["params"]
                    / toy(_conv_stack(1, 7), (64, 32, 32)).totals["params"]
                )
            ),
            "1 - ratio of the two",
            True,
            "holds: 44.9%",
        ),
        Claim(
            s2 + ", VGG",
            "three 3x3 instead of one 7x7: fewer parameters, ~3/5",
            "0.6",
            lambda: (
                toy(_conv_stack(3, 3), (64, 32, 32)).totals["params"]
                / toy(_conv_stack(1, 7), (64, 32, 32)).totals["params"]
            ),
            "ratio 27/49",
            True,
            "holds at one digit: 27/49 = 0.55",
        ),
    ]
    # -- the Inception cost example (seeds/002)
    out.append(
        Claim(
            s2 + ", The computational cost problem",
            "5x5 conv, 32 filters on 28x28x192: (28*28*32)*(5*5*192) = 120M multiplications",
            "120",
            lambda: toy(nn.Conv2d(192, 32, 5, padding=2), (192, 28, 28)).totals["macs"],
            "analyze(Conv2d(192, 32, 5, padding=2)) at 192x28x28",
            True,
            "holds: 120,422,400",
            M,
        )
    )
    out += _googlenet_table()
    # -- ResNet (seeds/003 Table 1; paper = stride on the first 1x1 of a bottleneck)
    for name, value, ok, why in [
        ("resnet18", "1.8", True, ""),
        ("resnet34", "3.6", False, "3,664 M multiply-adds round to 3.7 (the paper truncates)"),
        (
            "resnet50_paper",
            "3.8",
            False,
            "3,857 M multiply-adds (3.86) round to 3.9 (the paper "
            "truncates); torchvision's resnet50 (stride on the 3x3) has 4.09",
        ),
        ("resnet101_paper", "7.6", True, ""),
        ("resnet152_paper", "11.3", True, ""),
    ]:
        out.append(
            Claim(
                s3 + ", ResNet Table 1",
                f"{name.split('_')[0]}: FLOPs {value} x 10^9",
                value,
                lambda name=name: report(name, "conv-linear").totals["macs"],
                f"`cnnlab summary {name} --count conv-linear` totals.macs",
                ok,
                why,
                G,
            )
        )
    # -- the comparison table (seeds/002): parameters and FLOP; accuracies are out of scope
    out += [
        Claim(
            s2 + ", Comparison",
            "AlexNet: 62M parameters",
            "62",
            lambda: report("alexnet_paper", towers=1).totals["params"],
            "alexnet_paper with towers=1 (one GPU)",
            True,
            "holds for the one-tower 96-filter AlexNet "
            "(62,378,344); the two-tower original has 60,965,224",
            M,
        ),
        Claim(
            s2 + ", Comparison",
            "AlexNet: 1.5B FLOP",
            "1.5",
            lambda: report("alexnet_paper", "conv-linear").totals["flops"],
            "2 x conv-linear MACs of alexnet_paper",
            False,
            "2 x 0.724 G multiply-adds = 1.449 G FLOPs, which "
            "rounds to 1.4; the lecture's own convention (1 flop = 1 multiply-add) gives 0.72",
            G,
        ),
        Claim(
            s2 + ", Comparison",
            "VGGNet: 138M parameters",
            "138",
            lambda: vgg16().totals["params"],
            "vgg16 totals.params",
            True,
            scale=M,
        ),
        Claim(
            s2 + ", Comparison",
            "VGGNet: 19.6B FLOP",
            "19.6",
            lambda: vgg16_cl().totals["flops"],
            "2 x conv-linear MACs of vgg16 (the row's 138M parameters are VGG-16's)",
            False,
            "VGG-16 has 15.5 G multiply-adds = 30.9 G "
            "FLOPs; 19.6 is VGG-19's multiply-adds (19.63 G), mixed with VGG-16's parameters",
            G,
        ),
        Claim(
            s2 + ", Comparison",
            "Inception: 6.4M parameters",
            "6.4",
            lambda: googlenet_paper().totals["params"],
            "googlenet_paper (no auxiliary heads) totals.params",
            False,
            "6,998,552 = 7.0M (torchvision's googlenet without auxiliary heads: 6,624,904 = 6.6M)",
            M,
        ),
        Claim(
            s2 + ", Comparison",
            "Inception: 2B FLOP",
            "2",
            lambda: googlenet_paper().totals["macs"],
            "conv-linear MACs of googlenet_paper",
            True,
            "holds at one digit as multiply-adds (1.59 G); as 2 x MACs it would be 3.2",
            G,
        ),
        Claim(
            s2 + ", Comparison",
            "ResNet-152: 60.3M parameters",
            "60.3",
            lambda: report("resnet152_paper").totals["params"],
            "resnet152_paper totals.params",
            False,
            "60,192,808 = 60.2M",
            M,
        ),
        Claim(
            s2 + ", Comparison",
            "ResNet-152: 11B FLOP",
            "11",
            lambda: report("resnet152_paper", "conv-linear").totals["macs"],
            "conv-linear MACs",
            True,
            "holds as multiply-adds (11.3 G)",
            G,
        ),
        Claim(
            s2 + ", LeNet-5",
            "It has 60k parameters",
            "60",
            lambda: report("lenet5_paper").totals["params"],
            "`cnnlab summary lenet5_paper` (Table I connections, trainable subsampling)",
            True,
            "holds at one significant digit: 60,840",
            K,
        ),
    ]
    # -- ZFNet (seeds/002)
    zf = lambda: report("zfnet")  # noqa: E731
    out += [
        Claim(
            s2 + ", ZFNet",
            "CONV1: 7x7 filters at stride 2",
            "7,2",
            lambda: f"{rows(zf(), 'conv')[0].kernel},{rows(zf(), 'conv')[0].stride}",
            "`cnnlab summary zfnet` conv1",
            True,
        ),
        Claim(
            s2 + ", ZFNet",
            "CONV3,4,5: 512, 1024, 512 filters",
            "512,1024,512",
            lambda: ",".join(str(x.filters) for x in rows(zf(), "conv")[2:5]),
            "conv3-5",
            True,
        ),
        Claim(
            s2 + ", ZFNet (paper caption)",
            "96 different 55 by 55 feature maps after layer 1",
            "55x55x96",
            lambda: hwc(rows(zf(), "pool")[0]),
            "pool1 output",
            True,
        ),
        Claim(
            s2 + ", ZFNet (paper caption)",
            "6*6*256 = 9216 dimensions into the fully connected layers",
            "9216",
            lambda: zf().row("flatten").output_shape[0],
            "flatten row of zfnet",
            False,
            "with the slide's own CONV5 change (512 "
            "filters) the top map is 6x6x512 = 18,432; 9216 is the caption's original "
            "256-filter layer 5",
        ),
    ]
    return out


@cache
def claims() -> tuple[Claim, ...]:
    """All claims, in lecture order."""
    return tuple(_claims())


@dataclass(frozen=True)
class Verdict:
    claim: Claim
    correct: float | int | str
    holds: bool


def check_all() -> list[Verdict]:
    """Recompute every claim."""
    out = []
    for c in claims():
        got = c.compute()
        out.append(Verdict(c, got, holds(c, got)))
    return out


def _fmt(c: Claim, got: float | int | str) -> str:
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
        "<!-- generated by `python -m cnnlab.analysis.errata`; do not edit by hand -->",
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
        "need trained weights and ImageNet). The claims and their computations are data in "
        "`src/cnnlab/analysis/errata.py`; `tests/test_analysis_errata.py` recomputes them all.",
        "",
        "| # | source | claim | slide | correct | verdict | reason / how computed |",
        "|---:|---|---|---:|---:|---|---|",
    ]
    for i, v in enumerate(verdicts, 1):
        c = v.claim
        unit = {K: "K", M: "M", G: "G", KIB: "K", MIB: "MB"}.get(c.scale, "")
        verdict = "holds" if v.holds else "**does not hold**"
        note = c.reason + ("; " if c.reason else "") + c.how
        cells = [str(i), c.source, c.claim, c.value + unit, _fmt(c, v.correct), verdict, note]
        lines.append("| " + " | ".join(x.replace("|", "\\|") for x in cells) + " |")
    lines.append("")
    return "\n".join(lines)


DEFAULT_OUT = Path("docs/errata.md")


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(
        prog="python -m cnnlab.analysis.errata",
        description="Recompute every numeric claim of the lecture slides and write the errata.",
    )
    p.add_argument("-o", "--out", default=str(DEFAULT_OUT), help="output file, '-' for stdout")
    p.add_argument("--check", action="store_true", help="exit 1 if the file is out of date")
    args = p.parse_args(argv)
    verdicts = check_all()
    text = render(verdicts)
    changed = [v for v in verdicts if v.holds != v.claim.expect]
    for v in changed:
        print(
            f"verdict changed: {v.claim.claim!r} now {'holds' if v.holds else 'fails'} "
            f"({v.correct})",
            file=sys.stderr,
        )
    if args.out == "-":
        print(text)
        return 1 if changed else 0
    out = Path(args.out)
    if args.check:
        ok = out.exists() and out.read_text() == text
        if not ok:
            print(f"{out} is out of date: run python -m cnnlab.analysis.errata", file=sys.stderr)
        return 0 if ok and not changed else 1
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(text)
    print(f"wrote {out}: {sum(v.holds for v in verdicts)} of {len(verdicts)} claims hold")
    return 1 if changed else 0


if __name__ == "__main__":
    raise SystemExit(main())
