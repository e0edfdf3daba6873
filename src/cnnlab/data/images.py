"""Reading one image file into a tensor, the same way for ``cnnlab predict`` and image folders.

Decoding is Pillow's. What ``read_image`` does on top, and why:

- **Orientation.** The EXIF orientation tag is applied (``ImageOps.exif_transpose``), so a phone
  photo comes out the way every viewer shows it, not rotated.
- **Modes.** ``1`` and ``L`` are grayscale; ``P`` (palette), ``RGB``, ``CMYK``, ``YCbCr`` and the
  other colour modes are converted to RGB; 16-bit grayscale (``I;16``, ``I``) is scaled from
  0-65535 to 0-255 (an ``I`` image whose values all fit in 0-255 is taken as 8-bit); ``F`` is
  clipped to 0-255. RGB to grayscale uses Pillow's ITU-R 601-2 luma weights.
- **Transparency.** An alpha channel (``RGBA``, ``LA``, ``PA``, or a palette/colour key with a
  ``transparency`` entry) is composited on a **white** background, as a transparent PNG looks on a
  page, then dropped. Draw dark digits on a transparent canvas and you get dark-on-white.
- **Animations.** GIF, APNG and WebP animations give their **first frame**.
- **Size limit.** Images over :data:`MAX_IMAGE_PIXELS` pixels (89,478,485: Pillow's own default,
  about 256 MiB decoded as RGB) are refused from their header, before decoding, as decompression
  bombs. Pillow's global ``Image.MAX_IMAGE_PIXELS`` is left untouched.
- **Hostile files.** The file is opened through :func:`cnnlab.files.open_regular`: symlinks
  are resolved, only a regular file of at most ``files.LIMITS["image"]`` bytes is read, and the
  open never blocks, so a FIFO, a device, a socket or a directory named ``x.png`` is refused with
  one line instead of hanging or reading forever. An image with no pixels is refused, and an
  extreme aspect ratio (1 x 60,000) is never resized whole (:func:`_resize_crop`).
- **Damage.** Truncated files, broken streams, non-images and unreadable files raise
  :class:`~cnnlab.errors.DataError` naming the file; truncated images are never padded with grey
  (``ImageFile.LOAD_TRUNCATED_IMAGES`` stays off).
- **Names.** A file name that is not printable text (a newline, bytes that are not UTF-8) is
  shown escaped in messages (:func:`printable`), so every error stays one printable line.
"""

from __future__ import annotations

import contextlib
import os
import struct
import threading
import warnings
import zlib
from pathlib import Path
from typing import BinaryIO

import numpy as np
import torch
from PIL import Image, ImageOps, UnidentifiedImageError

from cnnlab.errors import DataError
from cnnlab.files import open_regular
from cnnlab.formats import printable

__all__ = ["MAX_IMAGE_PIXELS", "image_header", "printable", "read_image"]

#: Largest image accepted, in pixels: Pillow's default, 1 GiB / (4 bytes x 3 channels).
MAX_IMAGE_PIXELS = (1 << 30) // (4 * 3)

_GRAY_MODES = {"1", "L", "LA", "La", "I", "F"}
_ALPHA_MODES = {"RGBA", "RGBa", "LA", "La", "PA"}
_FIX = "replace the file or remove it"
_WARNINGS_LOCK = threading.Lock()
#: What Pillow raises on damaged data, besides OSError: broken PNG chunks are SyntaxError,
#: bad headers ValueError/struct.error/EOFError, broken zlib streams zlib.error.
_DAMAGE = (OSError, SyntaxError, ValueError, EOFError, struct.error, zlib.error, IndexError)
#: Largest intermediate image of a shorter-side resize; beyond it (an aspect ratio of hundreds
#: to one) the centre region is resized straight to the crop, so memory stays bounded.
_RESIZE_PIXELS = 1 << 24


def _one_line(err: BaseException) -> str:
    text = str(err).strip().splitlines()
    return text[0] if text else type(err).__name__


def _is_gray(img: Image.Image) -> bool:
    return img.mode in _GRAY_MODES or img.mode.startswith("I;16")


def _open_file(path: Path) -> BinaryIO:
    """The file, open for reading: a regular file of bounded size (never blocks, never hangs)."""
    try:
        return open_regular(path, what="image", limit="image")
    except DataError as err:  # the message names the path: keep it one printable line
        if not os.path.lexists(path):
            raise DataError(f"{printable(path)}: file not found; check the path") from None
        raise DataError(printable(str(err))) from None


def _open(path: Path, f: BinaryIO) -> Image.Image:
    """Open (header only) with the size limit enforced as an error, not a warning."""
    name = printable(path)
    try:
        # Header parsing, EXIF included (getexif caches it for exif_transpose later), with
        # Pillow's warnings silenced (damage is reported as an error, not a warning) and its
        # bomb warning turned into an error. warnings.catch_warnings edits process-wide state,
        # hence the lock: image folders call this from a thread pool.
        with _WARNINGS_LOCK, warnings.catch_warnings():
            warnings.simplefilter("ignore")
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            img = Image.open(f)
            with contextlib.suppress(*_DAMAGE):  # broken EXIF: orientation taken as normal
                img.getexif()
    except (Image.DecompressionBombError, Image.DecompressionBombWarning) as err:
        raise DataError(
            f"{name}: refused as a possible decompression bomb ({printable(_one_line(err))}); "
            f"shrink it below {MAX_IMAGE_PIXELS:,} pixels"
        ) from None
    except UnidentifiedImageError:
        raise DataError(
            f"{name}: not an image Pillow can read (PNG, JPEG, GIF, BMP, TIFF, WebP, PPM, ...); "
            f"{_FIX}"
        ) from None
    except _DAMAGE as err:
        raise DataError(
            f"{name}: damaged image header ({printable(_one_line(err))}); {_FIX}"
        ) from None
    w, h = img.size
    if w < 1 or h < 1:
        img.close()
        raise DataError(f"{name}: the header says {w}x{h} pixels, an image with none; {_FIX}")
    if w * h > MAX_IMAGE_PIXELS:
        img.close()
        raise DataError(
            f"{name}: {w}x{h} = {w * h:,} pixels exceeds the limit of {MAX_IMAGE_PIXELS:,} "
            "(decompression-bomb guard); shrink the image first"
        )
    return img


def image_header(path: str | os.PathLike) -> tuple[int, int, bool]:
    """``(height, width, is_grayscale)`` from the header alone, after EXIF orientation.

    Used by image folders to choose a common size and channel count before decoding anything.
    """
    path = Path(path)
    with _open_file(path) as f, _open(path, f) as img:
        w, h = img.size
        try:
            orientation = img.getexif().get(0x0112, 1)  # EXIF Orientation tag
        except _DAMAGE:
            orientation = 1
        gray = _is_gray(img)
    if orientation in (5, 6, 7, 8):  # transposed or rotated by 90 degrees
        w, h = h, w
    return h, w, gray


def _to_8bit_gray(img: Image.Image) -> Image.Image:
    """16-bit and 32-bit grayscale to mode L with a documented scale (Pillow would clip)."""
    arr = np.asarray(img)
    if img.mode == "F":
        out = np.clip(np.rint(arr), 0, 255)
    elif img.mode == "I" and arr.size and int(arr.max()) <= 255 and int(arr.min()) >= 0:
        out = arr
    else:  # I;16*, or I holding 16-bit values: 0-65535 -> 0-255, rounded
        wide = np.clip(arr.astype(np.int64), 0, 65535)
        out = (wide * 255 + 32767) // 65535
    return Image.fromarray(out.astype(np.uint8), mode="L")


def _draft(img: Image.Image, side: int) -> None:
    """Let a JPEG decode at 1/2, 1/4 or 1/8 scale when both sides stay at least ``side``.

    Pillow's draft mode scales the DCT itself, so a 12-megapixel photo needed at 256 pixels is
    never held at full resolution (a 1/8 decode reads 1/64 of the pixels). Other formats ignore
    it. A square request keeps the guarantee whatever the EXIF orientation does later.
    """
    if img.format != "JPEG" or side < 1:
        return
    with contextlib.suppress(*_DAMAGE):  # a draft that fails just decodes at full size
        img.draft(img.mode, (side, side))


def _resize_crop(img: Image.Image, size: tuple[int, int], shorter_side: int) -> Image.Image:
    """Resize so the shorter side is ``shorter_side`` (aspect kept), then centre-crop ``size``.

    Where the resized image would exceed :data:`_RESIZE_PIXELS` (a 1 x 60,000 strip resized to
    256 on its shorter side would be 15 gigapixels), only the centre region is resized, straight
    to the crop (Pillow's ``box``): the same sampling positions, equal up to rounding.
    """
    w, h = img.size
    scale = shorter_side / min(w, h)
    new_w, new_h = max(size[1], round(w * scale)), max(size[0], round(h * scale))
    left, top = (new_w - size[1]) // 2, (new_h - size[0]) // 2
    if new_w * new_h > _RESIZE_PIXELS:
        sx, sy = w / new_w, h / new_h
        box = (left * sx, top * sy, (left + size[1]) * sx, (top + size[0]) * sy)
        return img.resize((size[1], size[0]), Image.Resampling.BILINEAR, box=box)
    if (new_w, new_h) != (w, h):
        img = img.resize((new_w, new_h), Image.Resampling.BILINEAR)
    return img.crop((left, top, left + size[1], top + size[0]))


def read_image(
    path: str | os.PathLike,
    channels: int | None = None,
    size: tuple[int, int] | None = None,
    *,
    shorter_side: int | None = None,
) -> torch.Tensor:
    """Decode an image file to a uint8 tensor.

    Args:
        path: Image file (anything Pillow reads).
        channels: 1 (grayscale) or 3 (RGB); ``None`` keeps the file's own: 1 for grayscale
            modes, 3 otherwise.
        size: ``(H, W)`` to resize to with Pillow's bilinear filter (antialiased when
            shrinking); the aspect ratio is not kept. ``None`` keeps the file's size.
        shorter_side: With ``size``: resize so the shorter side has this many pixels, keeping
            the aspect ratio, then crop the centre ``size`` (the evaluation transform of
            torchvision's ImageNet models: 256, then the centre 224x224).

    A JPEG needed at a reduced size is decoded in Pillow's draft mode (at 1/2, 1/4 or 1/8 of its
    resolution, never smaller than needed), so large photos are never held at full size.

    Returns:
        The image, values 0-255.

    Shape:
        (C, H, W), torch.uint8.

    Raises:
        DataError: missing, not a regular file (a FIFO, a device, a directory), larger than
            ``files.LIMITS["image"]``, unreadable, damaged, not an image, or over the pixel
            limit.
    """
    path = Path(path)
    if channels not in (None, 1, 3):
        raise DataError(f"channels={channels} for {printable(path)}: use 1 (grayscale) or 3 (RGB)")
    if shorter_side is not None and size is None:
        raise DataError(
            f"{printable(path)}: shorter_side needs size=(H, W), the centre crop to take"
        )
    with _open_file(path) as f:
        return _decode(path, _open(path, f), channels, size, shorter_side)


def _decode(
    path: Path,
    img: Image.Image,
    channels: int | None,
    size: tuple[int, int] | None,
    shorter_side: int | None,
) -> torch.Tensor:
    """The pixels of an opened image as ``read_image`` returns them (see there)."""
    try:
        with img:
            if size is not None:
                _draft(img, shorter_side or max(size))
            img.load()  # decodes the first frame; damaged data raises here
            with contextlib.suppress(*_DAMAGE):  # broken EXIF is no reason to refuse pixels
                img = ImageOps.exif_transpose(img)
            want = channels or (1 if _is_gray(img) else 3)
            if img.mode == "P" or (img.mode in ("L", "RGB") and "transparency" in img.info):
                img = img.convert("RGBA" if "transparency" in img.info else "RGB")
            if img.mode in _ALPHA_MODES:  # composite on white, then drop alpha
                rgba = img.convert("RGBA")
                white = Image.new("RGBA", rgba.size, (255, 255, 255, 255))
                img = Image.alpha_composite(white, rgba).convert("RGB")
            elif img.mode == "F" or img.mode == "I" or img.mode.startswith("I;16"):
                img = _to_8bit_gray(img)
            img = img.convert("L" if want == 1 else "RGB")
            if size is not None and shorter_side is not None:
                img = _resize_crop(img, size, shorter_side)
            elif size is not None:
                h, w = size
                if img.size != (w, h):
                    img = img.resize((w, h), Image.Resampling.BILINEAR)
            arr = np.asarray(img)
    except _DAMAGE as err:
        raise DataError(
            f"{printable(path)}: truncated or damaged image ({printable(_one_line(err))}); {_FIX}"
        ) from None
    arr = arr[None] if arr.ndim == 2 else arr.transpose(2, 0, 1)  # (C, H, W)
    return torch.from_numpy(np.array(arr, order="C"))  # a writable copy of Pillow's buffer
