"""What an experiment is, and the context it does its work through.

An :class:`Experiment` is data (its name, the lecture's claim, the settings of each tier) plus one
function, ``run(ctx) -> Outcome``. The function trains and measures only through the
:class:`Context` the runner hands it, so every experiment gets the same guarantees for free:

* ``ctx.train`` trains an ordinary cnnlab run (``cnnlab.train.fit``) in ``OUT/runs/LABEL``; a
  finished run is reused without training, an interrupted one resumes bitwise exactly from its
  checkpoint (as ``cnnlab train --resume``), so a killed experiment loses at most the steps since
  the last checkpoint;
* ``ctx.measure`` runs a measurement once and keeps its JSON result, so a resumed experiment does
  not measure again;
* ``ctx.figure`` writes a figure atomically and records its caption for ``summary.md`` and the
  docs page;
* the progress bar over the whole experiment counts ``ctx.train`` and ``ctx.measure`` jobs.

This module imports neither torch nor matplotlib: ``cnnlab experiment list`` stays fast.
"""

from __future__ import annotations

import json
import math
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from cnnlab import files
from cnnlab.errors import CnnlabError, ConfigError

if TYPE_CHECKING:
    from matplotlib.figure import Figure

    from cnnlab.train.trainer import RunResult

TIERS = ("smoke", "quick", "full")
# An experiment folder's files (its runs are ordinary run directories under runs/).
REQUEST_FILE = "experiment.json"  # what was asked: experiment, tier, data, seed, settings
CLOCK_FILE = "time.json"  # seconds spent so far, across resumed invocations
RESULTS_FILE = "results.json"  # written last: its presence means the experiment finished
SUMMARY_FILE = "summary.md"
FIGURE_DPI = 120
# A network "learned" when its test accuracy beats chance (1 / classes) by this much. A net that
# learned nothing scores chance plus noise: on the smoke tier's 128 test images one standard
# deviation at 10% is 2.7 points, so 10 points is almost four of them; every network a verdict
# rests on at the quick tier scored 76% or more on 10 classes (docs/experiments.md). A verdict
# about how networks train, drawn from networks at chance, would be a verdict about noise.
LEARNED_MARGIN = 0.10
# How a verdict was reached (results.json["judged"]): from the numbers, withheld because the
# networks did not learn, or not attempted (the smoke tier only checks that the machinery runs).
JUDGED, NOT_LEARNED, SMOKE = "verdict", "did not learn", "smoke"


@dataclass(frozen=True)
class Experiment:
    """One of the lectures' empirical claims, and how to test it at each tier.

    Attributes:
        name: registry name, e.g. ``"kernel-stacks"``.
        title: one line, e.g. ``"Three 3x3 convolutions against one 7x7"``.
        claim: the lecture's claim, quoting the slides where possible.
        source: the papers and slides it comes from.
        tiers: per tier (``smoke``, ``quick``, ``full``) the experiment's own settings, plus
            ``"expected_s"`` for a tier never measured: an estimate in seconds on this
            project's 2-core CPU (a measured tier's time comes from its kept results,
            :mod:`cnnlab.experiments.timings`).
        run: does the work through the :class:`Context`; returns the :class:`Outcome`.
        jobs: how many ``ctx.train``/``ctx.measure`` calls a tier's settings make (the length
            of the progress bar).
        data: datasets it accepts, preferred first; the first one installed is used unless the
            user names one.
        draw: the experiment's figures, drawn from its ``results.json`` record alone (its
            ``measured``, ``settings``, ``data`` and ``tier``), so a figure shows the numbers
            the text states and can be redrawn from kept results.
    """

    name: str
    title: str
    claim: str
    source: str
    tiers: Mapping[str, Mapping[str, Any]]
    run: Callable[[Context], Outcome]
    jobs: Callable[[Mapping[str, Any]], int]
    data: tuple[str, ...] = ("fashion-mnist",)
    draw: Callable[[Mapping[str, Any]], list[Drawn]] | None = None


@dataclass
class Drawn:
    """A figure an experiment draws from its results (``name`` is the PNG's stem)."""

    name: str
    figure: Figure
    caption: str


@dataclass
class Outcome:
    """What an experiment found; the runner writes it to ``results.json`` and ``summary.md``.

    Attributes:
        measured: JSON-ready numbers (``results.json["measured"]``).
        held: whether the claim held at this tier (``None``: inconclusive).
        verdict: one or two sentences with the numbers that decide it.
        findings: Markdown blocks (paragraphs or tables) of what was measured.
        departures: how this tier departs from the paper (epochs, data, resolution, grid...).
        paper: the published figures compared against.
        learners: labels of the runs (``ctx.train``) whose learning the verdict rests on; it
            is withheld unless each beat chance by :data:`LEARNED_MARGIN` (None: every run).
    """

    measured: dict[str, Any]
    held: bool | None
    verdict: str
    findings: list[str]
    departures: list[str]
    paper: dict[str, Any] = field(default_factory=dict)
    learners: tuple[str, ...] | None = None


@dataclass(frozen=True)
class FigureRecord:
    """A figure an experiment wrote: its file name under ``OUT/figures`` and its caption."""

    file: str
    caption: str


class Context:
    """The experiment's window on the world: train, measure, draw and tell, all resumable.

    Built by :func:`cnnlab.experiments.runner.run_experiment`; experiments use only the public
    attributes (``tier``, ``settings``, ``data``, ``out``, ``seed``, ``quiet``) and methods.
    """

    def __init__(
        self,
        *,
        tier: str,
        settings: Mapping[str, Any],
        data: str,
        out: Path,
        seed: int = 0,
        quiet: bool = False,
        threads: int = 0,
        bar: Any = None,
        say: Callable[[str], None] = print,
        spent: float = 0.0,
    ) -> None:
        self.tier, self.settings, self.data = tier, settings, data
        self.out, self.seed, self.quiet = Path(out), seed, quiet
        self.threads = threads  # CPU threads of each run (0: all the process may use)
        self.runs: list[str] = []
        self.figures: list[FigureRecord] = []
        self.notes: list[str] = []
        self.run_threads: dict[str, int | None] = {}  # CPU threads each run trained with
        # Each run's test top-1 (0-1) and number of classes: whether it learned.
        self.trained: dict[str, tuple[float, int]] = {}
        self._bar, self._say = bar, say
        # Wall time of earlier invocations (a resumed experiment), kept in OUT/time.json at
        # every finished job so a kill loses at most the current job's share.
        self._spent, self._t0 = spent, time.perf_counter()

    # --- the work ---------------------------------------------------------------------------------

    def train(self, label: str, *, callbacks: Sequence[Any] = (), **fields: Any) -> RunResult:
        """Train one ordinary cnnlab run in ``OUT/runs/LABEL``, or reuse/resume the one there.

        Args:
            label: the run's name inside the experiment (a directory name).
            callbacks: training callbacks (:class:`~cnnlab.train.callbacks.Callback`) for a
                run that trains; a finished run that is reused calls none.
            **fields: :class:`~cnnlab.train.TrainConfig` settings (``model``, ``epochs``,
                ``limit_train``...); recipe fields left out come from the recipe. ``data``,
                ``seed`` and ``threads`` default to the experiment's and ``stall_patience`` to
                0; ``out``, ``resume`` and ``progress`` are the context's.

        Returns:
            The run's :class:`~cnnlab.train.trainer.RunResult` (history, test metrics).

        Raises:
            ConfigError: the run in ``OUT/runs/LABEL`` was made with other settings.
            TrainingError: the run failed (a non-finite loss); its checkpoints are kept.
        """
        from cnnlab.experiments.runs import run_threads, train_or_reuse

        run_dir = self.out / "runs" / label
        config = self._run_config(run_dir, fields)
        hooks = [self._epoch_callback(label), *callbacks]
        result = train_or_reuse(run_dir, config, set(fields), hooks)
        self.runs.append(label)
        self.run_threads[label] = run_threads(run_dir)
        self.trained[label] = (result.test.top1, len(result.test.per_class))
        self._advance(f"{label} done")
        return result

    def measure(self, label: str, fn: Callable[[], dict[str, Any]]) -> dict[str, Any]:
        """``fn()``'s JSON-ready result, measured once and kept in ``OUT/measurements/LABEL.json``.

        A rerun with ``--resume`` returns the kept value without calling ``fn``.
        """
        path = self.out / "measurements" / f"{label}.json"
        value = None
        if path.exists() or path.is_symlink():
            try:
                value = read_record(path, self.out)
            except CnnlabError as err:  # a measurement is redone, neither trusted nor fatal
                if path.is_dir() and not path.is_symlink():
                    raise ConfigError(f"{err}; remove {path} and resume") from None
                self.note(f"note: {err}; measuring it again")
                path.unlink()
        if value is None:
            self._status(f"measuring {label}")
            value = fn()
            files.write_json_atomic(path, json_ready(value))
            value = json.loads(json.dumps(json_ready(value)))  # as a resumed run reads it back
        self._advance(f"{label} measured")
        return value

    def figure(self, name: str, fig: Figure, caption: str) -> Path:
        """Write ``fig`` to ``OUT/figures/NAME.png`` and keep its caption for the summary."""
        from cnnlab import plotting

        path = plotting.save(fig, self.out / "figures" / f"{name}.png", FIGURE_DPI)
        self.figures = [f for f in self.figures if f.file != path.name]
        self.figures.append(FigureRecord(path.name, caption))
        return path

    def note(self, text: str) -> None:
        """A line for the user (printed unless quiet), also kept in ``results.json["notes"]``."""
        self.notes.append(text)
        if not self.quiet:
            self._say(text)

    # --- helpers ----------------------------------------------------------------------------------

    def _run_config(self, run_dir: Path, fields: dict[str, Any]) -> Any:
        from cnnlab.run.config import TrainConfig

        own = {
            "data": self.data,
            "seed": self.seed,
            "threads": self.threads,
            # An experiment measures what happens, a run stuck at chance included: the stall
            # guard would end the whole experiment instead of recording the stall.
            "stall_patience": 0,
        }
        fixed = {"out": str(run_dir), "resume": True, "progress": False}
        return TrainConfig(**{**own, **fields, **fixed})

    def _epoch_callback(self, label: str) -> Any:
        """A training callback that shows the run's epoch on the experiment's bar."""
        from cnnlab.train.callbacks import Callback

        status = self._status

        class EpochStatus(Callback):
            def on_epoch_end(self, trainer: Any, record: dict[str, Any]) -> None:
                status(f"{label}: epoch {record['epoch']}/{trainer.config.epochs}")

        return EpochStatus()

    def _status(self, text: str) -> None:
        if self._bar is not None:
            self._bar.set_postfix_str(text, refresh=True)

    def elapsed(self) -> float:
        """Seconds this experiment has run, earlier invocations of a resumed one included."""
        return self._spent + time.perf_counter() - self._t0

    def _advance(self, text: str) -> None:
        files.write_json_atomic(self.out / CLOCK_FILE, {"seconds": round(self.elapsed(), 1)})
        if self._bar is not None:
            self._bar.set_postfix_str(text, refresh=False)
            self._bar.update(1)


def read_record(path: Path, folder: Path, kind: str = "object") -> Any:
    """A JSON file of an experiment folder, read the one safe way (:func:`cnnlab.files.read_json`).

    Args:
        path: the file.
        folder: the experiment folder (named in the error).
        kind: ``object`` (a JSON object is required) or ``any``.

    Raises:
        ConfigError: ``damaged experiment FOLDER: FILE: what is wrong`` (one line).
    """

    def damaged(what: str) -> ConfigError:
        return ConfigError(f"damaged experiment {folder}: {path.name}: {what}")

    try:
        value = files.read_json(path, what=path.name, error=ConfigError)
    except ConfigError as err:
        raise damaged(str(err).removeprefix(f"{path}: ")) from None
    if kind == "object" and not isinstance(value, dict):
        raise damaged(f"not a JSON object but {type(value).__name__}")
    return value


def json_ready(value: Any) -> Any:
    """``value`` with tuples as lists and non-finite floats as None (JSON has no NaN)."""
    if isinstance(value, Mapping):
        return {str(k): json_ready(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [json_ready(v) for v in value]
    if isinstance(value, float) and not math.isfinite(value):
        return None
    return value
