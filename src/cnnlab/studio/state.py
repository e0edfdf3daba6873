"""What the studio's routes share (:class:`Studio`): the runs roots, the job queue, the loaded
models, and the datasets and image folders a job may train on.

Its own module, below the routes (:mod:`cnnlab.studio.api` and the views' modules) and the app
(:mod:`cnnlab.studio.app`) that both use it, so neither imports the other.
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from cnnlab.studio.inspect import Inspector
from cnnlab.studio.jobs import JobQueue
from cnnlab.studio.security import Refused, run_id

FOLDER_DEPTH = 2  # folders below each root searched for image folders (one sub-folder per class)
IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".gif", ".bmp", ".webp", ".tif", ".tiff", ".ppm")


class Studio:
    """What the routes share: the roots, the job queue and the loaded models."""

    def __init__(self, roots: Sequence[Path], python: str) -> None:
        self.roots = list(roots)
        self.jobs = JobQueue(self.roots[0], lambda p: run_id(p, self.roots), self.data_word,
                             python)  # fmt: skip
        self.inspector = Inspector(self.roots[0])

    def named_datasets(self) -> list[dict[str, Any]]:
        from cnnlab.data.datasets import DATASETS
        from cnnlab.data.fetch import locate

        return [
            {"name": d.name, "title": d.title, "classes": len(d.classes),
             "installed": locate(d, "train") is not None}
            for d in DATASETS.values()
        ]  # fmt: skip

    def image_folders(self) -> list[str]:
        """Folders under the roots with class sub-folders holding images (``--data DIR``)."""
        found = []

        def walk(path: Path, depth: int) -> None:
            try:
                children = [c for c in sorted(path.iterdir()) if c.is_dir() and c.name[0] != "."]
            except OSError:
                return
            if len(children) >= 2 and all(_has_images(c) for c in children[:8]):
                found.append(str(path))
                return
            if depth > 0:
                for child in children[:200]:
                    walk(child, depth - 1)

        for root in self.roots:
            walk(root, FOLDER_DEPTH)
        return found

    def data_word(self, data: Any) -> str:
        """A job's ``--data``: a named dataset, or an image folder inside a root."""
        from cnnlab.data.datasets import ALIASES, DATASETS

        if isinstance(data, str) and (data in DATASETS or data in ALIASES):
            return data
        if isinstance(data, str) and data and "\x00" not in data:
            path = Path(data).resolve()
            if any(path.is_relative_to(r) for r in self.roots) and path.is_dir():
                return str(path)
        raise Refused(400, f"unknown data {data!r}: pick a dataset or an image folder from "
                      "/api/datasets")  # fmt: skip


def _has_images(folder: Path) -> bool:
    with contextlib.suppress(OSError), os.scandir(folder) as entries:
        for n, entry in enumerate(entries):
            if entry.name.lower().endswith(IMAGE_SUFFIXES):
                return True
            if n > 50:
                break
    return False
