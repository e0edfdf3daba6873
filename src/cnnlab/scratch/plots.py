"""One figure with an image under every kernel of :data:`cnnlab.scratch.filters.FILTERS`."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np

from cnnlab.errors import DataError
from cnnlab.scratch.filters import FILTERS, apply_filter


def filter_grid(image: np.ndarray, path: str | Path, mode: str = "reflect", ncols: int = 4) -> Path:
    """Save a grid of panels: the original, then the image under each kernel, titled by name.

    Args:
        image: uint8 (H, W) or (H, W, 3).
        path: output file; the suffix picks the format (PNG recommended).
        mode: border fill passed to the filters.
        ncols: panels per row.
    """
    import matplotlib

    matplotlib.use("Agg")  # files only; never open a window
    import matplotlib.pyplot as plt

    panels = [("original", image)] + [(name, apply_filter(image, name, mode)) for name in FILTERS]
    nrows = math.ceil(len(panels) / ncols)
    h, w = image.shape[:2]
    fig, axes = plt.subplots(nrows, ncols, figsize=(3 * ncols, 3 * nrows * h / w + 0.4 * nrows))
    for ax in np.ravel(axes):
        ax.axis("off")
    for ax, (name, img) in zip(np.ravel(axes)[: len(panels)], panels, strict=True):
        ax.imshow(img, cmap="gray" if img.ndim == 2 else None, vmin=0, vmax=255)
        shown = "" if name == "original" else f" ({FILTERS[name].display})"
        ax.set_title(name + shown, fontsize=10)
    fig.suptitle(f"cross-correlation with each kernel, '{mode}' border", fontsize=11)
    fig.tight_layout()
    path = Path(path)
    try:
        fig.savefig(path, dpi=100)
    except (OSError, ValueError) as err:
        raise DataError(
            f"cannot write figure {str(path)!r} ({err}); check the path and suffix"
        ) from None
    finally:
        plt.close(fig)
    return path
