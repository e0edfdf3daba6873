"""Image filtering from scratch, in lecture order (lecture 001, slides 7-29).

1. The mean-filter worked example: a 10x10 image of 90s, filtered to 8x8 (slide 15).
2. Correlation vs convolution: the same kernel flipped.
3. The classical kernels on a real photograph (scikit-image's "camera"), saved as one figure.

    .venv/bin/python examples/scratch_filters.py --out /tmp/filters.png
"""

from __future__ import annotations

import argparse

import numpy as np
import skimage.data

from cnnlab.scratch import FILTERS, convolve2d, correlate2d, get_filter
from cnnlab.scratch.plots import filter_grid


def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--out", default="filters.png", help="where to write the figure")
    args = p.parse_args(argv)

    # 1. Slide 15: f is 90 inside a 5x5 square (one pixel of it 0) plus one stray 90.
    f = np.zeros((10, 10), dtype=int)
    f[2:7, 3:8] = 90
    f[5, 4] = 0
    f[8, 2] = 90
    g = correlate2d(f, get_filter("box").kernel)  # "valid": 10x10 -> 8x8
    print("mean filter, slide 15 (valid, 8x8):")
    print("\n".join(" ".join(f"{v:3.0f}" for v in row) for row in g))

    # 2. A non-symmetric kernel shows the flip: correlation reads f[i + u], convolution f[i - u].
    impulse = np.zeros((5, 5))
    impulse[2, 2] = 1
    k = np.arange(1, 10, dtype=float).reshape(3, 3)
    print("\nimpulse correlated with 1..9 gives the kernel flipped:")
    print(correlate2d(impulse, k, "same")[1:4, 1:4])
    print("impulse convolved with 1..9 gives the kernel itself:")
    print(convolve2d(impulse, k, "same")[1:4, 1:4])

    # 3. Every kernel on a real photograph.
    camera = skimage.data.camera()
    for name, filt in FILTERS.items():
        out = correlate2d(camera, filt.kernel, "same", "reflect")
        print(f"{name:<12} range [{out.min():8.1f}, {out.max():7.1f}]  {filt.note}")
    filter_grid(camera, args.out)
    print(f"\nwrote {args.out}")


if __name__ == "__main__":
    main()
