"""``cnnlab predict RUN_DIR|CHECKPOINT IMAGE...``: the top-k classes of each image file."""

from __future__ import annotations

import argparse
import json

CLASS_CHARS = 60  # a class name longer than this is cut (a table column, not a document)


def add_parser(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser(
        "predict",
        help="classify image files with a trained model",
        description="Classify image files (PNG, JPEG, ...) with a model trained by "
        "`cnnlab train`. Each image is converted to the model's channels and resized to its "
        "input size (aspect ratio not kept), normalised as in training, and the top-k classes "
        "are printed with their softmax probabilities.",
    )
    p.add_argument(
        "path",
        metavar="RUN_DIR|CHECKPOINT|MODEL.onnx",
        help="what `cnnlab train` wrote, or an ONNX file from `cnnlab export`",
    )
    p.add_argument("images", nargs="+", metavar="IMAGE", help="image files")
    p.add_argument(
        "--top-k", type=int, default=3, metavar="K", help="classes to show per image (default: 3)"
    )
    p.add_argument(
        "--tta",
        action=argparse.BooleanOptionalAction,
        default=None,
        help="average each image's logits with its mirror's (default: as the run was evaluated)",
    )
    p.add_argument("--device", choices=("auto", "cpu", "cuda"), default="auto")
    p.add_argument("--format", choices=("text", "json"), default="text")
    p.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    from cnnlab.errors import ConfigError
    from cnnlab.formats import printable
    from cnnlab.predictor import load
    from cnnlab.run.device import pick_device, set_threads

    if args.top_k < 1:
        raise ConfigError(f"--top-k must be at least 1 (got {args.top_k})")
    device = pick_device(args.device)
    if device.type == "cpu":
        set_threads(0)
    predictor = load(args.path, device=device, tta=args.tta)
    probs = predictor.predict(args.images)  # (N, K)
    results = [
        {
            "image": str(path),
            "predictions": [
                {"class": p.name, "index": p.index, "probability": p.probability} for p in top
            ],
        }
        for path, top in zip(args.images, predictor.top_k(probs, args.top_k), strict=True)
    ]
    if args.format == "json":
        print(json.dumps(results))
        return 0
    # Class names come from the weights file and image names from the user: escaped, one line each
    names = [printable(c, CLASS_CHARS) for c in predictor.classes]
    width = max(len(c) for c in names)
    for r in results:
        print(printable(r["image"]))
        for p in r["predictions"]:
            print(f"  {names[p['index']].ljust(width)}  {100 * p['probability']:6.2f}%")
    return 0
