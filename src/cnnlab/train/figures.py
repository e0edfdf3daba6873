"""Figures of a run: loss and accuracy curves per epoch, and the test confusion matrix (PNG).

Drawn with matplotlib's non-interactive Agg backend, so they work without a display.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import matplotlib

matplotlib.use("Agg")
import itertools

import matplotlib.pyplot as plt

DPI = 120


def plot_curves(
    history: list[dict[str, Any]],
    out_dir: Path,
    title: str,
    mark_lr_drops: bool = True,
    train_label: str = "train (mean over the epoch)",
) -> list[Path]:
    """``loss.png`` and ``accuracy.png``: train and validation per epoch.

    With ``mark_lr_drops`` (epoch-wise schedules such as plateau), a dotted line marks each epoch
    that started with a learning rate at most half the previous one; a per-step schedule such as
    one-cycle decays continuously and gets no marks.
    """
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    epochs = [h["epoch"] for h in history]
    pairs = itertools.pairwise(history) if mark_lr_drops else []
    drops = [h["epoch"] for prev, h in pairs if h["lr"] <= prev["lr"] * 0.5]
    paths = []
    for key, label, scale in (("loss", "cross-entropy loss", 1), ("acc", "accuracy (%)", 100)):
        fig, ax = plt.subplots(figsize=(6, 4))
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
        path = out_dir / ("loss.png" if key == "loss" else "accuracy.png")
        fig.savefig(path, dpi=DPI)
        plt.close(fig)
        paths.append(path)
    return paths


def plot_confusion(
    confusion: list[list[int]], classes: list[str] | tuple[str, ...], path: Path, title: str
) -> Path:
    """Row-normalised confusion matrix (each true class sums to 100%), counts in the cells."""
    import numpy as np

    counts = np.asarray(confusion, dtype=np.int64)
    share = counts / np.maximum(counts.sum(axis=1, keepdims=True), 1)
    k = len(classes)
    size = max(5.0, 0.55 * k + 2)
    fig, ax = plt.subplots(figsize=(size, size * 0.9))
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
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=DPI)
    plt.close(fig)
    return path
