"""``cnnlab models [PATTERN]``: the zoo as a table."""

from __future__ import annotations

import argparse
import json

from cnnlab import formats, table
from cnnlab.registry import list_models, model_info, recorded_macs


def add_parser(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser(
        "models",
        help="list the architecture zoo",
        description="List registered models: name, family, paper, default input and parameters "
        "(at the default input and number of classes, biases included).",
    )
    p.add_argument("pattern", nargs="?", default="*", help="fnmatch pattern, e.g. 'resnet*'")
    p.add_argument("--format", choices=("text", "json"), default="text")
    p.add_argument(
        "--no-macs",
        dest="macs",
        action="store_false",
        help="skip the multiply-add column (the zoo's are recorded; models registered by your own "
        "code are traced on the meta device, ~0.1 s each)",
    )
    p.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    names = list_models(args.pattern)
    infos = [model_info(n) for n in names]
    macs = {i.name: _macs(i.name) if args.macs else None for i in infos}
    if args.format == "json":
        rows = [
            {
                "name": i.name,
                "family": i.family,
                "paper": i.paper,
                "input_size": list(i.input_size),
                "min_input_size": list(i.min_input_size),
                "params": i.num_params,
                "macs": macs[i.name],
                "torchvision": i.torchvision,
                "description": i.description,
            }
            for i in infos
        ]
        print(json.dumps(rows, indent=2))
        return 0
    if not infos:
        print(f"no model matches {args.pattern!r}; try `cnnlab models` for the full list")
        return 1
    header = ("name", "family", "paper", "input", "classes", "params", "MACs", "torchvision")
    rows = [
        (
            i.name,
            i.family,
            i.paper,
            "x".join(map(str, i.input_size)),
            str(i.num_classes),
            f"{i.num_params:,}",
            _human(macs[i.name]),
            "identical" if i.torchvision else "",
        )
        for i in infos
    ]
    for line in table.fixed_width(header, rows, right={4, 5, 6}):  # numbers align right
        print(line)
    print(
        f"\n{len(infos)} models; params at the default input and classes, biases included; "
        "MACs = multiply-adds of conv and linear layers (bias excluded) per image at the "
        "default input (torchvision's 'GFLOPS' convention; `cnnlab summary` for the lecture count)"
    )
    return 0


def _macs(name: str) -> int:
    """Conv and linear multiply-adds at the default input, from the analyzer (meta device).

    The zoo's are recorded in models/facts.json (the analyzer's own figures, checked by the
    tests), so only a model registered by your own code, or a zoo edited since, is traced.
    """
    macs = recorded_macs(name)
    if macs is not None:
        return macs
    from cnnlab.analysis import analyze  # only when needed: it imports PyTorch and the tracer

    return int(analyze(name, count="conv-linear").totals["macs"])


def _human(macs: int | None) -> str:
    """``7.801 G`` from a billion, ``714.19 M`` below (a small model's falls to ``K``)."""
    if macs is None:
        return ""
    return formats.count(macs, "G") if macs >= 1e9 else formats.count(macs, "M", digits=2)
