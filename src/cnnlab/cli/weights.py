"""``cnnlab weights import``: check a ``torch.save`` state dict and convert it to safetensors."""

from __future__ import annotations

import argparse
from pathlib import Path


def add_parser(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser(
        "weights",
        help="convert pretrained weights (.pth) into files cnnlab loads (--weights)",
        description="Pretrained weights. `cnnlab train MODEL --weights imagenet` downloads "
        "torchvision's published file itself; `import` converts your own.",
    )
    sub = p.add_subparsers(dest="weights_command", metavar="ACTION", required=True)
    i = sub.add_parser(
        "import",
        help="check a .pth state dict against a model and write it as safetensors",
        description="Read FILE with torch.load(weights_only=True) only (no other object is "
        "unpickled, so nothing in the file runs), check every key and shape against MODEL, and "
        "write the tensors as safetensors for `cnnlab train MODEL --weights OUT`.",
    )
    i.add_argument("file", type=Path, metavar="FILE.pth", help="a torch.save'd state dict")
    i.add_argument("--model", required=True, help="registered model the weights are for")
    i.add_argument(
        "-o", "--out", type=Path, help="output file (default: FILE with a .safetensors suffix)"
    )
    i.set_defaults(run=run_import)


def run_import(args: argparse.Namespace) -> int:
    from cnnlab.errors import CheckpointError
    from cnnlab.weights import convert_pth

    file: Path = args.file
    if args.out is None and not file.name:  # "." or "/": no file name to put a suffix on
        raise CheckpointError(f"{file} is a directory: pass the .pth file to import")
    out = args.out or file.with_suffix(".safetensors")
    convert_pth(file, args.model, out)
    print(f"wrote {out} ({args.model}); train from it with:")
    print(f"  cnnlab train {args.model} --weights {out}")
    return 0
