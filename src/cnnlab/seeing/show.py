"""``cnnlab show``'s library side: one trained run, one kind of picture, one figure.

:func:`show` loads the run with :func:`cnnlab.load` (so images are read, converted and resized
as ``cnnlab predict`` does), picks the images (the files given, else the run's own test split),
draws the figure of :mod:`cnnlab.seeing.figures` that ``what`` names, and writes it. The command
only parses its flags and prints the one line :attr:`Shown.summary`.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import torch

from cnnlab.choices import WHAT  # what `--what` can be, in lecture order
from cnnlab.errors import ConfigError
from cnnlab.seeing import figures as F
from cnnlab.seeing import layers as L
from cnnlab.seeing import methods as M

if TYPE_CHECKING:
    from matplotlib.figure import Figure

    from cnnlab.predictor import Predictor

# The method whose default layer each of WHAT (what `--what` can be, cnnlab.choices) uses.
_LAYER_OF = {
    "filters": "filters",
    "maps": "maps",
    "gradcam": "gradcam",
    "rf": "rf",
    "patches": "patches",
    "embeddings": "embeddings",
}

# Test images drawn when no IMAGE is given: per-image pictures show a few, dataset views many.
PER_IMAGE = {"maps": 1, "rf": 1, "saliency": 4, "gradcam": 4, "occlusion": 4}
DATASET_LIMIT = {"patches": 2000, "embeddings": 2000, "errors": None}


@dataclass
class Shown:
    """What :func:`show` drew.

    Attributes:
        figure: the matplotlib figure.
        what: the kind of picture.
        layer: the layer it looks at (the default one when none was asked for), or None.
        images: how many images went into it.
        path: where it was written, or None.
    """

    figure: Figure
    what: str
    layer: str | None
    images: int
    path: str | None

    @property
    def summary(self) -> str:
        at = f" at {self.layer}" if self.layer else ""
        of = f" of {self.images} image{'s' if self.images != 1 else ''}" if self.images else ""
        where = f": wrote {self.path}" if self.path else ""
        return f"{self.what}{of}{at}{where}"


def show(
    source: str | os.PathLike[str] | Predictor,
    images: Sequence[str | os.PathLike[str]] = (),
    what: str = "gradcam",
    *,
    layer: str | None = None,
    target: int | str | None = None,
    path: str | os.PathLike[str] | None = None,
    data: str | None = None,
    data_dir: str | None = None,
    limit: int | None = None,
    unit: tuple[int, int] | None = None,
    window: int | None = None,
    stride: int | None = None,
    samples: int | None = None,
    method: str = "pca",
    device: str = "cpu",
    dpi: float = F.DPI,
) -> Shown:
    """Draw one picture of a trained model and write it to ``path``.

    Args:
        source: a run directory, a ``.safetensors`` model or checkpoint, or a ``Predictor``.
        images: image files; default: the first test images of the run's dataset (``data``
            overrides which dataset), as many as the picture needs.
        what: one of :data:`WHAT`.
        layer: an analyzer row name or module path; default: the method's (see
            :func:`cnnlab.seeing.layers.default_row`).
        target: class index or name; default: each image's predicted class.
        limit: images of the dataset for ``patches``, ``errors`` and ``embeddings``
            (default 2,000, all for ``errors``) or for the per-image pictures.
        unit: ``(i, j)`` of ``rf``; window, stride: of ``occlusion``; samples: SmoothGrad's
            noisy copies or the random inputs of ``rf``'s effective field; method: ``pca`` or
            ``tsne`` for ``embeddings``.

    Raises:
        ConfigError: an unknown ``what``, layer or class; DataError: unreadable images or a
        dataset that cannot be found.
    """
    if what not in WHAT:
        raise ConfigError(f"unknown --what {what!r}: pick one of {', '.join(WHAT)}")
    predictor = _load(source, device)
    meta = predictor.meta
    t = _target(target, meta.classes)
    pixels, labels = _images(predictor, images, what, data, data_dir, limit)
    net = M.model_of(predictor)
    size = tuple(meta.input_size)
    if layer is None and what in _LAYER_OF:
        layer = L.default_layer(net, size, _LAYER_OF[what])
    elif layer is not None:
        L.resolve(net, layer, size)  # the one-line error before any work
    fig = _draw(predictor, what, pixels, labels, layer, t, unit, window, stride, samples, method)
    written = None
    if path is not None:
        from cnnlab import plotting

        written = str(plotting.save(fig, path, dpi))
    used = 0 if what == "filters" else len(pixels) if pixels is not None else 0
    return Shown(fig, what, layer if what not in ("saliency", "occlusion", "errors") else None,
                 used, written)  # fmt: skip


def _draw(
    p: Predictor,
    what: str,
    pixels: Any,
    labels: torch.Tensor | None,
    layer: str | None,
    t: int | None,
    unit: tuple[int, int] | None,
    window: int | None,
    stride: int | None,
    samples: int | None,
    method: str,
) -> Figure:
    if what == "filters":
        return F.plot_filters(p, layer)
    if what == "maps":
        return F.plot_feature_maps(p, pixels, layer)
    if what == "saliency":
        return F.plot_saliency(p, pixels, t, samples=samples or 25)
    if what == "gradcam":
        return F.plot_gradcam(p, pixels, layer, t)
    if what == "occlusion":
        return F.plot_occlusion(p, pixels, window, stride, t)
    if what == "rf":
        return F.plot_receptive_field(p, pixels, layer, unit, samples=samples or 16)
    if what == "patches":
        return F.plot_top_patches(p, pixels, layer)
    if what == "errors":
        if labels is None:
            raise ConfigError(
                "--what errors needs labelled images: leave out IMAGE to use the run's test "
                "split (or pick one with --data)"
            )
        return F.plot_mistakes(p, pixels, labels)
    return F.plot_embeddings(p, pixels, labels, layer, method=method)


def _load(source: Any, device: str) -> Predictor:
    if hasattr(source, "meta") and hasattr(source, "prepare"):
        return source
    from cnnlab.predictor import load

    return load(source, device=device)


def _target(target: int | str | None, classes: Sequence[str]) -> int | None:
    """A class given by index or by name (case-insensitive) -> its index."""
    if target is None:
        return None
    if isinstance(target, int) or str(target).lstrip("-").isdigit():
        index = int(target)
        if not 0 <= index < len(classes):
            raise ConfigError(
                f"--class {index} is out of range: the model has {len(classes)} classes "
                f"(0-{len(classes) - 1})"
            )
        return index
    names = [c.lower() for c in classes]
    if str(target).lower() in names:
        return names.index(str(target).lower())
    raise ConfigError(f"unknown class {target!r}: pick one of {', '.join(classes)} or its index")


def _images(
    p: Predictor,
    files: Sequence[Any],
    what: str,
    data: str | None,
    data_dir: str | None,
    limit: int | None,
) -> tuple[Any, torch.Tensor | None]:
    """The images to draw and their labels (None for files): the files, else test images."""
    if what == "filters":
        return None, None
    if files:
        return list(files), None
    from cnnlab.data import load_dataset

    name = data or p.meta.dataset
    if not name:
        raise ConfigError(
            "the run does not record its dataset: pass IMAGE files or --data NAME|PATH"
        )
    x, y = load_dataset(name, "test", root=data_dir)
    n = limit if limit is not None else PER_IMAGE.get(what, DATASET_LIMIT.get(what))
    if n is not None:
        x, y = x[:n], y[:n]
    return M.in_channels_of(x, p.meta.in_channels), y
