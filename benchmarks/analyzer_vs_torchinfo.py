"""Time and memory of ``cnnlab.analyze`` against ``torchinfo.summary`` on the same model and batch.

cnnlab traces the model on PyTorch's meta device (shapes only), so its cost does not depend on
the batch size; torchinfo runs a real forward pass. Each measurement runs in a fresh process:
wall time of the call (after imports and model construction) and the process's peak resident
set size (``ru_maxrss``) at the end, which includes importing torch (reported separately as the
baseline of an import-only process).

Also measured: the end-to-end CLI, ``cnnlab summary vgg16 --batch 256``, as the only child of
a wrapper process (wall and CPU time, peak RSS from ``resource.getrusage(RUSAGE_CHILDREN)``).

Usage::

    .venv/bin/python benchmarks/analyzer_vs_torchinfo.py [--out FILE.json] [--repeats N]

The machine is shared (2 cores, other jobs running): times are medians of --repeats runs and
still noisy; the memory figures are stable.
"""

from __future__ import annotations

import argparse
import json
import platform
import statistics
import subprocess
import sys
from pathlib import Path

MODEL = "vgg16"
CNNLAB_BATCHES = [1, 16, 256]
TORCHINFO_BATCHES = [1, 4, 16]  # batch 256 would need ~15 GB and minutes of real compute

CHILD = r"""
import json, resource, sys, time
import torch
torch.set_num_threads(2)
tool, name, batch = sys.argv[1], sys.argv[2], int(sys.argv[3])
import cnnlab
if tool == "import":
    pass
elif tool == "cnnlab":
    from cnnlab.analysis import analyze
    analyze("alexnet")  # load the registry and tracer code outside the timed call
    t = time.perf_counter()
    r = analyze(name, batch_size=batch)
    elapsed = time.perf_counter() - t
    macs = r.totals["macs"]
else:
    import torchinfo
    model = cnnlab.create_model(name)
    t = time.perf_counter()
    s = torchinfo.summary(model, input_size=(batch, 3, 224, 224), verbose=0)
    elapsed = time.perf_counter() - t
    macs = int(s.total_mult_adds)
peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
print(json.dumps({"tool": tool, "batch": batch, "seconds": 0.0 if tool == "import" else elapsed,
                  "peak_rss_bytes": peak, "macs": 0 if tool == "import" else macs}))
"""


def child(tool: str, batch: int) -> dict:
    proc = subprocess.run(
        [sys.executable, "-c", CHILD, tool, MODEL, str(batch)],
        capture_output=True, text=True, check=True,
    )  # fmt: skip
    return json.loads(proc.stdout.strip().splitlines()[-1])


def measure(tool: str, batch: int, repeats: int) -> dict:
    runs = [child(tool, batch) for _ in range(repeats)]
    return {
        "tool": tool,
        "batch": batch,
        "seconds_median": statistics.median(r["seconds"] for r in runs),
        "peak_rss_mib": max(r["peak_rss_bytes"] for r in runs) / 2**20,
        "macs": runs[0]["macs"],
    }


CLI_WRAPPER = r"""
import json, resource, subprocess, sys, time
t = time.perf_counter()
subprocess.run(sys.argv[1:], capture_output=True, check=True)
wall = time.perf_counter() - t
ru = resource.getrusage(resource.RUSAGE_CHILDREN)  # this wrapper's only child: the CLI
print(json.dumps({"wall": wall, "cpu": ru.ru_utime + ru.ru_stime, "peak": ru.ru_maxrss * 1024}))
"""


def cli(repeats: int) -> dict:
    """``cnnlab summary vgg16 --batch 256`` end to end, each run under its own wrapper process
    so that its peak RSS is not mixed with the other children's."""
    runs = []
    for _ in range(repeats):
        proc = subprocess.run(
            [sys.executable, "-c", CLI_WRAPPER, sys.executable, "-m", "cnnlab", "summary",
             MODEL, "--batch", "256"],
            capture_output=True, text=True, check=True,
        )  # fmt: skip
        runs.append(json.loads(proc.stdout))
    return {
        "command": f"cnnlab summary {MODEL} --batch 256",
        "seconds_median": statistics.median(r["wall"] for r in runs),
        "cpu_seconds_median": statistics.median(r["cpu"] for r in runs),
        "peak_rss_mib": max(r["peak"] for r in runs) / 2**20,
    }


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--out", default="benchmarks/results/analyzer_vs_torchinfo.json")
    p.add_argument("--repeats", type=int, default=3)
    args = p.parse_args()
    baseline = child("import", 1)
    print(f"import torch + cnnlab only: peak RSS {baseline['peak_rss_bytes'] / 2**20:.0f} MiB")
    rows = []
    for tool, batches in (("cnnlab", CNNLAB_BATCHES), ("torchinfo", TORCHINFO_BATCHES)):
        for b in batches:
            r = measure(tool, b, args.repeats if tool == "cnnlab" or b < 16 else 1)
            rows.append(r)
            print(f"{tool:9s} {MODEL} batch {b:4d}: {r['seconds_median']:7.3f} s, "
                  f"peak RSS {r['peak_rss_mib']:7.0f} MiB, MACs {r['macs']:,}")  # fmt: skip
    c = cli(args.repeats)
    print(
        f"{c['command']}: {c['seconds_median']:.2f} s end to end "
        f"({c['cpu_seconds_median']:.2f} s CPU), peak RSS {c['peak_rss_mib']:.0f} MiB"
    )
    by = {(r["tool"], r["batch"]): r for r in rows}
    ratios = {
        f"batch_{b}": {
            "time_torchinfo_over_cnnlab": by["torchinfo", b]["seconds_median"]
            / by["cnnlab", b]["seconds_median"],
            "peak_rss_torchinfo_over_cnnlab": by["torchinfo", b]["peak_rss_mib"]
            / by["cnnlab", b]["peak_rss_mib"],
        }
        for b in sorted(set(CNNLAB_BATCHES) & set(TORCHINFO_BATCHES))
    }
    for k, v in ratios.items():
        print(f"{k}: torchinfo/cnnlab time {v['time_torchinfo_over_cnnlab']:.1f}x, "
              f"peak RSS {v['peak_rss_torchinfo_over_cnnlab']:.1f}x")  # fmt: skip
    doc = {
        "benchmark": f"cnnlab.analyze vs torchinfo.summary on {MODEL}",
        "machine": {"platform": platform.platform(), "note": "shared 2-core VM, times noisy"},
        "import_only_peak_rss_mib": baseline["peak_rss_bytes"] / 2**20,
        "results": rows,
        "ratios": ratios,
        "cli": c,
    }
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(doc, indent=2) + "\n")
    print(f"wrote {out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
