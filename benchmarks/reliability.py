"""Reliability benchmark: the trials of ``tests/reliability/harness.py`` at their full counts.

Crashes (SIGKILL mid-forward, mid-backward and at every phase of a checkpoint write, then
``--resume``), full disks, malicious files and damaged data against cnnlab; the harness's module
docstring says how each trial works. ``tests/reliability/`` runs the same trials with small
counts in the normal test suite; this script runs the full counts and prints (or writes) the
table of ``docs/shipping.md`` as markdown plus the raw results as JSON::

    .venv/bin/python benchmarks/reliability.py                     # full counts (~10-20 min)
    .venv/bin/python benchmarks/reliability.py --quick             # test-sized counts
    .venv/bin/python benchmarks/reliability.py --json benchmarks/results/reliability.json
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import asdict
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # the repository root: tests/

from tests.reliability.harness import (
    Result,
    damaged_data_trials,
    full_disk_trials,
    image_mode_trials,
    kill_resume_trials,
    malicious_trials,
    nan_trials,
    write_kill_trials,
)

ROOT = Path(__file__).resolve().parents[1]
FULL = {"kill_resume": 20, "write_kills": 50, "idx": 1000, "images": 1000}
# The generated hostile-input suites (every case: exit 0 or 2 with one line, no traceback, no
# hang, the right answer), run by pytest and counted through tests/helpers/tally.py.
HOSTILE_SUITES = (
    "tests/test_hostile_weights.py",
    "tests/test_hostile_runs.py",
    "tests/test_hostile_folders.py",
    "tests/test_hostile_experiments.py",
)
# How a failure line reads, by kind (the suites' own assertion messages).
FAILURE_KINDS = (("traceback", ("Traceback",)), ("hang", ("hung", "hang", "Timeout")))
QUICK = {"kill_resume": 3, "write_kills": 8, "idx": 100, "images": 100}


def compact(result: dict[str, Any], keep: int = 20) -> dict[str, Any]:
    """A result for the JSON file: long detail lists shortened to their failures and a sample."""
    details = result["details"]
    if len(details) <= keep:
        return result
    failed = [
        d
        for d in details
        if d.get("problems")
        or d.get("ok") is False
        or d.get("refused") is False
        or d.get("executed")
        or d.get("outcome") not in (None, "decoded", "DataError")
    ]
    return result | {
        "details": details[:keep] + failed,
        "details_note": f"first {keep} of {len(details)} rows, then every failed one",
    }


def hostile_trials(work: Path) -> list[Result]:
    """The hostile suites, one row per surface: bad inputs, clean, traceback, hang, other."""
    tally_file = work / "hostile-tally.jsonl"
    tally_file.unlink(missing_ok=True)
    env = {**os.environ, "CNNLAB_HOSTILE_TALLY": str(tally_file), "PYTHONHASHSEED": "0"}
    t0 = time.perf_counter()
    suite = subprocess.run(
        [
            sys.executable,
            "-m",
            "pytest",
            "-q",
            "-n",
            "2",
            "-p",
            "no:cacheprovider",
            *HOSTILE_SUITES,
        ],
        cwd=ROOT,
        env=env,
        stdout=subprocess.PIPE,
        text=True,
        check=False,  # failures are counted from the tally; the exit status is a row of its own
    )
    seconds = time.perf_counter() - t0
    rows: dict[str, dict[str, Any]] = {}
    lines = tally_file.read_text().splitlines() if tally_file.is_file() else []
    for line in lines:
        group = json.loads(line)
        row = rows.setdefault(group["surface"], {"cases": 0, "failures": []})
        row["cases"] += group["cases"]
        row["failures"] += group["failures"]
    results = []
    for surface, row in rows.items():
        kinds = dict.fromkeys([name for name, _ in FAILURE_KINDS] + ["other"], 0)
        for failure in row["failures"]:
            kind = next((n for n, marks in FAILURE_KINDS if any(m in failure for m in marks)), None)
            kinds[kind or "other"] += 1
        failed = len(row["failures"])
        outcome = (
            f"{row['cases'] - failed} clean (one line or the right answer), "
            f"{kinds['traceback']} tracebacks, {kinds['hang']} hangs, "
            f"{kinds['other']} wrong answers or unclean ends"
        )
        details = [{"problems": f} for f in row["failures"]]
        results.append(
            Result(
                f"hostile {surface}", row["cases"], row["cases"] - failed, outcome, details, seconds
            )
        )
    # A test that failed before counting its cases (a fixture, an assertion outside the loops)
    # is not in the tally: the suites' own verdict is a row too.
    last = (suite.stdout.strip().splitlines() or ["no output"])[-1]
    results.append(
        Result("hostile suites (pytest)", 1, int(suite.returncode == 0), last, seconds=seconds)
    )
    return results


def to_markdown(results: list[Result], header: str) -> str:
    lines = [header, "", "| trial | count | passed | outcome |", "|---|---:|---:|---|"]
    for r in results:
        lines.append(f"| {r.trial} | {r.count} | {r.passed} | {r.outcome} |")
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="test-sized counts")
    parser.add_argument("--json", type=Path, help="write all results here")
    parser.add_argument("--markdown", type=Path, help="write the markdown table here")
    parser.add_argument("--work", type=Path, help="scratch directory (default: a temporary one)")
    parser.add_argument(
        "--only",
        help="comma-separated trial groups: kill,writes,disk,nan,malicious,data,modes,hostile",
    )
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)
    counts = QUICK if args.quick else FULL
    groups = set((args.only or "kill,writes,disk,nan,malicious,data,modes,hostile").split(","))
    t0 = time.perf_counter()
    with contextlib.ExitStack() as stack:
        work = args.work or Path(stack.enter_context(tempfile.TemporaryDirectory()))
        work.mkdir(parents=True, exist_ok=True)
        results: list[Result] = []
        plan: list[tuple[str, Callable[[], Result | list[Result]]]] = [
            ("kill", lambda: kill_resume_trials(work, counts["kill_resume"], args.seed)),
            ("writes", lambda: write_kill_trials(work, counts["write_kills"], args.seed)),
            ("disk", lambda: full_disk_trials(work)),
            ("nan", lambda: nan_trials(work, (8,) if args.quick else (4, 8, 14))),
            ("malicious", lambda: malicious_trials(work)),
            (
                "data",
                lambda: damaged_data_trials(
                    work, counts["idx"], counts["images"], args.quick, args.seed
                ),
            ),
            ("modes", lambda: image_mode_trials(work)),
            ("hostile", lambda: hostile_trials(work)),
        ]
        for group, trial in plan:
            if group not in groups:
                continue
            try:
                found = trial()
            except Exception as err:  # a harness failure is a failed row, not a lost table
                found = Result(group, 1, 0, f"harness error: {type(err).__name__}: {err}"[:300])
            results += found if isinstance(found, list) else [found]
            print(f"... {group} done", file=sys.stderr, flush=True)
        for r in results:
            print(
                f"[{'ok' if r.ok else 'FAIL'}] {r.trial}: {r.passed}/{r.count} ({r.seconds:.0f} s)",
                file=sys.stderr,
            )
    elapsed = time.perf_counter() - t0
    header = (
        f"Generated by `python benchmarks/reliability.py{' --quick' if args.quick else ''}` "
        f"({time.strftime('%Y-%m-%d')}, {elapsed / 60:.0f} min, {os.cpu_count()} CPUs)."
    )
    table = to_markdown(results, header)
    print(table)
    if args.markdown:
        args.markdown.write_text(table)
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(
            json.dumps(
                {
                    "quick": args.quick,
                    "seconds": elapsed,
                    "results": [compact(asdict(r)) for r in results],
                },
                indent=1,
                default=str,
            )
        )
    return 0 if all(r.ok for r in results) else 1


if __name__ == "__main__":
    sys.exit(main())
