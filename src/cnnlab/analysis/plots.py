"""Figures of the analyzer: the AlexNet slides' three per-layer charts, and a model comparison.

* :func:`plot_layers` draws, for one :class:`~cnnlab.analysis.report.Report`, per-layer bars of
  activation memory, parameters and multiply-adds (each in the unit of its largest bar), as the
  slides do for AlexNet ("most memory is in the early convolutions, nearly all parameters in the
  fully connected layers, most operations in the convolutions").
* :func:`plot_comparison` draws multiply-adds against parameters for several models, and
  ImageNet top-1 accuracy against multiply-adds with the marker area proportional to the
  parameters, after Canziani, Paszke & Culurciello, "An Analysis of Deep Neural Network Models
  for Practical Applications", 2017 (Fig. 2). Accuracies are torchvision's published figures
  for its pretrained weights (metadata only, nothing is downloaded).

Both return the :class:`matplotlib.figure.Figure` (drawn through :mod:`cnnlab.plotting`, without
pyplot, so no backend is touched) and also write it when given a path.
"""

from __future__ import annotations

import math
import textwrap
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from cnnlab import formats, plotting
from cnnlab.analysis.report import Report, Row, fold

if TYPE_CHECKING:
    from matplotlib.figure import Figure

# Layers that carry the lecture's figures; activations, norms and views are folded out of the
# charts because their bars would only repeat the layer before them.
_CHART_KINDS = {"conv", "linear", "pool", "adaptive_pool", "lrn", "group", "cat", "matmul"}
MAX_BARS = 60
DPI = 120  # of the written figures


def _chart_rows(report: Report) -> list[Row]:
    def charted(rows: list[Row]) -> list[Row]:
        # layers that carry the figures, and any other layer with parameters of its own (an RBF
        # output layer), but not batch norm, whose bar would repeat its convolution's
        return [r for r in rows if r.kind in _CHART_KINDS or (r.params and r.kind != "norm")]

    rows = charted(report.rows)
    depth = 4
    while len(rows) > MAX_BARS and depth >= 1:  # too many bars to read: fold deeper modules
        rows = charted(fold(report.all_rows, depth, report.module_types))
        depth -= 1
    return rows


def plot_layers(report: Report, path: str | Path | None = None) -> Figure:
    """Three stacked bar charts per layer: activation memory, parameters, multiply-adds.

    Each chart's unit follows its largest bar (KiB or MiB; K, M or G), so a small network's
    bars do not read 0.00 and a large one's do not read 12,000.

    Args:
        report: the analysis to draw.
        path: also write the figure there (the suffix picks the format).

    Returns:
        The figure.
    """
    rows = _chart_rows(report)
    names = [r.name if r.name.endswith(r.type) else f"{r.name} ({r.type})" for r in rows]
    memory = [r.activation_bytes for r in rows]
    params = [r.params for r in rows]
    macs = [r.macs for r in rows]
    memory_unit, memory_scale = formats.size_unit(max(memory, default=0))
    params_unit, params_scale = formats.count_unit(max(params, default=0))
    macs_unit, macs_scale = formats.count_unit(max(macs, default=0))
    # (y label, bar values in its unit, the bars' sum as the tables write it, colour)
    series = [
        (f"activation memory ({memory_unit})", [v / memory_scale for v in memory],
         formats.size(sum(memory)), "tab:blue"),
        (f"parameters ({params_unit or 'count'})", [v / params_scale for v in params],
         formats.count(sum(params)), "tab:orange"),
        (f"multiply-adds ({macs_unit or 'count'}, {report.count})", [v / macs_scale for v in macs],
         formats.count(sum(macs)), "tab:green"),
    ]  # fmt: skip
    width = max(6.0, 0.32 * len(rows) + 2)
    fig = plotting.figure(figsize=(width, 8))
    axes = fig.subplots(3, 1, sharex=True)
    for ax, (label, values, total, color) in zip(axes, series, strict=True):
        ax.bar(range(len(rows)), values, color=color)
        # the sum goes in the label, where no bar can hide it
        ax.set_ylabel(f"{label}\nsum of bars {total}", fontsize=8)
        ax.grid(axis="y", alpha=0.3)
    axes[-1].set_xticks(range(len(rows)))
    axes[-1].set_xticklabels(names, rotation=90, ha="center", fontsize=7)
    size = "x".join(map(str, report.input_size))
    axes[0].set_title(
        f"{report.model}, input {size}, batch {report.batch_size}\nwhere the memory, the "
        "parameters and the multiply-adds are",
        fontsize=10,
    )
    fig.tight_layout()
    return _written(fig, path)


def _written(fig: Figure, path: str | Path | None) -> Figure:
    if path is not None:
        plotting.save(fig, path, DPI)
    return fig


def _label(ax: Any, points: list[tuple[float, float, str]], fontsize: int = 7) -> None:
    """Name each point, trying a few offsets so that no two labels overlap (greedy).

    Positions and label boxes are in points (1/72 inch), so the layout survives saving at
    another dpi; a label's box is estimated as 0.6 em per character by 1.2 em.
    """
    ax.figure.canvas.draw()  # fixes the axis limits, so data -> display transforms are final
    to_pt = 72.0 / ax.figure.dpi
    w_char, h = 0.6 * fontsize, 1.2 * fontsize
    placed: list[tuple[float, float, float, float]] = []
    offsets = [(4, 2), (4, -9), (-4, 2), (-4, -9), (4, 10), (4, -17), (-4, 10), (-4, -17)]
    for x, y, name in sorted(points, key=lambda t: (t[0], t[1])):
        px, py = (v * to_pt for v in ax.transData.transform((x, y)))
        w = w_char * len(name)
        for dx, dy in offsets:
            left = px + dx - (w if dx < 0 else 0)
            box = (left, py + dy, left + w, py + dy + h)
            if not any(
                b[0] < box[2] and box[0] < b[2] and b[1] < box[3] and box[1] < b[3] for b in placed
            ):
                break
        placed.append(box)
        ax.annotate(
            name, (x, y), xytext=(box[0] - px, dy), textcoords="offset points", fontsize=fontsize
        )


@dataclass(frozen=True)
class Point:
    """One model in a comparison: name, parameters, multiply-adds, top-1 (or None)."""

    name: str
    params: int
    macs: int
    top1: float | None


def plot_comparison(
    points: list[Point], path: str | Path | None = None, count: str = "lecture"
) -> Figure:
    """Multiply-adds vs parameters, and top-1 vs multiply-adds (marker area ~ parameters).

    Args:
        points: the models.
        path: also write the figure there (the suffix picks the format).
        count: the count mode the multiply-adds were counted in, for the axis label.

    Returns:
        The figure.
    """
    fig = plotting.figure(figsize=(13, 5.5))
    ax1, ax2 = fig.subplots(1, 2)
    macs_unit, macs_scale = formats.count_unit(max(p.macs for p in points))
    params_unit, params_scale = formats.count_unit(max(p.params for p in points))
    ax1.scatter([p.macs / macs_scale for p in points], [p.params / params_scale for p in points],
                s=30, color="tab:blue")  # fmt: skip
    plotting.plain_log_scale(ax1)
    ax1.set_xlabel(f"multiply-adds per image, {macs_unit} ({count} count, log scale)")
    ax1.set_ylabel(f"parameters, {params_unit} (log scale)")
    ax1.set_title("cost: multiply-adds vs parameters", fontsize=10)
    ax1.grid(alpha=0.3, which="both")
    _label(ax1, [(p.macs / macs_scale, p.params / params_scale, p.name) for p in points])

    known = [p for p in points if p.top1 is not None]
    if known:
        biggest = max(p.params for p in known)
        # one colour: the names say which model is which, the area how many parameters
        area = [40 + 1500 * p.params / biggest for p in known]
        ax2.scatter([p.macs / macs_scale for p in known], [p.top1 for p in known], s=area,
                    alpha=0.45, color="tab:blue", edgecolors="k")  # fmt: skip
        lo = min(p.top1 for p in known)
        hi = max(p.top1 for p in known)
        ax2.set_ylim(math.floor(lo - 2), math.ceil(hi + 2))
        plotting.plain_log_scale(ax2, "x")
        _label(ax2, [(p.macs / macs_scale, p.top1, p.name) for p in known])
        ax2.set_title(
            "ImageNet top-1 (torchvision weights) vs multiply-adds;\nmarker area ~ parameters "
            "(after Canziani et al. 2017, Fig. 2)",
            fontsize=10,
        )
    else:
        ax2.text(0.5, 0.5, "no published top-1 for these models", ha="center",
                 transform=ax2.transAxes)  # fmt: skip
    missing = [p.name for p in points if p.top1 is None]
    if missing:
        ax2.text(
            0.01, 0.01, textwrap.fill("no published top-1: " + ", ".join(missing), 80),
            transform=ax2.transAxes, fontsize=7, va="bottom",
        )  # fmt: skip
    ax2.set_xlabel(f"multiply-adds per image, {macs_unit} (log scale)")
    ax2.set_ylabel("top-1 accuracy, %")
    ax2.grid(alpha=0.3, which="both")
    fig.tight_layout()
    return _written(fig, path)
