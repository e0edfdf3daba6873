"""Figures of a run: loss and accuracy curves per epoch, and the test confusion matrix (PNG).

Drawn through :mod:`cnnlab.plotting` (matplotlib's object API, no pyplot), so they work without a
display and leave the caller's backend alone. Each function returns its figures and also writes
them when given a place; each checks its input first (a :class:`~cnnlab.errors.ConfigError`, a
``ValueError``, naming what is wrong), since a record read from a damaged run would otherwise
draw a wrong figure or fail deep inside matplotlib.
"""

from __future__ import annotations

import itertools
from pathlib import Path
from typing import TYPE_CHECKING, Any

from cnnlab import plotting
from cnnlab.errors import ConfigError
from cnnlab.formats import printable

if TYPE_CHECKING:
    from matplotlib.figure import Figure

DPI = 120

# (history key, y label, scale, file name) of the two curves.
_CURVES = (
    ("loss", "cross-entropy loss", 1, "loss.png"),
    ("acc", "accuracy (%)", 100, "accuracy.png"),
)


def plot_curves(
    history: list[dict[str, Any]],
    out_dir: Path | None = None,
    title: str = "",
    mark_lr_drops: bool = True,
    train_label: str = "train (mean over the epoch)",
) -> list[Figure]:
    """Loss and accuracy, train and validation, per epoch; written to ``out_dir`` as
    ``loss.png`` and ``accuracy.png`` when it is given.

    With ``mark_lr_drops`` (epoch-wise schedules such as plateau), a dotted line marks each epoch
    that started with a learning rate at most half the previous one; a per-step schedule such as
    one-cycle decays continuously and gets no marks.

    Returns:
        The loss figure and the accuracy figure.
    """
    _check_history(history, mark_lr_drops)
    epochs = [h["epoch"] for h in history]
    pairs = itertools.pairwise(history) if mark_lr_drops else []
    drops = [h["epoch"] for prev, h in pairs if h["lr"] <= prev["lr"] * 0.5]
    figures = []
    for key, label, scale, name in _CURVES:
        fig = plotting.figure(figsize=(6, 4))
        ax = fig.subplots()
        ax.plot(epochs, [scale * h[f"train_{key}"] for h in history], "o-", label=train_label)
        ax.plot(epochs, [scale * h[f"val_{key}"] for h in history], "s-", label="validation")
        for i, e in enumerate(drops):
            ax.axvline(e - 0.5, color="grey", ls=":", lw=1, label="lr dropped" if i == 0 else None)
        ax.set_xlabel("epoch")
        ax.set_ylabel(label)
        if key == "loss":  # a diverged epoch is marked on the top edge, not the scale
            plotting.fit_to_typical(ax)
        ax.set_title(plain_text(title))
        ax.grid(alpha=0.3)
        ax.legend()
        if len(epochs) <= 20:
            ax.set_xticks(epochs)
        fig.tight_layout()
        if out_dir is not None:
            plotting.save(fig, Path(out_dir) / name, DPI)
        figures.append(fig)
    return figures


def plot_confusion(
    confusion: list[list[int]],
    classes: list[str] | tuple[str, ...],
    path: Path | None = None,
    title: str = "",
) -> Figure:
    """Row-normalised confusion matrix (each true class sums to 100%), counts in the cells;
    written to ``path`` when it is given."""
    import numpy as np

    _check_confusion(confusion, classes)
    counts = np.asarray(confusion, dtype=np.int64)
    share = counts / np.maximum(counts.sum(axis=1, keepdims=True), 1)
    k = len(classes)
    size = max(5.0, 0.55 * k + 2)
    fig = plotting.figure(figsize=(size, size * 0.9))
    ax = fig.subplots()
    im = ax.imshow(share, cmap="Blues", vmin=0, vmax=1)
    names = [plain_text(c, 40) for c in classes]
    ax.set_xticks(range(k), names, rotation=45, ha="right")
    ax.set_yticks(range(k), names)
    ax.set_xlabel("predicted class")
    ax.set_ylabel("true class")
    ax.set_title(plain_text(title))
    if k <= 20:
        for i in range(k):
            for j in range(k):
                ax.text(
                    j,
                    i,
                    str(counts[i, j]),
                    ha="center",
                    va="center",
                    fontsize=7,
                    color="white" if share[i, j] > 0.5 else "black",
                )
    fig.colorbar(im, ax=ax, fraction=0.046, pad=0.04, label="share of the true class")
    fig.tight_layout()
    if path is not None:
        plotting.save(fig, path, DPI)
    return fig


def plain_text(text: str, limit: int = 120) -> str:
    """Text from a file (a class name, a run's name) as matplotlib shows it literally: control
    characters escaped (:func:`~cnnlab.formats.printable`) and ``$`` escaped, since a pair of
    them would start mathtext, which can fail to parse when the figure is drawn."""
    return printable(text, limit).replace("$", r"\$")


# --- input checks: a figure of a damaged record is refused by name, never drawn wrong ---------


def _is_number(value: object) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def _check_history(history: list[dict[str, Any]], with_lr: bool) -> None:
    keys = ["epoch", *(f"{split}_{key}" for key, *_ in _CURVES for split in ("train", "val"))]
    keys += ["lr"] if with_lr else []
    for i, record in enumerate(history):
        bad = [
            k for k in keys if not _is_number(record.get(k) if isinstance(record, dict) else None)
        ]
        if bad:
            raise ConfigError(
                f"epoch record {i} has no number for {', '.join(bad)}: pass the records of "
                "metrics.jsonl (RunFiles.read_history)"
            )


def _check_confusion(confusion: list[list[int]], classes: list[str] | tuple[str, ...]) -> None:
    k = len(classes)
    square = isinstance(confusion, (list, tuple)) and len(confusion) == k
    square = square and all(isinstance(row, (list, tuple)) and len(row) == k for row in confusion)
    if not square or k == 0:
        raise ConfigError(f"a confusion matrix of {k} classes must be {k} x {k} counts")
    if not all(
        isinstance(c, int) and not isinstance(c, bool) and c >= 0 for r in confusion for c in r
    ):
        raise ConfigError("a confusion matrix holds counts: integers, none negative")
