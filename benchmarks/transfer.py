"""Transfer, measured: fine-tuning from cnnlab's own pretrained weights vs training from scratch.

A zoo model is trained with ``cnnlab train`` on Fashion-MNIST classes 0-4 (T-shirt/top, Trouser,
Pullover, Dress, Coat); then, for each seed, the same architecture is trained on classes 5-9
(Sandal, Shirt, Sneaker, Bag, Ankle boot) from **20 labelled training images per class** (100 in
all), once starting from those weights (``--weights RUN --finetune all --backbone-lr 1``: a
new head, every layer trained at the recipe's learning rate) and once from scratch, with the same
recipe, epochs and images. Both are tested on the 5,000 test images of classes 5-9. Commands::

    cnnlab train MODEL --classes 0,1,2,3,4 --epochs 4 --out PRE
    cnnlab train MODEL --classes 5,6,7,8,9 --limit-per-class 20 --epochs 30 --seed S \\
        --stall-patience 0 [--weights PRE --backbone-lr 1]

Usage::

    python benchmarks/transfer.py --json benchmarks/results/transfer.json
    python benchmarks/transfer.py --markdown benchmarks/results/transfer.json

The goal (issue 11): the median gain over the seeds is at least 5 points of test accuracy.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from machine import describe  # benchmarks/machine.py

from cnnlab.train import TrainConfig, fit

SOURCE_CLASSES = "0,1,2,3,4"
TARGET_CLASSES = "5,6,7,8,9"
PER_CLASS = 20  # labelled training images per target class
TARGET_GAIN = 0.05  # median test-accuracy gain the issue asks for


def train(**settings: Any) -> dict[str, Any]:
    """One quiet ``cnnlab train`` in process; its test accuracy, time and command."""
    config = TrainConfig(progress=False, **settings)
    t = time.perf_counter()
    result = fit(config, quiet=True)
    flags = " ".join(
        f"--{k.replace('_', '-')} {v}" for k, v in settings.items() if k not in ("model", "out")
    )
    return {
        "top1": result.test.top1,
        "seconds": round(time.perf_counter() - t, 1),
        "command": f"cnnlab train {settings['model']} {flags}",
        "run_dir": str(result.run_dir),
    }


def run(
    model: str, seeds: list[int], pre_epochs: int, epochs: int, backbone_lr: float, work: Path
) -> dict[str, Any]:
    load_before = os.getloadavg()
    pre = train(
        model=model, classes=SOURCE_CLASSES, epochs=pre_epochs, out=str(work / "pre"), seed=0
    )
    print(f"pretrained {model} on classes {SOURCE_CLASSES}: test {pre['top1']:.4f}", flush=True)
    rows = []
    for seed in seeds:
        common = dict(
            model=model,
            classes=TARGET_CLASSES,
            limit_per_class=PER_CLASS,
            epochs=epochs,
            seed=seed,
            # 100 images make 6 steps an epoch: a run from scratch is near chance for its first
            # epochs, which is what is measured here, so the stall guard is relaxed for both.
            stall_patience=0,
        )
        tuned = train(
            **common,
            weights=pre["run_dir"],
            backbone_lr=backbone_lr,
            out=str(work / f"tuned-{seed}"),
        )
        scratch = train(**common, out=str(work / f"scratch-{seed}"))
        row = {"seed": seed, "finetuned": tuned, "scratch": scratch}
        row["gain"] = round(tuned["top1"] - scratch["top1"], 4)
        print(
            f"seed {seed}: fine-tuned {tuned['top1']:.4f}, scratch {scratch['top1']:.4f}, "
            f"gain {row['gain']:+.4f}",
            flush=True,
        )
        rows.append(row)
    gains = [r["gain"] for r in rows]
    return {
        "model": model,
        "source_classes": SOURCE_CLASSES,
        "target_classes": TARGET_CLASSES,
        "per_class": PER_CLASS,
        "backbone_lr": backbone_lr,
        "pretraining": pre,
        "runs": rows,
        "median_finetuned": statistics.median(r["finetuned"]["top1"] for r in rows),
        "median_scratch": statistics.median(r["scratch"]["top1"] for r in rows),
        "median_gain": statistics.median(gains),
        "target_gain": TARGET_GAIN,
        "met": statistics.median(gains) >= TARGET_GAIN,
        "machine": describe(),
        "load_average": {"before": load_before, "after": os.getloadavg()},
    }


def markdown(data: dict[str, Any]) -> str:
    lines = [
        f"{data['model']}, pretrained on Fashion-MNIST classes {data['source_classes']} "
        f"(test {100 * data['pretraining']['top1']:.2f}%), then trained on classes "
        f"{data['target_classes']} from {data['per_class']} images per class:",
        "",
        "| seed | fine-tuned | from scratch | gain |",
        "|---|---|---|---|",
    ]
    for r in data["runs"]:
        lines.append(
            f"| {r['seed']} | {100 * r['finetuned']['top1']:.2f}% | "
            f"{100 * r['scratch']['top1']:.2f}% | {100 * r['gain']:+.2f} |"
        )
    lines.append(
        f"| median | {100 * data['median_finetuned']:.2f}% | {100 * data['median_scratch']:.2f}% "
        f"| {100 * data['median_gain']:+.2f} |"
    )
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--model", default="lenet5")
    p.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    p.add_argument("--pre-epochs", type=int, default=4)
    p.add_argument("--epochs", type=int, default=30)
    # With 100 images the batch is capped to 16 and the lr scaled to 0.0125: the default
    # --backbone-lr 0.1 then barely moves the pretrained layers in 180 steps (seed 0: 77.4%,
    # below scratch's 79.6%); the whole network at the same lr gave 88.6%.
    p.add_argument("--backbone-lr", type=float, default=1.0)
    p.add_argument("--json", type=Path, help="write the results here")
    p.add_argument("--markdown", type=Path, help="print the table of an existing results file")
    args = p.parse_args(argv)
    if args.markdown:
        print(markdown(json.loads(args.markdown.read_text())))
        return 0
    with tempfile.TemporaryDirectory() as work:
        data = run(
            args.model, args.seeds, args.pre_epochs, args.epochs, args.backbone_lr, Path(work)
        )
    data["command"] = "python benchmarks/transfer.py " + " ".join(sys.argv[1:])
    if args.json:
        args.json.write_text(json.dumps(data, indent=1) + "\n")
    print(markdown(data))
    return 0 if data["met"] else 1


if __name__ == "__main__":
    sys.exit(main())
