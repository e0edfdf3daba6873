"""Image folders as people keep them: one sub-folder per class, with or without split folders.

Layouts::

    ROOT/train/CLASS/*.jpg  [ROOT/val/CLASS/*.jpg]  [ROOT/test/CLASS/*.jpg]   (ImageFolder/ImageNet)
    ROOT/CLASS/*.jpg                                                          (no split folders)

Classes are the sub-folder names in sorted order (label ``i`` is the ``i``-th name); with split
folders they come from ``train/``, and ``val/`` or ``test/`` may not add a class. Files are found
recursively below each class folder; hidden files and files without an image extension
(``.txt``, ...) are ignored.

A split without its own folder is held out of the training files, **stratified**: per class, the
test files first (10% by default, at least one), then the validation files (10%, at least one),
chosen by a permutation fixed by the seed (:func:`split_folder`). Every class must keep at least
one training image; a folder with no classes, a single class, or a class with no image files is a
one-line error. :class:`FolderSplits` records the file lists (training writes them to the run).

Decoding (:func:`decode_files`) fills one preallocated uint8 tensor from a thread pool; JPEGs are
decoded in Pillow's draft mode at the smallest scale that still covers the target, so no image is
ever held at full resolution. Training decodes at the model's size (:mod:`cnnlab.run.data`);
``load_dataset(folder)`` uses one channel count (3 if any training image has colour) and one size
(the training images' median, at most :data:`DEFAULT_MAX_SIDE` on the shorter side), resizing
without keeping the aspect ratio. A file with an image extension that cannot be decoded is an
error for ``load_dataset``; training skips such files and reports how many (see docs/data.md).
"""

from __future__ import annotations

import os
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

import numpy as np
import torch

from cnnlab.data.datasets import DatasetInfo
from cnnlab.data.images import image_header, read_image
from cnnlab.errors import DataError

__all__ = [
    "IMAGE_EXTENSIONS",
    "FolderSplits",
    "channels_of",
    "check_memory",
    "decode_files",
    "folder_info",
    "list_folder",
    "load_folder",
    "split_folder",
]

IMAGE_EXTENSIONS = frozenset(
    {".png", ".jpg", ".jpeg", ".bmp", ".gif", ".webp", ".tif", ".tiff", ".ppm", ".pgm", ".pbm"}
)
SPLITS = ("train", "val", "test")
DEFAULT_FRACTION = 0.1  # of each class held out for validation and for testing, when not given
DEFAULT_MAX_SIDE = 512  # library default size: the median, at most this on its shorter side
STATS_PIXELS = 128 * 128  # pixels per image when measuring a folder's mean and std
SPLIT_SEED = 2_000_003  # mixed with the seed, so the split has a stream of its own
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


@dataclass(frozen=True)
class FolderSplits:
    """The files of each split of an image folder, with labels, and where each split came from.

    Attributes:
        root: the folder.
        classes: class names in label order (the training classes' sub-folder names, sorted).
        train, val, test: ``(file, label)`` pairs.
        origin: per split, ``"folder"`` (its own sub-folder) or ``"fraction"`` (held out).
    """

    root: Path
    classes: tuple[str, ...]
    train: list[tuple[Path, int]]
    val: list[tuple[Path, int]]
    test: list[tuple[Path, int]]
    origin: dict[str, str]

    def to_dict(self) -> dict:
        """A JSON-ready record: classes, origins, and each split's files relative to ``root``."""

        def rel(samples: list[tuple[Path, int]]) -> list[list]:
            return [[os.path.relpath(p, self.root), label] for p, label in samples]

        return {
            "root": str(self.root),
            "classes": list(self.classes),
            "origin": dict(self.origin),
            **{split: rel(getattr(self, split)) for split in SPLITS},
        }


def _fraction_count(n: int, fraction: float) -> int:
    """Images of a class held out for a split: the fraction, rounded, but at least one."""
    return max(1, round(n * fraction)) if fraction > 0 else 0


def _check_fractions(val_fraction: float, test_fraction: float) -> None:
    for name, value in (("val", val_fraction), ("test", test_fraction)):
        if not 0 < value < 0.5:
            raise DataError(
                f"{name} fraction {value} is out of range: use a value above 0 and below 0.5 "
                f"(--{name}-fraction, default {DEFAULT_FRACTION})"
            )


def _split_dirs(root: Path) -> dict[str, Path]:
    """The split sub-folders present: ``train/`` is required for any of them to count."""
    if not (root / "train").is_dir():
        return {}
    return {split: root / split for split in SPLITS if (root / split).is_dir()}


def split_folder(
    root: str | os.PathLike,
    *,
    val_fraction: float = DEFAULT_FRACTION,
    test_fraction: float = DEFAULT_FRACTION,
    seed: int = 0,
) -> FolderSplits:
    """Find an image folder's classes and its train, validation and test files.

    ``ROOT/train``, ``ROOT/val`` and ``ROOT/test`` are used when present (``train/`` at least);
    a split without its sub-folder is held out of the training files, per class: the test files
    first (``test_fraction`` of each class, at least one), then the validation files, chosen by
    a permutation fixed by ``seed``. Every class then keeps at least one training image.

    Raises:
        DataError: no class folders, only one class, a class with no image files, a class too
            small to split, or a split folder with a class the training split lacks.
    """
    root = Path(root).expanduser()
    _check_fractions(val_fraction, test_fraction)
    if not root.is_dir():
        raise DataError(f"{root}: not a folder; pass a folder with one sub-folder per class")
    dirs = _split_dirs(root)
    base = dirs.get("train", root)
    classes = tuple(d.name for d in _class_dirs(base))
    if not classes:
        raise DataError(
            f"{base}: no class sub-folders; put each class's images in its own sub-folder "
            f"({base}/CLASS/image.jpg)"
        )
    given: dict[str, list[tuple[Path, int]]] = {}
    for split, directory in dirs.items():
        given[split] = []
        for d in _class_dirs(directory):
            if d.name not in classes:
                raise DataError(
                    f"{d}: class {d.name!r} is not among the training classes "
                    f"{list(classes)}; add it to {base} or remove it"
                )
            given[split].extend((p, classes.index(d.name)) for p in _images_under(d))
    if len(classes) == 1:
        raise DataError(
            f"{base}: only one class folder ({classes[0]!r}); a classifier needs at least two: "
            "add a sub-folder per class"
        )
    fractions = {"test": test_fraction, "val": val_fraction}
    carve = [s for s in ("test", "val") if s not in dirs]
    out: dict[str, list[tuple[Path, int]]] = {s: list(given.get(s, [])) for s in SPLITS}
    out["train"] = []
    g = np.random.default_rng([seed, SPLIT_SEED])
    for label, name in enumerate(classes):
        files = _images_under(base / name)
        if not files:
            raise DataError(
                f"{base / name}: class folder holds no images "
                f"({', '.join(sorted(IMAGE_EXTENSIONS))}); add images or remove it"
            )
        counts = [_fraction_count(len(files), fractions[s]) for s in carve]
        if len(files) <= sum(counts):
            need = sum(counts) + 1
            raise DataError(
                f"{base / name}: {len(files)} image(s) cannot be split into "
                f"{' + '.join(['train', *carve])} ({need} needed); add images, or give "
                f"{', '.join(f'{root}/{s}/' for s in carve)} folders"
            )
        order = [files[i] for i in g.permutation(len(files))]
        for split, n in zip(carve, counts, strict=True):
            out[split].extend((p, label) for p in sorted(order[:n]))
            order = order[n:]
        out["train"].extend((p, label) for p in sorted(order))
    for split in SPLITS:
        if not out[split]:
            raise DataError(f"{dirs.get(split, root)}: the {split} split holds no images")
    origin = {s: "folder" if s in dirs else "fraction" for s in SPLITS}
    return FolderSplits(root, classes, out["train"], out["val"], out["test"], origin)


def list_folder(
    root: str | os.PathLike, split: str, seed: int = 0
) -> tuple[tuple[str, ...], list[tuple[Path, int]]]:
    """The class names and the ``(file, label)`` pairs of one split of an image folder.

    ``split`` is ``"train"``, ``"val"`` or ``"test"`` (see :func:`split_folder`). Without a
    ``val/`` folder, ``"train"`` holds the validation files too, as a named dataset's training
    split does: training holds its validation split out of it.
    """
    splits = split_folder(root, seed=seed)
    if split == "train" and splits.origin["val"] == "fraction":
        return splits.classes, sorted(splits.train + splits.val, key=lambda s: (s[1], s[0]))
    return splits.classes, list(getattr(splits, split))


def _headers(samples: list[tuple[Path, int]]) -> list[tuple[int, int, bool] | DataError]:
    """Each file's ``(height, width, is_grayscale)`` from its header, or the error it raised."""

    def one(path: Path) -> tuple[int, int, bool] | DataError:
        try:
            return image_header(path)
        except DataError as err:
            return err

    with ThreadPoolExecutor(_WORKERS) as pool:
        return list(pool.map(one, (p for p, _ in samples)))


def channels_of(samples: list[tuple[Path, int]]) -> int:
    """3 if any readable image has colour, else 1 (from the headers alone)."""
    readable = [h for h in _headers(samples) if not isinstance(h, DataError)]
    return 1 if readable and all(gray for _, _, gray in readable) else 3


def _shape_from_train(root: Path, channels: int | None, size: tuple[int, int] | None):
    """Common (channels, (H, W)) for both splits, from the training split's headers."""
    if channels is not None and channels not in (1, 3):
        raise DataError(f"channels={channels} for {root}: use 1 (grayscale) or 3 (RGB)")
    if size is not None and (len(size) != 2 or min(size) < 1):
        raise DataError(f"size={size} for {root}: use (height, width) with positive sides")
    if channels is not None and size is not None:
        return channels, (int(size[0]), int(size[1]))
    _, samples = list_folder(root, "train")
    headers = _headers(samples)
    for h in headers:
        if isinstance(h, DataError):
            raise h
    hs = np.array([h for h, _, _ in headers])  # type: ignore[misc]
    ws = np.array([w for _, w, _ in headers])  # type: ignore[misc]
    if channels is None:
        channels = 1 if all(gray for _, _, gray in headers) else 3  # type: ignore[misc]
    if size is None:
        # The median, rounded down to a whole pixel: robust to a few odd-sized images; photos
        # are scaled down (aspect kept) to DEFAULT_MAX_SIDE on their shorter side.
        h, w = float(np.median(hs)), float(np.median(ws))
        scale = min(1.0, DEFAULT_MAX_SIDE / min(h, w))
        size = (int(h * scale), int(w * scale))
    return channels, (int(size[0]), int(size[1]))


def _signature(samples: list[tuple[Path, int]]) -> tuple:
    """What the decoded arrays depend on: each file's path, size and modification time."""
    out = []
    for p, label in samples:
        st = p.stat()
        out.append((str(p), label, st.st_size, st.st_mtime_ns))
    return tuple(out)


def check_memory(root: Path, n: int, channels: int, size: tuple[int, int]) -> None:
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


def decode_files(
    samples: list[tuple[Path, int]],
    channels: int,
    size: tuple[int, int],
    *,
    shorter_side: int | None = None,
    skip_unreadable: bool = False,
) -> tuple[torch.Tensor, torch.Tensor, list[tuple[Path, str]]]:
    """Decode files into one preallocated uint8 tensor, in a thread pool.

    Peak memory is the output tensor plus one reduced-size image per worker thread: JPEGs are
    decoded in draft mode (see :func:`cnnlab.data.images.read_image`) and each image is resized
    (``shorter_side``: aspect kept, then the centre ``size``) before it is stored.

    Args:
        samples: ``(file, label)`` pairs.
        channels, size: what every image becomes, ``(H, W)``.
        shorter_side: resize the shorter side to this, then centre-crop ``size``; ``None``
            resizes to ``size`` without keeping the aspect ratio.
        skip_unreadable: leave out files that cannot be decoded and return them; otherwise the
            first one raises.

    Returns:
        ``(images, labels, skipped)``; ``skipped`` lists ``(file, reason)``.

    Shape:
        images: (N, C, H, W) uint8, N = len(samples) - len(skipped); labels: (N,) int64.
    """
    n = len(samples)
    images = torch.empty((n, channels, *size), dtype=torch.uint8)
    labels = torch.tensor([label for _, label in samples], dtype=torch.int64)
    errors: list[DataError | None] = [None] * n

    def one(i: int) -> None:
        try:
            images[i] = read_image(samples[i][0], channels, size, shorter_side=shorter_side)
        except DataError as err:
            if not skip_unreadable:
                raise
            errors[i] = err

    with ThreadPoolExecutor(_WORKERS) as pool:
        list(pool.map(one, range(n)))  # list() re-raises the first DataError
    bad = [i for i in range(n) if errors[i] is not None]
    if not bad:
        return images, labels, []
    keep = [i for i in range(n) if errors[i] is None]
    for j, i in enumerate(keep):  # compact in place: no second copy of the split
        if i != j:
            images[j] = images[i]
    skipped = [(samples[i][0], str(errors[i])) for i in bad]
    return images[: len(keep)], labels[keep], skipped


@lru_cache(maxsize=4)
def _decode(signature: tuple, channels: int, size: tuple[int, int]):
    samples = [(Path(p), label) for p, label, _, _ in signature]
    images, labels, _ = decode_files(samples, channels, size)
    return images, labels


def load_folder(
    root: str | os.PathLike,
    split: str = "train",
    *,
    channels: int | None = None,
    size: tuple[int, int] | None = None,
    seed: int = 0,
) -> tuple[torch.Tensor, torch.Tensor]:
    """Decode one split of an image folder into tensors.

    Args:
        root: The folder (see the module docstring for layouts).
        split: ``"train"``, ``"val"`` or ``"test"`` (see :func:`list_folder`).
        channels: 1 or 3; default from the training images (3 if any has colour).
        size: (H, W); default the training images' median height and width, scaled down to
            :data:`DEFAULT_MAX_SIDE` on the shorter side.
        seed: fixes the files held out where a split has no folder of its own.

    Returns:
        ``(images, labels)``; decoded arrays of unchanged files are cached in memory (up to four
        splits), and each call returns its own copy.

    Shape:
        images: (N, C, H, W), torch.uint8; labels: (N,), torch.int64.
    """
    root = Path(root).expanduser()
    channels, size = _shape_from_train(root, channels, size)
    _, samples = list_folder(root, split, seed)
    check_memory(root, len(samples), channels, size)
    images, labels = _decode(_signature(samples), channels, size)
    return images.clone(), labels.clone()


def folder_info(root: str | os.PathLike) -> DatasetInfo:
    """A :class:`DatasetInfo` for an image folder.

    Mean and std are measured on the training split, decoded at most
    :data:`STATS_PIXELS` pixels per image (aspect kept), so a folder of large photos is measured
    from thumbnails instead of being held at full size.
    """
    root = Path(root).expanduser()
    classes, samples = list_folder(root, "train")
    channels, size = _shape_from_train(root, None, None)
    scale = min(1.0, (STATS_PIXELS / (size[0] * size[1])) ** 0.5)
    thumb = (max(1, int(size[0] * scale)), max(1, int(size[1] * scale)))
    train, _ = load_folder(root, "train", channels=channels, size=thumb)
    num_test = len(list_folder(root, "test")[1])
    x = train.to(torch.float64).div_(255)
    mean = tuple(round(float(v), 4) for v in x.mean(dim=(0, 2, 3)))
    std = tuple(round(float(v), 4) for v in x.std(dim=(0, 2, 3), unbiased=False))
    return DatasetInfo(
        name=str(root),
        title=f"image folder {root}",
        classes=classes,
        channels=channels,
        size=size,
        mean=mean,
        std=tuple(max(s, 1e-4) for s in std),  # a constant image would give 0: keep it usable
        num_train=len(samples),
        num_test=num_test,
        format="folder",
        root=root,
    )
