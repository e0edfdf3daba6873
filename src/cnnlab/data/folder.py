"""Image folders as people keep them: one sub-folder per class, with or without split folders.

Layouts::

    ROOT/train/CLASS/*.jpg  [ROOT/val/CLASS/*.jpg]  [ROOT/test/CLASS/*.jpg]   (ImageFolder/ImageNet)
    ROOT/CLASS/*.jpg                                                          (no split folders)

Classes are the sub-folder names in sorted order (label ``i`` is the ``i``-th name); with split
folders they come from ``train/``, and ``val/`` and ``test/`` must hold exactly the same classes.
Files are found recursively below each class folder; hidden files and files without an image
extension (``.txt``, ...) are ignored.

Any file may be hostile, so the listing (:func:`split_folder`) trusts nothing but what it can
check without opening a file, and records what it leaves out (:class:`Skipped`, one note):

- only **regular files** are images: a FIFO, device or socket named ``x.png`` is skipped (reading
  it would hang or never end), as are broken symlinks and symlink loops;
- every file and folder is **resolved and confined to its class folder**: a symlink leading
  outside it (``red/up -> ..`` would pull ``blue/*`` in labelled *red*) is skipped, a folder
  reached twice (a loop, a second link) is walked once, and a file reached by two paths is
  counted once;
- class folders must not share files: two class or split folders that resolve to the same
  folder, or one inside the other, are an error, as are class names that are not printable text.

The walk is iterative and linear in the number of entries (no recursion, one ``stat`` only for
symlinks and entries whose type the directory does not give).

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
error for ``load_dataset``; ``cnnlab train`` and ``cnnlab data info`` skip such files and report
how many, by one rule (:func:`decode_splits`), so they always agree (see docs/data.md).
"""

from __future__ import annotations

import errno
import itertools
import os
import stat
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

import numpy as np
import torch

from cnnlab.data.datasets import DatasetInfo
from cnnlab.data.images import image_header, read_image
from cnnlab.errors import DataError
from cnnlab.formats import printable

__all__ = [
    "IMAGE_EXTENSIONS",
    "SKIP_KINDS",
    "DecodedFolder",
    "FolderReport",
    "FolderSplits",
    "Skipped",
    "channels_of",
    "check_memory",
    "check_readable_classes",
    "decode_files",
    "decode_splits",
    "folder_info",
    "inspect_folder",
    "list_folder",
    "load_folder",
    "skip_note",
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


# What the listing leaves out, by kind, as the note names it.
SKIP_KINDS = {
    "special": "not a regular file (FIFO, device, socket)",
    "broken": "broken symlink or loop",
    "outside": "outside its class folder",
    "duplicate": "a file already listed",
    "unlisted": "folder that cannot be listed",
    "stray": "in no class folder",
}
_TYPES = {
    stat.S_IFIFO: "FIFO (named pipe)",
    stat.S_IFCHR: "character device",
    stat.S_IFBLK: "block device",
    stat.S_IFSOCK: "socket",
}


@dataclass(frozen=True)
class Skipped:
    """A file or folder the listing of an image folder leaves out, and why.

    Attributes:
        path: as found below the folder (not resolved).
        kind: a key of :data:`SKIP_KINDS`.
        reason: what is wrong, the rest of a sentence that starts with the path.
    """

    path: Path
    kind: str
    reason: str

    def __str__(self) -> str:
        return f"{printable(self.path)} {self.reason}"


def _is_image_name(name: str) -> bool:
    return Path(name).suffix.lower() in IMAGE_EXTENSIONS


def _os_reason(err: OSError) -> str:
    return "a symlink loop" if err.errno == errno.ELOOP else (err.strerror or str(err)).lower()


def _entry_type(entry: os.DirEntry) -> tuple[str, str]:
    """``("dir" | "file" | "special" | "broken", detail)``, symlinks followed, never opened.

    ``DirEntry`` answers from the directory listing where it can, so only symlinks and entries
    of unknown type cost a ``stat``.
    """
    try:
        if entry.is_dir():
            return "dir", ""
        if entry.is_file():
            return "file", ""
        mode = entry.stat().st_mode
    except OSError as err:  # a dangling symlink, a loop
        what = "a symlink loop" if err.errno == errno.ELOOP else "a broken symlink"
        return "broken", f"is {what}"
    return "special", f"is a {_TYPES.get(stat.S_IFMT(mode), 'special file')}, not a regular file"


def _scan(directory: Path) -> list[os.DirEntry]:
    """The visible entries of a folder, sorted by name (raises OSError)."""
    with os.scandir(directory) as it:
        return sorted((e for e in it if not e.name.startswith(".")), key=lambda e: e.name)


def _inside(path: str, top: str) -> bool:
    return path == top or path.startswith(top.rstrip(os.sep) + os.sep)


def _class_dirs(directory: Path, skipped: list[Skipped] | None = None) -> list[Path]:
    """The class folders of ``directory`` (visible sub-folders, symlinks followed), by name.

    Files named like images here belong to no class, and links that lead nowhere may have been
    meant as classes: both go to ``skipped`` when given.
    """
    try:
        entries = _scan(directory)
    except OSError as err:
        raise DataError(
            f"{printable(directory)}: cannot list this folder ({_os_reason(err)}); make it readable"
        ) from None
    dirs = []
    for e in entries:
        kind, detail = _entry_type(e)
        if kind == "dir":
            dirs.append(Path(e.path))
        elif skipped is not None and kind == "broken":
            skipped.append(Skipped(Path(e.path), "broken", detail))
        elif skipped is not None and _is_image_name(e.name):
            skipped.append(Skipped(Path(e.path), "stray", "is in no class folder"))
    for d in dirs:
        if not d.name.isprintable():
            raise DataError(
                f"{printable(d)}: a class folder name must be printable text (it labels "
                "predictions); rename the folder"
            )
    return dirs


def _images_under(class_dir: Path, skipped: list[Skipped]) -> list[Path]:
    """The image files below one class folder, confined to it, each counted once.

    The walk is depth-first, in name order, each folder's files before its sub-folders (the
    order ``os.walk`` gives). Symlinks are resolved: a folder is walked once however many ways
    lead to it (loops end), and a file or folder whose real path is outside the class folder's
    is skipped, as are special files and broken links named like images.
    """
    top = os.path.realpath(class_dir)
    found: list[Path] = []
    first: dict[str, Path] = {}  # real path of each file listed -> the path it was listed by
    walked = {top}
    stack = [(class_dir, top)]
    while stack:
        directory, real = stack.pop()
        try:
            entries = _scan(directory)
        except OSError as err:
            skipped.append(Skipped(directory, "unlisted", f"cannot be listed ({_os_reason(err)})"))
            continue
        below = []
        for e in entries:
            kind, detail = _entry_type(e)
            if kind != "dir" and not _is_image_name(e.name):
                continue  # nobody takes it for an image: never looked at
            path = Path(e.path)
            if kind in ("special", "broken"):
                skipped.append(Skipped(path, kind, detail))
                continue
            # A path that is not a symlink lies where its folder really is.
            target = os.path.realpath(path) if e.is_symlink() else os.path.join(real, e.name)
            if not _inside(target, top):
                where = f"leads to {printable(target)}, outside its class folder"
                skipped.append(Skipped(path, "outside", f"{where} {printable(class_dir)}"))
            elif kind == "dir":
                if target not in walked:  # else a loop or a second way in: nothing new there
                    walked.add(target)
                    below.append((path, target))
            elif target in first:
                same = f"is the same file as {printable(first[target])}"
                skipped.append(Skipped(path, "duplicate", same))
            else:
                first[target] = path
                found.append(path)
        stack.extend(reversed(below))
    return found


def _check_disjoint(class_dirs: list[Path]) -> None:
    """Refuse class or split folders that resolve to one folder or hold one another.

    A file below both would get two labels, or sit in two splits (a test image trained on).
    In the sorted list of real paths (compared by parts), a folder holding another comes right
    before one of the folders it holds, so neighbours suffice.
    """
    real = sorted(((Path(os.path.realpath(d)), d) for d in class_dirs), key=lambda r: r[0].parts)
    for (a, da), (b, db) in itertools.pairwise(real):
        if a == b or a in b.parents:
            raise DataError(
                f"{printable(db)} and {printable(da)} are the same folder or one holds the other "
                f"({printable(b)} and {printable(a)}): a file would get two labels or sit in two "
                "splits; replace the symlink with the folder it should be"
            )


@dataclass(frozen=True)
class FolderSplits:
    """The files of each split of an image folder, with labels, and where each split came from.

    Attributes:
        root: the folder.
        classes: class names in label order (the training classes' sub-folder names, sorted).
        train, val, test: ``(file, label)`` pairs.
        origin: per split, ``"folder"`` (its own sub-folder) or ``"fraction"`` (held out).
        skipped: what the listing left out (special files, escapes, duplicates, ...).
    """

    root: Path
    classes: tuple[str, ...]
    train: list[tuple[Path, int]]
    val: list[tuple[Path, int]]
    test: list[tuple[Path, int]]
    origin: dict[str, str]
    skipped: tuple[Skipped, ...] = ()

    def to_dict(self) -> dict:
        """A JSON-ready record: classes, origins, each split's files relative to ``root``, and
        the files left out with the reason."""

        def rel(samples: list[tuple[Path, int]]) -> list[list]:
            return [[os.path.relpath(p, self.root), label] for p, label in samples]

        return {
            "root": str(self.root),
            "classes": list(self.classes),
            "origin": dict(self.origin),
            **{split: rel(getattr(self, split)) for split in SPLITS},
            "skipped": [[os.path.relpath(s.path, self.root), s.reason] for s in self.skipped],
        }

    def notes(self) -> list[str]:
        """One line saying what the listing left out and why (none when nothing was)."""
        if not self.skipped:
            return []
        counts = Counter(s.kind for s in self.skipped)
        kinds = "; ".join(f"{SKIP_KINDS[kind]}: {n}" for kind, n in counts.items())
        return [
            f"note: skipped {len(self.skipped)} file(s) of {printable(self.root)} ({kinds}), "
            f"e.g. {self.skipped[0]}"
        ]


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
    a permutation fixed by ``seed``. Every class then keeps at least one training image. What
    the listing leaves out (see the module docstring) is in ``skipped``.

    Raises:
        DataError: no class folders, only one class, a class with no image files, a class too
            small to split, a split folder whose classes differ from the training split's,
            class folders that overlap, or a class name that is not printable.
    """
    root = Path(root).expanduser()
    _check_fractions(val_fraction, test_fraction)
    if not root.is_dir():
        raise DataError(
            f"{printable(root)}: not a folder; pass a folder with one sub-folder per class"
        )
    dirs = _split_dirs(root)
    skipped: list[Skipped] = []
    classes, files = _list_splits(root, dirs, skipped)
    out: dict[str, list[tuple[Path, int]]] = {s: [] for s in SPLITS}
    for split in files.keys() - {"train"}:
        out[split] = [(p, label) for label, found in enumerate(files[split]) for p in found]
    fractions = {"test": test_fraction, "val": val_fraction}
    carve = [s for s in ("test", "val") if s not in dirs]
    g = np.random.default_rng([seed, SPLIT_SEED])
    base = dirs.get("train", root)
    for label, (name, found) in enumerate(zip(classes, files["train"], strict=True)):
        counts = [_fraction_count(len(found), fractions[s]) for s in carve]
        if len(found) <= sum(counts):
            need = sum(counts) + 1
            raise DataError(
                f"{printable(base / name)}: {len(found)} image(s) cannot be split into "
                f"{' + '.join(['train', *carve])} ({need} needed); add images, or give "
                f"{', '.join(f'{printable(root)}/{s}/' for s in carve)} folders"
            )
        order = [found[i] for i in g.permutation(len(found))]
        for split, n in zip(carve, counts, strict=True):
            out[split].extend((p, label) for p in sorted(order[:n]))
            order = order[n:]
        out["train"].extend((p, label) for p in sorted(order))
    origin = {s: "folder" if s in dirs else "fraction" for s in SPLITS}
    return FolderSplits(
        root, classes, out["train"], out["val"], out["test"], origin, tuple(skipped)
    )


def _list_splits(
    root: Path, dirs: dict[str, Path], skipped: list[Skipped]
) -> tuple[tuple[str, ...], dict[str, list[list[Path]]]]:
    """The classes, and per split folder (``train`` = ``root`` without split folders) the image
    files of each class in label order; every check that needs no decoding."""
    base = dirs.get("train", root)
    folders = {"train": _class_dirs(base, skipped)}
    classes = tuple(d.name for d in folders["train"])
    if not classes:
        raise DataError(
            f"{printable(base)}: no class sub-folders; put each class's images in its own "
            f"sub-folder ({printable(base)}/CLASS/image.jpg)"
        )
    for split in (s for s in SPLITS if s in dirs and s != "train"):
        folders[split] = _class_dirs(dirs[split], skipped)
        _check_classes(dirs[split], [d.name for d in folders[split]], base, classes)
    if len(classes) == 1:
        raise DataError(
            f"{printable(base)}: only one class folder ({classes[0]!r}); a classifier needs at "
            "least two: add a sub-folder per class"
        )
    _check_disjoint([d for found in folders.values() for d in found])
    files = {split: [_images_under(d, skipped) for d in found] for split, found in folders.items()}
    for split, found in folders.items():
        for d, images in zip(found, files[split], strict=True):
            if not images:
                _no_images(d, skipped)
    return classes, files


def _check_classes(directory: Path, names: list[str], base: Path, classes: tuple[str, ...]) -> None:
    """A split folder must hold exactly the training classes: no more (a class the model
    never learns) and no fewer (a class never measured, silently)."""
    for name in names:
        if name not in classes:
            raise DataError(
                f"{printable(directory / name)}: class {name!r} is not among the training "
                f"classes {list(classes)}; add it to {printable(base)} or remove it"
            )
    for name in classes:
        if name not in names:
            raise DataError(
                f"{printable(directory)} lacks the training class {name!r} of "
                f"{printable(base)}: add {printable(directory / name)}/ with its images, or "
                f"remove {printable(directory)}/ to hold out a fraction of {printable(base)}"
            )


def _no_images(class_dir: Path, skipped: list[Skipped]) -> None:
    """Raise: a class folder with no usable image (saying what was skipped in it, if any)."""
    inside = [s for s in skipped if s.path == class_dir or class_dir in s.path.parents]
    why = (
        f"{len(inside)} skipped, e.g. {inside[0]}"
        if inside
        else ", ".join(sorted(IMAGE_EXTENSIONS))
    )
    raise DataError(
        f"{printable(class_dir)}: class folder holds no images ({why}); add images or remove it"
    )


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
    return _channels(_readable_headers(samples, strict=False))


def _channels(headers: list[tuple[int, int, bool]]) -> int:
    return 1 if headers and all(gray for _, _, gray in headers) else 3


def _readable_headers(
    samples: list[tuple[Path, int]], *, strict: bool
) -> list[tuple[int, int, bool]]:
    """The headers that can be read; ``strict``: the first that cannot raises instead (else such
    files are left out, as decoding will leave them out: :func:`decode_splits`)."""
    headers = _headers(samples)
    bad = [h for h in headers if isinstance(h, DataError)]
    if strict and bad:
        raise bad[0]
    return [h for h in headers if not isinstance(h, DataError)]


def _median_shape(headers: list[tuple[int, int, bool]]) -> tuple[int, tuple[int, int]]:
    """``(channels, (H, W))`` of (at least one) headers: 3 if any has colour, the median size.

    The median, rounded down to a whole pixel, is robust to a few odd-sized images; photos are
    scaled down (aspect kept) to :data:`DEFAULT_MAX_SIDE` on their shorter side.
    """
    channels = _channels(headers)
    h = float(np.median([h for h, _, _ in headers]))
    w = float(np.median([w for _, w, _ in headers]))
    scale = min(1.0, DEFAULT_MAX_SIDE / min(h, w))
    return channels, (max(1, int(h * scale)), max(1, int(w * scale)))


def _shape_from_train(root: Path, channels: int | None, size: tuple[int, int] | None):
    """Common (channels, (H, W)) for both splits, from the training split's headers."""
    if channels is not None and channels not in (1, 3):
        raise DataError(f"channels={channels} for {printable(root)}: use 1 (grayscale) or 3 (RGB)")
    if size is not None and (len(size) != 2 or min(size) < 1):
        raise DataError(
            f"size={size} for {printable(root)}: use (height, width) with positive sides"
        )
    if channels is not None and size is not None:
        return channels, (int(size[0]), int(size[1]))
    _, samples = list_folder(root, "train")  # never empty: every class holds a file
    found_channels, found_size = _median_shape(_readable_headers(samples, strict=True))
    size = found_size if size is None else size
    return channels or found_channels, (int(size[0]), int(size[1]))


def _signature(samples: list[tuple[Path, int]]) -> tuple:
    """What the decoded arrays depend on: each file's path, size and modification time."""
    out = []
    for p, label in samples:
        try:
            st = os.stat(p)  # a stat never blocks, whatever the file is; reading is checked later
            out.append((str(p), label, st.st_size, st.st_mtime_ns))
        except OSError:  # gone since the listing: decoding says so, naming the file
            out.append((str(p), label, -1, -1))
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


def skip_note(split: str, unreadable: list[tuple[Path, str]]) -> str:
    """The note for files of ``split`` that could not be decoded (``cnnlab train`` and
    ``cnnlab data info`` print the same line)."""
    return (
        f"note: skipped {len(unreadable)} unreadable file(s) of the {split} split, "
        f"e.g. {unreadable[0][1]}"
    )


def check_readable_classes(splits: FolderSplits, train_labels: torch.Tensor) -> None:
    """Refuse a folder where some class has no readable training image left."""
    missing = sorted(set(range(len(splits.classes))) - set(train_labels.tolist()))
    if missing:
        name = splits.classes[missing[0]]
        raise DataError(
            f"{printable(splits.root)}: class {name!r} has no readable training image; replace "
            "its files or remove the class"
        )


@dataclass(frozen=True)
class DecodedFolder:
    """Every split of an image folder decoded, with what was left out (:func:`decode_splits`).

    Attributes:
        splits: the listing.
        images, labels: per split, uint8 ``(N, C, H, W)`` and int64 ``(N,)``.
        unreadable: per split, the ``(file, reason)`` pairs that could not be decoded.
    """

    splits: FolderSplits
    images: dict[str, torch.Tensor]
    labels: dict[str, torch.Tensor]
    unreadable: dict[str, list[tuple[Path, str]]]

    def notes(self) -> list[str]:
        """What was left out: the listing's note, then one note per split with unreadable files."""
        return self.splits.notes() + [
            skip_note(split, self.unreadable[split]) for split in SPLITS if self.unreadable[split]
        ]


def decode_splits(
    splits: FolderSplits,
    channels: int,
    sizes: dict[str, tuple[int, int]],
    *,
    shorter_side: int | None = None,
) -> DecodedFolder:
    """Decode every split, leaving out the files that cannot be decoded.

    The one rule ``cnnlab train`` and ``cnnlab data info`` share, so they skip the same files
    and refuse the same folders: the listing's :class:`Skipped` files never reach here, a file
    :func:`~cnnlab.data.images.read_image` refuses is left out and reported, and a class with no
    readable training image is an error.

    Args:
        splits: from :func:`split_folder`.
        channels: 1 or 3.
        sizes: per split, the ``(H, W)`` its images become (see :func:`decode_files`).
        shorter_side: as :func:`decode_files`.

    Raises:
        DataError: a split too large for memory, or a class with no readable training image.
    """
    images, labels, unreadable = {}, {}, {}
    for split in SPLITS:
        samples = getattr(splits, split)
        check_memory(splits.root, len(samples), channels, sizes[split])
        images[split], labels[split], unreadable[split] = decode_files(
            samples, channels, sizes[split], shorter_side=shorter_side, skip_unreadable=True
        )
    check_readable_classes(splits, labels["train"])
    return DecodedFolder(splits, images, labels, unreadable)


@dataclass(frozen=True)
class FolderReport:
    """What ``cnnlab data info FOLDER`` shows: the dataset's info and what was left out."""

    info: DatasetInfo
    decoded: DecodedFolder

    def notes(self) -> list[str]:
        return self.decoded.notes()

    def to_dict(self) -> dict:
        """The skipped and unreadable files (paths relative to the folder) with the reasons."""
        root = self.info.root or Path()
        return {
            "skipped": [
                {"file": os.path.relpath(s.path, root), "kind": s.kind, "reason": s.reason}
                for s in self.decoded.splits.skipped
            ],
            "unreadable": {
                split: [{"file": os.path.relpath(p, root), "reason": why} for p, why in bad]
                for split, bad in self.decoded.unreadable.items()
            },
            "notes": self.notes(),
        }


def inspect_folder(root: str | os.PathLike) -> FolderReport:
    """An image folder's :class:`DatasetInfo`, decoding every split as training would.

    Channels and size come from the readable training headers; mean and std are measured on the
    training split (with the validation files where they are held out of it), each image decoded
    at most :data:`STATS_PIXELS` pixels, so a folder of large photos is measured from thumbnails.
    Sample counts are of readable images.
    """
    splits = split_folder(Path(root).expanduser())
    root = splits.root
    train = splits.train + (splits.val if splits.origin["val"] == "fraction" else [])
    headers = _readable_headers(train, strict=False)
    if not headers:  # nothing readable: the error training gives
        check_readable_classes(splits, torch.empty(0, dtype=torch.int64))
    channels, size = _median_shape(headers)
    scale = min(1.0, (STATS_PIXELS / (size[0] * size[1])) ** 0.5)
    thumb = (max(1, int(size[0] * scale)), max(1, int(size[1] * scale)))
    decoded = decode_splits(splits, channels, dict.fromkeys(SPLITS, thumb))
    parts = ["train", "val"] if splits.origin["val"] == "fraction" else ["train"]
    x = torch.cat([decoded.images[s] for s in parts]).to(torch.float64).div_(255)
    mean = tuple(round(float(v), 4) for v in x.mean(dim=(0, 2, 3)))
    std = tuple(round(float(v), 4) for v in x.std(dim=(0, 2, 3), unbiased=False))
    info = DatasetInfo(
        name=str(root),
        title=f"image folder {printable(root)}",
        classes=splits.classes,
        channels=channels,
        size=size,
        mean=mean,
        std=tuple(max(s, 1e-4) for s in std),  # a constant image would give 0: keep it usable
        num_train=len(x),
        num_test=len(decoded.images["test"]),
        format="folder",
        root=root,
    )
    return FolderReport(info, decoded)


def folder_info(root: str | os.PathLike) -> DatasetInfo:
    """A :class:`DatasetInfo` for an image folder (see :func:`inspect_folder`)."""
    return inspect_folder(root).info
