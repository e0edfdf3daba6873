"""Running an experiment: choose the data and the folder, run it through a Context, write results.

An experiment folder (``--out``, default ``experiments/NAME-TIER``)::

    OUT/experiment.json        what was asked (experiment, tier, data, seed, settings): --resume
                               checks it
    OUT/runs/LABEL/            one ordinary cnnlab run directory per ``ctx.train`` call
    OUT/measurements/LABEL.json  one per ``ctx.measure`` call
    OUT/figures/NAME.png       the experiment's figures
    OUT/results.json           everything measured, the verdict, the machine (written last)
    OUT/summary.md             the same for people: claim, findings, verdict, departures, figures

A folder that holds anything is only continued with ``resume=True`` (``--resume``), as
``cnnlab train`` does with a run directory: a finished run inside is reused as it is, an
interrupted one resumes from its newest checkpoint.
"""

from __future__ import annotations

import os
import sys
import time
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from cnnlab import __version__, files
from cnnlab.errors import ConfigError, DataError
from cnnlab.experiments.base import (
    CLOCK_FILE,
    JUDGED,
    LEARNED_MARGIN,
    NOT_LEARNED,
    REQUEST_FILE,
    RESULTS_FILE,
    SMOKE,
    SUMMARY_FILE,
    TIERS,
    Context,
    Drawn,
    Experiment,
    Outcome,
    json_ready,
    read_record,
)


@dataclass
class ExperimentResult:
    """What :func:`run_experiment` returns: the folder, the ``results.json`` dict, the outcome."""

    out: Path
    results: dict[str, Any]
    outcome: Outcome


def run_experiment(
    name: str,
    *,
    tier: str = "quick",
    data: str | None = None,
    out: str | Path | None = None,
    resume: bool = False,
    seed: int = 0,
    quiet: bool = False,
    threads: int = 0,
) -> ExperimentResult:
    """Run the experiment ``name`` at ``tier`` and write its results, figures and summary.

    Args:
        name: a registry name (``cnnlab experiment list``).
        tier: ``smoke`` (seconds), ``quick`` (minutes) or ``full`` (the paper's scale, hours).
        data: dataset to use (default: the first of the experiment's datasets installed).
        out: the experiment folder (default ``experiments/NAME-TIER``).
        resume: continue the experiment in ``out`` (finished runs reused, others resumed).
        seed: seed of every run and measurement.
        quiet: print nothing (no expected time, notes or progress bar).
        threads: CPU threads per run (0: all the process may use).

    Raises:
        ConfigError: unknown tier, a non-empty ``out`` without ``resume``, or a resume with
            other settings.
        DataError: none of the experiment's datasets is installed.
    """
    from cnnlab.experiments.catalogue import get_experiment

    experiment = get_experiment(name)
    if tier not in experiment.tiers:
        raise ConfigError(
            f"unknown tier {tier!r} for {name}: use --tier {' or '.join(experiment.tiers)}"
        )
    settings = dict(experiment.tiers[tier])
    data = choose_data(experiment, data)
    folder = Path(out) if out is not None else default_out(name, tier)
    request = {"experiment": name, "tier": tier, "data": data, "seed": seed, "settings": settings}
    resumed = check_folder(folder, request, resume)
    files.write_json_atomic(folder / REQUEST_FILE, json_ready(request))
    say = _printer(quiet)
    jobs = experiment.jobs(settings)
    say(_announcement(experiment, tier, data, jobs, folder))
    bar = _progress_bar(jobs, name, quiet)
    ctx = Context(
        tier=tier,
        settings=settings,
        data=data,
        out=folder,
        seed=seed,
        quiet=quiet,
        threads=threads,
        bar=bar,
        say=_bar_printer(bar, say),
        spent=_spent(folder) if resumed else 0.0,
    )
    t0, load_start = time.perf_counter(), _load_average()
    try:
        outcome = experiment.run(ctx)
    finally:
        if bar is not None:
            bar.close()
    load = [load_start, _load_average()]
    record = json_ready({"measured": outcome.measured, "settings": settings})
    record.update(experiment=name, data=data, tier=tier)
    for drawn in draw_figures(experiment, record):
        ctx.figure(drawn.name, drawn.figure, drawn.caption)
    results = results_record(experiment, ctx, outcome, time.perf_counter() - t0, resumed, load)
    files.write_json_atomic(folder / CLOCK_FILE, {"seconds": results["seconds"]})
    write_results(folder, results)
    return ExperimentResult(folder, results, outcome)


def _announcement(experiment: Experiment, tier: str, data: str, jobs: int, folder: Path) -> str:
    """What is about to run, and for how long (printed before it starts)."""
    from cnnlab.experiments.timings import expected

    text = (
        f"{experiment.name} ({tier} tier, {data}): {jobs} job(s), expected time "
        f"{expected(experiment, tier).words()}; results in {folder}"
    )
    if tier == "full":
        text += f"; stop it any time and continue with --resume --out {folder}"
    return text


def draw_figures(experiment: Experiment, results: Mapping[str, Any]) -> list[Drawn]:
    """The experiment's figures drawn from a ``results.json`` record (its numbers as kept).

    ``results`` needs ``experiment``, ``measured``, ``settings``, ``data`` and ``tier``
    (``results.json`` has them all); it is read back as
    JSON first, so a figure drawn now and one redrawn from the kept file are the same.
    """
    if experiment.draw is None:
        return []
    import json

    return experiment.draw(json.loads(json.dumps(json_ready(dict(results)))))


def judge(ctx: Context, outcome: Outcome) -> dict[str, Any]:
    """The verdict to report: the experiment's own, or why there is none.

    The smoke tier only checks that the machinery runs, so it gives no verdict. Otherwise a
    verdict needs the networks it rests on (``outcome.learners``, default every run) to have
    learned: test accuracy at least chance plus :data:`LEARNED_MARGIN`.

    Returns:
        ``held``, ``verdict``, ``judged`` (``verdict``, ``did not learn`` or ``smoke``) and
        ``learned``: per run its test accuracy, chance and the accuracy a verdict needs.
    """
    labels = ctx.runs if outcome.learners is None else list(outcome.learners)
    learned = {}
    for label in labels:
        top1, classes = ctx.trained[label]
        chance = 1 / classes
        needed = chance + LEARNED_MARGIN
        learned[label] = {"test_accuracy": top1, "chance": chance, "needed": needed}
    scores = ", ".join(f"{label} {v['test_accuracy']:.2%}" for label, v in learned.items())
    chance_text = ""
    if learned:
        first = next(iter(learned.values()))
        chance_text = (
            f"; chance {first['chance']:.1%}, a verdict needs {first['needed']:.1%} or more"
        )
    if ctx.tier == SMOKE:
        verdict = (
            f"no verdict: the smoke tier checks that the machinery runs ({len(ctx.runs)} run(s), "
            f"{len(ctx.figures)} figure(s)), it is too short to test the claim"
            + (f" (test accuracy {scores}{chance_text})" if learned else "")
            + "; run --tier quick for a verdict."
        )
        return {"held": None, "verdict": verdict, "judged": SMOKE, "learned": learned}
    if any(v["test_accuracy"] < v["needed"] for v in learned.values()):
        verdict = (
            f"inconclusive: the networks did not learn at this tier (test accuracy {scores}"
            f"{chance_text}), so their numbers cannot test the claim; a verdict needs networks "
            "that learn (a longer tier, or a lower learning rate for a run that diverged)."
        )
        return {"held": None, "verdict": verdict, "judged": NOT_LEARNED, "learned": learned}
    return {"held": outcome.held, "verdict": outcome.verdict, "judged": JUDGED, "learned": learned}


# --- choosing the data and the folder -------------------------------------------------------------


def choose_data(experiment: Experiment, data: str | None) -> str:
    """The dataset the user named, or the first of the experiment's that is installed."""
    from cnnlab.data import find_dataset

    if data is not None:
        return data
    for name in experiment.data:
        if find_dataset(name, "train") is not None and find_dataset(name, "test") is not None:
            return name
    raise DataError(
        f"{experiment.name} needs one of {', '.join(experiment.data)}, and none is installed: "
        f"run `cnnlab data fetch {experiment.data[-1]}` or pass --data"
    )


def default_out(name: str, tier: str) -> Path:
    return Path("experiments") / f"{name}-{tier}"


def check_folder(folder: Path, request: dict[str, Any], resume: bool) -> bool:
    """Refuse to mix experiments: a non-empty folder needs ``resume`` and the same request.

    Returns:
        Whether the folder holds earlier work (which this invocation continues).
    """
    if folder.exists() and not folder.is_dir():
        raise ConfigError(f"--out {folder} is a file: choose a folder for the experiment")
    saved = folder / REQUEST_FILE
    is_experiment = saved.exists() or saved.is_symlink()
    holds = folder.is_dir() and any(folder.iterdir())
    if holds and not is_experiment:
        raise ConfigError(
            f"{folder} holds {_contents(folder)} and no experiment ({REQUEST_FILE}): choose an "
            "empty or new folder with --out NEW_DIR"
        )
    if holds and not resume:
        old = read_record(saved, folder)
        state = "finished" if (folder / RESULTS_FILE).exists() else "unfinished"
        raise ConfigError(
            f"{folder} already holds experiment {old.get('experiment')!r} ({old.get('tier')} "
            f"tier, {state}): pass --resume to continue it, or --out NEW_DIR"
        )
    if not (resume and is_experiment):
        return holds
    old = read_record(saved, folder)
    new = json_ready(request)
    keys = ("experiment", "tier", "data", "seed")
    diffs = [f"{k}: {old.get(k)!r} there, {new[k]!r} now" for k in keys if old.get(k) != new[k]]
    if not diffs and not isinstance(old.get("settings"), dict):
        raise ConfigError(f"damaged experiment {folder}: {REQUEST_FILE}: settings is not an object")
    if not diffs:
        old_settings = {k: v for k, v in old["settings"].items() if k != "expected_s"}
        new_settings = {k: v for k, v in new["settings"].items() if k != "expected_s"}
        if old_settings != new_settings:  # same experiment and tier: the tier itself changed
            diffs.append("the tier's settings changed (made by a different cnnlab version)")
    if diffs:
        raise ConfigError(
            f"cannot resume {folder}: {'; '.join(diffs)}; resume with the same settings or "
            "start a new experiment with --out NEW_DIR"
        )
    return True


def _contents(folder: Path, shown: int = 3) -> str:
    """What a folder holds, for an error: ``notes.txt, data/ and 4 more``."""
    names = sorted(p.name + ("/" if p.is_dir() else "") for p in folder.iterdir())
    text = ", ".join(repr(n) for n in names[:shown])
    return text + (f" and {len(names) - shown} more" if len(names) > shown else "")


# --- the runs -------------------------------------------------------------------------------------


def _spent(folder: Path) -> float:
    """Seconds earlier invocations of the experiment in ``folder`` ran (``time.json``)."""
    clock = folder / CLOCK_FILE
    if not (clock.exists() or clock.is_symlink()):
        return 0.0
    seconds = read_record(clock, folder).get("seconds")
    if isinstance(seconds, bool) or not isinstance(seconds, (int, float)) or not 0 <= seconds < 1e9:
        raise ConfigError(
            f"damaged experiment {folder}: {CLOCK_FILE}: seconds is {seconds!r}, not a duration; "
            f"delete {clock} to resume without the time spent so far"
        )
    return float(seconds)


def results_record(
    experiment: Experiment,
    ctx: Context,
    outcome: Outcome,
    seconds: float,
    resumed: bool,
    load: list[float | None] | None = None,
) -> dict[str, Any]:
    """The ``results.json`` of a finished experiment.

    ``load`` is the 1-minute load average at the start and end of this invocation: other jobs
    on the machine slow every timing down.
    """
    judged = judge(ctx, outcome)
    return json_ready(
        {
            "experiment": experiment.name,
            "title": experiment.title,
            "tier": ctx.tier,
            "data": ctx.data,
            "seed": ctx.seed,
            "claim": experiment.claim,
            "source": experiment.source,
            "settings": dict(ctx.settings),
            "measured": outcome.measured,
            "held": judged["held"],
            "verdict": judged["verdict"],
            "judged": judged["judged"],
            "learned": judged["learned"],
            # What the experiment's numbers alone say, before the checks above (for tests and
            # the curious; never shown as the verdict).
            "reading": {"held": outcome.held, "verdict": outcome.verdict},
            "findings": outcome.findings,
            "departures": outcome.departures,
            "paper": outcome.paper,
            "figures": [{"file": f.file, "caption": f.caption} for f in ctx.figures],
            "runs": ctx.runs,
            "notes": ctx.notes,
            "seconds": round(ctx.elapsed(), 1),  # earlier, interrupted invocations included
            "seconds_this_invocation": round(seconds, 1),
            "resumed": resumed,
            "machine": {
                **machine(ctx.threads, ctx.run_threads.values()),
                "load_average": load or [None, None],
            },
            "cnnlab": __version__,
        }
    )


def write_results(folder: Path, results: dict[str, Any]) -> None:
    """``summary.md`` first, then ``results.json``: its presence means the experiment finished."""
    from cnnlab.experiments.page import experiment_markdown

    summary = experiment_markdown(results, figures_prefix="figures/", level=1)
    files.write_bytes_atomic(folder / SUMMARY_FILE, summary.encode())
    files.write_json_atomic(folder / RESULTS_FILE, results)


def machine(threads: int = 0, used: Iterable[int | None] = ()) -> dict[str, Any]:
    """What the experiment ran on: CPU, threads, accelerator, torch and Python versions.

    ``threads`` is what was asked (0: all); ``used`` what the runs trained with (a busy machine
    gets one thread each), reported as ``threads`` when known.
    """
    from cnnlab.run.device import describe_machine

    here = describe_machine()
    counts = sorted({t for t in used if t})
    return {
        "cpu": here["cpu"],
        "cores": here["cores"],
        "threads": "-".join(map(str, (counts[0], counts[-1]) if len(counts) > 1 else counts))
        if counts
        else str(threads or here["threads"]),
        "cuda": here["gpu"],
        "torch": here["torch"],
        "python": here["python"],
    }


def _load_average() -> float | None:
    """The 1-minute load average (None where the OS does not report one)."""
    try:
        return round(os.getloadavg()[0], 2)
    except OSError:
        return None


def format_seconds(seconds: float) -> str:
    """``42 s``, ``6.5 min`` or ``3.2 h`` (:func:`cnnlab.formats.duration`, coarse)."""
    from cnnlab.formats import duration

    return duration(seconds, coarse=True)


# --- printing -------------------------------------------------------------------------------------


def _printer(quiet: bool) -> Callable[[str], None]:
    return (lambda text: None) if quiet else (lambda text: print(text, file=sys.stderr))


def _progress_bar(jobs: int, name: str, quiet: bool) -> Any:
    """A tqdm bar over the experiment's jobs (stderr), or None when quiet."""
    if quiet:
        return None
    from tqdm.auto import tqdm

    return tqdm(total=jobs, desc=name, unit="job", file=sys.stderr, dynamic_ncols=True)


def _bar_printer(bar: Any, say: Callable[[str], None]) -> Callable[[str], None]:
    """Print through the bar (so its line is redrawn below the text), when there is one."""
    if bar is None:
        return say
    return lambda text: bar.write(text, file=sys.stderr)


__all__ = ["TIERS", "ExperimentResult", "run_experiment"]
