"""Runs side by side: every run directory under some folders, its status, and its curves.

``cnnlab runs [DIR...]`` and :func:`runs_table` find the run directories under the given folders
(default ``runs/``), read each one's files through :class:`~cnnlab.run.layout.RunFiles`, and
put one line per run in a :class:`RunsTable` (text, Markdown, JSON, HTML, or a notebook's rich
display), with their validation curves overlaid in one figure (:meth:`RunsTable.plot`).

A run's status comes from what it left on disk:

* **finished**: ``results.json`` is there (training wrote it last, after the test evaluation);
* **failed**: ``results.json`` says ``"status": "failed"`` with a ``"reason"`` (a run stopped on
  purpose, for instance because it stalled at chance; its last checkpoint is kept);
* **interrupted**: no ``results.json``: the run was stopped (or is still training: nothing on
  disk tells the two apart) and ``cnnlab train --resume --out RUN_DIR`` continues it from its
  newest checkpoint;
* **damaged**: a file is unreadable or holds a value of the wrong type or range (``results.json``
  of ``null``, a ragged confusion matrix, a string where a number belongs); the reason names the
  file and the field, and the other runs are listed as usual.

Every string taken from a run's files (a reason, a model or dataset name, a directory's name) is
shown through :func:`~cnnlab.formats.printable` in the text, Markdown, CSV and HTML tables, so a
crafted file cannot print a fake line or move the cursor; the JSON output keeps the values as
they are (JSON escapes control characters itself).
"""

from __future__ import annotations

import json
import os
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

from cnnlab import plotting, table
from cnnlab.errors import CnnlabError
from cnnlab.experiments.base import REQUEST_FILE
from cnnlab.formats import duration, percent, printable
from cnnlab.run.checkpoints import list_checkpoints
from cnnlab.run.layout import RunFiles
from cnnlab.run.records import DamagedRunError, RunResults

if TYPE_CHECKING:
    from matplotlib.figure import Figure

STATUSES = ("finished", "interrupted", "failed", "damaged")
DEFAULT_DIRS = ("runs",)
MAX_DEPTH = 4  # folders below each given folder searched for runs (runs/EXPERIMENT/SEED/...)
DPI = 120
T = TypeVar("T")


@dataclass(frozen=True)
class RunSummary:
    """One run directory, summarised.

    Attributes:
        path: the run directory.
        status: one of :data:`STATUSES`.
        reason: why a run failed or is damaged ("" otherwise); a damaged run's names the file
            and the field. Text from the run's files: print it through
            :func:`~cnnlab.formats.printable`, as :class:`RunsTable` does.
        model, data, recipe: what was trained on what, how.
        epochs: epochs the run was set to train.
        epochs_done: epochs it finished (lines of ``metrics.jsonl``).
        best_val_acc, final_val_acc: validation accuracy, best and last epoch (fractions).
        test_top1: test accuracy of a finished run.
        seconds: wall time of a finished run, else the sum of its epochs' times.
        history: the per-epoch records (checked, as training keeps them), for the curves.
    """

    path: Path
    status: str
    reason: str = ""
    model: str = ""
    data: str = ""
    recipe: str = ""
    epochs: int | None = None
    epochs_done: int = 0
    best_val_acc: float | None = None
    final_val_acc: float | None = None
    test_top1: float | None = None
    seconds: float | None = None
    history: list[dict[str, Any]] = field(default_factory=list, repr=False, compare=False)

    @property
    def name(self) -> str:
        """The path as the user would type it: relative to the working folder when inside it."""
        try:
            return os.path.relpath(self.path)
        except ValueError:  # another drive (Windows)
            return str(self.path)

    def to_dict(self) -> dict[str, Any]:
        """The JSON object of ``cnnlab runs --format json`` (no history)."""
        return {
            "run": self.name,
            "status": self.status,
            "reason": self.reason,
            "model": self.model,
            "data": self.data,
            "recipe": self.recipe,
            "epochs": self.epochs,
            "epochs_done": self.epochs_done,
            "best_val_acc": self.best_val_acc,
            "final_val_acc": self.final_val_acc,
            "test_top1": self.test_top1,
            "seconds": self.seconds,
        }


def is_run_dir(path: Path) -> bool:
    """True when ``path`` holds a training run's files (any of them: a run may be cut short).

    An experiment's folder (``cnnlab experiment run``) has a ``results.json`` of its own beside
    its ``experiment.json``: it is no run, and its runs are in its sub-folders.
    """
    files = RunFiles(path)
    if os.path.lexists(path / REQUEST_FILE):
        return False
    # lexists: a config.json that is a FIFO or a broken link still marks a (damaged) run.
    marked = os.path.lexists(files.config) or os.path.lexists(files.results)
    return marked or files.checkpoints.is_dir()


def find_runs(dirs: Iterable[str | os.PathLike[str]] | None = None) -> list[Path]:
    """The run directories in or under ``dirs`` (each searched :data:`MAX_DEPTH` deep), sorted.

    A given folder that is itself a run is returned as it is; a run's own folders are not
    searched further, and hidden folders are skipped. ``None`` searches :data:`DEFAULT_DIRS`,
    which need not exist (no runs yet).

    Raises:
        CnnlabError: a folder given in ``dirs`` does not exist or is not a folder.
    """
    if dirs is None:
        dirs = [d for d in DEFAULT_DIRS if Path(d).is_dir()]
    dirs = [Path(d) for d in dirs]
    for d in dirs:
        if not d.is_dir():
            what = "is a file" if d.exists() else "does not exist"
            raise CnnlabError(
                f"{printable(str(d))} {what}: pass a run directory or a folder holding runs "
                "(default: runs/)"
            )
    found: set[Path] = set()

    def walk(path: Path, depth: int) -> None:
        if is_run_dir(path):
            found.add(path)
            return
        if depth == 0:
            return
        try:
            children = sorted(p for p in path.iterdir() if p.is_dir())
        except OSError:
            return
        for child in children:
            if not child.name.startswith("."):
                walk(child, depth - 1)

    for d in dirs:
        walk(d, MAX_DEPTH)
    return sorted(found)


def read_run(path: str | os.PathLike[str]) -> RunSummary:
    """Summarise one run directory; never raises on a damaged file.

    Each file is read through its checked reader (:mod:`cnnlab.run.records`); the first one that
    fails makes the status ``damaged``, with ``FILE: what is wrong`` as the reason, and whatever
    the other files hold is still summarised.
    """
    files = RunFiles(Path(path))
    damage: list[str] = []

    def attempt(read: Callable[[], T], default: T) -> T:
        try:
            return read()
        except DamagedRunError as err:
            damage.append(err.detail)
        except CnnlabError as err:
            damage.append(str(err))
        return default

    config = attempt(files.read_config, None)
    history = attempt(files.read_history, [])
    results = attempt(files.read_outcome, None)
    attempt(files.read_splits, None)
    status, reason = ("damaged", damage[0]) if damage else _status(files, results)
    vals = [h["val_acc"] for h in history]
    seconds = results.seconds if results is not None else None
    if seconds is None and history:
        seconds = sum(h["seconds"] for h in history)
    finished = status == "finished" and results is not None and results.test is not None
    return RunSummary(
        path=files.root,
        status=status,
        reason=reason,
        model=str(config.model or "") if config is not None else "",
        data=str(config.data) if config is not None else "",
        recipe=str(config.recipe) if config is not None else "",
        epochs=config.epochs if config is not None else None,
        epochs_done=len(history),
        best_val_acc=max(vals) if vals else None,
        final_val_acc=vals[-1] if vals else None,
        test_top1=results.test.top1 if finished else None,  # type: ignore[union-attr]
        seconds=seconds,
        history=history,
    )


def _status(files: RunFiles, results: RunResults | None) -> tuple[str, str]:
    if results is not None:
        if results.status == "failed":
            return "failed", results.reason
        return "finished", ""
    if not list_checkpoints(files.checkpoints):
        return "interrupted", "stopped before its first checkpoint: --resume starts it again"
    return "interrupted", ""


def runs_table(dirs: Iterable[str | os.PathLike[str]] | None = None) -> RunsTable:
    """Every run under ``dirs`` (default :data:`DEFAULT_DIRS`), summarised, as a
    :class:`RunsTable`.

    Raises:
        CnnlabError: a folder given in ``dirs`` does not exist (:func:`find_runs`).
    """
    return RunsTable([read_run(p) for p in find_runs(dirs)])


# Columns of the table (text, Markdown, HTML); the accuracy and time columns hold numbers.
HEADER = ("run", "model", "data", "recipe", "epochs", "best val", "final val", "test", "time",
          "status")  # fmt: skip
NUMBER_COLUMNS = range(4, 9)
REASON_CHARS = 300  # a reason longer than this ends in an ellipsis in the tables


@dataclass
class RunsTable:
    """Runs side by side; displays itself in a notebook."""

    runs: list[RunSummary]

    def __len__(self) -> int:
        return len(self.runs)

    def rows(self) -> list[list[str]]:
        """The table's cells, formatted, one list per run (text from files made printable)."""
        return [
            [
                printable(r.name),
                printable(r.model),
                printable(r.data),
                printable(r.recipe),
                f"{r.epochs_done}/{r.epochs if r.epochs is not None else '?'}",
                percent(r.best_val_acc, missing=""),
                percent(r.final_val_acc, missing=""),
                percent(r.test_top1, missing=""),
                duration(r.seconds, missing=""),
                r.status,
            ]
            for r in self.runs
        ]

    def reasons(self) -> list[str]:
        """One line per failed, damaged or never-checkpointed run: why (made printable)."""
        return [
            f"{printable(r.name)}: {r.status}: {printable(r.reason, REASON_CHARS)}"
            for r in self.runs
            if r.reason
        ]

    def to_text(self) -> str:
        if not self.runs:
            return "no runs found"
        lines = table.fixed_width(HEADER, self.rows(), NUMBER_COLUMNS)
        reasons = self.reasons()
        return "\n".join([*lines, "", *reasons] if reasons else lines)

    def to_markdown(self) -> str:
        if not self.runs:
            return "no runs found"
        lines = table.markdown(HEADER, self.rows(), NUMBER_COLUMNS)
        return "\n".join([*lines, "", *(f"- {r}" for r in self.reasons())]).rstrip()

    def to_dict(self) -> list[dict[str, Any]]:
        return [r.to_dict() for r in self.runs]

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), indent=2)

    def to_csv(self) -> str:
        """One CSV line per run (the keys of :meth:`RunSummary.to_dict`), text made printable."""
        records = [
            {k: printable(v, REASON_CHARS) if isinstance(v, str) else v for k, v in d.items()}
            for d in self.to_dict()
        ]
        keys = list(RunSummary(Path(), "finished").to_dict())  # the JSON keys, in their order
        return table.csv_text(keys, records).rstrip("\n")

    def to_html(self, figure: bool = True) -> str:
        """A self-contained HTML page: the table and (with ``figure``) the overlaid curves."""
        from cnnlab.report import html

        uri = html.figure_uri(self.plot()) if figure and self._plottable() else None
        return html.render(
            "runs.html.j2",
            table=self._html_table(),
            reasons=self.reasons(),
            figure=uri,
            count=len(self.runs),
            version=_version(),
        )

    def _html_table(self) -> str:
        from cnnlab.report import html

        return html.table(HEADER, self.rows(), NUMBER_COLUMNS)

    def _repr_html_(self) -> str:
        from cnnlab.report import html

        if not self.runs:
            return "<p>no runs found</p>"
        return html.render(
            "runs_fragment.html.j2", table=self._html_table(), reasons=self.reasons()
        )

    def _repr_markdown_(self) -> str:
        return self.to_markdown()

    def __str__(self) -> str:
        return self.to_text()

    def _plottable(self) -> list[RunSummary]:
        return [r for r in self.runs if r.history]

    def plot(self, path: str | os.PathLike[str] | None = None) -> Figure:
        """Validation accuracy and training loss per epoch, one line per run; written to
        ``path`` when it is given."""
        from matplotlib.ticker import MaxNLocator

        from cnnlab.run.figures import plain_text

        fig = plotting.figure(figsize=(11, 4.2))
        acc_ax, loss_ax = fig.subplots(1, 2)
        for r in self._plottable():
            epochs = [h["epoch"] for h in r.history]
            style = "o-" if len(epochs) <= 30 else "-"
            name = plain_text(r.name, 60)
            acc_ax.plot(epochs, [100 * h["val_acc"] for h in r.history], style, label=name)
            loss_ax.plot(epochs, [h["train_loss"] for h in r.history], style, label=name)
        acc_ax.set_ylabel("validation accuracy (%)")
        loss_ax.set_ylabel("training loss (mean over the epoch)")
        for ax in (acc_ax, loss_ax):
            ax.xaxis.set_major_locator(MaxNLocator(integer=True))
            ax.set_xlabel("epoch")
            ax.grid(alpha=0.3)
        if self._plottable():
            acc_ax.legend(fontsize=8)
            # a diverged or failed run is marked on the top edge instead of setting the scale
            off_scale = plotting.fit_to_typical(loss_ax)
            if off_scale:
                loss_ax.legend(handles=off_scale, fontsize=8)
        else:
            acc_ax.set_title("no run has finished an epoch yet")
        fig.tight_layout()
        if path is not None:
            plotting.save(fig, path, DPI)
        return fig


def _version() -> str:
    from cnnlab import __version__

    return __version__
