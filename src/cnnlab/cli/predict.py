"""``cnnlab predict RUN_DIR|CHECKPOINT IMAGE...``: the top-k classes of each image file."""

from __future__ import annotations

import argparse
import json


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
    import torch

    from cnnlab.data.images import read_image
    from cnnlab.errors import ConfigError
    from cnnlab.train import load_trained
    from cnnlab.train.inputs import make_prepare
    from cnnlab.train.loop import pick_device, set_threads

    if args.top_k < 1:
        raise ConfigError(f"--top-k must be at least 1 (got {args.top_k})")
    device = pick_device(args.device)
    if device.type == "cpu":
        set_threads(0)
    if str(args.path).endswith(".onnx"):  # a `cnnlab export` file: ONNX Runtime on the CPU
        from cnnlab.export import OnnxClassifier

        device = torch.device("cpu")
        model = OnnxClassifier(args.path, require_meta=True)
        meta = model.meta
    else:
        model, meta = load_trained(args.path, device=device)
    prepare = make_prepare(tuple(meta["input_size"][1:]), meta["mean"], meta["std"], device)
    classes = meta["classes"]
    tta = bool(meta.get("tta", False)) if args.tta is None else args.tta
    k = min(args.top_k, len(classes))
    results = []
    for path in args.images:
        image = read_image(path, channels=meta["in_channels"])  # (C, H, W) uint8
        with torch.inference_mode():
            x = prepare(image[None])
            logits = model(x)
            if tta:  # the same flip averaging as `cnnlab eval` and the training report
                logits = (logits + model(x.flip(-1))) / 2
            probs = torch.softmax(logits.float(), dim=1)[0]
        top = probs.topk(k)
        results.append(
            {
                "image": str(path),
                "predictions": [
                    {"class": classes[i], "index": int(i), "probability": float(p)}
                    for p, i in zip(top.values.tolist(), top.indices.tolist(), strict=False)
                ],
            }
        )
    if args.format == "json":
        print(json.dumps(results))
        return 0
    width = max(len(c) for c in classes)
    for r in results:
        print(r["image"])
        for p in r["predictions"]:
            print(f"  {p['class'].ljust(width)}  {100 * p['probability']:6.2f}%")
    return 0
