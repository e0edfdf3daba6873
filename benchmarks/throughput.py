"""Throughput: cnnlab's training pipeline against plain PyTorch and the tutorial pipeline.

Three pipelines, measured side by side in one process, on the same machine, at the same moment:

* **plain** -- the baseline of "no model trains slower than plain PyTorch": the same model, batch,
  optimizer and loss as cnnlab's run, the same batches already in memory, in float32 and the
  default NCHW layout, stepped by the four lines every tutorial writes (forward, loss,
  ``zero_grad``, ``backward``, ``step``; plus gradient clipping where the recipe clips).

* **tutorial** -- what the PyTorch tutorials teach (benchmarks/tutorial.py, which
  benchmarks/lenet_epoch.py shares): ``torchvision.datasets.FashionMNIST`` with
  per-sample transforms (``Resize`` where the model needs a larger input, ``ToTensor``,
  ``Normalize``), a ``DataLoader`` that shuffles and collates, float32, the default NCHW layout,
  SGD with momentum.
* **cnnlab** -- what ``cnnlab train --recipe fast`` does: the dataset in memory as one uint8 tensor,
  batches indexed out and augmented as whole batches, normalised (and resized) per batch, bf16
  autocast, channels-last, the fast recipe's optimizer. The pieces are the training loop's own
  (:func:`cnnlab.run.inputs.make_prepare`, :class:`~cnnlab.run.data.Augmenter`,
  :func:`cnnlab.train.step.make_optimizer`, :func:`cnnlab.run.recipes.resolve`), and each step
  is the library's own :func:`cnnlab.train.step.train_step`.

Every zoo family has a row at a training size (32x32, or the smallest input the model takes).
cnnlab's precision and memory format are the fast recipe's per-family choice
(``FAST_FAMILY_FORMATS`` in :mod:`cnnlab.run.recipes`); ``--formats`` measures what that choice is
made from: cnnlab's step in each of fp32/bf16 x NCHW/channels-last. plain and cnnlab alternate over
``ROUNDS`` rounds of a few timed steps (after untimed warm-up steps) and the medians are reported.
Inference is what ``cnnlab eval`` runs, :meth:`cnnlab.predictor.Predictor.logits` on uint8 images,
before (float32 as loaded, ``fast=False``) and after (the fastest path that agrees with float32,
:mod:`cnnlab.fastpath`, its choosing included), next to the tutorial's DataLoader loop. Then one
LeNet-5 epoch end to end (data loading, 60,000 training images, test evaluation) through each:
the tutorial loop as written in the tutorials, and cnnlab's real ``train()`` (the body of
``cnnlab train``). Finally the machine's matmul peak (2048x2048, fp32 and bf16) and the
training GFLOP/s that ResNet-20 and VGG-11 achieve as a fraction of it (training FLOPs counted as
3 x 2 x the forward multiply-adds: forward, and a backward pass of twice the forward's work).

Usage::

    python benchmarks/throughput.py [--json benchmarks/results/throughput.json] [--smoke]
    python benchmarks/throughput.py --formats --json benchmarks/results/throughput_formats.json
    python benchmarks/throughput.py --markdown benchmarks/results/throughput.json

On a shared machine the figures are noisy: the JSON records the load average before and after,
and the ratios (measured back to back) are more trustworthy than the absolute rates.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import os
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import torch
from machine import header, write_result  # benchmarks/machine.py
from torch import nn
from tutorial import (  # benchmarks/tutorial.py: the tutorial pipeline, shared with lenet_epoch.py
    TUTORIAL_LR,
    make_tutorial_root,
    sgd,
    train_and_test,
    tutorial_dataset,
)
from tutorial import train_step as tutorial_step

import cnnlab
from cnnlab.data import dataset_info, load_dataset
from cnnlab.predictor import Predictor
from cnnlab.run.config import TrainConfig
from cnnlab.run.data import Augmenter
from cnnlab.run.device import cpu_model
from cnnlab.run.inputs import make_prepare
from cnnlab.run.recipes import resolve
from cnnlab.runmeta import RunMeta
from cnnlab.train.step import autocast_for, loss_and_logits, make_optimizer, train_step

DATASET = "fashion-mnist"
# (model, input side in pixels, training batch, timed training steps per round, images the
# inference pass classifies). Every registry family has a row at a training size: 32x32, or the
# smallest input the model takes (AlexNet 63, NiN 67). Batches are the fast recipe's (256 for
# fastnet and LeNet-5, whose steps are cheap) or smaller where one step of a large model would
# take seconds; large models get few steps so the benchmark stays at minutes on 2 cores.
CASES: tuple[tuple[str, int, int, int, int], ...] = (
    ("fastnet", 28, 256, 20, 4096),
    ("lenet5", 28, 256, 40, 4096),
    ("resnet20", 32, 128, 8, 2048),
    ("resnet18", 32, 128, 4, 2048),
    ("vgg11", 32, 64, 3, 1024),
    ("vgg11_bn", 32, 64, 3, 1024),
    ("densenet_bc_100", 32, 64, 3, 1024),
    ("googlenet", 32, 64, 4, 1024),
    ("alexnet", 64, 64, 6, 2048),
    ("nin", 67, 64, 4, 1024),
    ("resnet18", 224, 16, 2, 1024),
)
SMOKE_CASES = (("lenet5", 28, 64, 3, 1024), ("resnet20", 32, 16, 2, 1024))
WARMUP_STEPS = 2  # untimed: the first steps allocate workspaces and pick kernels
ROUNDS = 3  # plain and cnnlab alternate this many times; medians are reported
SMOKE_ROUNDS = 1
INFER_BATCHES = 3
BENCH_LR_FRACTION = 0.01  # of the recipe's peak learning rate (see CnnlabPipeline)
# (precision, channels_last) pairs --formats measures cnnlab's step in.
FORMATS = (("fp32", False), ("fp32", True), ("bf16", False), ("bf16", True))
SMOKE_VAL = 500  # held-out images in --smoke (the default is 5,000)
SMOKE_MATMUL = 512
GFLOPS_MODELS = ("resnet20", "vgg11")  # achieved training GFLOP/s vs the matmul peak
MATMUL_SIZE = 2048
TUTORIAL_BATCH = 64
LENET_BATCH = 256  # the fast recipe's batch
CPU = torch.device("cpu")
CUDA_MATMUL_SIZE = 8192  # a 2048 product is over in microseconds on a GPU: launch-bound
CUDA_STEP_FACTOR = 10  # timed steps per round on a GPU, times the case's CPU count


# --- machine --------------------------------------------------------------------------------------


def synchronize(device: torch.device) -> None:
    """Wait for the device's queued work: CUDA runs asynchronously, so a clock read without this
    would time the launches, not the kernels."""
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def matmul_gflops(
    dtype: torch.dtype,
    n: int = MATMUL_SIZE,
    repeats: int = 5,
    device: torch.device = CPU,
) -> float:
    """Best-of-``repeats`` GFLOP/s of one ``n x n`` matmul (2 n^3 FLOPs) in ``dtype``."""
    a = torch.randn(n, n, device=device).to(dtype)
    b = torch.randn(n, n, device=device).to(dtype)
    out = torch.empty(n, n, dtype=dtype, device=device)
    torch.mm(a, b, out=out)  # warm-up, reusing one output buffer (REFERENCE.md's VM trap)
    best = float("inf")
    for _ in range(repeats):
        synchronize(device)
        t = time.perf_counter()
        torch.mm(a, b, out=out)
        synchronize(device)
        best = min(best, time.perf_counter() - t)
    return 2 * n**3 / best / 1e9


def forward_macs(name: str, size: int) -> int:
    """Multiply-adds of convolutions and linear layers for one 1-channel image (the analyzer)."""
    report = cnnlab.analyze(
        cnnlab.create_model(name, num_classes=10, in_channels=1, check_input=False),
        input_size=(1, size, size),
    )
    return sum(r.macs for r in report.rows if r.kind in ("conv", "linear"))


# --- the tutorial pipeline ------------------------------------------------------------------------


def tutorial_train_rate(
    model: nn.Module, loader: Any, steps: int
) -> tuple[float, Callable[[], None]]:
    """Images/s of the tutorial training loop over ``steps`` timed batches (after warm-up)."""
    opt = sgd(model)
    model.train()
    it = iter(loader)

    def step() -> int:
        return tutorial_step(model, opt, *next(it))

    for _ in range(WARMUP_STEPS):
        step()
    t, n = time.perf_counter(), 0
    for _ in range(steps):
        n += step()
    return n / (time.perf_counter() - t), step


@torch.inference_mode()
def tutorial_infer_rate(model: nn.Module, loader: Any) -> float:
    model.eval()
    it = iter(loader)
    model(next(it)[0])  # warm-up
    t, n = time.perf_counter(), 0
    for _ in range(INFER_BATCHES):
        x, _ = next(it)
        model(x)
        n += len(x)
    return n / (time.perf_counter() - t)


# --- the cnnlab pipeline --------------------------------------------------------------------------


class CnnlabPipeline:
    """The fast recipe's data path and step, built from the training loop's own pieces."""

    def __init__(
        self,
        name: str,
        size: int,
        batch: int,
        images: torch.Tensor,
        labels: Any,
        device: torch.device = CPU,
    ):
        config, _ = resolve(TrainConfig(model=name, recipe="fast", batch_size=batch))
        # The steps run at a small constant rate: the schedule's warm-up is not run here, and the
        # peak rate without it can make a loss NaN (VGG-11-BN did); speed does not depend on it.
        config = dataclasses.replace(config, lr=config.lr * BENCH_LR_FRACTION)
        info = dataset_info(DATASET)
        self.size = size
        self.config = config
        self.device = device
        # As in the trainer: the dataset stays on the CPU as uint8, each batch is augmented there
        # and moved to the device by `prepare`.
        self.images, self.labels = images, labels
        self.prepare = make_prepare((size, size), info.mean, info.std, device, config.channels_last)
        self.augment = Augmenter.from_setting(config.augment, config.crop_padding)
        self.generator = torch.Generator().manual_seed(0)
        self.autocast = autocast_for(config, device)
        self.memory = torch.channels_last if config.channels_last else torch.contiguous_format

    def build(self, model: nn.Module) -> nn.Module:
        return model.to(device=self.device, memory_format=self.memory)

    def with_format(self, precision: str, channels_last: bool) -> CnnlabPipeline:
        """The same pipeline in another precision and memory format."""
        other = CnnlabPipeline.__new__(CnnlabPipeline)
        other.__dict__.update(self.__dict__)
        other.config = dataclasses.replace(
            self.config, precision=precision, channels_last=channels_last
        )
        info = dataset_info(DATASET)
        side = (self.size, self.size)
        other.prepare = make_prepare(side, info.mean, info.std, self.device, channels_last)
        other.autocast = autocast_for(other.config, self.device)
        other.memory = torch.channels_last if channels_last else torch.contiguous_format
        return other

    def step_fn(self, model: nn.Module) -> Callable[[], int]:
        """One training step of cnnlab's loop per call (a fresh batch each time)."""
        opt = make_optimizer(self.config, model)
        batch = self.config.batch_size
        order = torch.randperm(len(self.images), generator=self.generator)
        model.train()
        cursor = 0

        def step() -> int:
            nonlocal cursor
            index = order[cursor : cursor + batch]
            cursor += batch
            x = self.prepare(self.augment(self.images[index], self.generator))
            y = self.labels[index].to(self.device, non_blocking=True)
            return train_step(model, opt, x, y, self.config, self.autocast).count

        return step


# --- the plain PyTorch baseline -------------------------------------------------------------------


def plain_step_fn(
    model: nn.Module, config: TrainConfig, batches: list[tuple[torch.Tensor, torch.Tensor]]
) -> Callable[[], int]:
    """A step of the plain loop over ``batches`` (float32 NCHW, already prepared, in memory).

    The optimizer, loss (label smoothing, auxiliary heads) and clipping are cnnlab's run's, so the
    two loops differ only in precision, memory format and what cnnlab's step adds around them.
    """
    fp32 = dataclasses.replace(config, precision="fp32", channels_last=False)
    opt = make_optimizer(fp32, model)
    model.train()
    cursor = 0

    def step() -> int:
        nonlocal cursor
        x, y = batches[cursor % len(batches)]
        cursor += 1
        loss, _ = loss_and_logits(model(x), y, fp32)
        opt.zero_grad()
        loss.backward()
        if fp32.grad_clip:
            nn.utils.clip_grad_norm_(model.parameters(), fp32.grad_clip)
        opt.step()
        return len(y)

    return step


def timed_rate(step: Callable[[], int], steps: int, device: torch.device = CPU) -> float:
    """Images/s of ``steps`` calls of ``step`` (warm-up steps run before the first call)."""
    synchronize(device)
    t, n = time.perf_counter(), 0
    for _ in range(steps):
        n += step()
    synchronize(device)
    return n / (time.perf_counter() - t)


# --- inference: what `cnnlab eval` runs, before and after the fast path --------------------------


def predictor_rate(model: nn.Module, size: int, images: torch.Tensor, fast: bool) -> dict[str, Any]:
    """Images/s of ``Predictor.logits`` on uint8 ``images`` (the choice of path included)."""
    info = dataset_info(DATASET)
    meta = RunMeta(
        model="bench",
        num_classes=10,
        in_channels=1,
        input_size=(1, size, size),
        classes=tuple(str(i) for i in range(10)),
        mean=info.mean,
        std=info.std,
    )
    predictor = Predictor(model.eval(), meta, Path("bench"))
    predictor.fast = fast
    t = time.perf_counter()
    predictor.logits(images)
    rate = len(images) / (time.perf_counter() - t)
    choice = predictor.choice
    row: dict[str, Any] = {"rate": rate, "path": choice.path.name if choice else "fp32"}
    if choice:
        row["max_abs_diff"] = choice.max_abs_diff
    return row


# --- the measurements -----------------------------------------------------------------------------


def fresh_model(
    name: str, pipeline: str, cnnlab_pipe: CnnlabPipeline | None, device: torch.device = CPU
) -> nn.Module:
    torch.manual_seed(0)  # every pipeline starts from the same weights
    model = cnnlab.create_model(name, num_classes=10, in_channels=1, check_input=False)
    return cnnlab_pipe.build(model) if pipeline == "cnnlab" and cnnlab_pipe else model.to(device)


def plain_batches(pipe: CnnlabPipeline, count: int) -> list[tuple[torch.Tensor, torch.Tensor]]:
    """``count`` float32 NCHW training batches, prepared once (the plain loop's data in memory)."""
    info = dataset_info(DATASET)
    side = pipe.size
    prepare = make_prepare((side, side), info.mean, info.std, pipe.device, False)
    batch = pipe.config.batch_size
    return [
        (
            prepare(pipe.images[i * batch : (i + 1) * batch]),
            pipe.labels[i * batch : (i + 1) * batch].to(pipe.device),
        )
        for i in range(count)
    ]


def compare_training(
    name: str, pipe: CnnlabPipeline, steps: int, rounds: int
) -> tuple[float, float]:
    """Median images/s of the plain loop and of cnnlab's step, alternated over ``rounds``."""
    plain_model = fresh_model(name, "plain", None, pipe.device)
    plain = plain_step_fn(plain_model, pipe.config, plain_batches(pipe, min(steps, 8)))
    ours = pipe.step_fn(fresh_model(name, "cnnlab", pipe))
    for _ in range(WARMUP_STEPS):
        plain()
        ours()
    rates: dict[str, list[float]] = {"plain": [], "cnnlab": []}
    for _ in range(rounds):  # alternate, so a change in the machine's load hits both
        rates["plain"].append(timed_rate(plain, steps, pipe.device))
        rates["cnnlab"].append(timed_rate(ours, steps, pipe.device))
    return statistics.median(rates["plain"]), statistics.median(rates["cnnlab"])


def case_fields(name: str, pipe: CnnlabPipeline, steps: int, rounds: int) -> dict[str, Any]:
    """What a result row says about its case: the model, its input and cnnlab's settings."""
    return {
        "model": name,
        "size": pipe.size,
        "batch": pipe.config.batch_size,
        "steps": steps,
        "rounds": rounds,
        "precision": pipe.config.precision,
        "channels_last": pipe.config.channels_last,
        "optimizer": pipe.config.optimizer,
    }


def measure_case(
    name: str,
    size: int,
    batch: int,
    steps: int,
    infer_images: int,
    root: Path,
    data: Any,
    rounds: int,
) -> dict[str, Any]:
    """Training and inference images/s of one model through the three pipelines."""
    from torch.utils.data import DataLoader

    train_set = tutorial_dataset(root, True, size)
    loader = DataLoader(train_set, batch_size=batch, shuffle=True)
    infer_batch = min(infer_images, 256)
    test_loader = DataLoader(tutorial_dataset(root, False, size), batch_size=infer_batch)
    pipe = CnnlabPipeline(name, size, batch, *data)
    row = case_fields(name, pipe, steps, rounds)
    tut, _ = tutorial_train_rate(fresh_model(name, "tutorial", None), loader, steps)
    plain, ours = compare_training(name, pipe, steps, rounds)
    row["train_tutorial"], row["train_plain"] = round(tut, 1), round(plain, 1)
    row["train_cnnlab"] = round(ours, 1)
    row["train_ratio"] = round(ours / tut, 2)
    row["plain_ratio"] = round(ours / plain, 2)
    test = data[0][-infer_images:]  # training images, unlabelled here: only the speed counts
    row["infer_tutorial"] = round(
        tutorial_infer_rate(fresh_model(name, "tutorial", None), test_loader), 1
    )
    before = predictor_rate(fresh_model(name, "tutorial", None), size, test, fast=False)
    after = predictor_rate(fresh_model(name, "tutorial", None), size, test, fast=True)
    row["infer_images"] = infer_images
    row["infer_fp32"], row["infer_cnnlab"] = round(before["rate"], 1), round(after["rate"], 1)
    row["infer_path"] = after["path"]
    row["infer_max_abs_diff"] = after.get("max_abs_diff", {})
    row["infer_ratio"] = round(after["rate"] / row["infer_tutorial"], 2)
    row["infer_speedup"] = round(after["rate"] / before["rate"], 2)
    return row


def measure_inference(name: str, size: int, images: torch.Tensor) -> dict[str, Any]:
    """``Predictor.logits`` images/s before and after the fast path, alternated twice."""
    runs: dict[str, list[dict[str, Any]]] = {"before": [], "after": []}
    for _ in range(2):
        for key, fast in (("before", False), ("after", True)):
            runs[key].append(predictor_rate(fresh_model(name, "plain", None), size, images, fast))
    before = statistics.median(r["rate"] for r in runs["before"])
    after = statistics.median(r["rate"] for r in runs["after"])
    return {
        "model": name,
        "size": size,
        "images": len(images),
        "infer_fp32": round(before, 1),
        "infer_cnnlab": round(after, 1),
        "infer_speedup": round(after / before, 2),
        "paths": [r["path"] for r in runs["after"]],
        "max_abs_diff": runs["after"][-1].get("max_abs_diff", {}),
    }


def measure_formats(
    name: str,
    size: int,
    batch: int,
    steps: int,
    data: Any,
    rounds: int,
    device: torch.device = CPU,
) -> dict[str, Any]:
    """cnnlab's training step in each precision and memory format (``FORMATS``), alternated."""
    base = CnnlabPipeline(name, size, batch, *data, device=device)
    steppers = {}
    for precision, channels_last in FORMATS:
        pipe = base.with_format(precision, channels_last)
        key = f"{precision} {'channels_last' if channels_last else 'nchw'}"
        steppers[key] = pipe.step_fn(fresh_model(name, "cnnlab", pipe))
        for _ in range(WARMUP_STEPS):
            steppers[key]()
    rates: dict[str, list[float]] = {k: [] for k in steppers}
    for _ in range(rounds):
        for key, step in steppers.items():
            rates[key].append(timed_rate(step, steps, device))
    row: dict[str, Any] = {"model": name, "size": size, "batch": batch, "steps": steps}
    row["rates"] = {k: round(statistics.median(v), 1) for k, v in rates.items()}
    row["all_rates"] = {k: [round(r, 1) for r in v] for k, v in rates.items()}
    row["best"] = max(row["rates"], key=row["rates"].__getitem__)
    row["recipe"] = f"{base.config.precision} " + (
        "channels_last" if base.config.channels_last else "nchw"
    )
    return row


def tutorial_epoch(root: Path, limit: int | None) -> dict[str, Any]:
    """One LeNet-5 epoch as the tutorials write it, from the dataset to the test accuracy."""
    from torch.utils.data import Subset

    t0, c0 = time.perf_counter(), time.process_time()
    torch.manual_seed(0)
    train_set = tutorial_dataset(root, True, 28)
    test_set = tutorial_dataset(root, False, 28)
    if limit:
        train_set, test_set = Subset(train_set, range(limit)), Subset(test_set, range(limit))
    model = cnnlab.create_model("lenet5", num_classes=10, in_channels=1)
    accuracy = train_and_test(model, train_set, test_set, TUTORIAL_BATCH)
    return {
        "seconds": round(time.perf_counter() - t0, 2),
        "cpu_seconds": round(time.process_time() - c0, 2),
        "test_accuracy": accuracy,
        "batch": TUTORIAL_BATCH,
        "train_images": len(train_set),
    }


def cnnlab_epoch(work: Path, limit: int | None) -> dict[str, Any]:
    """One LeNet-5 epoch through cnnlab's real ``train()`` (the body of ``cnnlab train``)."""
    from cnnlab.train import fit

    t0, c0 = time.perf_counter(), time.process_time()
    config = TrainConfig(
        model="lenet5",
        recipe="fast",
        epochs=1,
        # The tutorial's learning rate scaled linearly to the 4x larger batch (Goyal et al. 2017),
        # and no test-time augmentation: the same evaluation work as the tutorial loop.
        lr=TUTORIAL_LR * LENET_BATCH / TUTORIAL_BATCH,
        batch_size=LENET_BATCH,
        tta=False,
        out=str(work / "lenet5-epoch"),
        progress=False,
        threads=torch.get_num_threads(),
        limit_train=limit,
        limit_test=limit,
        val_size=SMOKE_VAL if limit else TrainConfig.val_size,
    )
    result = fit(config, quiet=True)
    return {
        "seconds": round(time.perf_counter() - t0, 2),
        "cpu_seconds": round(time.process_time() - c0, 2),
        "test_accuracy": result.test.top1,
        "batch": result.config.batch_size,
        "train_images": result.history[-1]["step"] * result.config.batch_size,
        "note": "includes validation on 5,000 held-out images, checkpoint, figures; lr 0.04",
    }


def run_device(args: argparse.Namespace, result: dict[str, Any]) -> dict[str, Any]:
    """What ``--device cuda`` measures: the matmul peak, then plain fp32 NCHW against cnnlab's
    step for every case, and cnnlab's step in each precision and memory format. The tutorial's
    DataLoader pipeline, the inference fast path (a CPU choice) and the LeNet-5 epoch (a CPU
    target) are not measured. Written for any device (the tests run it on the CPU)."""
    device = torch.device(args.device)
    result["device"] = torch.cuda.get_device_name(device) if device.type == "cuda" else cpu_model()
    n = SMOKE_MATMUL if args.smoke else CUDA_MATMUL_SIZE
    result["peak_gflops"] = {
        dtype: round(matmul_gflops(getattr(torch, name), n, device=device), 1)
        for dtype, name in (("fp32", "float32"), ("bf16", "bfloat16"))
    }
    images, labels = load_dataset(DATASET, "train")
    cases = SMOKE_CASES if args.smoke else CASES
    cases = tuple(c for c in cases if not args.only or c[0] in args.only)
    rounds = SMOKE_ROUNDS if args.smoke else ROUNDS
    result["training"], result["formats"] = [], []
    for name, size, batch, steps, _ in cases:
        # A GPU step takes milliseconds: more steps per round than on 2 CPU cores.
        steps *= 1 if args.smoke else CUDA_STEP_FACTOR
        pipe = CnnlabPipeline(name, size, batch, images, labels, device=device)
        plain, ours = compare_training(name, pipe, steps, rounds)
        row = {
            **case_fields(name, pipe, steps, rounds),
            "train_plain": round(plain, 1),
            "train_cnnlab": round(ours, 1),
            "plain_ratio": round(ours / plain, 2),
        }
        print(json.dumps(row), flush=True)
        result["training"].append(row)
        row = measure_formats(name, size, batch, steps, (images, labels), rounds, device)
        print(json.dumps(row), flush=True)
        result["formats"].append(row)
    return result


def run(args: argparse.Namespace) -> dict[str, Any]:
    if args.threads:
        torch.set_num_threads(args.threads)
    result: dict[str, Any] = {
        **header("throughput"),
        "smoke": args.smoke,
    }
    if args.device != "cpu":
        return run_device(args, result)
    images, labels = load_dataset(DATASET, "train")
    with tempfile.TemporaryDirectory(prefix="cnnlab-bench-") as tmp:
        work = Path(tmp)
        root = make_tutorial_root(work)
        n = SMOKE_MATMUL if args.smoke else MATMUL_SIZE
        result["peak_gflops"] = {
            dtype: round(matmul_gflops(getattr(torch, name), n), 1)
            for dtype, name in (("fp32", "float32"), ("bf16", "bfloat16"))
        }
        cases = SMOKE_CASES if args.smoke else CASES
        cases = tuple(c for c in cases if not args.only or c[0] in args.only)
        rounds = SMOKE_ROUNDS if args.smoke else ROUNDS
        if args.formats:
            result["formats"] = []
            for name, size, batch, steps, _ in cases:
                row = measure_formats(name, size, batch, steps, (images, labels), rounds)
                print(json.dumps(row), flush=True)
                result["formats"].append(row)
            result["machine"]["load_average_after"] = [round(v, 2) for v in os.getloadavg()]
            return result
        if args.inference_only:
            result["inference"] = []
            for name, size, *_ in cases:
                row = measure_inference(name, size, images[-args.infer_images :])
                print(json.dumps(row), flush=True)
                result["inference"].append(row)
            result["machine"]["load_average_after"] = [round(v, 2) for v in os.getloadavg()]
            return result
        rows = []
        for case in cases:
            row = measure_case(*case, root, (images, labels), rounds)
            print(json.dumps(row), flush=True)
            rows.append(row)
        result["models"] = rows
        result["gflops"] = []
        for row in rows:
            if row["model"] in GFLOPS_MODELS:
                macs = forward_macs(row["model"], row["size"])
                for pipe, peak in (("tutorial", "fp32"), ("cnnlab", "bf16")):
                    achieved = 6 * macs * row[f"train_{pipe}"] / 1e9
                    result["gflops"].append(
                        {
                            "model": row["model"],
                            "size": row["size"],
                            "pipeline": pipe,
                            "precision": peak,
                            "forward_macs": macs,
                            "train_gflops": round(achieved, 1),
                            "fraction_of_peak": round(achieved / result["peak_gflops"][peak], 3),
                        }
                    )
        if args.no_epoch:
            result["machine"]["load_average_after"] = [round(v, 2) for v in os.getloadavg()]
            return result
        limit = 2048 if args.smoke else None
        epoch = {"tutorial": tutorial_epoch(root, limit), "cnnlab": cnnlab_epoch(work, limit)}
        epoch["speedup"] = round(epoch["tutorial"]["seconds"] / epoch["cnnlab"]["seconds"], 2)
        # CPU seconds of this process: on a busy machine a steadier comparison than wall time.
        epoch["cpu_speedup"] = round(
            epoch["tutorial"]["cpu_seconds"] / max(epoch["cnnlab"]["cpu_seconds"], 1e-9), 2
        )
        result["lenet5_epoch"] = epoch
    result["machine"]["load_average_after"] = [round(v, 2) for v in os.getloadavg()]
    return result


# --- the README table -----------------------------------------------------------------------------


def _rate(v: float) -> str:
    """Images/s with three significant figures (large models run at a few images/s)."""
    return f"{v:,.0f}" if v >= 100 else f"{v:.3g}"


def markdown(result: dict[str, Any]) -> str:
    """Markdown tables of a result JSON (what docs/readme/perf.md shows)."""
    m = result["machine"]
    lines = [
        f"Machine: {m['cpu']}, {m['cores']} cores, {m['threads']} threads, torch {m['torch']}; "
        f"load average {m['load_average'][0]} before, {m['load_average_after'][0]} after.",
        "",
        "Training images/s (median of the rounds); cnnlab's precision and layout are the fast "
        "recipe's per-family choice.",
        "",
        "| model | input | batch | cnnlab runs | tutorial | plain fp32 NCHW | cnnlab "
        "| vs plain | vs tutorial |",
        "|---|---|---:|---|---:|---:|---:|---:|---:|",
    ]
    for r in result["models"]:
        runs = f"{r['precision']} {'channels-last' if r['channels_last'] else 'NCHW'}"
        rates = " | ".join(_rate(r[k]) for k in ("train_tutorial", "train_plain", "train_cnnlab"))
        lines.append(
            f"| {r['model']} | {r['size']}x{r['size']} | {r['batch']} | {runs} | {rates} "
            f"| {r['plain_ratio']:.2f}x | {r['train_ratio']:.2f}x |"
        )
    lines += [
        "",
        "Inference images/s: `Predictor.logits` (what `cnnlab eval` and `predict` run) on uint8 "
        "images, before (fp32 as loaded) and after (the fastest path that agrees with fp32 within "
        "the export tolerance, choosing included), and the tutorial's DataLoader loop.",
        "",
        "| model | input | images | tutorial | cnnlab before | cnnlab after | path taken "
        "| after / before | bf16 max abs diff |",
        "|---|---|---:|---:|---:|---:|---|---:|---:|",
    ]
    for r in result["models"]:
        bf16 = r["infer_max_abs_diff"].get("bf16 channels-last")
        lines.append(
            f"| {r['model']} | {r['size']}x{r['size']} | {r['infer_images']} "
            f"| {_rate(r['infer_tutorial'])} | {_rate(r['infer_fp32'])} "
            f"| {_rate(r['infer_cnnlab'])} | {r['infer_path']} | {r['infer_speedup']:.2f}x "
            f"| {'' if bf16 is None else f'{bf16:.1e}'} |"
        )
    if "lenet5_epoch" in result:
        lines += epoch_lines(result)
    return "\n".join(lines)


def cuda_markdown(result: dict[str, Any]) -> str:
    """Markdown tables of a ``--device cuda`` result JSON."""
    m, p = result["machine"], result["peak_gflops"]
    lines = [
        f"Device: {result['device']} (torch {m['torch']}); matmul peak measured in the same run "
        f"({CUDA_MATMUL_SIZE}x{CUDA_MATMUL_SIZE}): fp32 {p['fp32']:,.0f} GFLOP/s, bf16 "
        f"{p['bf16']:,.0f} GFLOP/s.",
        "",
        "| model | input | batch | cnnlab runs | plain fp32 NCHW | cnnlab | vs plain "
        "| fastest format (fp32 NCHW / fp32 CL / bf16 NCHW / bf16 CL) |",
        "|---|---|---:|---|---:|---:|---:|---|",
    ]
    for r, f in zip(result["training"], result["formats"], strict=True):
        runs = f"{r['precision']} {'channels-last' if r['channels_last'] else 'NCHW'}"
        formats = " / ".join(_rate(f["rates"][k]) for k in f["rates"])
        lines.append(
            f"| {r['model']} | {r['size']}x{r['size']} | {r['batch']} | {runs} "
            f"| {_rate(r['train_plain'])} | {_rate(r['train_cnnlab'])} | {r['plain_ratio']:.2f}x "
            f"| {f['best']} ({formats}) |"
        )
    return "\n".join(lines)


def formats_markdown(result: dict[str, Any]) -> str:
    """The ``--formats`` table: cnnlab's training step in each precision and memory format."""
    m = result["machine"]
    keys = [f"{p} {'channels_last' if cl else 'nchw'}" for p, cl in FORMATS]
    lines = [
        f"Machine: {m['cpu']}, {m['cores']} cores, {m['threads']} threads, torch {m['torch']}; "
        f"load average {m['load_average'][0]} before, {m['load_average_after'][0]} after. "
        "Training images/s of cnnlab's step, median of the rounds.",
        "",
        "| model | input | batch | " + " | ".join(keys) + " | fastest | recipe now |",
        "|---|---|---:|" + "---:|" * len(keys) + "---|---|",
    ]
    for r in result["formats"]:
        cells = " | ".join(_rate(r["rates"][k]) for k in keys)
        lines.append(
            f"| {r['model']} | {r['size']}x{r['size']} | {r['batch']} | {cells} "
            f"| {r['best']} | {r['recipe']} |"
        )
    return "\n".join(lines)


def epoch_lines(result: dict[str, Any]) -> list[str]:
    """The LeNet-5 epoch and the achieved-GFLOP/s tables."""
    lines: list[str] = []
    e = result["lenet5_epoch"]
    lines += [
        "",
        "| LeNet-5, one epoch + test evaluation | seconds | test accuracy |",
        "|---|---:|---:|",
        f"| tutorial pipeline (fp32, DataLoader, batch {e['tutorial']['batch']}) "
        f"| {e['tutorial']['seconds']:.1f} | {100 * e['tutorial']['test_accuracy']:.1f}% |",
        f"| `cnnlab train lenet5 --recipe fast --epochs 1 --lr 0.04 --no-tta` "
        f"(batch {e['cnnlab']['batch']}) "
        f"| {e['cnnlab']['seconds']:.1f} | {100 * e['cnnlab']['test_accuracy']:.1f}% |",
        f"| speed-up | {e['speedup']:.2f}x | |",
    ]
    if "cpu_speedup" in e:
        lines.append(
            f"| speed-up in CPU seconds ({e['tutorial']['cpu_seconds']:.1f} vs "
            f"{e['cnnlab']['cpu_seconds']:.1f}) | {e['cpu_speedup']:.2f}x | |"
        )
    p = result["peak_gflops"]
    lines += [
        "",
        f"Matmul peak measured in the same run: fp32 {p['fp32']:.0f} GFLOP/s, "
        f"bf16 {p['bf16']:.0f} GFLOP/s.",
        "",
        "| model | input | pipeline | training GFLOP/s | fraction of the matmul peak |",
        "|---|---|---|---:|---:|",
    ]
    for g in result["gflops"]:
        lines.append(
            f"| {g['model']} | {g['size']}x{g['size']} | {g['pipeline']} ({g['precision']}) "
            f"| {g['train_gflops']:.1f} | {100 * g['fraction_of_peak']:.0f}% |"
        )
    return lines


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--json", type=Path, help="write the result JSON here")
    parser.add_argument("--smoke", action="store_true", help="tiny sizes: checks that it runs")
    parser.add_argument("--threads", type=int, default=0, help="torch threads (0: default)")
    parser.add_argument("--only", nargs="*", help="measure only these models")
    parser.add_argument(
        "--formats",
        action="store_true",
        help="measure cnnlab's step in fp32/bf16 x NCHW/channels-last instead",
    )
    parser.add_argument("--no-epoch", action="store_true", help="skip the LeNet-5 epoch")
    parser.add_argument(
        "--device",
        default="cpu",
        choices=("cpu", "cuda"),
        help="cuda: training images/s of plain PyTorch and cnnlab's step on the GPU, per format",
    )
    parser.add_argument(
        "--inference-only",
        action="store_true",
        help="measure only eval's images/s before and after the fast path",
    )
    parser.add_argument(
        "--infer-images", type=int, default=10_000, help="images for --inference-only"
    )
    parser.add_argument(
        "--markdown", type=Path, metavar="JSON", help="print the tables of a result JSON and exit"
    )
    args = parser.parse_args(argv)
    if args.device == "cuda" and not torch.cuda.is_available():
        parser.error("--device cuda: no CUDA device is available; run it on a GPU machine")
    if args.markdown:
        saved = json.loads(args.markdown.read_text())
        if "training" in saved:
            print(cuda_markdown(saved))
        else:
            print(formats_markdown(saved) if "formats" in saved else markdown(saved))
        return 0
    result = run(args)
    if args.json:
        write_result(args.json, result)
    if args.inference_only:
        print(json.dumps(result, indent=2))
        return 0
    if args.device != "cpu":
        print(cuda_markdown(result))
    else:
        print(formats_markdown(result) if args.formats else markdown(result))
    return 0


if __name__ == "__main__":
    sys.exit(main())
