"""What reading a trained run safely costs: ``cnnlab eval`` and ``cnnlab predict`` on one run,
today's tree against an older one, and the SHA-256 of the weights on its own.

Issue 21 made every file cnnlab reads checked before use: the run record field by field, the
weights against the model's state dict, and every weights file against the digest it carries
(:func:`cnnlab.run.tensorfile.tensors_digest`). Its target: eval and predict within 5% of their
times before. Each command runs as a user types it, in a fresh process, alternating between the
trees (``--before SRC``: the ``src/`` of a checkout of the older commit, e.g. from ``git worktree
add /tmp/before 472d4d9``; the same Python and packages run both), so load on a shared machine
falls on both alike; the figure is the median of ``--runs`` (wall and CPU time, from ``wait4``).

Usage::

    .venv/bin/python benchmarks/inference_overhead.py RUN_DIR --before /tmp/before/src \\
        [--runs 7] [--images 64] [--json benchmarks/results/inference_overhead.json]
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from machine import header

HERE_SRC = Path(__file__).resolve().parents[1] / "src"


def timed(argv: list[str], src: Path) -> tuple[float, float]:
    """(wall seconds, CPU seconds) of ``python -m cnnlab ARGV`` with ``src`` first on the path."""
    env = {**os.environ, "PYTHONPATH": str(src), "PYTHONHASHSEED": "0"}
    with tempfile.TemporaryFile() as stderr:
        start = time.perf_counter()
        proc = subprocess.Popen(
            [sys.executable, "-m", "cnnlab", *argv],
            stdout=subprocess.DEVNULL,
            stderr=stderr,
            env=env,
        )
        _, status, usage = os.wait4(proc.pid, 0)
        wall = time.perf_counter() - start
        if os.waitstatus_to_exitcode(status) != 0:
            stderr.seek(0)
            raise RuntimeError(f"{argv} with {src}: {stderr.read().decode()[-500:]}")
    return wall, usage.ru_utime + usage.ru_stime


def sample_images(run: Path, count: int, out: Path) -> list[Path]:
    """``count`` test images of the run's dataset as PNG files (what a user predicts on)."""
    from PIL import Image

    from cnnlab.data import load_dataset
    from cnnlab.run.layout import RunFiles

    config = RunFiles(run).read_config()
    images = load_dataset(config.data, "test")[0][:count]  # uint8 (N, C, H, W)
    paths = []
    for i, image in enumerate(images):
        path = out / f"{i:03d}.png"
        Image.fromarray(image.squeeze(0).numpy()).save(path)
        paths.append(path)
    return paths


def digest_cost(run: Path, repeats: int = 20) -> dict[str, float]:
    """Seconds to read the run's model tensors, and to hash them, in this process."""
    from cnnlab.run.tensorfile import read_header, read_tensors, tensors_digest

    model = run / "model.safetensors"
    meta = read_header(model)
    tensors = read_tensors(model)
    reads, hashes = [], []
    for _ in range(repeats):
        t0 = time.perf_counter()
        read_tensors(model)
        reads.append(time.perf_counter() - t0)
        t0 = time.perf_counter()
        tensors_digest(tensors, meta)
        hashes.append(time.perf_counter() - t0)
    return {
        "model_bytes": model.stat().st_size,
        "read_tensors_s": round(statistics.median(reads), 5),
        "digest_s": round(statistics.median(hashes), 5),
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("run", type=Path)
    parser.add_argument("--before", type=Path, required=True, help="src/ of the older checkout")
    parser.add_argument("--runs", type=int, default=7)
    parser.add_argument("--images", type=int, default=64)
    parser.add_argument("--json", type=Path)
    args = parser.parse_args()
    trees = {"before": args.before.resolve(), "now": HERE_SRC}
    with tempfile.TemporaryDirectory() as tmp:
        images = [str(p) for p in sample_images(args.run, args.images, Path(tmp))]
        commands = {
            "eval": ["eval", str(args.run)],
            "predict": ["predict", str(args.run), *images],
        }
        times: dict[str, dict[str, list[tuple[float, float]]]] = {
            c: {t: [] for t in trees} for c in commands
        }
        for command, argv in commands.items():
            for src in trees.values():
                timed(argv, src)  # page cache, and a check that both trees can run it
            for _ in range(args.runs):
                for tree, src in trees.items():
                    times[command][tree].append(timed(argv, src))
    result = header("inference_overhead")
    result["before_src"] = str(trees["before"])
    result["runs"] = args.runs
    result["commands"] = {}
    for command, by_tree in times.items():
        row = {}
        for tree, samples in by_tree.items():
            walls, cpus = zip(*samples, strict=True)
            row[tree] = {
                "wall_s": round(statistics.median(walls), 3),
                "cpu_s": round(statistics.median(cpus), 3),
            }
        row["wall_ratio"] = round(row["now"]["wall_s"] / row["before"]["wall_s"], 3)
        row["cpu_ratio"] = round(row["now"]["cpu_s"] / row["before"]["cpu_s"], 3)
        result["commands"][command] = row
    result["digest"] = digest_cost(args.run)
    text = json.dumps(result, indent=1)
    print(text)
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(text + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
