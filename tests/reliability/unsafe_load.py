"""Unpickles a file the unsafe way, to show that a payload is live; a script.

Usage::

    python tests/reliability/unsafe_load.py FILE MARKER

Tries ``pickle.loads`` (of the whole file and past an 8-byte length prefix), then
``numpy.load(allow_pickle=True)``, then ``torch.load(weights_only=False)``, cheapest first,
stopping once ``MARKER`` exists. Never run this on a file you did not make: it is the very thing
cnnlab refuses to do.
"""

from __future__ import annotations

import contextlib
import os
import pickle
import sys


def main(path: str, marker: str) -> None:
    with open(path, "rb") as f:
        data = f.read()
    for blob in (data, data[8:]):
        with contextlib.suppress(Exception):
            pickle.loads(blob)
    if not os.path.exists(marker):
        import numpy as np

        with contextlib.suppress(Exception):
            np.load(path, allow_pickle=True)
    if not os.path.exists(marker):
        import torch  # only for torch.save archives, which pickle and NumPy cannot open

        with contextlib.suppress(Exception):
            torch.load(path, weights_only=False)


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2])
