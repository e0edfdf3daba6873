"""Classical image filters as data, each with a one-line note (lecture 001, slides 8-25).

Every kernel here is meant for :func:`cnnlab.scratch.correlate.correlate2d` (cross-correlation,
the slides' ``★``): "shift left" puts its 1 to the *right* of the centre because output pixel
``(i, j)`` reads input pixel ``(i, j + 1)``. Kernels that sum to 1 keep brightness (blurs,
sharpen, shifts, emboss); kernels that sum to 0 (Sobel, Laplacian) answer edges with signed values
and need a different display (``display="abs"``: magnitude, rescaled to the full range).

Deviations from the slides: none in the kernels. The slides' sharpening formula is
``2 * identity - box`` (slide 21); ``emboss`` and ``laplacian`` are the textbook kernels the slides
mention by name but do not print.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

import numpy as np

from cnnlab.errors import ConfigError
from cnnlab.scratch.correlate import correlate2d


@dataclass(frozen=True)
class Filter:
    """A named kernel.

    Attributes:
        name: the name the CLI takes (``--kernel NAME``).
        kernel: (kh, kw) float64 weights, for cross-correlation.
        note: one line on what it does.
        display: how to show the result as an image: ``"clip"`` (values are intensities; clip to
            [0, 255]) or ``"abs"`` (signed edge response; show ``|g|`` rescaled, see
            :func:`to_display`).
    """

    name: str
    kernel: np.ndarray
    note: str
    display: Literal["clip", "abs"] = "clip"


def impulse(size: int = 3, offset: tuple[int, int] = (0, 0)) -> np.ndarray:
    """A ``size x size`` kernel with a single 1 at ``offset`` (rows, cols) from the centre.

    Correlating with it reads the pixel at that offset: (0, +1) shifts the image left.
    """
    if size < 1 or size % 2 == 0:
        raise ConfigError(f"impulse size {size} must be odd and >= 1; use 3, 5, ...")
    k = np.zeros((size, size))
    c = size // 2
    k[c + offset[0], c + offset[1]] = 1.0
    return k


def box(size: int = 3) -> np.ndarray:
    """The mean filter: ``size x size`` weights of ``1 / size**2``."""
    if size < 1:
        raise ConfigError(f"box size {size} must be >= 1")
    return np.full((size, size), 1.0 / size**2)


def gaussian(size: int = 5, sigma: float = 1.0) -> np.ndarray:
    """Sampled 2-D Gaussian ``exp(-(u^2 + v^2) / (2 sigma^2))``, normalised to sum to 1.

    Args:
        size: odd side length; 2 * ceil(3 * sigma) + 1 covers 99.7% of the mass.
        sigma: standard deviation in pixels, > 0.
    """
    if size < 1 or size % 2 == 0:
        raise ConfigError(f"gaussian size {size} must be odd and >= 1; use e.g. 5")
    if not sigma > 0:
        raise ConfigError(f"gaussian sigma {sigma} must be > 0; use e.g. 1.0")
    r = np.arange(size) - size // 2
    g = np.exp(-(r**2) / (2 * sigma**2))
    k = np.outer(g, g)  # separable: the 2-D Gaussian is the product of two 1-D ones
    return k / k.sum()


# Edge maps are scaled so this percentile of |g| is white (see to_display).
ABS_PERCENTILE = 99.5

IDENTITY = impulse()
BOX = box(3)

# name -> (kernel, note, display). Order: the order of the slides.
_TABLE: dict[str, tuple[np.ndarray, str, str]] = {
    "identity": (IDENTITY, "unit impulse: the image unchanged (slide 18)", "clip"),
    "shift_left": (impulse(offset=(0, 1)), "moves the image 1 pixel left (slide 20)", "clip"),
    "shift_right": (impulse(offset=(0, -1)), "moves the image 1 pixel right", "clip"),
    "shift_up": (impulse(offset=(1, 0)), "moves the image 1 pixel up", "clip"),
    "shift_down": (impulse(offset=(-1, 0)), "moves the image 1 pixel down", "clip"),
    "box": (BOX, "3x3 mean filter: blur (slides 8-16)", "clip"),
    "gaussian": (
        gaussian(5, 1.0),
        "5x5 Gaussian, sigma 1: smooth blur without box artefacts",
        "clip",
    ),
    "sharpen": (
        2 * IDENTITY - BOX,
        "2*identity - box: accentuates differences from the local average (slide 22)",
        "clip",
    ),
    "sobel_x": (
        np.array([[1.0, 0, -1], [2, 0, -2], [1, 0, -1]]),
        "horizontal gradient: vertical edges (slide 24)",
        "abs",
    ),
    "sobel_y": (
        np.array([[1.0, 2, 1], [0, 0, 0], [-1, -2, -1]]),
        "vertical gradient: horizontal edges (slide 25)",
        "abs",
    ),
    "laplacian": (
        np.array([[0.0, 1, 0], [1, -4, 1], [0, 1, 0]]),
        "second derivative: edges in every direction, zero on flat areas",
        "abs",
    ),
    "emboss": (
        np.array([[-2.0, -1, 0], [-1, 1, 1], [0, 1, 2]]),
        "relief: lit from the bottom right, flat areas keep their brightness",
        "clip",
    ),
}


def _frozen(k: np.ndarray) -> np.ndarray:
    k = np.array(k, dtype=np.float64)
    k.setflags(write=False)  # shared table: a caller must not edit a kernel in place
    return k


FILTERS: dict[str, Filter] = {
    name: Filter(name=name, kernel=_frozen(k), note=note, display=disp)  # type: ignore[arg-type]
    for name, (k, note, disp) in _TABLE.items()
}


def get_filter(name: str) -> Filter:
    """Look a filter up by name.

    Raises:
        ConfigError: for an unknown name; the message lists the known ones.
    """
    try:
        return FILTERS[name]
    except KeyError:
        raise ConfigError(f"unknown kernel {name!r}; choose one of: {', '.join(FILTERS)}") from None


def apply_filter(image: np.ndarray, name: str, mode: str = "reflect") -> np.ndarray:
    """Filter an image with a named kernel and map the result to a viewable uint8 image.

    The output has the input's size (``"same"`` padding, the border filled by ``mode``), and a
    colour image is filtered channel by channel.

    Shape:
        (H, W) or (H, W, C) -> the same shape, uint8.
    """
    f = get_filter(name)
    return to_display(correlate2d(image, f.kernel, padding="same", mode=mode), f.display)


def to_display(filtered: np.ndarray, display: str) -> np.ndarray:
    """Map a filtered float image to uint8 for viewing.

    ``"clip"``: round and clip to [0, 255] (the kernel kept intensities in that range or close).
    ``"abs"``: magnitude ``|g|`` scaled so its 99.5th percentile becomes 255, clipped above
    (an edge map; scaling by the maximum instead lets a few very strong edges leave the rest
    nearly black). All black if the response is zero everywhere.

    Shape:
        any shape -> the same shape, uint8.
    """
    if display == "abs":
        mag = np.abs(filtered)
        peak = float(np.percentile(mag, ABS_PERCENTILE)) if mag.size else 0.0
        if peak <= 0 and mag.size:  # sparse response: fall back to the maximum
            peak = float(mag.max())
        scaled = mag * (255.0 / peak) if peak > 0 else mag
        return np.clip(np.rint(scaled), 0, 255).astype(np.uint8)
    if display == "clip":
        return np.clip(np.rint(filtered), 0, 255).astype(np.uint8)
    raise ConfigError(f"display {display!r} is not known; use 'clip' or 'abs'")
