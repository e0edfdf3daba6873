"""``cnnlab summary MODEL``: the lecture's per-layer table for any model and input size."""

from __future__ import annotations

import argparse
from pathlib import Path

from cnnlab.errors import ConfigError


def parse_volume(text: str) -> tuple[int, int, int]:
    """``"3x227x227"`` -> ``(3, 227, 227)``; ``"227"`` and ``"227x227"`` mean 3 channels.

    Raises:
        argparse.ArgumentTypeError: argparse prints it as a one-line usage error (exit 2).
    """
    parts = text.lower().replace("*", "x").replace(",", "x").split("x")
    try:
        nums = tuple(int(p) for p in parts)
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"cannot read input size {text!r}: write it as CxHxW, e.g. --input 3x224x224"
        ) from None
    if len(nums) == 1:
        nums = (3, nums[0], nums[0])
    elif len(nums) == 2:
        nums = (3, *nums)
    if len(nums) != 3 or min(nums) < 1:
        raise argparse.ArgumentTypeError(
            f"input size {text!r} is not a volume: write it as CxHxW with positive sizes, "
            "e.g. --input 3x224x224"
        )
    return nums  # type: ignore[return-value]


def add_parser(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser(
        "summary",
        help="per-layer table: volumes, memory, parameters, multiply-adds, receptive field",
        description="The lecture's per-layer table for MODEL at an input size: input and output "
        "volume, filters, kernel, stride, padding, activation memory, parameters, multiply-adds, "
        "receptive field and jump, with totals and a training-memory estimate. Nothing is "
        "computed (the model runs on PyTorch's meta device), so any batch size is instant.",
    )
    p.add_argument("model", help="registered model name (see `cnnlab models`)")
    p.add_argument(
        "--input", type=parse_volume, default=None, metavar="CxHxW",
        help="input volume (default: the model's own, e.g. 3x224x224)",
    )  # fmt: skip
    p.add_argument("--batch", type=int, default=1, metavar="N", help="batch size (default 1)")
    p.add_argument(
        "--depth", type=int, default=None, metavar="N",
        help="fold modules deeper than N into one row with summed figures",
    )  # fmt: skip
    p.add_argument(
        "--count", choices=("lecture", "conv-linear"), default="lecture",
        help="lecture: the slides' rules (pooling K*K per output, batch norm, activations, "
        "additions at documented costs); conv-linear: conv and linear multiply-adds only, "
        "as torchvision's published GFLOPS",
    )  # fmt: skip
    p.add_argument("--format", choices=("text", "markdown", "csv", "json"), default="text")
    p.add_argument("--plot", metavar="OUT.png", help="also draw per-layer memory/params/MACs bars")
    p.add_argument(
        "--strict", action="store_true",
        help="fail (GeometryError) when a filter does not tile its input",
    )  # fmt: skip
    p.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    from cnnlab.analysis import analyze

    if args.depth is not None and args.depth < 1:
        raise ConfigError(f"--depth must be at least 1 (got {args.depth}): pass --depth 1 or more")
    report = analyze(
        args.model,
        input_size=args.input,
        batch_size=args.batch,
        count=args.count,
        depth=args.depth,
        strict=args.strict,
    )
    text = {
        "text": report.to_text,
        "markdown": report.to_markdown,
        "csv": report.to_csv,
        "json": report.to_json,
    }[args.format]()
    print(text.rstrip("\n"))
    if args.plot:
        from cnnlab.analysis.plots import plot_layers

        plot_layers(report, args.plot)
        if args.format == "text":
            print(f"plot written to {Path(args.plot)}")
    return 0
