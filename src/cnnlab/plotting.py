"""matplotlib for cnnlab's figures, through its object API only.

Every figure cnnlab draws (the analyzer's charts, the filter grid, a run's curves and confusion
matrix) is a :class:`matplotlib.figure.Figure` made by :func:`figure` and written by
:func:`save`. Neither goes through ``pyplot``, so no backend is selected or switched: a script
keeps whatever backend it chose, a notebook keeps its inline display (and can show the returned
figure), and a machine without a display needs nothing, because the figure draws on its own Agg
canvas. Figures made this way are not registered anywhere, so they need no closing; they are
freed like any other object.

One error policy: matplotlib missing, or a figure that cannot be written (unwritable folder,
unknown format), raises :class:`~cnnlab.errors.ConfigError` naming the fix.
"""

from __future__ import annotations

import os
import textwrap
from pathlib import Path
from typing import TYPE_CHECKING, Any

from cnnlab import files
from cnnlab.errors import ConfigError

if TYPE_CHECKING:
    from matplotlib.figure import Figure

__all__ = ["figure", "fit_to_typical", "plain_log_scale", "plain_number", "save"]


def _matplotlib() -> Any:
    """Import matplotlib on first use (``import cnnlab`` stays light), or say how to get it."""
    try:
        import matplotlib
    except ImportError as err:
        raise ConfigError(
            f"drawing figures needs matplotlib ({err}): install it with `pip install matplotlib`"
        ) from None
    return matplotlib


def figure(**kwargs: Any) -> Figure:
    """A new figure on its own Agg canvas; ``kwargs`` go to ``Figure`` (e.g. ``figsize``).

    Draw on it with ``fig.subplots(...)`` as with pyplot's ``subplots``.
    """
    _matplotlib()
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    fig = Figure(**kwargs)
    FigureCanvasAgg(fig)  # attaches itself: canvas.draw() renders, savefig needs no backend
    return fig


def save(fig: Figure, path: str | os.PathLike[str], dpi: float) -> Path:
    """Write ``fig`` to ``path`` atomically, creating its folder; the suffix picks the format.

    As with ``Figure.savefig``, a path without a suffix gets matplotlib's default format and its
    extension (``plot`` becomes ``plot.png``).

    Returns:
        The path written.

    Raises:
        ConfigError: the folder is not writable, or matplotlib does not know the format.
    """
    out = Path(path)
    fmt = os.path.splitext(out.name)[1][1:]
    if not fmt:
        fmt = _matplotlib().rcParams["savefig.format"]
        out = out.with_name(f"{out.name.rstrip('.')}.{fmt}")
    try:
        # the temporary file's name has no meaningful suffix, so the format is passed along
        files.write_atomic(out, lambda tmp: fig.savefig(tmp, dpi=dpi, format=fmt.lower()))
    except (OSError, ValueError) as err:
        raise ConfigError(
            f"cannot write the figure to {str(Path(path))!r} ({err}): give a writable path "
            "ending in .png, .svg or .pdf"
        ) from None
    return out


# Points further above the curves' typical start than this are off the scale: a run that
# diverged (a loss of 410 beside losses near 2) would otherwise flatten every other curve.
OFF_SCALE = 4.0


def fit_to_typical(ax: Any, what: str = "epoch") -> list[Any]:
    """Scale ``ax``'s y axis to its curves' typical values and mark the points left out.

    The limit is :data:`OFF_SCALE` times the median of the curves' first finite values (a
    training curve starts near its highest, so healthy curves stay whole). Points above it are
    drawn as triangles on the top edge, non-finite ones (a failed run's NaN) as crosses, in
    their curve's colour, labelled with their values ("diverged: 410 at epoch 2, above the
    scale") so that a legend drawn after this call names them. Nothing changes when every point
    is in range.

    Args:
        ax: an axes whose ``lines`` are the curves (a labelled one is named by its label).
        what: the x axis's unit, for the labels.

    Returns:
        The markers drawn (for ``ax.legend(handles=...)``); empty when none was needed.
    """
    import numpy as np

    curves = [(line, *map(np.asarray, line.get_data())) for line in ax.get_lines()]
    curves = [(line, x.astype(float), y.astype(float)) for line, x, y in curves if y.size]
    firsts = [y[np.isfinite(y)][0] for _, _, y in curves if np.isfinite(y).any()]
    if not firsts:
        return []
    limit = OFF_SCALE * abs(float(np.median(firsts)))
    shown = np.concatenate([y[np.isfinite(y) & (y <= limit)] for _, _, y in curves])
    off = [(line, x, y) for line, x, y in curves if (~np.isfinite(y) | (y > limit)).any()]
    if not off or not shown.size:
        return []
    low, high = float(shown.min()), float(shown.max())
    pad = 0.06 * (high - low or abs(high) or 1.0)
    edge = high + 2 * pad
    ax.set_ylim(low - pad, edge + pad)  # room for the markers on the top edge
    from matplotlib.transforms import offset_copy

    markers = []
    for k, (line, x, y) in enumerate(off):
        # side by side, 7 points apart, where two runs left the scale at the same epoch
        at = offset_copy(ax.transData, ax.figure, x=7 * (k - (len(off) - 1) / 2), units="points")
        name = line.get_label() if not line.get_label().startswith("_") else "a curve"
        big, nan = np.isfinite(y) & (y > limit), ~np.isfinite(y)
        if big.any():
            values = ", ".join(
                f"{v:,.3g} at {what} {e:g}" for e, v in zip(x[big], y[big], strict=True)
            )
            label = textwrap.fill(f"{name}: {values}, above the scale", 40)
            markers += ax.plot(x[big], np.full(big.sum(), edge), "^", color=line.get_color(),
                               ms=8, ls="none", label=label, transform=at)  # fmt: skip
        if nan.any():
            label = textwrap.fill(f"{name}: not a number from {what} {x[nan][0]:g}", 40)
            markers += ax.plot(x[nan], np.full(nan.sum(), edge), "X", color=line.get_color(),
                               ms=8, ls="none", label=label, transform=at)  # fmt: skip
    return markers


def plain_log_scale(ax: Any, which: str = "both") -> None:
    """Put ``ax``'s x, y or both axes on a log scale whose ticks read as plain numbers.

    matplotlib labels a log axis ``10^1`` and, when it spans little, ``6x10^2``, which students
    read as a product; here ticks read ``0.5``, ``1``, ``20``, ``1,000``, at 1, 2 and 5 times
    each power of ten when the axis spans fewer than three decades, at the powers alone beyond.
    Call it after the data is drawn (the span decides the ticks).
    """
    import math

    from matplotlib.ticker import FuncFormatter, LogLocator, NullFormatter

    for name in ("x", "y") if which == "both" else (which,):
        getattr(ax, f"set_{name}scale")("log")
        low, high = getattr(ax, f"get_{name}lim")()
        decades = math.log10(high / low) if low > 0 and high > low else 0.0
        axis = getattr(ax, f"{name}axis")
        subs = (1.0, 2.0, 5.0) if decades < 3 else (1.0,)
        axis.set_major_locator(LogLocator(10, subs=subs))
        axis.set_major_formatter(FuncFormatter(lambda v, _pos: plain_number(v)))
        axis.set_minor_formatter(NullFormatter())


def plain_number(value: float) -> str:
    """A tick value without exponent: ``1,000``, ``20``, ``0.5``, ``0.002``."""
    if value >= 1:
        return f"{value:,.0f}" if value == round(value) else f"{value:,.3g}"
    return f"{value:.6f}".rstrip("0").rstrip(".") or "0"
