"""Figures of a run: loss and accuracy curves per epoch, and the test confusion matrix (PNG).

Drawn through :mod:`cnnlab.plotting` (matplotlib's object API, no pyplot), so they work without a
display and leave the caller's backend alone. Each function returns its figures and also writes
them when given a place.
"""

from __future__ import annotations

import itertools
from pathlib import Path
from typing import TYPE_CHECKING, Any

from cnnlab import plotting

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
        ax.set_title(title)
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

    counts = np.asarray(confusion, dtype=np.int64)
    share = counts / np.maximum(counts.sum(axis=1, keepdims=True), 1)
    k = len(classes)
    size = max(5.0, 0.55 * k + 2)
    fig = plotting.figure(figsize=(size, size * 0.9))
    ax = fig.subplots()
    im = ax.imshow(share, cmap="Blues", vmin=0, vmax=1)
    ax.set_xticks(range(k), classes, rotation=45, ha="right")
    ax.set_yticks(range(k), classes)
    ax.set_xlabel("predicted class")
    ax.set_ylabel("true class")
    ax.set_title(title)
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
