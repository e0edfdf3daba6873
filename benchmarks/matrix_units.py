"""The machine's matrix units: what matrix products and the zoo's convolutions reach here.

Every efficiency figure cnnlab quotes ("fastnet trains at N GFLOP/s, a fraction F of what the
machine gives") needs a denominator measured on the same machine. This script measures it:

* **matrix products** ``n x n @ n x n`` for n = 256 ... 4096, fp32 and bf16 (2 n^3 FLOPs each);
* **convolutions at the zoo's typical shapes** (the table ``CONVS`` below: the 3x3 stages of the
  CIFAR ResNets, VGG and ResNet-18 at 32x32 and 224x224, fastnet's, the 1x1 reductions of the
  bottlenecks, DenseNet-BC and GoogLeNet, the 7x7 and 11x11 stems, ResNeXt's grouped 3x3), each
  in fp32 and bf16, NCHW and channels-last, forward alone and forward plus backward (input and
  weight gradients: three times the forward's multiply-adds).

bf16 here means bf16 tensors (input and weights), the work bf16 autocast hands the convolution;
the casts autocast adds are a cost of the model, not of the unit, and are left out. Each figure is
the median of ``REPEATS`` timed samples after a warm-up; a sample repeats the operation until it
has run for at least ``MIN_SAMPLE_S``. The JSON records the machine and its load average before
and after (other processes share the cores: re-run when ``uptime`` says the machine is idle).

Usage::

    python benchmarks/matrix_units.py [--json benchmarks/results/matrix_units.json] [--smoke]
    python benchmarks/matrix_units.py --markdown benchmarks/results/matrix_units.json
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import torch
from machine import header  # benchmarks/machine.py
from torch.nn import functional as F

from cnnlab import files

MATMUL_SIZES = (256, 512, 1024, 2048, 4096)
SMOKE_MATMUL_SIZES = (128, 256)
REPEATS = 5  # timed samples per figure; the median is reported
MIN_SAMPLE_S = 0.05  # a sample repeats a fast operation until it has run this long
# Single calls timed after the samples, for up to this long (at most MAX_CALLS): on a shared
# machine the fastest single call is the one the scheduler did not interrupt, the best estimate
# of what the unit gives a process that has the core to itself.
CALLS_S = 0.5
MAX_CALLS = 100
DTYPES = {"fp32": torch.float32, "bf16": torch.bfloat16}
LAYOUTS = {"nchw": torch.contiguous_format, "channels_last": torch.channels_last}


@dataclass(frozen=True)
class Conv:
    """One convolution shape, where the zoo uses it (``(N, C_in, H, W)`` -> ``(N, C_out, ...)``)."""

    where: str  # which models use this shape
    batch: int  # chosen so one forward is a few to a few hundred MFLOPs
    c_in: int
    c_out: int
    side: int  # input height = width
    kernel: int
    stride: int = 1
    groups: int = 1

    @property
    def padding(self) -> int:
        return self.kernel // 2

    @property
    def out_side(self) -> int:
        return (self.side + 2 * self.padding - self.kernel) // self.stride + 1

    @property
    def forward_flops(self) -> int:
        """2 x multiply-adds of one forward pass."""
        per_pixel = self.c_in // self.groups * self.kernel**2 * self.c_out
        return 2 * self.batch * self.out_side**2 * per_pixel

    @property
    def label(self) -> str:
        g = f" g{self.groups}" if self.groups > 1 else ""
        s = f" s{self.stride}" if self.stride > 1 else ""
        return f"{self.kernel}x{self.kernel}{s}{g} {self.c_in}->{self.c_out} @{self.side}"


# The zoo's typical convolution shapes (from the built models' layers, benchmarks' input sizes).
CONVS: tuple[Conv, ...] = (
    # 3x3 at the training sizes (32x32, or 28x28 for fastnet): CIFAR ResNets, VGG/ResNet-18 at 32.
    Conv("resnet20 stage 1", 128, 16, 16, 32, 3),
    Conv("resnet20 stage 2", 128, 32, 32, 16, 3),
    Conv("resnet20 stage 3", 128, 64, 64, 8, 3),
    Conv("fastnet block 2", 256, 48, 48, 14, 3),
    Conv("fastnet block 3", 256, 96, 96, 7, 3),
    Conv("vgg11/resnet18 at 32, stage 1", 64, 64, 64, 32, 3),
    Conv("vgg11/resnet18 at 32, stage 2", 64, 128, 128, 16, 3),
    Conv("vgg11/resnet18 at 32, stage 3", 64, 256, 256, 8, 3),
    Conv("vgg11/resnet18 at 32, stage 4", 64, 512, 512, 4, 3),
    Conv("densenet_bc_100 growth conv", 64, 48, 12, 32, 3),
    # 3x3 at ImageNet sizes (ResNet-18/34, VGG).
    Conv("resnet18 at 224, stage 1", 8, 64, 64, 56, 3),
    Conv("resnet18 at 224, stage 2", 8, 128, 128, 28, 3),
    Conv("resnet18 at 224, stage 3", 8, 256, 256, 14, 3),
    Conv("resnet18 at 224, stage 4", 8, 512, 512, 7, 3),
    # 1x1: bottleneck reductions and expansions, DenseNet-BC, GoogLeNet/NiN.
    Conv("resnet50 bottleneck reduce @56", 8, 256, 64, 56, 1),
    Conv("resnet50 bottleneck expand @14", 8, 256, 1024, 14, 1),
    Conv("densenet_bc_100 bottleneck @32", 64, 120, 48, 32, 1),
    Conv("googlenet inception 3a reduce @28", 16, 192, 96, 28, 1),
    # Stems and large kernels.
    Conv("resnet/googlenet 7x7 stem @224", 8, 3, 64, 224, 7, stride=2),
    Conv("alexnet 11x11 stem @224", 8, 3, 64, 224, 11, stride=4),
    Conv("alexnet 5x5 @27", 16, 64, 192, 27, 5),
    Conv("lenet5 5x5 conv 2 (6->16 @14)", 256, 6, 16, 14, 5),
    # Grouped: ResNeXt-50 32x4d's 3x3 (32 groups of 4 channels).
    Conv("resnext50_32x4d grouped @56", 8, 128, 128, 56, 3, groups=32),
    Conv("resnext50_32x4d grouped @14", 8, 512, 512, 14, 3, groups=32),
)
SMOKE_CONVS = (Conv("smoke", 8, 16, 16, 16, 3), Conv("smoke grouped", 8, 32, 32, 8, 3, groups=4))


def sample_seconds(run: Callable[[], Any], repeats: int = REPEATS) -> tuple[list[float], float]:
    """Seconds of one ``run()`` in each of ``repeats`` samples (after one warm-up call), and the
    fastest single call."""
    run()
    t = time.perf_counter()
    run()  # a second call sizes the inner loop
    once = max(time.perf_counter() - t, 1e-6)
    inner = max(1, int(MIN_SAMPLE_S / once))
    samples = []
    for _ in range(repeats):
        t = time.perf_counter()
        for _ in range(inner):
            run()
        samples.append((time.perf_counter() - t) / inner)
    fastest, start = float("inf"), time.perf_counter()
    for _ in range(MAX_CALLS):
        t = time.perf_counter()
        run()
        fastest = min(fastest, time.perf_counter() - t)
        if t - start > CALLS_S:
            break
    return samples, fastest


def timing(measured: tuple[list[float], float], flops: float) -> dict[str, float]:
    """Median seconds and TFLOP/s, the best sample's, and the fastest single call's."""
    samples, fastest = measured
    median = statistics.median(samples)
    return {
        "seconds": median,
        "tflops": flops / median / 1e12,
        "best_tflops": flops / min(samples) / 1e12,
        "fastest_call_tflops": flops / fastest / 1e12,
    }


def matmul_row(n: int, dtype: str) -> dict[str, Any]:
    """TFLOP/s of ``n x n @ n x n`` in ``dtype`` into a reused output buffer."""
    a = torch.randn(n, n).to(DTYPES[dtype])
    b = torch.randn(n, n).to(DTYPES[dtype])
    out = torch.empty(n, n, dtype=DTYPES[dtype])
    samples = sample_seconds(lambda: torch.mm(a, b, out=out))
    return {"n": n, "dtype": dtype, **timing(samples, 2 * n**3)}


def conv_row(conv: Conv, dtype: str, layout: str, backward: bool) -> dict[str, Any]:
    """TFLOP/s of one convolution shape in one precision, layout and pass."""
    memory, kind = LAYOUTS[layout], DTYPES[dtype]
    x = torch.randn(conv.batch, conv.c_in, conv.side, conv.side).to(kind, memory_format=memory)
    w = torch.randn(conv.c_out, conv.c_in // conv.groups, conv.kernel, conv.kernel)
    w = (w / (conv.c_in * conv.kernel**2) ** 0.5).to(kind, memory_format=memory)
    x.requires_grad_(backward)
    w.requires_grad_(backward)

    def forward() -> torch.Tensor:
        return F.conv2d(x, w, None, conv.stride, conv.padding, 1, conv.groups)

    def training() -> None:
        y = forward()
        y.backward(torch.ones_like(y))  # input and weight gradients
        x.grad = w.grad = None  # no accumulation: every call does the same work

    samples = sample_seconds(training if backward else torch.no_grad()(forward))
    flops = conv.forward_flops * (3 if backward else 1)
    return {
        **asdict(conv),
        "shape": conv.label,
        "dtype": dtype,
        "layout": layout,
        "pass": "forward+backward" if backward else "forward",
        **timing(samples, flops),
    }


def run(args: argparse.Namespace) -> dict[str, Any]:
    if args.threads:
        torch.set_num_threads(args.threads)
    torch.manual_seed(0)
    result: dict[str, Any] = {
        **header("matrix_units"),
        "smoke": args.smoke,
        "note": "TFLOP/s = 2 x multiply-adds / median seconds; forward+backward counts 3 x the "
        "forward's work (input and weight gradients)",
    }
    sizes = SMOKE_MATMUL_SIZES if args.smoke else MATMUL_SIZES
    result["matmul"] = [matmul_row(n, d) for n in sizes for d in DTYPES]
    for row in result["matmul"]:
        print(json.dumps({k: row[k] for k in ("n", "dtype", "tflops")}), flush=True)
    rows = []
    for conv in () if args.matmul_only else SMOKE_CONVS if args.smoke else CONVS:
        for backward in (False, True):
            for dtype in DTYPES:
                for layout in LAYOUTS:
                    rows.append(conv_row(conv, dtype, layout, backward))
                    print(
                        json.dumps({k: rows[-1][k] for k in ("shape", "dtype", "layout", "pass")})
                        + f" {rows[-1]['tflops']:.3f} TFLOP/s",
                        flush=True,
                    )
    result["conv"] = rows
    result["machine"]["load_average_after"] = [round(v, 2) for v in os.getloadavg()]
    return result


# --- the tables -----------------------------------------------------------------------------------


def markdown(result: dict[str, Any]) -> str:
    """Markdown tables of a result JSON (what docs/performance.md shows)."""
    m = result["machine"]
    lines = [
        f"Machine: {m['cpu']}, {m['cores']} cores, {m['threads']} threads, torch {m['torch']}; "
        f"load average {m['load_average'][0]} before, {m['load_average_after'][0]} after. "
        "TFLOP/s, median of "
        f"{REPEATS} samples.",
        "",
        "| matrix product n x n | fp32 TFLOP/s | bf16 TFLOP/s | bf16 / fp32 "
        "| fastest call fp32 | fastest call bf16 |",
        "|---:|---:|---:|---:|---:|---:|",
    ]
    by = {(r["n"], r["dtype"]): r for r in result["matmul"]}
    for n in sorted({r["n"] for r in result["matmul"]}):
        f32, b16 = by[n, "fp32"], by[n, "bf16"]
        lines.append(
            f"| {n} | {f32['tflops']:.3f} | {b16['tflops']:.3f} "
            f"| {b16['tflops'] / f32['tflops']:.1f}x "
            f"| {f32['fastest_call_tflops']:.3f} | {b16['fastest_call_tflops']:.3f} |"
        )
    if not result["conv"]:
        return "\n".join(lines)
    lines += [
        "",
        "Convolutions: TFLOP/s, median (fastest single call).",
        "",
        "| convolution (batch) | where | pass | fp32 NCHW | fp32 CL | bf16 NCHW | bf16 CL | best |",
        "|---|---|---|---:|---:|---:|---:|---|",
    ]
    conv: dict[tuple[str, str], dict[str, dict[str, float]]] = {}
    where: dict[str, tuple[str, int]] = {}
    for r in result["conv"]:
        conv.setdefault((r["shape"], r["pass"]), {})[f"{r['dtype']} {r['layout']}"] = r
        where[r["shape"]] = (r["where"], r["batch"])
    order = ("fp32 nchw", "fp32 channels_last", "bf16 nchw", "bf16 channels_last")
    for (shape, passes), cells in conv.items():
        best = (
            max(order, key=lambda k: cells[k]["tflops"])
            .replace("channels_last", "CL")
            .replace("nchw", "NCHW")
        )
        text = " | ".join(
            f"{cells[k]['tflops']:.3f} ({cells[k].get('fastest_call_tflops', 0):.3f})"
            for k in order
        )
        w, batch = where[shape]
        lines.append(f"| {shape} ({batch}) | {w} | {passes} | {text} | {best} |")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--json", type=Path, help="write the result JSON (and a .md table) here")
    parser.add_argument("--smoke", action="store_true", help="tiny sizes: checks that it runs")
    parser.add_argument("--threads", type=int, default=0, help="torch threads (0: default)")
    parser.add_argument("--matmul-only", action="store_true", help="skip the convolutions")
    parser.add_argument(
        "--markdown", type=Path, metavar="JSON", help="print the tables of a result JSON and exit"
    )
    args = parser.parse_args(argv)
    if args.markdown:
        print(markdown(json.loads(args.markdown.read_text())))
        return 0
    result = run(args)
    table = markdown(result)
    if args.json:
        files.write_json_atomic(args.json, result)
        files.write_bytes_atomic(args.json.with_suffix(".md"), (table + "\n").encode())
    print(table)
    return 0


if __name__ == "__main__":
    sys.exit(main())
