"""Is a figure legible? :func:`problems` lists what a reader could not read, as sentences.

Interface (stable; other tests call it on their own figures)::

    from helpers.legibility import problems
    assert problems(fig) == []

``problems(fig, tolerance=1.0) -> list[str]`` takes any :class:`matplotlib.figure.Figure`
(from :mod:`cnnlab.plotting` or not), draws it once with the Agg renderer (attaching an Agg
canvas when it has none; nothing is written) and checks the texts that the draw actually put on
the canvas (titles, suptitles, axis labels, tick labels, offset texts, legend entries, colour-bar
labels, annotations, ``ax.text``):

* **inside the canvas**: every text lies inside the figure, within ``tolerance`` pixels;
* **no overlap**: no two texts overlap by more than ``tolerance`` pixels on every side; rotated
  texts are compared as rotated rectangles, so 45-degree tick labels that sit side by side pass;
* **colour has a legend**: on an axes where two or more labelled series (lines, bar groups,
  scatter sets) differ in colour, every one of them appears in a legend of the figure; and
  where two or more *unlabelled* scatter sets or bars differ in colour, some legend or colour
  bar must explain the colours;
* **plain tick numbers**: no tick label reads as mathtext scientific notation such as
  ``6x10^2`` (matplotlib's log-axis minor labels), which students misread.

A text is named in a problem by its string and its role (``title``, ``x tick``, ``legend``...),
so a failing assertion says which label to fix.
"""

from __future__ import annotations

import math
import re
from typing import Any

from matplotlib.axes import Axes
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.collections import PathCollection
from matplotlib.colors import to_rgba
from matplotlib.container import BarContainer
from matplotlib.figure import Figure
from matplotlib.legend import Legend
from matplotlib.text import Text

__all__ = ["problems"]

# mathtext scientific notation as LogFormatterSciNotation writes it: "$\mathdefault{6\times10^{2}}$"
_SCI_TICK = re.compile(r"\\times\s*\\?\{?\s*10\^")


def problems(fig: Figure, tolerance: float = 1.0) -> list[str]:
    """Every legibility problem of ``fig``, one sentence each; empty when it reads well.

    Args:
        fig: the figure, drawn here with Agg (its canvas is replaced only when it is not Agg).
        tolerance: pixels (at the figure's dpi) a text may stick out of the canvas, and the
            depth two texts may overlap, before it counts (anti-aliasing and font rounding).

    Returns:
        Sentences naming the text or the axes and what is wrong, in a stable order.
    """
    drawn = _drawn_texts(fig)
    texts = list({id(t): t for t, _ in drawn}.values())
    shapes = [(_describe(t), corners, id(t)) for t, corners in drawn]
    found = _outside(fig, shapes, tolerance) + _overlaps(shapes, tolerance)
    found += _sci_ticks(fig, texts)
    found += _colours_without_legend(fig)
    return found


# --- which texts were drawn --------------------------------------------------------------------


def _drawn_texts(fig: Figure) -> list[tuple[Text, list[tuple[float, float]]]]:
    """Each text that a draw puts on the canvas, with its corners where it was drawn.

    Asking the artists would over-count (an axis keeps tick labels for ticks outside its view,
    which are not drawn) and misplace some (a 3-D axis draws one tick label on several edges,
    moving it in between), so ``Text.draw`` itself is wrapped for one draw of the figure (and
    restored after it), and each text is measured as it is drawn.
    """
    if not isinstance(fig.canvas, FigureCanvasAgg):
        FigureCanvasAgg(fig)
    fig.canvas.draw()  # settles the layout (tight/constrained), ticks and limits
    renderer = fig.canvas.get_renderer()
    drawn: dict[tuple, tuple[Text, list[tuple[float, float]]]] = {}
    original = Text.draw

    def record(self: Text, renderer: Any) -> Any:
        out = original(self, renderer)
        if self.get_visible() and self.get_text().strip():
            corners = _corners(self, renderer)
            key = (id(self), *(round(v, 1) for p in corners for v in p))
            drawn.setdefault(key, (self, corners))
        return out

    Text.draw = record
    try:
        fig.draw(renderer)
    finally:
        Text.draw = original
    return list(drawn.values())


def _describe(text: Text) -> str:
    """``'title "loss"'``: the text's role (where it can be told) and its string."""
    role = "text"
    for ax in text.figure.axes if text.figure else []:
        roles = {
            id(ax.title): "title",
            id(ax._left_title): "title",
            id(ax._right_title): "title",
            id(ax.xaxis.label): "x label",
            id(ax.yaxis.label): "y label",
            id(ax.xaxis.offsetText): "x offset",
            id(ax.yaxis.offsetText): "y offset",
        }
        roles |= {id(t): "x tick" for t in ax.get_xticklabels(which="both")}
        roles |= {id(t): "y tick" for t in ax.get_yticklabels(which="both")}
        legend = ax.get_legend()
        if legend is not None:
            roles |= {id(t): "legend" for t in legend.get_texts()}
            roles[id(legend.get_title())] = "legend title"
        if id(text) in roles:
            role = roles[id(text)]
            break
    fig = text.figure
    if fig is not None and getattr(fig, "_suptitle", None) is text:
        role = "suptitle"
    string = " ".join(text.get_text().split())
    string = re.sub(r"\$\\mathdefault\{(.*)\}\$", r"\1", string)
    return f'{role} "{string[:60]}"'


# --- geometry: a text is a rectangle, rotated by its angle ----------------------------------


def _corners(text: Text, renderer: Any) -> list[tuple[float, float]]:
    """The four corners of the text's ink box on the canvas, in pixels.

    ``get_window_extent`` gives the axis-aligned box of the rotated text, whose centre is the
    rotated rectangle's centre; the rectangle's own size is measured at rotation 0.
    """
    box = text.get_window_extent(renderer)
    angle = text.get_rotation() % 180
    if angle in (0, 90):
        return [(box.x0, box.y0), (box.x1, box.y0), (box.x1, box.y1), (box.x0, box.y1)]
    rotation = text.get_rotation()
    text.set_rotation(0)
    upright = text.get_window_extent(renderer)
    text.set_rotation(rotation)
    cx, cy = (box.x0 + box.x1) / 2, (box.y0 + box.y1) / 2
    c, s = math.cos(math.radians(rotation)), math.sin(math.radians(rotation))
    hw, hh = upright.width / 2, upright.height / 2
    return [(cx + c * dx - s * dy, cy + s * dx + c * dy) for dx, dy in _signs(hw, hh)]


def _signs(hw: float, hh: float) -> list[tuple[float, float]]:
    return [(-hw, -hh), (hw, -hh), (hw, hh), (-hw, hh)]


def _outside(fig: Figure, shapes: list, tolerance: float) -> list[str]:
    width, height = fig.bbox.width, fig.bbox.height
    found = []
    for name, corners, _ in shapes:
        xs, ys = [p[0] for p in corners], [p[1] for p in corners]
        sides = [
            side
            for side, out in (
                ("left", min(xs) < -tolerance),
                ("right", max(xs) > width + tolerance),
                ("bottom", min(ys) < -tolerance),
                ("top", max(ys) > height + tolerance),
            )
            if out
        ]
        if sides:
            found.append(f"{name} is cut off at the {' and '.join(sides)} of the canvas")
    return found


def _overlaps(shapes: list, tolerance: float) -> list[str]:
    found = []
    boxes = [(name, corners, _aabb(corners), key) for name, corners, key in shapes]
    for i, (name_a, a, box_a, key_a) in enumerate(boxes):
        for name_b, b, box_b, key_b in boxes[i + 1 :]:
            if key_a == key_b or not _boxes_meet(box_a, box_b, tolerance):
                continue  # one text drawn twice (a 3-D axis), or apart by the cheap test
            if _polygons_overlap(a, b, tolerance):
                found.append(f"{name_a} overlaps {name_b}")
    return found


def _aabb(corners: list[tuple[float, float]]) -> tuple[float, float, float, float]:
    xs, ys = [p[0] for p in corners], [p[1] for p in corners]
    return min(xs), min(ys), max(xs), max(ys)


def _boxes_meet(a: tuple, b: tuple, tolerance: float) -> bool:
    return (
        a[0] + tolerance < b[2]
        and b[0] + tolerance < a[2]
        and a[1] + tolerance < b[3]
        and b[1] + tolerance < a[3]
    )


def _polygons_overlap(a: list, b: list, tolerance: float) -> bool:
    """Separating-axis test for two convex quadrilaterals: they overlap by more than
    ``tolerance`` unless their projections on some edge normal are apart (or touch within it)."""
    for poly in (a, b):
        for (x0, y0), (x1, y1) in zip(poly, poly[1:] + poly[:1], strict=True):
            nx, ny = y0 - y1, x1 - x0
            norm = math.hypot(nx, ny)
            if norm == 0:
                continue
            nx, ny = nx / norm, ny / norm
            pa = [x * nx + y * ny for x, y in a]
            pb = [x * nx + y * ny for x, y in b]
            if max(pa) <= min(pb) + tolerance or max(pb) <= min(pa) + tolerance:
                return False
    return True


# --- tick formats and colours ----------------------------------------------------------------


def _sci_ticks(fig: Figure, texts: list[Text]) -> list[str]:
    ticks = {
        id(t)
        for ax in fig.axes
        for t in ax.get_xticklabels(which="both") + ax.get_yticklabels(which="both")
    }
    return [
        f'tick label "{t.get_text()}" reads as scientific notation (6x10^2): use plain numbers'
        for t in texts
        if id(t) in ticks and _SCI_TICK.search(t.get_text())
    ]


def _series(ax: Axes) -> list[tuple[str, tuple]]:
    """(label, colour) of each line, bar group and scatter set of ``ax``."""
    found = [(line.get_label(), to_rgba(line.get_color())) for line in ax.get_lines()]
    for container in ax.containers:
        if isinstance(container, BarContainer) and container.patches:
            colours = {to_rgba(p.get_facecolor()) for p in container.patches}
            label = container.get_label() or "_bars"
            found += [(label, c) for c in sorted(colours)]
    for coll in ax.collections:
        if isinstance(coll, PathCollection) and coll.get_array() is None:
            colours = {tuple(c) for c in coll.get_facecolor()}
            found += [(coll.get_label(), c) for c in sorted(colours)]
    return found


def _legend_labels(fig: Figure) -> set[str]:
    legends = [ax.get_legend() for ax in fig.axes] + list(fig.legends)
    return {t.get_text() for lg in legends if isinstance(lg, Legend) for t in lg.get_texts()}


def _colours_without_legend(fig: Figure) -> list[str]:
    in_legend = _legend_labels(fig)
    has_colourbar = any(getattr(ax, "_colorbar", None) is not None for ax in fig.axes)
    found = []
    for n, ax in enumerate(fig.axes):
        series = _series(ax)
        where = f'axes {n} ("{ax.get_title() or ax.get_ylabel()}")'
        labelled = [(lab, c) for lab, c in series if lab and not lab.startswith("_")]
        if len({c for _, c in labelled}) >= 2:
            missing = sorted({lab for lab, _ in labelled} - in_legend)
            if missing:
                found.append(f"{where}: coloured series {missing} are in no legend")
        unlabelled = {
            c
            for (lab, c), is_line in zip(series, _is_line(ax, series), strict=True)
            if not is_line and (not lab or lab.startswith("_"))
        }
        if len(unlabelled) >= 2 and not in_legend and not has_colourbar:
            found.append(f"{where}: {len(unlabelled)} colours mean something no legend names")
    return found


def _is_line(ax: Axes, series: list) -> list[bool]:
    n_lines = len(ax.get_lines())
    return [i < n_lines for i in range(len(series))]
