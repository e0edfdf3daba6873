"""``cnnlab compare MODEL...``: cost and accuracy of several models side by side."""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from cnnlab import table
from cnnlab.cli.summary import parse_volume


def add_parser(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser(
        "compare",
        help="compare models: parameters, multiply-adds, memory, published top-1",
        description="Analyze several models at their default input (or --input) and print one "
        "line each: parameters, multiply-adds, activation and training memory, and the ImageNet "
        "top-1/top-5 that torchvision publishes for the identical pretrained model (metadata "
        "only; nothing is downloaded). --plot draws multiply-adds vs parameters and top-1 vs "
        "multiply-adds, after Canziani et al. 2017.",
    )
    p.add_argument("models", nargs="+", metavar="MODEL", help="registered model names or patterns")
    p.add_argument("--input", type=parse_volume, default=None, metavar="CxHxW",
                   help="one input volume for all models (default: each model's own)")  # fmt: skip
    p.add_argument("--batch", type=int, default=1, metavar="N")
    p.add_argument("--count", choices=("lecture", "conv-linear"), default="lecture")
    p.add_argument("--format", choices=("text", "markdown", "csv", "json"), default="text")
    p.add_argument("--plot", metavar="OUT.png", help="draw the comparison figure")
    p.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    from cnnlab.analysis.compare import compare_models, render

    rows = compare_models(args.models, args.input, args.batch, args.count)
    if args.format == "json":
        print(json.dumps(rows, indent=2))
    elif args.format == "csv":
        print(table.csv_text(list(rows[0]), rows).rstrip("\n"))
    else:
        print(render(rows, args.count, markdown=args.format == "markdown"))
    if args.plot:
        from cnnlab.analysis.plots import Point, plot_comparison

        points = [Point(r["model"], r["params"], r["macs"], r["top1"]) for r in rows]
        plot_comparison(points, args.plot, args.count)
        if args.format == "text":
            print(f"plot written to {Path(args.plot)}")
    return 0
