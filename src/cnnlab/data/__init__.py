"""Datasets as tensors: Fashion-MNIST (the default), MNIST, CIFAR-10 and image folders.

::

    images, labels = cnnlab.load_dataset("fashion-mnist", "train")   # uint8 (N,1,28,28), int64
    info = cnnlab.data.dataset_info("fashion-mnist")                  # classes, size, mean, std
    from cnnlab.data import augment                                   # batched crop/flip/...

A whole dataset is returned as two tensors; the training loop keeps them on its device and
augments batches there. Where the files are looked up and how they are downloaded is described in
:mod:`cnnlab.data.fetch`; the file formats in :mod:`cnnlab.data.idx`, :mod:`cnnlab.data.cifar`
and :mod:`cnnlab.data.folder`.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import TYPE_CHECKING

from cnnlab.data.datasets import ALIASES, DATASETS, DEFAULT_DATASET, DataFile, DatasetInfo
from cnnlab.data.fetch import Location, fetch_files, locate, verify_files
from cnnlab.errors import DataError
from cnnlab.lazy import lazy_exports

if TYPE_CHECKING:  # PyTorch loads with the readers, so `cnnlab data --help` needs none of it
    import torch

__all__ = [
    "DATASETS",
    "DEFAULT_DATASET",
    "DataFile",
    "DatasetInfo",
    "augment",
    "dataset_info",
    "fetch_dataset",
    "find_dataset",
    "load_dataset",
    "resolve",
]

SPLITS = ("train", "test")


def _known() -> str:
    return ", ".join(DATASETS)


def resolve(name: str | os.PathLike) -> DatasetInfo | Path:
    """The named dataset's :class:`DatasetInfo`, or the image folder a path names.

    A registered name wins over a folder of the same name in the current directory; write
    ``./mnist`` to mean the folder.
    """
    text = os.fspath(name)
    key = text.strip().lower().replace("_", "-")
    key = ALIASES.get(key, ALIASES.get(text.lower(), key))
    if key in DATASETS and not isinstance(name, Path):
        return DATASETS[key]
    path = Path(text).expanduser()
    if path.is_dir():
        return path
    if path.exists():
        raise DataError(
            f"{path} is a file, not a dataset; pass a folder with one sub-folder per class, "
            f"or one of {_known()}"
        )
    raise DataError(
        f"unknown dataset {text!r}: use one of {_known()}, or the path of an image folder "
        "(one sub-folder per class)"
    )


def _check_split(split: str, folder: bool = False) -> None:
    if split not in SPLITS and not (folder and split == "val"):
        also = ", 'val'" if folder else ""
        raise DataError(f"unknown split {split!r}; use 'train'{also} or 'test'")


def dataset_info(name: str | os.PathLike) -> DatasetInfo:
    """What is known about a dataset: classes, channels, size, mean/std, files.

    For an image folder the classes come from its sub-folders and channels, size, sample counts,
    mean and std from reading the training split (see :mod:`cnnlab.data.folder`).
    """
    target = resolve(name)
    if isinstance(target, DatasetInfo):
        return target
    from cnnlab.data.folder import folder_info

    return folder_info(target)


def find_dataset(
    name: str | os.PathLike, split: str = "train", root: str | os.PathLike | None = None
) -> Location | None:
    """Where ``split`` of a named dataset would be read from, without downloading; or None."""
    _check_split(split)
    target = resolve(name)
    if isinstance(target, Path):
        return Location(target, "path")
    return locate(target, split, root)


def fetch_dataset(
    name: str,
    root: str | os.PathLike | None = None,
    *,
    base_url: str | None = None,
    progress: bool | None = None,
    force: bool = False,
) -> Path:
    """Download a named dataset unless it is already found; returns its folder."""
    target = resolve(name)
    if isinstance(target, Path):
        raise DataError(f"{target} is an image folder on disk; there is nothing to fetch")
    return fetch_files(target, root, base_url=base_url, progress=progress, force=force)


def _read(info: DatasetInfo, loc: Location, split: str) -> tuple[torch.Tensor, torch.Tensor]:
    """The split's tensors, read by the dataset's own reader (its row in ``DATASETS``)."""
    fix = f"delete it and run `cnnlab data fetch {info.name}`"
    if loc.step == "system copy":
        fix = (
            f"reinstall the package that provides it, or run `cnnlab data fetch {info.name}` "
            "for a copy in your cache"
        )
    if info.reader is None:  # only image folders lack one, and they never come here
        raise AssertionError(f"{info.name} has no reader in cnnlab.data.datasets.DATASETS")
    return info.reader(info, loc, split, fix)


def load_dataset(
    name: str | os.PathLike = DEFAULT_DATASET,
    split: str = "train",
    root: str | os.PathLike | None = None,
    *,
    download: bool = True,
    verify: bool = True,
    channels: int | None = None,
    size: tuple[int, int] | None = None,
    seed: int = 0,
) -> tuple[torch.Tensor, torch.Tensor]:
    """Load one split of a dataset as two tensors.

    Args:
        name: A name in :data:`DATASETS` (``cnnlab data list``; default :data:`DEFAULT_DATASET`,
            Fashion-MNIST), or the path of an image folder (one sub-folder per class, optionally
            under ``train/``, ``val/``, ``test/``).
        split: ``"train"`` or ``"test"``.
        root: Folder searched first (``--data-dir``); see :mod:`cnnlab.data.fetch` for the rest
            of the lookup order.
        download: Download a named dataset that is found nowhere (default True).
        verify: Check each file of a named dataset against its published SHA-256 (or the
            digest of its uncompressed content) before reading it; about 0.1 s for
            Fashion-MNIST. This is what tells Fashion-MNIST from MNIST, whose files have the
            same names. ``False`` reads any structurally valid file.
        channels: Image folders only: 1 or 3 (default: 3 if any image has colour, else 1).
        size: Image folders only: (H, W) to resize to (default: the median size, at most 512
            pixels on the shorter side).
        seed: Image folders only: fixes the files held out for a split that has no folder of
            its own (``val`` is a split of image folders too).

    Returns:
        ``(images, labels)``.

    Shape:
        images: (N, C, H, W), torch.uint8; labels: (N,), torch.int64 in [0, num_classes).

    Raises:
        DataError: unknown name, files missing and not downloadable, malformed files.
    """
    target = resolve(name)
    _check_split(split, folder=isinstance(target, Path))
    if isinstance(target, Path):
        from cnnlab.data.folder import load_folder

        return load_folder(target, split, channels=channels, size=size, seed=seed)
    if channels is not None or size is not None or seed:
        raise DataError(
            f"channels/size/seed apply to image folders only; {target.name} is "
            f"{target.channels}x{target.size[0]}x{target.size[1]}: convert with "
            "cnnlab.data.augment.resize after loading"
        )
    loc = locate(target, split, root)
    if loc is None:
        if not download:
            raise DataError(
                f"{target.name} ({split}) not found in --data-dir, $CNNLAB_DATA, the user "
                f"cache or system copies; run `cnnlab data fetch {target.name}`"
            )
        fetch_files(target, root)
        loc = locate(target, split, root)
        if loc is None:  # fetched into a folder the lookup does not search: cannot happen
            raise DataError(f"{target.name} was fetched but not found; report this as a bug")
    if verify:
        verify_files(target, loc, split)
    return _read(target, loc, split)


# `cnnlab.data.augment` after a bare `import cnnlab.data`
__getattr__ = lazy_exports(__name__, {"augment": "cnnlab.data.augment"})
