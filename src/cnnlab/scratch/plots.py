"""One figure with an image under every kernel of :data:`cnnlab.scratch.filters.FILTERS`."""

from __future__ import annotations

import math
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from cnnlab import plotting
from cnnlab.scratch.filters import FILTERS, apply_filter

if TYPE_CHECKING:
    from matplotlib.figure import Figure

DPI = 100


def filter_grid(
    image: np.ndarray, path: str | Path | None = None, mode: str = "reflect", ncols: int = 4
) -> Figure:
    """A grid of panels: the original, then the image under each kernel, titled by name.

    Args:
        image: uint8 (H, W) or (H, W, 3).
        path: also write the figure there; the suffix picks the format (PNG recommended).
        mode: border fill passed to the filters.
        ncols: panels per row.

    Returns:
        The figure (drawn without pyplot, see :mod:`cnnlab.plotting`).
    """
    panels = [("original", image)] + [(name, apply_filter(image, name, mode)) for name in FILTERS]
    nrows = math.ceil(len(panels) / ncols)
    h, w = image.shape[:2]
    fig = plotting.figure(figsize=(3 * ncols, 3 * nrows * h / w + 0.4 * nrows))
    axes = np.ravel(fig.subplots(nrows, ncols))
    for ax in axes:
        ax.axis("off")
    for ax, (name, img) in zip(axes[: len(panels)], panels, strict=True):
        ax.imshow(img, cmap="gray" if img.ndim == 2 else None, vmin=0, vmax=255)
        shown = "" if name == "original" else f" ({FILTERS[name].display})"
        ax.set_title(name + shown, fontsize=10)
    fig.suptitle(f"cross-correlation with each kernel, '{mode}' border", fontsize=11)
    fig.tight_layout()
    if path is not None:
        plotting.save(fig, path, DPI)
    return fig
