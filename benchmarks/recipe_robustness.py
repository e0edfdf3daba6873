"""Recipe robustness: does the default ``cnnlab train`` hold for every seed and every family?

Two parts, each run as the ``cnnlab train`` command a user types (a subprocess per run, the fast
recipe, nothing tuned per run):

* ``lenet``: ``cnnlab train lenet5 --epochs 2 --seed S`` for seeds 0-19 on Fashion-MNIST (the
  issue's acceptance: every seed at least 85% test accuracy; before the per-family recipes, seed
  2 died at chance, 10.00%).
* ``families``: the smallest model of every registry family (fewest parameters; a model named
  after its family wins a tie) for one epoch on 3 seeds. On a 2-core CPU a full epoch of the
  larger ones takes far too long, so ``--limit-train`` (with ``--val-size`` and ``--limit-test``)
  shortens this part; the table says so.

* ``short``: the smallest model of every family on few images, as a student's quick try or a
  studio job: ``--limit-train 1000 --epochs 2`` and ``--limit-train 5000 --epochs 1`` (seed 0,
  ``--val-size 1000 --limit-test 2000``), after the one-cycle warm-up got its floor in steps
  (``cnnlab.run.schedule.WARMUP_MIN_STEPS``) and short runs their smaller batch and learning
  rate (``cnnlab.run.recipes.MIN_EPOCH_STEPS``). Before, ``fastnet --epochs 1 --limit-train 5000``
  blew up (loss 10.8). Its results go to ``benchmarks/results/recipe_robustness_short.json``
  with the machine (CPU name) and the table to docs/training.md's "Short runs" block.

Each run's status (``finished``, or ``failed`` with the stall guard's reason), validation and test
accuracy and wall time go into ``benchmarks/results/recipe_robustness.json``; ``--docs`` rewrites
the table between the markers in ``docs/training.md`` from that file::

    .venv/bin/python benchmarks/recipe_robustness.py --part lenet
    .venv/bin/python benchmarks/recipe_robustness.py --part families --limit-train 4096
    .venv/bin/python benchmarks/recipe_robustness.py --docs       # table from the JSON only
    .venv/bin/python benchmarks/recipe_robustness.py --part short [--docs]

Runs already in the JSON file are kept and not run again (``--fresh`` starts over), so the two
parts, or an interrupted run, add up in one file.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "benchmarks" / "results" / "recipe_robustness.json"
DOCS = ROOT / "docs" / "training.md"
START, END = "<!-- recipe_robustness:start -->", "<!-- recipe_robustness:end -->"
SHORT_RESULTS = ROOT / "benchmarks" / "results" / "recipe_robustness_short.json"
SHORT_START, SHORT_END = "<!-- recipe_short:start -->", "<!-- recipe_short:end -->"
# (training images, epochs) of the short part: the ends of "1,000-5,000 images for 1-2 epochs".
SHORT_RUNS = ((1000, 2), (5000, 1))
SHORT_FLAGS = ["--val-size", "1000", "--limit-test", "2000"]
LENET_SEEDS = range(20)
FAMILY_SEEDS = range(3)
TARGET = 0.85  # the acceptance: lenet5 --epochs 2 at least 85% test accuracy on every seed


def smallest_per_family() -> dict[str, str]:
    """family -> its registered model with the fewest parameters."""
    from cnnlab.registry import list_models, model_info

    best: dict[str, tuple] = {}
    for name in list_models():
        info = model_info(name)
        key = (info.num_params, not name.startswith(info.family), name)
        if info.family not in best or key < best[info.family]:
            best[info.family] = key
    return {family: key[2] for family, key in sorted(best.items())}


def train_once(model: str, seed: int, epochs: int, extra: list[str]) -> dict[str, Any]:
    """One ``cnnlab train`` subprocess; what its run directory says."""
    with tempfile.TemporaryDirectory(prefix="robustness-") as tmp:
        out = Path(tmp) / "run"
        cmd = [sys.executable, "-m", "cnnlab", "train", model, "--epochs", str(epochs)]
        cmd += ["--seed", str(seed), "--no-progress", *extra, "--out", str(out)]
        t0 = time.perf_counter()
        proc = subprocess.run(cmd, capture_output=True, text=True)
        seconds = time.perf_counter() - t0
        history = (
            [json.loads(x) for x in (out / "metrics.jsonl").read_text().splitlines()]
            if (out / "metrics.jsonl").exists()
            else []
        )
        results = (
            json.loads((out / "results.json").read_text())
            if (out / "results.json").exists()
            else {"status": "error", "reason": proc.stderr.strip().splitlines()[-1:]}
        )
    return {
        "model": model,
        "seed": seed,
        "epochs": epochs,
        "flags": extra,
        "status": results["status"],
        "reason": results.get("reason"),
        "test_top1": results.get("test", {}).get("top1"),
        "val_acc": [h["val_acc"] for h in history],
        "train_loss": [h["train_loss"] for h in history],
        "warned": "WARNING:" in proc.stderr,
        "seconds": round(seconds, 1),
    }


def load(path: Path) -> dict[str, Any]:
    return json.loads(path.read_text()) if path.exists() else {"runs": []}


def save(path: Path, data: dict[str, Any]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(data, indent=1) + "\n")


def planned(
    part: str, limit_flags: list[str], only: set[str] | None = None
) -> list[tuple[str, str, int, int, list[str]]]:
    """(part, model, seed, epochs, flags) of every run of ``part``.

    The families part on limited data is ``families``; on the full data ``families-full``.
    """
    if part == "lenet":
        return [("lenet", "lenet5", s, 2, []) for s in LENET_SEEDS]
    label = "families" if limit_flags else "families-full"
    return [
        (label, model, s, 1, limit_flags)
        for model in smallest_per_family().values()
        if model != "tinynet" and (only is None or model in only)
        for s in FAMILY_SEEDS
    ]


def run_short(path: Path, only: set[str] | None, fresh: bool) -> dict[str, Any]:
    """The short part: every family's smallest model on 1,000 and 5,000 images (seed 0)."""
    sys.path.insert(0, str(ROOT / "benchmarks"))
    from machine import header

    from cnnlab.registry import model_info

    data = {"runs": []} if fresh or not path.exists() else json.loads(path.read_text())
    data |= header("recipe_robustness --part short")
    for model in smallest_per_family().values():
        if only is not None and model not in only:
            continue
        for images, epochs in SHORT_RUNS:
            key = (model, images, epochs)
            if any((r["model"], r["images"], r["epochs"]) == key for r in data["runs"]):
                continue
            flags = ["--limit-train", str(images), *SHORT_FLAGS]
            run = {"family": model_info(model).family, "images": images}
            run |= train_once(model, 0, epochs, flags)
            print(
                f"{model} {images} images x{epochs}: {run['status']} test "
                f"{pct(run['test_top1'])} loss {run['train_loss']} {run['seconds']} s",
                flush=True,
            )
            data["runs"].append(run)
            save(path, data)
    return data


def short_markdown(data: dict[str, Any]) -> str:
    """The "Short runs" table of docs/training.md."""
    models = list(dict.fromkeys(r["model"] for r in data["runs"]))  # in the order first run
    runs = sorted(data["runs"], key=lambda r: (models.index(r["model"]), r["images"]))
    cpu = data["machine"].get("cpu", "?")
    lines = [
        f"`cnnlab train MODEL --limit-train N --epochs E --val-size 1000 --limit-test 2000`, "
        f"seed 0, fast recipe, on {cpu} ({data['machine'].get('cores', '?')} cores shared with "
        "other jobs): training loss per epoch, last validation and test accuracy.",
        "",
        "| model | family | N, E | status | training loss | val acc | test acc | wall s |",
        "|---|---|---|---|---|---:|---:|---:|",
    ]
    for r in runs:
        losses = ", ".join(f"{x:.3f}" for x in r["train_loss"])
        val = pct(r["val_acc"][-1] if r["val_acc"] else None)
        lines.append(
            f"| {r['model']} | {r['family']} | {r['images']:,}, {r['epochs']} | {r['status']} | "
            f"{losses} | {val} | {pct(r['test_top1'])} | {r['seconds']:.0f} |"
        )
    return "\n".join(lines) + "\n"


def pct(x: float | None) -> str:
    return "-" if x is None else f"{100 * x:.2f}%"


def to_markdown(data: dict[str, Any]) -> str:
    """The docs table: the 20 LeNet-5 seeds, then the families."""
    runs = data["runs"]
    lenet = [r for r in runs if r["part"] == "lenet"]
    lines = []
    if lenet:
        tops = [r["test_top1"] or 0.0 for r in lenet]
        ok = sum(r["status"] == "finished" and (r["test_top1"] or 0) >= TARGET for r in lenet)
        lines += [
            f"`cnnlab train lenet5 --epochs 2 --seed S`, seeds 0-{len(lenet) - 1} (full "
            f"Fashion-MNIST): **{ok} of {len(lenet)} at or above {100 * TARGET:.0f}%** test "
            f"accuracy; min {pct(min(tops))}, median {pct(statistics.median(tops))}, max "
            f"{pct(max(tops))}.",
            "",
            "| seed | status | val acc (epoch 1, 2) | test acc | wall s |",
            "|---:|---|---|---:|---:|",
        ]
        for r in sorted(lenet, key=lambda r: r["seed"]):
            vals = ", ".join(pct(v) for v in r["val_acc"])
            lines.append(
                f"| {r['seed']} | {r['status']} | {vals} | {pct(r['test_top1'])} | "
                f"{r['seconds']:.0f} |"
            )
    for part in ("families-full", "families"):
        lines += _family_table([r for r in runs if r["part"] == part])
    return "\n".join(lines) + "\n"


def _family_table(families: list[dict[str, Any]]) -> list[str]:
    lines: list[str] = []
    if families:
        flags = " ".join(families[0]["flags"])
        command = f"cnnlab train MODEL --epochs 1 --seed S {flags}".strip()
        data = "a subset of Fashion-MNIST" if flags else "full Fashion-MNIST"
        lines += [
            "",
            f"Smallest model of each family, `{command}`, seeds 0-2, {data}:",
            "",
            "| model | family | status (seeds 0, 1, 2) | val acc | test acc | wall s (mean) |",
            "|---|---|---|---|---|---:|",
        ]
        by_model: dict[str, list[dict[str, Any]]] = {}
        for r in families:
            by_model.setdefault(r["model"], []).append(r)
        for model, rs in by_model.items():
            rs.sort(key=lambda r: r["seed"])
            status = ", ".join(r["status"] for r in rs)
            vals = ", ".join(pct(r["val_acc"][-1] if r["val_acc"] else None) for r in rs)
            tests = ", ".join(pct(r["test_top1"]) for r in rs)
            secs = statistics.mean(r["seconds"] for r in rs)
            lines.append(
                f"| {model} | {rs[0]['family']} | {status} | {vals} | {tests} | {secs:.0f} |"
            )
    return lines


def write_docs(markdown: str, docs: Path = DOCS, start: str = START, end: str = END) -> None:
    text = docs.read_text()
    if start not in text or end not in text:
        raise SystemExit(f"{docs} has no {start} ... {end} block to fill")
    head, rest = text.split(start, 1)
    _, tail = rest.split(end, 1)
    docs.write_text(f"{head}{start}\n{markdown}{end}{tail}")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--part", choices=("lenet", "families", "both", "short"), help="what to run"
    )
    parser.add_argument("--limit-train", type=int, help="families part: training images")
    parser.add_argument("--models", help="families part: only these models (comma-separated)")
    parser.add_argument("--val-size", type=int, default=1000, help="with --limit-train")
    parser.add_argument("--limit-test", type=int, default=2000, help="with --limit-train")
    parser.add_argument("--json", type=Path, default=RESULTS, help="results file")
    parser.add_argument("--fresh", action="store_true", help="forget the runs in the file")
    parser.add_argument("--docs", action="store_true", help="rewrite the docs table")
    args = parser.parse_args(argv)

    from cnnlab.registry import model_info

    if args.part == "short":
        only = set(args.models.split(",")) if args.models else None
        short = run_short(SHORT_RESULTS, only, args.fresh)
        markdown = short_markdown(short)
        print(markdown)
        if args.docs:
            write_docs(markdown, start=SHORT_START, end=SHORT_END)
        return 0
    data = {"runs": []} if args.fresh else load(args.json)
    limit: list[str] = []
    if args.limit_train:
        limit = ["--limit-train", str(args.limit_train), "--val-size", str(args.val_size)]
        limit += ["--limit-test", str(args.limit_test)]
    parts = {"both": ["lenet", "families"], None: []}.get(args.part, [args.part])
    for part in parts:
        only = set(args.models.split(",")) if args.models else None
        for part_, model, seed, epochs, flags in planned(part, limit, only):
            key = (part_, model, seed)
            if any((r["part"], r["model"], r["seed"]) == key for r in data["runs"]):
                continue
            run = {"part": part_, "family": model_info(model).family}
            run |= train_once(model, seed, epochs, flags)
            print(
                f"{model} seed {seed}: {run['status']} test {pct(run['test_top1'])} "
                f"val {[round(v, 4) for v in run['val_acc']]} {run['seconds']} s",
                flush=True,
            )
            data["runs"].append(run)
            data["machine"] = {
                "cpu": platform.processor() or platform.machine(),
                "cores": os.cpu_count(),
                "note": "2 cores shared with other jobs: wall times are noisy",
            }
            save(args.json, data)
    markdown = to_markdown(data)
    print(markdown)
    if args.docs:
        write_docs(markdown)
    return 0


if __name__ == "__main__":
    sys.exit(main())
