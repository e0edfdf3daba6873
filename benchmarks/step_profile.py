"""Where a training step's time goes: the share in convolutions and matrix products, and the rest.

Runs the step ``cnnlab train`` runs (augment a uint8 batch, prepare it, :func:`train_step` with
the fast recipe's precision and memory layout) on random Fashion-MNIST-shaped data, then profiles
a few steps with ``torch.profiler`` and groups the operators' *self* time (no double counting):
convolutions and matrix products (forward and backward) against everything else (batch norm,
activations, pooling, fills, copies, the optimizer). It also reports the useful work rate, the
analyzer's multiply-adds x 3 per image (a training step costs about three forward passes) x
images/s, so two versions of a model can be compared on work done rather than on images alone::

    python benchmarks/step_profile.py --model fastnet --json benchmarks/results/step_profile.json

On a shared machine the figures move with the load; the JSON records the load average.
"""

from __future__ import annotations

import argparse
import dataclasses
import statistics
import sys
import time
from collections import defaultdict
from pathlib import Path
from typing import Any

import torch
from machine import header, write_result  # benchmarks/machine.py
from torch.profiler import ProfilerActivity, profile

from cnnlab.analysis import analyze
from cnnlab.models.fast import FASTNET_RESIDUAL, FastNet
from cnnlab.registry import create_model, model_info
from cnnlab.run.config import TrainConfig
from cnnlab.run.data import Augmenter
from cnnlab.run.inputs import make_prepare
from cnnlab.run.recipes import resolve
from cnnlab.train.step import autocast_for, make_optimizer, train_step

# Operators whose self time is "convolution or matrix product" (forward and backward, oneDNN and
# the reference paths). Everything else is the memory-bound work around them.
MATRIX_OPS = (
    "conv",  # aten::convolution, mkldnn_convolution, convolution_backward, ...
    "aten::mm",
    "aten::addmm",
    "aten::bmm",
    "aten::matmul",
    "aten::linear",
    "aten::baddbmm",
)
FASHION_MEAN, FASHION_STD = (0.286,), (0.353,)


def is_matrix_op(name: str) -> bool:
    return any(key in name.lower() for key in MATRIX_OPS)


def build(model_name: str, widths: list[int] | None) -> torch.nn.Module:
    """The registered model, or with ``widths`` a FastNet of those stage widths (what a wider or
    narrower fastnet would do with the same recipe; residual pairs where fastnet has them)."""
    if not widths:
        return create_model(model_name)
    residual = (*FASTNET_RESIDUAL, *(True,) * len(widths))[: len(widths)]
    return FastNet(tuple(widths), residual)


def setup(
    model_name: str,
    batch: int,
    args: list[str],
    widths: list[int] | None = None,
    foreach: bool | None = None,
) -> tuple[Any, ...]:
    """The model, optimizer, config and a step function as ``cnnlab train`` would build them."""
    config, _ = resolve(TrainConfig(model=model_name, batch_size=batch))
    for pair in args:  # extra recipe overrides, "name=value"
        key, value = pair.split("=", 1)
        kind = type(getattr(config, key))
        config = dataclasses.replace(config, **{key: kind(value) if kind is not bool else value})
    info = model_info(model_name)
    torch.manual_seed(0)
    net = build(model_name, widths)
    if config.channels_last:
        net = net.to(memory_format=torch.channels_last)
    net.train()
    opt = make_optimizer(config, net)
    if foreach is not None:  # torch.optim reads it from the group at every step
        for group in opt.param_groups:
            group["foreach"] = foreach
    prepare = make_prepare(
        info.input_size[1:], FASHION_MEAN, FASHION_STD, torch.device("cpu"), config.channels_last
    )
    augmenter = Augmenter.from_setting(config.augment, config.crop_padding)
    gen = torch.Generator().manual_seed(0)
    data = torch.randint(0, 256, (batch * 4, *info.input_size), dtype=torch.uint8)
    labels = torch.randint(0, info.num_classes, (batch * 4,))
    autocast = autocast_for(config, torch.device("cpu"))

    def step(i: int) -> None:
        index = torch.arange(batch) + (i % 4) * batch
        x = prepare(augmenter(data[index], gen))
        train_step(net, opt, x, labels[index], config, autocast)

    return net, config, step


def images_per_second(step: Any, batch: int, steps: int) -> dict[str, float]:
    """Images/s over ``steps`` timed steps after a warm-up, three ways.

    On a shared machine the wall time of a step includes time the process waited for a core, so
    the best step (least disturbed) and the CPU-time rate (images per CPU-second of this process,
    times its threads: what it would do with its cores to itself) are given beside the median.
    """
    for i in range(3):
        step(i)
    wall, cpu = [], []
    for i in range(steps):
        t0, c0 = time.perf_counter(), time.process_time()
        step(i)
        wall.append(time.perf_counter() - t0)
        cpu.append(time.process_time() - c0)
    threads = torch.get_num_threads()
    return {
        "images_per_s": round(batch / statistics.median(wall), 1),
        "images_per_s_best_step": round(batch / min(wall), 1),
        "images_per_cpu_s_x_threads": round(batch * threads / statistics.median(cpu), 1),
    }


def op_shares(step: Any, steps: int) -> dict[str, Any]:
    """Self CPU time per operator over ``steps`` profiled steps, grouped."""
    with profile(activities=[ProfilerActivity.CPU]) as prof:
        for i in range(steps):
            step(i)
    by_op: dict[str, float] = defaultdict(float)
    for event in prof.key_averages():
        by_op[event.key] += event.self_cpu_time_total / 1e6
    total = sum(by_op.values())
    matrix = sum(t for name, t in by_op.items() if is_matrix_op(name))
    top = sorted(by_op.items(), key=lambda kv: -kv[1])[:15]
    return {
        "matrix_share": round(matrix / total, 3),
        "profiled_seconds": round(total, 3),
        "top_ops": [
            {"op": name, "share": round(t / total, 3), "matrix": is_matrix_op(name)}
            for name, t in top
        ],
    }


def measure(
    model_name: str,
    batch: int,
    steps: int,
    overrides: list[str],
    widths: list[int] | None = None,
    foreach: bool | None = None,
) -> dict[str, Any]:
    net, config, step = setup(model_name, batch, overrides, widths, foreach)
    info = model_info(model_name)
    macs = analyze(net, input_size=info.input_size, count="conv-linear").totals["macs"]
    rates = images_per_second(step, batch, steps)
    shares = op_shares(step, steps=5)
    return {
        "model": model_name,
        "widths": widths,
        "foreach": foreach,
        "batch": batch,
        "precision": config.precision,
        "channels_last": config.channels_last,
        "overrides": overrides,
        "threads": torch.get_num_threads(),
        "macs_per_image": macs,
        **rates,
        # useful training work: 3 x the forward multiply-adds per image (forward, and the two
        # products of the backward pass), 2 FLOPs per multiply-add; from each rate above
        **{
            key.replace("images_per", "useful_gflop_per"): round(r * 6 * macs / 1e9, 1)
            for key, r in rates.items()
        },
        **shares,
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default="fastnet")
    parser.add_argument(
        "--widths",
        type=int,
        nargs="+",
        help="profile a FastNet of these stage widths instead of --model (its recipe is fastnet's)",
    )
    parser.add_argument(
        "--foreach",
        choices=("on", "off"),
        help="the optimizer's multi-tensor ('foreach') update on or off (default: torch's choice, "
        "off on the CPU)",
    )
    parser.add_argument("--batch", type=int, default=256)
    parser.add_argument("--steps", type=int, default=20, help="timed steps")
    parser.add_argument("--threads", type=int, help="torch threads (default: torch's)")
    parser.add_argument(
        "--set", nargs="*", default=[], metavar="FIELD=VALUE", help="recipe overrides"
    )
    parser.add_argument("--json", type=Path, help="write the result JSON here")
    args = parser.parse_args(argv)
    if args.threads:
        torch.set_num_threads(args.threads)
    if args.widths and args.model != "fastnet":
        parser.error("--widths builds a FastNet: leave --model at fastnet")
    foreach = None if args.foreach is None else args.foreach == "on"
    measured = measure(args.model, args.batch, args.steps, args.set, args.widths, foreach)
    result = {**header("step_profile"), **measured}
    if args.json:
        write_result(args.json, result)
    print(
        f"{result['model']}{' ' + str(args.widths) if args.widths else ''} batch "
        f"{result['batch']}, {result['threads']} thread(s): "
        f"{result['images_per_s']:.0f} images/s ({result['images_per_cpu_s_x_threads']:.0f} by CPU "
        f"time), {result['useful_gflop_per_s']} useful GFLOP/s "
        f"({result['useful_gflop_per_cpu_s_x_threads']} by CPU time), "
        f"{100 * result['matrix_share']:.0f}% of the step in convolutions and matrix products"
    )
    for op in result["top_ops"]:
        print(f"  {100 * op['share']:5.1f}%  {op['op']}{'  (matrix)' if op['matrix'] else ''}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
