"""``cnnlab filter IMAGE --kernel NAME -o OUT.png``: classical filters on a real image.

Calls :func:`cnnlab.scratch.filters.apply_filter` (the from-scratch NumPy cross-correlation) and
prints what it wrote.
"""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import TYPE_CHECKING

from cnnlab.errors import ConfigError, DataError

if TYPE_CHECKING:
    import numpy as np

# Not from cnnlab.scratch (which imports NumPy): `cnnlab --help` imports neither NumPy nor PyTorch.
from cnnlab.choices import PAD_MODES

# Largest image `cnnlab filter` takes: 4096 x 4096. The NumPy filter works in float64 with a
# padded copy and an output per channel, about 50 bytes per pixel of an RGB image, so this keeps
# one call under ~1 GB. (cnnlab.data.images refuses anything over Pillow's 89 megapixel
# decompression-bomb limit before this check is even reached.)
MAX_PIXELS = 4096 * 4096


def add_parser(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser(
        "filter",
        help="run a classical image filter (box, Sobel, ...) written from scratch in NumPy",
        description="Cross-correlate a PNG/JPEG image with a named kernel, channel by channel, "
        "and write the result at the input's size. Intensity-preserving kernels (blurs, shifts, "
        "sharpen, emboss) are clipped to 0-255; edge kernels (sobel_x, sobel_y, laplacian) are "
        "shown as magnitude |g|, scaled so its 99.5th percentile is white.",
        epilog="examples: cnnlab filter photo.png --kernel sobel_x -o edges.png | "
        "cnnlab filter --list | cnnlab filter photo.png --grid all.png",
    )
    p.add_argument("image", nargs="?", help="input PNG/JPEG file")
    p.add_argument("--kernel", "-k", metavar="NAME", help="kernel name (see --list)")
    p.add_argument(
        "--padding",
        choices=PAD_MODES,
        default="reflect",
        help="how to fill the border so the output keeps the input size (default: reflect)",
    )
    p.add_argument("--gray", action="store_true", help="convert a colour image to grayscale first")
    p.add_argument("-o", "--output", metavar="OUT.png", help="filtered image (.png/.jpg)")
    p.add_argument("--grid", metavar="OUT.png", help="figure of the image under every kernel")
    p.add_argument("--list", action="store_true", help="list the kernels and exit")
    p.add_argument(
        "--max-pixels",
        type=int,
        default=MAX_PIXELS,
        help=f"refuse larger images (default {MAX_PIXELS:,} = 4096x4096)",
    )
    p.set_defaults(run=run)


def _list() -> None:
    from cnnlab.scratch.filters import FILTERS

    width = max(map(len, FILTERS))
    for f in FILTERS.values():
        if f.kernel.shape[0] <= 3:
            rows = " | ".join(" ".join(f"{v:.3g}" for v in row) for row in f.kernel)
        else:
            rows = f"{f.kernel.shape[0]}x{f.kernel.shape[1]}"
        print(f"{f.name:<{width}}  {f.note}")
        print(f"{'':<{width}}  [{rows}]  shown as: {f.display}")


def _read(path: str, gray: bool, max_pixels: int) -> np.ndarray:
    """Decode with the project's one image reader; refuse oversized images from the header."""
    from cnnlab.data.images import image_header, read_image  # torch: only when filtering

    h, w, _ = image_header(Path(path))
    if h * w > max_pixels:
        raise DataError(
            f"{path}: {w}x{h} = {w * h:,} pixels is over the filter limit of {max_pixels:,}; "
            "downscale the image or pass a larger --max-pixels"
        )
    chw = read_image(path, channels=1 if gray else None).numpy()  # (C, H, W) uint8
    return chw[0] if chw.shape[0] == 1 else chw.transpose(1, 2, 0)  # (H, W) or (H, W, 3)


def run(args: argparse.Namespace) -> int:
    from cnnlab.scratch.filters import FILTERS, apply_filter, get_filter
    from cnnlab.scratch.io import check_output, write_image

    if args.list:
        _list()
        return 0
    if args.image is None:
        raise ConfigError("no input image; pass IMAGE (or --list to see the kernels)")
    if args.output is None and args.grid is None:
        raise ConfigError("nothing to write; pass -o OUT.png with --kernel, and/or --grid OUT.png")
    if args.output is not None and args.kernel is None:
        raise ConfigError(f"-o needs --kernel NAME; choose one of: {', '.join(FILTERS)}")
    # Fail on a bad name or output path before decoding and filtering anything.
    if args.kernel is not None:
        get_filter(args.kernel)
    for out in (args.output, args.grid):
        if out is not None:
            check_output(out)
    image = _read(args.image, args.gray, args.max_pixels)
    if args.output is not None:
        out = apply_filter(image, args.kernel, args.padding)
        write_image(args.output, out)
        print(
            f"wrote {args.output}: {args.kernel} on {args.image} "
            f"({image.shape[1]}x{image.shape[0]}, {args.padding} border, "
            f"shown as {FILTERS[args.kernel].display})"
        )
    if args.grid is not None:
        from cnnlab.scratch.plots import filter_grid  # matplotlib only when asked for

        filter_grid(image, args.grid, args.padding)
        print(f"wrote {args.grid}: {args.image} under all {len(FILTERS)} kernels")
    return 0
