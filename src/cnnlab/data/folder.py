"""Image folders: one sub-folder per class, the layout torchvision's ``ImageFolder`` reads.

Two layouts are recognised::

    ROOT/train/CLASS/*.png   and  ROOT/test/CLASS/*.png      (explicit splits)
    ROOT/CLASS/*.png                                          (no split folders)

Classes are the sub-folder names in sorted order (label ``i`` is the ``i``-th name); with split
folders they come from ``train/`` and ``test/`` may not add a class. Files are found recursively
below each class folder; hidden files and files without an image extension (``.txt``, ...) are
ignored, but a file *with* an image extension that cannot be decoded is an error, not a silent skip.

Without split folders, the test split is a fixed ~10% of each class chosen by a hash of the
file's path relative to ROOT (one in :data:`HOLDOUT_BUCKETS`), so it never changes when files are
added or the folder is moved, and train and test never share a file.

All images of a dataset get one channel count and one size, decided from the **training** split's
headers so that train and test always agree: ``channels`` defaults to 3 if any training image has
colour, else 1; ``size`` defaults to the median height and median width of the training images.
Each image is resized to ``size`` with Pillow's antialiased bilinear filter, without keeping the
aspect ratio (see :func:`cnnlab.data.images.read_image`, which decodes every file).
"""

from __future__ import annotations

import hashlib
import os
from concurrent.futures import ThreadPoolExecutor
from functools import lru_cache
from pathlib import Path

import numpy as np
import torch

from cnnlab.data.datasets import DatasetInfo
from cnnlab.data.images import image_header, read_image
from cnnlab.errors import DataError

__all__ = ["IMAGE_EXTENSIONS", "folder_info", "list_folder", "load_folder"]

IMAGE_EXTENSIONS = frozenset(
    {".png", ".jpg", ".jpeg", ".bmp", ".gif", ".webp", ".tif", ".tiff", ".ppm", ".pgm", ".pbm"}
)
HOLDOUT_BUCKETS = 10  # 1 in 10 files is held out for testing when there are no split folders
_WORKERS = min(8, os.cpu_count() or 1)  # Pillow releases the GIL while decoding


def _class_dirs(directory: Path) -> list[Path]:
    return sorted(
        (d for d in directory.iterdir() if d.is_dir() and not d.name.startswith(".")),
        key=lambda d: d.name,
    )


def _images_under(directory: Path) -> list[Path]:
    found = []
    seen: set[str] = set()  # real paths walked: symlinked folders are followed, loops are not
    for dirpath, dirnames, filenames in os.walk(directory, followlinks=True):
        real = os.path.realpath(dirpath)
        if real in seen:
            dirnames[:] = []
            continue
        seen.add(real)
        dirnames[:] = sorted(d for d in dirnames if not d.startswith("."))
        for f in sorted(filenames):
            if not f.startswith(".") and Path(f).suffix.lower() in IMAGE_EXTENSIONS:
                found.append(Path(dirpath) / f)
    return found


def _held_out(root: Path, path: Path) -> bool:
    key = path.relative_to(root).as_posix().encode()
    return int.from_bytes(hashlib.sha1(key).digest()[:4], "big") % HOLDOUT_BUCKETS == 0


def list_folder(
    root: str | os.PathLike, split: str
) -> tuple[tuple[str, ...], list[tuple[Path, int]]]:
    """The class names and the ``(file, label)`` pairs of one split of an image folder."""
    root = Path(root)
    if not root.is_dir():
        raise DataError(f"{root}: not a folder; pass a folder with one sub-folder per class")
    has_splits = (root / "train").is_dir()
    base = root / "train" if has_splits else root
    classes = tuple(d.name for d in _class_dirs(base))
    if not classes:
        raise DataError(
            f"{base}: no class sub-folders; put each class's images in its own sub-folder "
            f"({base}/CLASS/image.png)"
        )
    samples: list[tuple[Path, int]] = []
    if has_splits:
        split_dir = root / split
        if not split_dir.is_dir():
            raise DataError(
                f"{root}: has train/ but no {split}/ folder; add {split_dir} with the same class "
                "sub-folders"
            )
        for d in _class_dirs(split_dir):
            if d.name not in classes:
                raise DataError(
                    f"{d}: class {d.name!r} is not among the training classes "
                    f"{list(classes)}; add it to {root / 'train'} or remove it"
                )
            label = classes.index(d.name)
            samples.extend((p, label) for p in _images_under(d))
    else:
        for label, name in enumerate(classes):
            files = _images_under(base / name)
            if not files:
                raise DataError(
                    f"{base / name}: class folder holds no images "
                    f"({', '.join(sorted(IMAGE_EXTENSIONS))}); add images or remove it"
                )
            test = split == "test"
            samples.extend((p, label) for p in files if _held_out(root, p) == test)
    if not samples:
        raise DataError(f"{root}: the {split} split holds no images; add image files")
    return classes, samples


def _shape_from_train(root: Path, channels: int | None, size: tuple[int, int] | None):
    """Common (channels, (H, W)) for both splits, from the training split's headers."""
    if channels is not None and channels not in (1, 3):
        raise DataError(f"channels={channels} for {root}: use 1 (grayscale) or 3 (RGB)")
    if size is not None and (len(size) != 2 or min(size) < 1):
        raise DataError(f"size={size} for {root}: use (height, width) with positive sides")
    if channels is not None and size is not None:
        return channels, (int(size[0]), int(size[1]))
    _, samples = list_folder(root, "train")
    with ThreadPoolExecutor(_WORKERS) as pool:
        headers = list(pool.map(image_header, (p for p, _ in samples)))
    hs = np.array([h for h, _, _ in headers])
    ws = np.array([w for _, w, _ in headers])
    if channels is None:
        channels = 1 if all(gray for _, _, gray in headers) else 3
    if size is None:
        # The median, rounded down to a whole pixel: robust to a few odd-sized images.
        size = (int(np.median(hs)), int(np.median(ws)))
    return channels, (int(size[0]), int(size[1]))


def _signature(samples: list[tuple[Path, int]]) -> tuple:
    """What the decoded arrays depend on: each file's path, size and modification time."""
    out = []
    for p, label in samples:
        st = p.stat()
        out.append((str(p), label, st.st_size, st.st_mtime_ns))
    return tuple(out)


def _check_memory(root: Path, n: int, channels: int, size: tuple[int, int]) -> None:
    """Refuse, before decoding, a split that cannot fit in half of the physical memory."""
    need = n * channels * size[0] * size[1]
    try:
        total = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
    except (ValueError, OSError, AttributeError):  # not POSIX: no limit known
        return
    if need > total // 2:
        raise DataError(
            f"{root}: {n:,} images of {channels}x{size[0]}x{size[1]} need {need / 2**30:.1f} GiB "
            f"as uint8, more than half of this machine's {total / 2**30:.1f} GiB; pass a smaller "
            "size=(H, W)"
        )


@lru_cache(maxsize=4)
def _decode(signature: tuple, channels: int, size: tuple[int, int]):
    n = len(signature)
    images = torch.empty((n, channels, *size), dtype=torch.uint8)
    labels = torch.tensor([label for _, label, _, _ in signature], dtype=torch.int64)

    def one(i: int) -> None:
        images[i] = read_image(signature[i][0], channels, size)

    with ThreadPoolExecutor(_WORKERS) as pool:
        list(pool.map(one, range(n)))  # list() re-raises the first DataError
    return images, labels


def load_folder(
    root: str | os.PathLike,
    split: str = "train",
    *,
    channels: int | None = None,
    size: tuple[int, int] | None = None,
) -> tuple[torch.Tensor, torch.Tensor]:
    """Decode one split of an image folder into tensors.

    Args:
        root: The folder (see the module docstring for layouts).
        split: ``"train"`` or ``"test"``.
        channels: 1 or 3; default from the training images (3 if any has colour).
        size: (H, W); default the training images' median height and width.

    Returns:
        ``(images, labels)``; decoded arrays of unchanged files are cached in memory (up to four
        splits), and each call returns its own copy.

    Shape:
        images: (N, C, H, W), torch.uint8; labels: (N,), torch.int64.
    """
    root = Path(root).expanduser()
    channels, size = _shape_from_train(root, channels, size)
    _, samples = list_folder(root, split)
    _check_memory(root, len(samples), channels, size)
    images, labels = _decode(_signature(samples), channels, size)
    return images.clone(), labels.clone()


def folder_info(root: str | os.PathLike) -> DatasetInfo:
    """A :class:`DatasetInfo` for an image folder; mean/std are measured on its training split."""
    root = Path(root).expanduser()
    classes, _ = list_folder(root, "train")
    train, _ = load_folder(root, "train")
    try:
        num_test = len(list_folder(root, "test")[1])
    except DataError:
        num_test = 0
    x = train.to(torch.float64).div_(255)
    mean = tuple(round(float(v), 4) for v in x.mean(dim=(0, 2, 3)))
    std = tuple(round(float(v), 4) for v in x.std(dim=(0, 2, 3), unbiased=False))
    return DatasetInfo(
        name=str(root),
        title=f"image folder {root}",
        classes=classes,
        channels=train.shape[1],
        size=(train.shape[2], train.shape[3]),
        mean=mean,
        std=tuple(max(s, 1e-4) for s in std),  # a constant image would give 0: keep it usable
        num_train=train.shape[0],
        num_test=num_test,
        format="folder",
        root=root,
    )
