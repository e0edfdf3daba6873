"""Time cnnlab's data path: loading Fashion-MNIST and the per-batch augmentation ops.

Usage::

    .venv/bin/python benchmarks/data_pipeline.py [--threads 1] [--batch 256] [--device cpu]
        [--out results.json]

Prints one line per measurement and, with ``--out``, writes them as JSON. Each augmentation
figure is the best and the median of 5 repeats of 20 batches (best is the least disturbed by
other processes; the median shows the noise).
"""

from __future__ import annotations

import argparse
import json
import statistics
import time
from collections.abc import Callable

import torch
from machine import cpu_model  # benchmarks/machine.py

import cnnlab
from cnnlab.data import augment, dataset_info


def timed(fn: Callable[[], object], repeats: int, inner: int, sync: Callable[[], None]) -> dict:
    fn()
    sync()
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        for _ in range(inner):
            fn()
        sync()
        times.append((time.perf_counter() - start) / inner)
    return {"best_s": min(times), "median_s": statistics.median(times)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--batch", type=int, default=256)
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--out")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    device = torch.device(args.device)
    sync = torch.cuda.synchronize if device.type == "cuda" else (lambda: None)

    results = {
        "machine": cpu_model(),
        "threads": args.threads,
        "device": str(device),
        "batch": args.batch,
    }
    for split in ("train", "test"):
        results[f"load_{split}"] = timed(
            lambda s=split: cnnlab.load_dataset("fashion-mnist", s), 3, 1, lambda: None
        )
    x, _ = cnnlab.load_dataset("fashion-mnist", "train")
    info = dataset_info("fashion-mnist")
    xb = x[: args.batch].to(device)
    g = torch.Generator(device="cpu").manual_seed(0)
    ops = {
        "random_crop_pad2": lambda: augment.random_crop(xb, 2, g),
        "random_crop_pad4": lambda: augment.random_crop(xb, 4, g),
        "random_hflip": lambda: augment.random_hflip(xb, g),
        "normalize": lambda: augment.normalize(xb, info.mean, info.std),
        "crop_flip_normalize": lambda: augment.normalize(
            augment.random_hflip(augment.random_crop(xb, 2, g), g), info.mean, info.std
        ),
        "resize_224": lambda: augment.resize(xb, 224),
    }
    for name, fn in ops.items():
        results[name] = timed(fn, 5, 20, sync)
    for key, value in results.items():
        if isinstance(value, dict):
            best, median = value["best_s"] * 1e3, value["median_s"] * 1e3
            print(f"{key:<22} best {best:9.3f} ms  median {median:9.3f} ms")
    if args.out:
        with open(args.out, "w") as fh:
            json.dump(results, fh, indent=2)


if __name__ == "__main__":
    main()
