"""``cnnlab show``'s library side: one trained run, one kind of picture, one figure.

:func:`show` loads the run with :func:`cnnlab.load` (so images are read, converted and resized
as ``cnnlab predict`` does), picks the images (the files given, else the run's own test split),
draws the picture of :data:`cnnlab.seeing.views.VIEWS` that ``what`` names, and writes it. The
row says everything about the picture that ``show`` needs, so nothing here names a picture. The
command only parses its flags and prints the one line :attr:`Shown.summary`.

This module imports PyTorch on first call, not on import: ``import cnnlab.seeing`` stays cheap.
"""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from cnnlab.errors import ConfigError
from cnnlab.seeing.views import WHAT, View, lookup

if TYPE_CHECKING:
    import torch
    from matplotlib.figure import Figure

    from cnnlab.predictor import Predictor

__all__ = ["WHAT", "Shown", "show"]


@dataclass
class Shown:
    """What :func:`show` drew.

    Attributes:
        figure: the matplotlib figure.
        what: the kind of picture.
        layer: the layer it looks at (the default one when none was asked for), or None.
        images: how many images went into it.
        path: where it was written, or None.
        explained: the measured explanations drawn (:attr:`View.explains`), by method.
        scores_path: the JSON of their measurements written beside the figure, or None.
    """

    figure: Figure
    what: str
    layer: str | None
    images: int
    path: str | None
    explained: dict[str, Any] = field(default_factory=dict)
    scores_path: str | None = None

    @property
    def summary(self) -> str:
        """What was drawn, then one line per measured explanation (mean over the images)."""
        at = f" at {self.layer}" if self.layer else ""
        of = f" of {self.images} image{'s' if self.images != 1 else ''}" if self.images else ""
        where = f": wrote {self.path}" if self.path else ""
        lines = [f"{self.what}{of}{at}{where}"]
        for method, e in self.explained.items():
            s = e.summary
            lines.append(
                f"  {method}: deletion {s.deletion:.3f} (random {s.deletion_random:.3f}), "
                f"insertion {s.insertion:.3f} (random {s.insertion_random:.3f}), class "
                f"sensitivity {s.class_sensitivity:.2f}: {s.verdict} (mean of {s.images})"
            )
        if self.scores_path:
            lines.append(f"  measurements: wrote {self.scores_path}")
        return "\n".join(lines)


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
    dpi: float | None = None,
) -> Shown:
    """Draw one picture of a trained model and write it to ``path``.

    Args:
        source: a run directory, a ``.safetensors`` model or checkpoint, or a ``Predictor``.
        images: image files; default: the first test images of the run's dataset (``data``
            overrides which dataset), as many as the picture's row says (``View.limit``).
        what: one of :data:`WHAT`, the names of :data:`cnnlab.seeing.views.VIEWS`.
        layer: an analyzer row name or module path; default: the picture's
            (:func:`cnnlab.seeing.layers.default_layer`).
        target: class index or name; default: each image's predicted class.
        limit: test images to use instead of the row's ``limit``.
        unit: ``(i, j)`` of ``rf``; window, stride: of ``occlusion``; samples: SmoothGrad's
            noisy copies or the random inputs of ``rf``'s effective field; method: ``pca`` or
            ``tsne`` for ``embeddings``. A picture that does not take an option ignores it.
        dpi: resolution of the written file (default: :data:`cnnlab.seeing.figures.DPI`).

    Raises:
        ConfigError: an unknown ``what``, layer or class; DataError: unreadable images or a
        dataset that cannot be found.
    """
    view = lookup(what)
    from cnnlab.seeing import layers as L
    from cnnlab.seeing import methods as M

    predictor = _load(source, device)
    meta = predictor.meta
    t = _target(target, meta.classes)
    pixels, labels = _images(predictor, images, view, data, data_dir, limit, source)
    net = M.model_of(predictor)
    size = tuple(meta.input_size)
    if layer is None and view.default_layer is not None:
        layer = L.default_layer(net, size, view.name)
    elif layer is not None:
        L.resolve(net, layer, size)  # the one-line error before any work
    if view.labelled and labels is None:
        raise ConfigError(
            f"--what {view.name} needs labelled images: leave out IMAGE to use the run's test "
            "split (or pick one with --data)"
        )
    given = {
        "target": t,
        "labels": labels,
        "unit": unit,
        "window": window,
        "stride": stride,
        "samples": samples,
        "method": method,
    }
    explained = _explain(view, predictor, pixels, layer, given)
    fig = _draw(view, predictor, pixels, layer, {**given, "explained": explained or None})
    written = scores = None
    if path is not None:
        from cnnlab import plotting
        from cnnlab.seeing.figures import DPI

        written = str(plotting.save(fig, path, DPI if dpi is None else dpi))
        if explained:
            scores = str(_write_scores(Path(written), explained, meta.classes))
    used = len(pixels) if pixels is not None else 0
    at = layer if view.default_layer is not None else None
    return Shown(fig, what, at, used, written, explained, scores)


def scores_path(figure: Path) -> Path:
    """Where the measurements of ``figure`` go: ``cam.png`` -> ``cam.faithfulness.json``."""
    return figure.with_name(figure.stem + ".faithfulness.json")


def _explain(
    view: View, p: Predictor, pixels: Any, layer: str | None, given: Mapping[str, Any]
) -> dict[str, Any]:
    """The row's explanations, each with its measurement, computed once for figure and JSON."""
    if not view.explains:
        return {}
    import torch

    from cnnlab.seeing import faithfulness as F
    from cnnlab.seeing import methods as M

    x = M.as_input(p, pixels)
    options = {
        "layer": layer,
        "samples": given["samples"],
        "window": given["window"],
        "stride": given["stride"],
        "score": "probability",  # the occlusion figure's, and the curves' own score
    }
    out: dict[str, Any] = {}
    random = None
    for method in view.explains:
        kwargs = {k: v for k, v in options.items() if v is not None}
        e = F.explain(p, x, method, given["target"], random=random, **kwargs)
        random = (  # the random orders do not depend on the method: measured once
            torch.tensor([s.deletion_random for s in e.scores]),
            torch.tensor([s.insertion_random for s in e.scores]),
        )
        out[method] = e
    return out


def _write_scores(figure: Path, explained: Mapping[str, Any], classes: Sequence[str]) -> Path:
    import json

    target = scores_path(figure)
    body = {"figure": figure.name, **{m: e.to_dict(classes) for m, e in explained.items()}}
    target.write_text(json.dumps(body, indent=2) + "\n")
    return target


def _draw(
    view: View, p: Predictor, pixels: Any, layer: str | None, given: Mapping[str, Any]
) -> Figure:
    """``view``'s figure, called as its row says (:class:`~cnnlab.seeing.views.View`)."""
    kwargs = {name: given[name] for name in view.options if given[name] is not None}
    if view.default_layer is not None:
        kwargs["layer"] = layer
    if given.get("explained"):
        kwargs["explained"] = given["explained"]
    images = () if view.images == "none" else (pixels,)
    return view.figure_function()(p, *images, **kwargs)


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
    view: View,
    data: str | None,
    data_dir: str | None,
    limit: int | None,
    source: Any = None,
) -> tuple[Any, torch.Tensor | None]:
    """The images to draw and their labels (None for files): the files, else test images
    (a run directory's own test split, :func:`cnnlab.run.data.load_run_split`, unless ``data``
    names other ones)."""
    if view.images == "none":
        return None, None
    if files:
        return list(files), None
    from cnnlab.data import load_dataset
    from cnnlab.run.data import load_run_split, record_sides
    from cnnlab.run.layout import RunFiles
    from cnnlab.seeing.methods import in_channels_of

    name = data or p.meta.dataset
    if not name:
        raise ConfigError(
            "the run does not record its dataset: pass IMAGE files or --data NAME|PATH"
        )
    run = RunFiles(Path(source)) if isinstance(source, (str, os.PathLike)) else None
    if data is None and run is not None and Path(source).is_dir() and run.config.is_file():
        x, y = load_run_split(run.read_config(resolved=True), "test", record_sides(p.meta))
    else:
        x, y = load_dataset(name, "test", root=data_dir)
    n = limit if limit is not None else view.limit
    if n is not None:
        x, y = x[:n], y[:n]
    return in_channels_of(x, p.meta.in_channels), y
