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
* **damaged**: a file that should be JSON is not; the reason names it.
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from cnnlab import plotting, table
from cnnlab.formats import duration, percent
from cnnlab.run.checkpoints import list_checkpoints
from cnnlab.run.layout import RunFiles

if TYPE_CHECKING:
    from matplotlib.figure import Figure

STATUSES = ("finished", "interrupted", "failed", "damaged")
DEFAULT_DIRS = ("runs",)
MAX_DEPTH = 4  # folders below each given folder searched for runs (runs/EXPERIMENT/SEED/...)
DPI = 120


@dataclass(frozen=True)
class RunSummary:
    """One run directory, summarised.

    Attributes:
        path: the run directory.
        status: one of :data:`STATUSES`.
        reason: why a run failed or is damaged ("" otherwise).
        model, data, recipe: what was trained on what, how.
        epochs: epochs the run was set to train.
        epochs_done: epochs it finished (lines of ``metrics.jsonl``).
        best_val_acc, final_val_acc: validation accuracy, best and last epoch (fractions).
        test_top1: test accuracy of a finished run.
        seconds: wall time of a finished run, else the sum of its epochs' times.
        history: the per-epoch records, for the curves.
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
    """True when ``path`` holds a training run's files (any of them: a run may be cut short)."""
    files = RunFiles(path)
    return files.config.is_file() or files.results.is_file() or files.checkpoints.is_dir()


def find_runs(dirs: Iterable[str | os.PathLike[str]] = DEFAULT_DIRS) -> list[Path]:
    """The run directories in or under ``dirs`` (each searched :data:`MAX_DEPTH` deep), sorted.

    A given folder that is itself a run is returned as it is; a run's own folders are not
    searched further, and hidden folders are skipped.
    """
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
        walk(Path(d), MAX_DEPTH)
    return sorted(found)


def read_run(path: str | os.PathLike[str]) -> RunSummary:
    """Summarise one run directory (never raises on a damaged file: the status says so)."""
    files = RunFiles(Path(path))
    try:
        config = json.loads(files.config.read_text()) if files.config.is_file() else {}
        history = files.read_history()
        results = files.read_results()
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as err:
        return RunSummary(files.root, "damaged", reason=f"unreadable run files ({err})")
    status, reason = _status(files, results)
    vals = [h["val_acc"] for h in history if "val_acc" in h]
    test = (results or {}).get("test") or {}
    seconds = (results or {}).get("seconds")
    if seconds is None and history:
        seconds = sum(h.get("seconds", 0.0) for h in history)
    return RunSummary(
        path=files.root,
        status=status,
        reason=reason,
        model=str(config.get("model") or ""),
        data=str(config.get("data") or ""),
        recipe=str(config.get("recipe") or ""),
        epochs=config.get("epochs"),
        epochs_done=len(history),
        best_val_acc=max(vals) if vals else None,
        final_val_acc=vals[-1] if vals else None,
        test_top1=test.get("top1") if status == "finished" else None,
        seconds=seconds,
        history=history,
    )


def _status(files: RunFiles, results: dict[str, Any] | None) -> tuple[str, str]:
    if results is not None:
        if results.get("status") == "failed":
            return "failed", str(results.get("reason") or "no reason recorded")
        return "finished", ""
    if not list_checkpoints(files.checkpoints):
        return "interrupted", "stopped before its first checkpoint: --resume starts it again"
    return "interrupted", ""


def runs_table(dirs: Iterable[str | os.PathLike[str]] = DEFAULT_DIRS) -> RunsTable:
    """Every run under ``dirs``, summarised, as a :class:`RunsTable`."""
    return RunsTable([read_run(p) for p in find_runs(dirs)])


# Columns of the table (text, Markdown, HTML); the accuracy and time columns hold numbers.
HEADER = ("run", "model", "data", "recipe", "epochs", "best val", "final val", "test", "time",
          "status")  # fmt: skip
NUMBER_COLUMNS = range(4, 9)


@dataclass
class RunsTable:
    """Runs side by side; displays itself in a notebook."""

    runs: list[RunSummary]

    def __len__(self) -> int:
        return len(self.runs)

    def rows(self) -> list[list[str]]:
        """The table's cells, formatted, one list per run."""
        return [
            [
                r.name,
                r.model,
                r.data,
                r.recipe,
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
        """One line per failed, damaged or never-checkpointed run: why."""
        return [f"{r.name}: {r.status}: {r.reason}" for r in self.runs if r.reason]

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
        fig = plotting.figure(figsize=(11, 4.2))
        acc_ax, loss_ax = fig.subplots(1, 2)
        for r in self._plottable():
            epochs = [h["epoch"] for h in r.history]
            style = "o-" if len(epochs) <= 30 else "-"
            acc_ax.plot(epochs, [100 * h["val_acc"] for h in r.history], style, label=r.name)
            loss_ax.plot(epochs, [h["train_loss"] for h in r.history], style, label=r.name)
        acc_ax.set_ylabel("validation accuracy (%)")
        loss_ax.set_ylabel("training loss (mean over the epoch)")
        for ax in (acc_ax, loss_ax):
            ax.set_xlabel("epoch")
            ax.grid(alpha=0.3)
        if self._plottable():
            acc_ax.legend(fontsize=8)
        else:
            acc_ax.set_title("no run has finished an epoch yet")
        fig.tight_layout()
        if path is not None:
            plotting.save(fig, path, DPI)
        return fig


def _version() -> str:
    from cnnlab import __version__

    return __version__
