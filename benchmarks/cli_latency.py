"""How long the command line takes to answer: every ``--help``, ``cnnlab models``, a summary.

Each command runs ``--runs`` times in a fresh process (the ``cnnlab`` console script next to this
Python, as a user types it), after one unmeasured run that brings the files into the page cache.
The figure is the median wall time from starting the process to its exit; the median CPU time
(user + system, from ``wait4``) is recorded beside it, since on a shared machine the wall time
also counts waiting for a core (the load average is recorded too). ``python -c pass`` and
``python -c "import torch"`` are measured the same way, as the floor and the cost the commands
that need no model avoid.

Targets (issue 15, item 6): ``cnnlab --help`` and every ``cnnlab COMMAND --help`` at most 0.5 s,
``cnnlab models`` at most 1.5 s, ``cnnlab summary vgg16`` at most 3 s.

Usage::

    .venv/bin/python benchmarks/cli_latency.py [--runs 7] [--out results/cli_latency.json]
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from machine import describe

from cnnlab.cli import COMMANDS
from cnnlab.files import write_json_atomic

HELP_TARGET_S = 0.5
MODELS_TARGET_S = 1.5
SUMMARY_TARGET_S = 3.0


def cases() -> list[tuple[str, list[str], float | None]]:
    """(label, arguments after the program, target in seconds or None)."""
    rows: list[tuple[str, list[str], float | None]] = [("cnnlab --help", ["--help"], HELP_TARGET_S)]
    rows += [(f"cnnlab {c} --help", [c, "--help"], HELP_TARGET_S) for c in COMMANDS]
    rows += [
        ("cnnlab models", ["models"], MODELS_TARGET_S),
        ("cnnlab summary vgg16", ["summary", "vgg16"], SUMMARY_TARGET_S),
    ]
    return rows


def program() -> list[str]:
    """The console script beside this Python, or ``python -m cnnlab`` where there is none."""
    script = Path(sys.executable).with_name("cnnlab")
    return [str(script)] if script.exists() else [sys.executable, "-m", "cnnlab"]


def timed(argv: list[str]) -> tuple[float, float]:
    """(wall seconds, CPU seconds) of one run of ``argv``; a non-zero exit status raises."""
    with tempfile.TemporaryFile() as stderr:
        start = time.perf_counter()
        proc = subprocess.Popen(argv, stdout=subprocess.DEVNULL, stderr=stderr)
        _, status, usage = os.wait4(proc.pid, 0)
        wall = time.perf_counter() - start
        proc.returncode = os.waitstatus_to_exitcode(status)
        if proc.returncode != 0:
            stderr.seek(0)
            raise RuntimeError(f"{argv} exited {proc.returncode}: {stderr.read().decode()}")
    return wall, usage.ru_utime + usage.ru_stime


def measure(argv: list[str], runs: int) -> dict[str, float]:
    timed(argv)  # page cache: the figure is a start-up, not a cold disk
    walls, cpus = zip(*(timed(argv) for _ in range(runs)), strict=True)
    return {
        "wall_s": round(statistics.median(walls), 3),
        "wall_min_s": round(min(walls), 3),
        "wall_max_s": round(max(walls), 3),
        "cpu_s": round(statistics.median(cpus), 3),
    }


def markdown(result: dict) -> str:
    lines = [
        "| command | median wall (s) | median CPU (s) | target (s) | met |",
        "|---|---:|---:|---:|---|",
    ]
    for row in result["rows"]:
        target = row["target_s"]
        met = "" if target is None else ("yes" if row["wall_s"] <= target else "**no**")
        lines.append(
            f"| `{row['command']}` | {row['wall_s']:.2f} | {row['cpu_s']:.2f} | "
            f"{'' if target is None else target} | {met} |"
        )
    return "\n".join(lines)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=7, help="measured runs per command")
    parser.add_argument("--out", type=Path, default=Path("benchmarks/results/cli_latency.json"))
    args = parser.parse_args()
    machine = describe()  # its load average is the one at the start
    floors = [
        ("python -c pass", [sys.executable, "-c", "pass"]),
        ('python -c "import torch"', [sys.executable, "-c", "import torch"]),
    ]
    rows = []
    for label, argv in floors:
        rows.append({"command": label, "target_s": None, **measure(argv, args.runs)})
    for label, rest, target in cases():
        rows.append({"command": label, "target_s": target, **measure(program() + rest, args.runs)})
        print(f"{label}: {rows[-1]['wall_s']:.2f} s", file=sys.stderr)
    result = {
        "machine": machine,
        "runs": args.runs,
        "program": program(),
        "rows": rows,
        "all_targets_met": all(r["wall_s"] <= r["target_s"] for r in rows if r["target_s"]),
    }
    result["machine"]["load_average_after"] = [round(v, 2) for v in os.getloadavg()]
    write_json_atomic(args.out, result)
    print(markdown(result))
    print(f"\nwritten to {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
