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
from pathlib import Path
from typing import TYPE_CHECKING, Any

from cnnlab import files
from cnnlab.errors import ConfigError

if TYPE_CHECKING:
    from matplotlib.figure import Figure

__all__ = ["figure", "save"]


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
