"""What the experiments' figures share: plain tick numbers, robust limits, labels apart.

* :func:`plain_ticks`: log axes read ``100``, ``1,000`` or ``0.5``, never ``6x10^2``;
* :func:`robust_limits`: one diverged or failed run (a loss of 410 beside losses near 1) would
  flatten every other curve; the axis is cut above the others and the outlier is marked in words;
* :func:`place_labels`: point labels placed where they overlap no other label (a greedy search
  over positions around the point, joined to it by a line when moved away), so "resnet18" and
  "googlenet" on nearly the same point stay readable.

The functions take matplotlib objects and import matplotlib only through them.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

# A value above this multiple of the median of the others is an outlier (a diverged run): a
# healthy training loss stays within a few times its median over a run.
OUTLIER_FACTOR = 5.0


def _plain(value: float, _pos: Any = None) -> str:
    """A tick value as a plain number: ``1,000``, ``20``, ``0.5``, ``0.02``."""
    if value == 0:
        return "0"
    if abs(value) >= 1:
        return f"{value:,.0f}" if float(value).is_integer() else f"{value:,.1f}"
    digits = max(0, -math.floor(math.log10(abs(value))))
    return f"{value:.{digits}f}"


def plain_ticks(axis: Any, minor: bool = False) -> None:
    """Label a (log) axis with plain numbers; minor ticks unlabelled unless ``minor``."""
    from matplotlib.ticker import FuncFormatter, NullFormatter

    axis.set_major_formatter(FuncFormatter(_plain))
    axis.set_minor_formatter(FuncFormatter(_plain) if minor else NullFormatter())


def robust_limits(ax: Any, values: Sequence[float | None]) -> list[float]:
    """Cut the y axis above the values that are not outliers; return the outliers cut off.

    A value is an outlier when it is above :data:`OUTLIER_FACTOR` times the median of all
    finite values (or not finite). Those are marked with a note at the top of the axes, so a
    reader knows a run left the plot and where it went.
    """
    finite = sorted(v for v in values if v is not None and math.isfinite(v))
    if not finite:
        return []
    median = finite[len(finite) // 2]
    bound = OUTLIER_FACTOR * abs(median) if median else math.inf
    out = [v for v in values if v is None or not math.isfinite(v) or v > bound]
    if not out:
        return []
    kept = [v for v in finite if v <= bound]
    top = max(kept) * 1.15 if kept else bound
    ax.set_ylim(top=top)
    worst = max((v for v in out if v is not None and math.isfinite(v)), default=math.inf)
    worst_text = _plain(worst) if math.isfinite(worst) else "inf"
    ax.text(
        0.98,
        0.97,
        f"{len(out)} point(s) above the axis (up to {worst_text})",
        transform=ax.transAxes,
        ha="right",
        va="top",
        fontsize=7,
        color="tab:red",
    )
    return out


# Where a label may go, as offsets in points from its point: beside it first, then further out.
_RINGS = (6, 16, 28, 42, 60)  # points from the point; the last for dense clusters
_DIRECTIONS = ((1, 0.3), (1, -1), (-1, 0.3), (-1, -1), (0, 1.2), (0, -1.6), (1, 1), (-1, 1))


def place_labels(
    ax: Any, xs: Sequence[float], ys: Sequence[float], labels: Sequence[str], fontsize: float = 7
) -> list[Any]:
    """Annotate each point with its label where it overlaps no label placed before it.

    Points are labelled left to right; each label tries the positions of :data:`_RINGS` x
    :data:`_DIRECTIONS` and takes the first that stays inside the axes and clear of the labels
    already placed (boxes computed from the label's measured size, one draw per label). A label
    moved away from its point gets a thin line to it. Call after the figure's layout is final.
    Returns the annotations.
    """
    from matplotlib.transforms import Bbox

    fig = ax.figure
    renderer = fig.canvas.get_renderer()
    frame = ax.get_window_extent(renderer)
    points_to_px = fig.dpi / 72
    placed: list[Any] = []
    boxes: list[Any] = []
    for i in sorted(range(len(labels)), key=lambda k: (xs[k], ys[k])):
        probe = ax.text(0, 0, labels[i], fontsize=fontsize)
        extent = probe.get_window_extent(renderer)
        width, height = extent.width, extent.height
        probe.remove()
        px, py = ax.transData.transform((xs[i], ys[i]))
        choice = None
        for ring in _RINGS:
            for dx, dy in _DIRECTIONS:
                ox, oy = dx * ring * points_to_px, dy * ring * points_to_px
                x0 = px + ox - (0 if dx > 0 else width if dx < 0 else width / 2)
                y0 = py + oy - height / 2
                box = Bbox.from_bounds(x0, y0, width, height)
                inside = frame.contains(box.x0, box.y0) and frame.contains(box.x1, box.y1)
                if inside and not any(box.overlaps(b) for b in boxes):
                    choice = (ring, dx, dy, box)
                    break
            if choice is not None:
                break
        ring, dx, dy, box = choice or (0, 1, 0, Bbox.from_bounds(px, py, width, height))
        note = ax.annotate(
            labels[i],
            (xs[i], ys[i]),
            xytext=(dx * ring or 4, dy * ring),
            textcoords="offset points",
            fontsize=fontsize,
            ha="left" if dx > 0 else "right" if dx < 0 else "center",
            va="center",
            arrowprops={"arrowstyle": "-", "lw": 0.4, "color": "grey"}
            if ring > _RINGS[0]
            else None,
        )
        boxes.append(box)
        placed.append(note)
    return placed
