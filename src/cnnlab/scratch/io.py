"""Writing filtered images (Pillow). Kept apart so the numerical modules stay NumPy-only.

Reading is not here: image files are decoded once for the whole project by
:func:`cnnlab.data.images.read_image` (EXIF orientation, modes, alpha, decompression-bomb guard),
which ``cnnlab filter`` calls.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
from PIL import Image

from cnnlab.errors import DataError

_WRITE_FORMATS = {".png": "PNG", ".jpg": "JPEG", ".jpeg": "JPEG"}


def check_output(path: str | Path) -> str:
    """Check that an image can be written to ``path`` before any work is done; return the
    Pillow format name.

    Raises:
        DataError: for an unsupported suffix or a directory that does not exist.
    """
    path = Path(path)
    fmt = _WRITE_FORMATS.get(path.suffix.lower())
    if fmt is None:
        raise DataError(f"cannot write {str(path)!r}; name the output .png, .jpg or .jpeg")
    if not path.parent.is_dir():
        raise DataError(f"directory {str(path.parent)!r} does not exist; create it first")
    return fmt


def write_image(path: str | Path, image: np.ndarray) -> Path:
    """Write a uint8 (H, W) or (H, W, 3) array as PNG or JPEG (chosen by the file suffix).

    Raises:
        DataError: for an unsupported suffix, a directory that does not exist, or a failed write.
    """
    path = Path(path)
    fmt = check_output(path)
    if image.dtype != np.uint8 or image.ndim not in (2, 3):
        raise DataError(
            f"write_image needs uint8 (H, W) or (H, W, 3), got {image.dtype} {image.shape}"
        )
    try:
        Image.fromarray(image).save(path, format=fmt)
    except OSError as err:
        raise DataError(
            f"cannot write {str(path)!r} ({err}); check the path and permissions"
        ) from None
    return path
