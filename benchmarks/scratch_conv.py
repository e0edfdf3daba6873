"""Benchmark: the from-scratch NumPy conv layer (im2col + GEMM) against PyTorch's conv2d.

Layer: N=64 images, C=64 -> K=64 channels, 32x32, 3x3 kernel, stride 1, padding 1, float32.
Both libraries get the same number of threads (OpenBLAS for NumPy, intra-op for PyTorch).
Forward and backward are timed separately; backward is (dx, dw, db) for both (PyTorch:
``torch.autograd.grad`` of the conv output; NumPy: ``fast.conv2d_backward``), each after an
untimed forward. FLOPs count a multiply-add as 2: forward 2*N*K*Ho*Wo*C*kh*kw, backward twice
that (one GEMM for dx, one for dw). Targets from the issue: forward within 3x of PyTorch's
time, backward within 5x.

    .venv/bin/python benchmarks/scratch_conv.py                    # 1 thread
    .venv/bin/python benchmarks/scratch_conv.py --threads 2 \
        --json benchmarks/results/scratch_conv_2threads.json

Writes JSON (``--json``, default benchmarks/results/scratch_conv.json) with the command,
versions, machine, load average and every timing. The machine may be shared: medians of
``--repeats`` runs are reported, and the load average before and after is recorded.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import time
from pathlib import Path


def _parse() -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--threads", type=int, default=1, help="threads for both libraries")
    p.add_argument("--repeats", type=int, default=7, help="timed runs (median reported)")
    p.add_argument("--batch", type=int, default=64)
    p.add_argument("--channels", type=int, default=64, help="C = K")
    p.add_argument("--size", type=int, default=32, help="H = W")
    p.add_argument("--kernel", type=int, default=3)
    p.add_argument("--json", default="benchmarks/results/scratch_conv.json")
    return p.parse_args()


ARGS = _parse()
# OpenBLAS reads its thread count when numpy loads it, so this must come before `import numpy`.
for var in ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS"):
    os.environ[var] = str(ARGS.threads)

import numpy as np  # noqa: E402
import torch  # noqa: E402
import torch.nn.functional as F  # noqa: E402
from machine import cpu_model  # noqa: E402  (benchmarks/machine.py)

import cnnlab  # noqa: E402
from cnnlab.scratch import fast  # noqa: E402


def _median_time(fn, setup, repeats: int) -> tuple[float, list[float]]:
    setup()
    fn()  # warm-up: allocate workspaces, fault in pages, pick kernels
    times = []
    for _ in range(repeats):
        setup()
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return float(np.median(times)), times


def main() -> dict:
    torch.set_num_threads(ARGS.threads)
    n, c, s, k = ARGS.batch, ARGS.channels, ARGS.size, ARGS.kernel
    pad = k // 2
    rng = np.random.default_rng(0)
    x = rng.standard_normal((n, c, s, s), dtype=np.float32)
    w = (rng.standard_normal((c, c, k, k), dtype=np.float32) / np.sqrt(c * k * k)).astype(
        np.float32
    )
    b = rng.standard_normal(c, dtype=np.float32)
    dout = rng.standard_normal((n, c, s, s), dtype=np.float32)
    ws = fast.Workspace()
    load_before = os.getloadavg()

    # NumPy, from scratch.
    state: dict = {}

    def np_fwd() -> None:
        state["out"], state["cache"] = fast.conv2d_forward(x, w, b, padding=pad, workspace=ws)

    def np_bwd() -> None:
        state["grads"] = fast.conv2d_backward(dout, state["cache"], workspace=ws)

    np_fwd_t, np_fwd_all = _median_time(np_fwd, lambda: None, ARGS.repeats)
    np_bwd_t, np_bwd_all = _median_time(np_bwd, np_fwd, ARGS.repeats)

    # PyTorch, NCHW (the same layout) and channels-last (its fastest fp32 CPU path here).
    results_torch = {}
    for layout in ("nchw", "channels_last"):
        fmt = torch.channels_last if layout == "channels_last" else torch.contiguous_format
        xt = torch.from_numpy(x).to(memory_format=fmt).requires_grad_()
        wt = torch.from_numpy(w).to(memory_format=fmt).requires_grad_()
        bt = torch.from_numpy(b).requires_grad_()
        dt = torch.from_numpy(dout).to(memory_format=fmt)
        tstate: dict = {}

        def t_fwd(xt=xt, wt=wt, bt=bt, tstate=tstate) -> None:
            with torch.no_grad():
                tstate["ref"] = F.conv2d(xt, wt, bt, padding=pad)

        def t_setup(xt=xt, wt=wt, bt=bt, tstate=tstate) -> None:
            tstate["out"] = F.conv2d(xt, wt, bt, padding=pad)

        def t_bwd(xt=xt, wt=wt, bt=bt, dt=dt, tstate=tstate) -> None:
            tstate["grads"] = torch.autograd.grad(tstate["out"], (xt, wt, bt), dt)

        fwd_t, fwd_all = _median_time(t_fwd, lambda: None, ARGS.repeats)
        bwd_t, bwd_all = _median_time(t_bwd, t_setup, ARGS.repeats)
        t_fwd()
        t_setup()
        t_bwd()
        results_torch[layout] = {
            "forward_s": fwd_t,
            "backward_s": bwd_t,
            "forward_all_s": fwd_all,
            "backward_all_s": bwd_all,
            "max_abs_diff_out": float(np.abs(tstate["ref"].numpy() - state["out"]).max()),
            "max_abs_diff_grads": [
                float(np.abs(g.numpy() - mine).max())
                for g, mine in zip(tstate["grads"], state["grads"], strict=True)
            ],
        }

    fwd_flop = 2 * n * c * s * s * c * k * k
    bwd_flop = 2 * fwd_flop

    def gflops(flop: int, sec: float) -> float:
        return flop / sec / 1e9

    torch_ref = results_torch["nchw"]
    best_fwd = min(r["forward_s"] for r in results_torch.values())
    best_bwd = min(r["backward_s"] for r in results_torch.values())
    result = {
        "benchmark": "scratch_conv",
        "command": " ".join([sys.executable.rsplit("/", 1)[-1], *sys.argv]),
        "layer": {
            "N": n,
            "C": c,
            "K": c,
            "H": s,
            "W": s,
            "kernel": k,
            "stride": 1,
            "padding": pad,
            "dtype": "float32",
        },
        "threads": ARGS.threads,
        "repeats": ARGS.repeats,
        "flop": {"forward": fwd_flop, "backward": bwd_flop, "convention": "multiply-add = 2"},
        "numpy_fast": {
            "forward_s": np_fwd_t,
            "backward_s": np_bwd_t,
            "forward_gflops": gflops(fwd_flop, np_fwd_t),
            "backward_gflops": gflops(bwd_flop, np_bwd_t),
            "forward_all_s": np_fwd_all,
            "backward_all_s": np_bwd_all,
        },
        "torch": {
            layout: {
                **r,
                "forward_gflops": gflops(fwd_flop, r["forward_s"]),
                "backward_gflops": gflops(bwd_flop, r["backward_s"]),
            }
            for layout, r in results_torch.items()
        },
        "ratio_vs_torch_nchw": {
            "forward": np_fwd_t / torch_ref["forward_s"],
            "backward": np_bwd_t / torch_ref["backward_s"],
        },
        "ratio_vs_torch_best": {"forward": np_fwd_t / best_fwd, "backward": np_bwd_t / best_bwd},
        "targets": {"forward_within": 3.0, "backward_within": 5.0},
        "versions": {
            "python": platform.python_version(),
            "numpy": np.__version__,
            "torch": torch.__version__,
            "cnnlab": cnnlab.__version__,
        },
        "machine": {
            "cpu": cpu_model(),
            "cpu_count": os.cpu_count(),
            "platform": platform.platform(),
            "load_avg_before": load_before,
            "load_avg_after": os.getloadavg(),
            "OPENBLAS_CORETYPE": os.environ.get("OPENBLAS_CORETYPE"),
            "note": "shared machine: other jobs ran during the measurement",
        },
    }
    result["meets_targets"] = {
        "forward": result["ratio_vs_torch_nchw"]["forward"] <= 3.0,
        "backward": result["ratio_vs_torch_nchw"]["backward"] <= 5.0,
    }
    return result


if __name__ == "__main__":
    res = main()
    out = Path(ARGS.json)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(res, indent=2) + "\n")
    npf, tn, tc = res["numpy_fast"], res["torch"]["nchw"], res["torch"]["channels_last"]
    print(f"{res['layer']} threads={res['threads']}  (medians of {res['repeats']})")
    print(f"{'':<22}{'forward':>18}{'backward':>22}")
    for name, r in [("numpy fast (scratch)", npf), ("torch NCHW", tn), ("torch channels-last", tc)]:
        print(
            f"{name:<22}{r['forward_s'] * 1e3:9.1f} ms {r['forward_gflops']:5.1f} GF/s"
            f"{r['backward_s'] * 1e3:11.1f} ms {r['backward_gflops']:5.1f} GF/s"
        )
    ratio = res["ratio_vs_torch_nchw"]
    print(
        f"numpy / torch NCHW: forward {ratio['forward']:.2f}x (target 3x), "
        f"backward {ratio['backward']:.2f}x (target 5x); max |diff| out "
        f"{tn['max_abs_diff_out']:.2e}; load {res['machine']['load_avg_before'][0]:.1f} -> "
        f"{res['machine']['load_avg_after'][0]:.1f}; wrote {out}"
    )
