"""Real test images as PNG files, named by their class: something to ``predict`` and ``show``.

``cnnlab data sample fashion-mnist -n 8 -o samples/`` writes the first eight test images of
Fashion-MNIST as ``samples/0-ankle-boot.png``, ``samples/1-pullover.png``, ...: the number is the
image's index in the split, the rest its true class. The pixels are the dataset's own (28x28
grayscale for Fashion-MNIST), so ``cnnlab predict RUN samples/*.png`` sees exactly what
``cnnlab eval`` sees for those images, and a student can check each answer against the name.
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass
from pathlib import Path

from cnnlab.errors import DataError

MAX_SAMPLES = 1000  # a sample is for looking at; a whole split is what load_dataset is for


@dataclass(frozen=True)
class Sample:
    """One written image: its file, its index in the split and its true class."""

    path: Path
    index: int
    label: int
    class_name: str


def slug(name: str) -> str:
    """A class name as a file-name part: ``"T-shirt/top"`` -> ``"t-shirt-top"``."""
    text = re.sub(r"[^a-z0-9]+", "-", name.lower()).strip("-")
    return text or "class"


def write_samples(
    name: str | os.PathLike,
    out_dir: str | os.PathLike,
    count: int = 8,
    *,
    split: str = "test",
    each_class: bool = False,
    root: str | os.PathLike | None = None,
) -> list[Sample]:
    """Write images of a dataset's split as PNG files named ``INDEX-CLASS.png``.

    Args:
        name: a dataset name or image folder, as :func:`cnnlab.data.load_dataset` takes.
        out_dir: the folder to write into (created; files of the same names are replaced).
        count: how many images: the first ``count`` of the split, or with ``each_class`` the
            first ``count`` of each class.
        split: ``"test"`` (default: images no run trained on) or ``"train"``.
        each_class: take the first ``count`` images of every class instead.
        root: where datasets are looked up first (``--data-dir``).

    Returns:
        The written files, in the split's order.

    Raises:
        DataError: an unknown dataset or split, or a count out of range.
    """
    import torch
    from PIL import Image

    from cnnlab.data import dataset_info, load_dataset

    if not 1 <= count <= MAX_SAMPLES:
        raise DataError(f"-n must be between 1 and {MAX_SAMPLES} (got {count})")
    images, labels = load_dataset(name, split, root=root)
    classes = dataset_info(name).classes
    if each_class:
        firsts = [(labels == c).nonzero().flatten()[:count] for c in range(len(classes))]
        chosen = sorted(torch.cat(firsts).tolist())
    else:
        chosen = list(range(min(count, len(labels))))
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    written = []
    for i in chosen:
        label = int(labels[i])
        pixels = images[i].permute(1, 2, 0).numpy()  # (H, W, C) uint8
        mode = "L" if pixels.shape[2] == 1 else "RGB"
        path = out / f"{i}-{slug(classes[label])}.png"
        Image.fromarray(pixels[:, :, 0] if mode == "L" else pixels, mode).save(path)
        written.append(Sample(path, i, label, classes[label]))
    return written
