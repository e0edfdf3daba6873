"""The analyzer's training-memory estimate against the measured peak of a real training step.

For each model, a fresh Python process (so nothing else is in its heap) imports torch, makes a
batch, reads its resident set size (VmRSS), then builds the model, an SGD optimizer with
momentum 0.9, and runs one full training step (forward, cross-entropy, backward, optimizer step:
the first step allocates the momentum buffers). The measured figure is the peak resident set
size of the process during that window (``resource.getrusage(RUSAGE_SELF).ru_maxrss``) minus the
RSS before the model existed. It is valid only when the step raised the process's high-water mark
above what importing torch had reached; the script checks that and records it.

The estimate is :func:`cnnlab.analysis.arith.training_memory`: weights + gradients + momentum
(3 x parameter bytes) + every tensor the forward pass creates (activation total, input
included). What it leaves out (allocator slack, conv workspaces, per-op temporaries of
backward, the max-pool indices, dropout masks in training mode) is why the ratio is not 1.

Usage::

    .venv/bin/python benchmarks/analyzer_memory.py [--out benchmarks/results/analyzer_memory.json]

CPU only, 2 threads; timings are not reported (the machine is shared), memory is.
"""

from __future__ import annotations

import argparse
import json
import platform
import statistics
import subprocess
import sys
from pathlib import Path

# (model, input CxHxW, batch): small enough for a shared 2-core machine, large enough that the
# step dominates the import's high-water mark.
CASES = [
    ("lenet5", (1, 28, 28), 256),
    ("alexnet", (3, 224, 224), 16),
    ("resnet18", (3, 224, 224), 16),
    ("vgg11", (3, 224, 224), 8),
    ("resnet50", (3, 224, 224), 8),
]

CHILD = r"""
import json, resource, sys
import torch
import cnnlab
from cnnlab.analysis import analyze

name, c, h, w, batch = sys.argv[1], *map(int, sys.argv[2:6])
torch.set_num_threads(2)
torch.manual_seed(0)

def rss() -> int:
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) * 1024
    raise RuntimeError("no VmRSS")

x = torch.randn(batch, c, h, w)
info = cnnlab.model_info(name)
y = torch.randint(0, info.num_classes, (batch,))
# warm the autograd, conv, pooling, batch-norm, linear and loss code paths on a tiny net at
# the full batch, so their one-off allocations (kernels, thread pools) are not charged to the
# model
tiny = torch.nn.Sequential(
    torch.nn.Conv2d(c, 2, 3, padding=1), torch.nn.BatchNorm2d(2), torch.nn.ReLU(),
    torch.nn.MaxPool2d(2), torch.nn.AdaptiveAvgPool2d(1), torch.nn.Flatten(),
    torch.nn.Dropout(), torch.nn.Linear(2, info.num_classes),
)
torch.optim.SGD(tiny.parameters(), lr=0.1, momentum=0.9).zero_grad()
torch.nn.functional.cross_entropy(tiny(x), y).backward()
del tiny
before_rss = rss()
before_peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
model = cnnlab.create_model(name, in_channels=c)
model.train()
opt = torch.optim.SGD(model.parameters(), lr=0.01, momentum=0.9)
loss = torch.nn.functional.cross_entropy(model(x), y)
loss.backward()
opt.step()
peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
report = analyze(name, (c, h, w), batch)
t = report.totals
print(json.dumps({
    "model": name, "input_size": [c, h, w], "batch_size": batch,
    "measured_bytes": peak - before_rss,
    "valid": peak > before_peak,
    "estimate_bytes": t["training_memory_bytes"],
    "param_bytes": t["param_bytes"],
    "activation_bytes": t["activation_bytes"],
    "ratio_measured_over_estimate": (peak - before_rss) / t["training_memory_bytes"],
}))
"""


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--out", default="benchmarks/results/analyzer_memory.json")
    p.add_argument("--models", nargs="*", help="subset of: " + " ".join(c[0] for c in CASES))
    p.add_argument("--repeats", type=int, default=3, help="fresh processes per model (median)")
    args = p.parse_args()
    results = []
    for name, (c, h, w), batch in CASES:
        if args.models and name not in args.models:
            continue
        runs = []
        for _ in range(args.repeats):
            proc = subprocess.run(
                [sys.executable, "-c", CHILD, name, str(c), str(h), str(w), str(batch)],
                capture_output=True, text=True, check=False,
            )  # fmt: skip
            if proc.returncode != 0:
                print(f"{name}: failed\n{proc.stderr[-2000:]}", file=sys.stderr)
                break
            runs.append(json.loads(proc.stdout.strip().splitlines()[-1]))
        if not runs:
            continue
        measured = sorted(x["measured_bytes"] for x in runs)
        r = dict(runs[0])
        r["measured_bytes"] = statistics.median(measured)
        r["measured_bytes_all_runs"] = measured
        r["valid"] = all(x["valid"] for x in runs)
        r["ratio_measured_over_estimate"] = r["measured_bytes"] / r["estimate_bytes"]
        results.append(r)
        print(
            f"{name:10s} batch {batch:4d}  measured {r['measured_bytes'] / 2**20:8.1f} MiB  "
            f"estimate {r['estimate_bytes'] / 2**20:8.1f} MiB  ratio "
            f"{r['ratio_measured_over_estimate']:.2f}{'' if r['valid'] else '  (INVALID)'}  "
            f"(runs: {', '.join(f'{m / 2**20:.0f}' for m in measured)} MiB)"
        )
    doc = {
        "benchmark": "analyzer training-memory estimate vs measured peak RSS of one SGD step",
        "method": "fresh process per run; peak ru_maxrss during model build + one training step "
        "minus VmRSS before (after a warm-up step of a tiny net at the same batch); median of "
        "--repeats runs; estimate = 3 x param bytes + forward activation bytes",
        "machine": {"platform": platform.platform(), "python": platform.python_version()},
        "results": results,
    }
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(doc, indent=2) + "\n")
    print(f"wrote {out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
