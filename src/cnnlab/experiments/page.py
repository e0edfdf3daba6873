"""Markdown from experiment results: one experiment's ``summary.md``, and ``docs/experiments.md``.

Both are rendered from ``results.json`` by :func:`experiment_markdown`, so the summary beside a
result and its section on the docs page say the same thing. :func:`write_page` gathers the results
of any number of experiment folders (whichever experiments have run), copies their figures into
the docs' figure folder and writes the page with the command that generated it.
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

from cnnlab import files, table
from cnnlab.experiments.base import (
    JUDGED,
    NOT_LEARNED,
    REQUEST_FILE,
    RESULTS_FILE,
    SMOKE,
    TIERS,
    read_record,
)
from cnnlab.formats import duration

DEFAULT_FIGURES = Path("docs/figures/experiments")

VERDICT_WORDS = {True: "the claim held", False: "the claim did not hold", None: "inconclusive"}


def verdict_words(results: dict[str, Any]) -> str:
    """The verdict in a few words: held, did not hold, inconclusive, or none (smoke tier)."""
    judged = results.get("judged", JUDGED)
    if judged == SMOKE:
        return "no verdict (smoke tier)"
    if judged == NOT_LEARNED:
        return "inconclusive: the networks did not learn"
    return VERDICT_WORDS[results.get("held")]


INTRO = """\
The lectures make empirical claims: the 56-layer plain network trains worse than the 20-layer one
and residual connections fix it, batch norm speeds training up, dropout and data augmentation
narrow the gap between training and test accuracy, three 3x3 convolutions beat one 7x7, and so
on. Each section below reruns one claim with `cnnlab experiment run NAME` and reports what this
machine measured, whether the claim held *at that tier*, and how the run departs from the paper
(fewer epochs, fewer images, another dataset). A claim that did not reproduce says so, with the
numbers. Tiers: `smoke` (seconds, the test suite), `quick` (minutes on a 2-core laptop), `full`
(the paper's scale, hours).

A verdict needs networks that learned: each network it rests on must beat chance (1 / classes)
by 10 points on its test images (`LEARNED_MARGIN` in `cnnlab/experiments/base.py`, which gives
the reason); otherwise the experiment says "inconclusive: the networks did not learn at this
tier" with their accuracies. The smoke tier only checks that the machinery runs and gives no
verdict. Every quick-tier verdict below rests on networks at 76% or more (10 classes, chance
10%; degradation's plain-56 at 16% is the claim itself, not a reference), so these rules
leave them unchanged. Figures are drawn from `results.json` alone, from the numbers the text
states; training accuracy is the weights' accuracy on their training images in evaluation mode
wherever the regularisers' pages show it.

Short runs now warm up over at least 64 steps (`WARMUP_MIN_STEPS`, docs/training.md), which
changes the schedule of every quick tier whose warm-up was shorter, so kernel-stacks,
bottleneck, augmentation, batchnorm and loss-landscape were rerun (Intel Xeon, one thread each).
Four verdicts are unchanged. loss-landscape's is not: before the floor, resnet20's mean
|lambda_min/lambda_max| was 0.260 against plain20's 0.385 ("held"); after it, 0.424 against
0.409 ("did not hold"). Nine points of one 20-layer pair cannot separate the two (Li et al.
themselves see little difference at 20 layers), so read that claim at the full tier."""


def _heading(level: int, text: str) -> str:
    return f"{'#' * level} {text}"


def _machine_line(results: dict[str, Any]) -> str:
    m = results.get("machine", {})
    device = m.get("cuda") or f"{m.get('cpu', '?')}, {m.get('threads', '?')} thread(s)"
    line = f"{device}; torch {m.get('torch', '?')}, cnnlab {results.get('cnnlab', '?')}"
    load = m.get("load_average")
    if load and None not in load:
        when = " (its last invocation)" if results.get("resumed") else ""
        line += f"; load average {load[0]:.1f} at the start, {load[1]:.1f} at the end{when}"
    return line


def rerun_command(results: dict[str, Any]) -> str:
    """The command that reruns the experiment as it was run."""
    command = f"cnnlab experiment run {results['experiment']} --tier {results['tier']}"
    if results.get("seed"):
        command += f" --seed {results['seed']}"
    return command + f" --data {results['data']}"


def experiment_markdown(
    results: dict[str, Any], figures_prefix: str = "figures/", level: int = 1
) -> str:
    """One experiment's claim, findings, verdict, departures and figures as Markdown.

    Args:
        results: a ``results.json`` dict.
        figures_prefix: what goes before each figure's file name in the image links.
        level: heading level of the experiment's title (1 in ``summary.md``, 2 on the page).
    """
    sub = level + 1
    lines = [
        _heading(level, f"{results['title']} (`{results['experiment']}`, {results['tier']} tier)"),
        "",
        f"**Claim.** {results['claim']} ({results['source']})",
        "",
        f"**Rerun:** `{rerun_command(results)}`  ",
        f"**Tier:** {results['tier']} · **data:** {results['data']} · **seed:** "
        f"{results['seed']} · **time:** {duration(results['seconds'], coarse=True)}"
        + (" (over several invocations: it was resumed)" if results.get("resumed") else "")
        + "  ",
        f"**Machine:** {_machine_line(results)}",
        "",
        _heading(
            sub,
            "No verdict: the smoke tier checks the machinery"
            if results.get("judged") == SMOKE
            else f"Verdict: {verdict_words(results)} at this tier",
        ),
        "",
        results["verdict"],
        "",
        _heading(sub, "What was measured"),
        "",
    ]
    for block in results.get("findings", []):
        lines += [block, ""]
    lines += [_heading(sub, "How this departs from the paper"), ""]
    lines += [f"- {d}" for d in results.get("departures", [])] or ["- nothing stated"]
    lines.append("")
    if results.get("figures"):
        lines += [_heading(sub, "Figures"), ""]
        for fig in results["figures"]:
            lines += [f"![{fig['caption']}]({figures_prefix}{fig['file']})", "", fig["caption"], ""]
    return "\n".join(lines).rstrip() + "\n"


# --- the docs page --------------------------------------------------------------------------------


def find_results(dirs: Iterable[str | os.PathLike[str]]) -> list[Path]:
    """Experiment folders holding finished results: each of ``dirs``, or the folders in it.

    A run directory inside an experiment (``OUT/runs/LABEL``) has a ``results.json`` too, so an
    experiment folder is one with both ``results.json`` and ``experiment.json``.
    """
    found: list[Path] = []
    for d in map(Path, dirs):
        candidates = [d] if (d / REQUEST_FILE).exists() else sorted(d.glob("*"))
        found += [
            c for c in candidates if (c / RESULTS_FILE).exists() and (c / REQUEST_FILE).exists()
        ]
    return found


def _order(results: dict[str, Any]) -> tuple[int, int]:
    from cnnlab.experiments.catalogue import EXPERIMENTS

    names = [name for name, _ in EXPERIMENTS]
    name, tier = results["experiment"], results["tier"]
    return (names.index(name) if name in names else len(names), TIERS.index(tier))


def write_page(
    dirs: Sequence[str | os.PathLike[str]],
    out: str | os.PathLike[str],
    figures_dir: str | os.PathLike[str] | None = None,
    command: str | None = None,
) -> Path:
    """Write the docs page for the experiment results under ``dirs``; copy their figures.

    Args:
        dirs: experiment folders, or folders holding them (``experiments/``).
        out: the Markdown file to write.
        figures_dir: where the figures are copied (default ``figures/experiments`` beside the
            page: ``OUT.parent/figures/experiments``).
        command: the command that generated the page, quoted on it.

    Returns:
        The page's path.
    """
    out = Path(out)
    figures = Path(figures_dir) if figures_dir is not None else out.parent / "figures/experiments"
    all_results = []
    for folder in find_results(dirs):
        results = read_record(folder / RESULTS_FILE, folder)
        for fig in results.get("figures", []):
            source = folder / "figures" / fig["file"]
            files.write_bytes_atomic(
                figures / (figure_stem(results) + fig["file"]), source.read_bytes()
            )
        all_results.append(results)
    command = command or "cnnlab experiment page " + " ".join(map(str, dirs)) + f" -o {out}"
    prefix = Path(os.path.relpath(figures, out.parent)).as_posix() + "/"
    where = ", ".join(map(str, dirs))
    files.write_bytes_atomic(out, page_markdown(all_results, prefix, command, where).encode())
    return out


def figure_stem(results: dict[str, Any]) -> str:
    """What goes before an experiment's figure names in the page's figure folder: ``NAME-TIER-``."""
    return f"{results['experiment']}-{results['tier']}-"


def page_markdown(
    all_results: Iterable[dict[str, Any]], figures_prefix: str, command: str, where: str
) -> str:
    """The docs page: an overview and one section per experiment, in registry order.

    Args:
        all_results: ``results.json`` dicts, in any order.
        figures_prefix: the figure folder relative to the page, ending in ``/``; each figure is
            linked as ``figures_prefix + figure_stem(results) + FILE``.
        command: the command that generated the page, quoted on it.
        where: the folders the results were read from, named on the page.
    """
    ordered = sorted(all_results, key=_order)
    sections = [experiment_markdown(r, figures_prefix + figure_stem(r), level=2) for r in ordered]
    page = [
        "# Experiments: the lectures' claims, rerun",
        "",
        INTRO,
        "",
        f"This page is generated from the experiments' results (`{where}`) by `{command}`; "
        "edit the experiments, not the page.",
        "",
        _overview(ordered),
        "",
        *sections,
    ]
    return "\n".join(page)


def _overview(all_results: Iterable[dict[str, Any]]) -> str:
    """A table of every experiment on the page: tier, verdict, time."""
    rows = [
        [
            f"{r['title']} (`{r['experiment']}`)",
            r["tier"],
            r["data"],
            verdict_words(r),
            duration(r["seconds"], coarse=True),
        ]
        for r in all_results
    ]
    if not rows:
        return "No experiment has results yet: run `cnnlab experiment run NAME --tier quick`."
    header = ["experiment", "tier", "data", "verdict", "time"]
    return "\n".join(table.markdown(header, rows))
