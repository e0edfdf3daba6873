"""Throughput: cnnlab's training pipeline against the PyTorch tutorial pipeline, same model.

Two pipelines, measured side by side in one process, on the same machine, at the same moment:

* **tutorial** -- what the PyTorch tutorials teach: ``torchvision.datasets.FashionMNIST`` with
  per-sample transforms (``Resize`` where the model needs a larger input, ``ToTensor``,
  ``Normalize``), a ``DataLoader`` that shuffles and collates, float32, the default NCHW layout,
  SGD with momentum.
* **cnnlab** -- what ``cnnlab train --recipe fast`` does: the dataset in memory as one uint8 tensor,
  batches indexed out and augmented as whole batches, normalised (and resized) per batch, bf16
  autocast, channels-last, the fast recipe's optimizer. The pieces are the training loop's own
  (:func:`cnnlab.train.inputs.make_prepare`, :class:`~cnnlab.train.inputs.Augmenter`,
  :func:`cnnlab.train.step.make_optimizer`, :func:`cnnlab.train.recipes.resolve`), and each step
  is the library's own :func:`cnnlab.train.step.train_step`.

For each model both pipelines train for a few steps (after warm-up steps that are not timed) and
run inference on a few batches; images/s and the cnnlab/tutorial ratio are reported. Then one
LeNet-5 epoch end to end (data loading, 60,000 training images, test evaluation) through each:
the tutorial loop as written in the tutorials, and cnnlab's real ``train()`` (the body of
``cnnlab train``). Finally the machine's matmul peak (2048x2048, fp32 and bf16) and the
training GFLOP/s that ResNet-20 and VGG-11 achieve as a fraction of it (training FLOPs counted as
3 x 2 x the forward multiply-adds: forward, and a backward pass of twice the forward's work).

Usage::

    python benchmarks/throughput.py [--json benchmarks/results/throughput.json] [--smoke]
    python benchmarks/throughput.py --markdown benchmarks/results/throughput.json

On a shared machine the figures are noisy: the JSON records the load average before and after,
and the ratios (measured back to back) are more trustworthy than the absolute rates.
"""

from __future__ import annotations

import argparse
import gzip
import json
import os
import shutil
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import torch
from machine import describe  # benchmarks/machine.py
from torch import nn
from torch.nn import functional as F

import cnnlab
from cnnlab.data import dataset_info, load_dataset
from cnnlab.train.config import TrainConfig
from cnnlab.train.inputs import Augmenter, make_prepare
from cnnlab.train.recipes import resolve
from cnnlab.train.step import autocast_for, make_optimizer, train_step

DATASET = "fashion-mnist"
# (model, input side in pixels, training batch, timed training steps, inference batch)
# Large models get few steps so the whole benchmark stays at a few minutes on 2 cores.
CASES: tuple[tuple[str, int, int, int, int], ...] = (
    ("lenet5", 28, 256, 40, 1000),
    ("resnet20", 32, 128, 8, 500),
    ("resnet18", 32, 128, 6, 500),
    ("vgg11", 32, 64, 4, 256),
    ("resnet18", 224, 16, 3, 32),
    ("densenet121", 224, 8, 2, 16),
)
SMOKE_CASES = (("lenet5", 28, 64, 3, 128), ("resnet20", 32, 16, 2, 32))
WARMUP_STEPS = 2  # untimed: the first steps allocate workspaces and pick kernels
INFER_BATCHES = 3
SMOKE_VAL = 500  # held-out images in --smoke (the default is 5,000)
SMOKE_MATMUL = 512
GFLOPS_MODELS = ("resnet20", "vgg11")  # achieved training GFLOP/s vs the matmul peak
MATMUL_SIZE = 2048
TUTORIAL_LR = 0.01  # the tutorials' SGD settings
TUTORIAL_MOMENTUM = 0.9
TUTORIAL_BATCH = 64
LENET_BATCH = 256  # the fast recipe's batch


# --- machine --------------------------------------------------------------------------------------


def matmul_gflops(dtype: torch.dtype, n: int = MATMUL_SIZE, repeats: int = 5) -> float:
    """Best-of-``repeats`` GFLOP/s of one ``n x n`` matmul (2 n^3 FLOPs) in ``dtype``."""
    a, b = torch.randn(n, n).to(dtype), torch.randn(n, n).to(dtype)
    out = torch.empty(n, n, dtype=dtype)
    torch.mm(a, b, out=out)  # warm-up, reusing one output buffer (REFERENCE.md's VM trap)
    best = float("inf")
    for _ in range(repeats):
        t = time.perf_counter()
        torch.mm(a, b, out=out)
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


def tutorial_dataset(root: Path, train: bool, size: int) -> Any:
    """torchvision's FashionMNIST with the tutorials' per-sample transforms."""
    from torchvision import datasets, transforms

    info = dataset_info(DATASET)
    steps: list[Any] = [transforms.Resize(size)] if size != info.size[0] else []
    steps += [transforms.ToTensor(), transforms.Normalize(info.mean, info.std)]
    return datasets.FashionMNIST(
        str(root), train=train, download=False, transform=transforms.Compose(steps)
    )


def make_tutorial_root(work: Path) -> Path:
    """torchvision reads the uncompressed IDX files from ROOT/FashionMNIST/raw: put them there.

    The files are cnnlab's located copies (system or cache), decompressed once; nothing is
    downloaded.
    """
    from cnnlab.data import find_dataset
    from cnnlab.errors import DataError

    raw = work / "FashionMNIST" / "raw"
    raw.mkdir(parents=True, exist_ok=True)
    for split in ("train", "test"):
        location = find_dataset(DATASET, split)
        if location is None:
            raise DataError(f"{DATASET} is not on this machine: run `cnnlab data fetch {DATASET}`")
        for path in location.paths.values():
            target = raw / path.name.removesuffix(".gz")
            with path.open("rb") as probe:
                compressed = probe.read(2) == b"\x1f\x8b"
            opener: Any = gzip.open if compressed else open
            with opener(path, "rb") as src, open(target, "wb") as dst:
                shutil.copyfileobj(src, dst)
    return work


def tutorial_train_rate(
    model: nn.Module, loader: Any, steps: int
) -> tuple[float, Callable[[], None]]:
    """Images/s of the tutorial training loop over ``steps`` timed batches (after warm-up)."""
    opt = torch.optim.SGD(model.parameters(), lr=TUTORIAL_LR, momentum=TUTORIAL_MOMENTUM)
    model.train()
    it = iter(loader)

    def step() -> int:
        x, y = next(it)
        loss = F.cross_entropy(model(x), y)
        opt.zero_grad()
        loss.backward()
        opt.step()
        return len(y)

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

    def __init__(self, name: str, size: int, batch: int, images: torch.Tensor, labels: Any):
        config, _ = resolve(TrainConfig(model=name, recipe="fast", batch_size=batch))
        info = dataset_info(DATASET)
        self.config = config
        self.images, self.labels = images, labels
        self.prepare = make_prepare(
            (size, size), info.mean, info.std, torch.device("cpu"), config.channels_last
        )
        self.augment = Augmenter.from_setting(config.augment, config.crop_padding)
        self.generator = torch.Generator().manual_seed(0)
        self.autocast = autocast_for(config, torch.device("cpu"))
        self.memory = torch.channels_last if config.channels_last else torch.contiguous_format

    def build(self, model: nn.Module) -> nn.Module:
        return model.to(memory_format=self.memory)

    def train_rate(self, model: nn.Module, steps: int) -> float:
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
            return train_step(model, opt, x, self.labels[index], self.config, self.autocast).count

        for _ in range(WARMUP_STEPS):
            step()
        t, n = time.perf_counter(), 0
        for _ in range(steps):
            n += step()
        return n / (time.perf_counter() - t)

    @torch.inference_mode()
    def infer_rate(self, model: nn.Module, batch: int) -> float:
        model.eval()
        with self.autocast:
            model(self.prepare(self.images[:batch]))  # warm-up
            t, n = time.perf_counter(), 0
            for i in range(INFER_BATCHES):
                model(self.prepare(self.images[(i + 1) * batch : (i + 2) * batch]))
                n += batch
        return n / (time.perf_counter() - t)


# --- the measurements -----------------------------------------------------------------------------


def fresh_model(name: str, pipeline: str, cnnlab_pipe: CnnlabPipeline | None) -> nn.Module:
    torch.manual_seed(0)  # both pipelines start from the same weights
    model = cnnlab.create_model(name, num_classes=10, in_channels=1)
    return cnnlab_pipe.build(model) if pipeline == "cnnlab" and cnnlab_pipe else model


def measure_case(
    name: str, size: int, batch: int, steps: int, infer_batch: int, root: Path, data: Any
) -> dict[str, Any]:
    """Training and inference images/s of one model through both pipelines."""
    from torch.utils.data import DataLoader

    train_set = tutorial_dataset(root, True, size)
    loader = DataLoader(train_set, batch_size=batch, shuffle=True)
    test_loader = DataLoader(tutorial_dataset(root, False, size), batch_size=infer_batch)
    pipe = CnnlabPipeline(name, size, batch, *data)
    row: dict[str, Any] = {"model": name, "size": size, "batch": batch, "steps": steps}
    # Alternate tutorial and cnnlab so a change in the machine's load hits both.
    tut, _ = tutorial_train_rate(fresh_model(name, "tutorial", None), loader, steps)
    ours = pipe.train_rate(fresh_model(name, "cnnlab", pipe), steps)
    row["train_tutorial"], row["train_cnnlab"] = round(tut, 1), round(ours, 1)
    row["train_ratio"] = round(ours / tut, 2)
    tut_i = tutorial_infer_rate(fresh_model(name, "tutorial", None), test_loader)
    ours_i = pipe.infer_rate(fresh_model(name, "cnnlab", pipe), infer_batch)
    row["infer_tutorial"], row["infer_cnnlab"] = round(tut_i, 1), round(ours_i, 1)
    row["infer_ratio"] = round(ours_i / tut_i, 2)
    return row


def tutorial_epoch(root: Path, limit: int | None) -> dict[str, Any]:
    """One LeNet-5 epoch as the tutorials write it, from the dataset to the test accuracy."""
    from torch.utils.data import DataLoader, Subset

    t0, c0 = time.perf_counter(), time.process_time()
    torch.manual_seed(0)
    train_set = tutorial_dataset(root, True, 28)
    test_set = tutorial_dataset(root, False, 28)
    if limit:
        train_set, test_set = Subset(train_set, range(limit)), Subset(test_set, range(limit))
    loader = DataLoader(train_set, batch_size=TUTORIAL_BATCH, shuffle=True)
    model = cnnlab.create_model("lenet5", num_classes=10, in_channels=1)
    opt = torch.optim.SGD(model.parameters(), lr=TUTORIAL_LR, momentum=TUTORIAL_MOMENTUM)
    model.train()
    for x, y in loader:
        loss = F.cross_entropy(model(x), y)
        opt.zero_grad()
        loss.backward()
        opt.step()
    model.eval()
    correct = 0
    with torch.no_grad():
        for x, y in DataLoader(test_set, batch_size=1000):
            correct += (model(x).argmax(1) == y).sum().item()
    return {
        "seconds": round(time.perf_counter() - t0, 2),
        "cpu_seconds": round(time.process_time() - c0, 2),
        "test_accuracy": correct / len(test_set),
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


def run(args: argparse.Namespace) -> dict[str, Any]:
    if args.threads:
        torch.set_num_threads(args.threads)
    result: dict[str, Any] = {
        "benchmark": "throughput",
        "command": " ".join([Path(sys.executable).name, *sys.argv]),
        "smoke": args.smoke,
        "machine": describe(),
    }
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
        rows = []
        for case in cases:
            if args.only and case[0] not in args.only:
                continue
            row = measure_case(*case, root, (images, labels))
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
        "| model | input | batch | train img/s tutorial | train img/s cnnlab | ratio "
        "| infer img/s tutorial | infer img/s cnnlab | ratio |",
        "|---|---|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for r in result["models"]:
        train = f"{_rate(r['train_tutorial'])} | {_rate(r['train_cnnlab'])}"
        infer = f"{_rate(r['infer_tutorial'])} | {_rate(r['infer_cnnlab'])}"
        lines.append(
            f"| {r['model']} | {r['size']}x{r['size']} | {r['batch']} | {train} "
            f"| {r['train_ratio']:.2f}x | {infer} | {r['infer_ratio']:.2f}x |"
        )
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
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--json", type=Path, help="write the result JSON here")
    parser.add_argument("--smoke", action="store_true", help="tiny sizes: checks that it runs")
    parser.add_argument("--threads", type=int, default=0, help="torch threads (0: default)")
    parser.add_argument("--only", nargs="*", help="measure only these models")
    parser.add_argument(
        "--markdown", type=Path, metavar="JSON", help="print the tables of a result JSON and exit"
    )
    args = parser.parse_args(argv)
    if args.markdown:
        print(markdown(json.loads(args.markdown.read_text())))
        return 0
    result = run(args)
    text = json.dumps(result, indent=2)
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(text + "\n")
    print(markdown(result))
    return 0


if __name__ == "__main__":
    sys.exit(main())
