"""The pictures of :mod:`cnnlab.seeing.methods`, as matplotlib ``Figure`` s.

Each ``plot_*`` function computes what it shows through the methods module (so a figure and the
tensors a test checks come from the same code), draws it with :mod:`cnnlab.plotting` (no pyplot,
no backend change) and returns the ``Figure``; given ``path`` it also writes it. With a
``Predictor`` (from :func:`cnnlab.load`) the titles name classes and images are shown in their
own colours (the normalisation undone); with a bare ``nn.Module`` classes are numbers and each
image is stretched to its own range.
"""

from __future__ import annotations

import math
import os
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

import torch

from cnnlab import plotting
from cnnlab.seeing import faithfulness as F
from cnnlab.seeing import layers as L
from cnnlab.seeing import methods as M

if TYPE_CHECKING:
    from matplotlib.axes import Axes
    from matplotlib.figure import Figure

DPI = 150
HEAT = "jet"  # Grad-CAM's own colour map (Selvaraju et al., Fig. 1)
MISSING = 0.85  # grey shown where a receptive field leaves the image


# --- shared helpers ----------------------------------------------------------------------------


def _classes(model: Any, k: int) -> list[str]:
    meta = getattr(model, "meta", None)
    return list(meta.classes) if meta is not None else [str(i) for i in range(k)]


def display(model: Any, x: torch.Tensor) -> torch.Tensor:
    """Model inputs ``(N, C, H, W)`` as displayable pixels ``(N, H, W, C)`` in [0, 1].

    With a ``Predictor`` the normalisation is undone; otherwise each image is stretched to its
    own range. NaN pixels (outside an image) stay NaN.
    """
    x = x.detach().float().cpu()
    meta = getattr(model, "meta", None)
    if meta is not None and len(meta.mean) == x.shape[1]:
        mean = torch.tensor(meta.mean).view(1, -1, 1, 1)
        std = torch.tensor(meta.std).view(1, -1, 1, 1)
        out = (x * std + mean).clamp(0, 1)
    else:
        flat = x.flatten(1)
        lo = _nanmin(flat).view(-1, 1, 1, 1)
        hi = _nanmax(flat).view(-1, 1, 1, 1)
        out = (x - lo) / (hi - lo).clamp_min(1e-12)
    return out.permute(0, 2, 3, 1)


def _nanmin(t: torch.Tensor) -> torch.Tensor:
    return torch.where(t.isnan(), torch.inf, t).amin(1)


def _nanmax(t: torch.Tensor) -> torch.Tensor:
    return torch.where(t.isnan(), -torch.inf, t).amax(1)


def _image(ax: Axes, pixels: torch.Tensor) -> None:
    """Draw ``(H, W, C)`` pixels in [0, 1] (grey for one channel, NaN as light grey)."""
    p = torch.nan_to_num(pixels, nan=MISSING).numpy()
    if p.shape[-1] == 1:
        ax.imshow(p[..., 0], cmap="gray", vmin=0, vmax=1, interpolation="nearest")
    else:
        ax.imshow(p.clip(0, 1), interpolation="nearest")
    ax.set_xticks([])
    ax.set_yticks([])


def _heat(ax: Axes, pixels: torch.Tensor, heat: torch.Tensor, cmap: str = HEAT) -> Any:
    """An image in grey with a [0, 1] heat map over it (the usual CAM overlay)."""
    grey = pixels.mean(-1).numpy()
    ax.imshow(grey, cmap="gray", vmin=0, vmax=1, interpolation="nearest")
    im = ax.imshow(heat.numpy(), cmap=cmap, vmin=0, vmax=1, alpha=0.5, interpolation="bilinear")
    ax.set_xticks([])
    ax.set_yticks([])
    return im


def _normalised(maps: torch.Tensor) -> torch.Tensor:
    """Each map divided by its maximum (an all-zero map stays zero, never NaN)."""
    peak = maps.flatten(1).amax(1).clamp_min(1e-30).view(-1, *([1] * (maps.dim() - 1)))
    return maps / peak


def _figure(width: float, height: float) -> Figure:
    """A figure whose axes, titles and colour bars are laid out without overlapping."""
    return plotting.figure(figsize=(width, height), layout="constrained")


def _clipped(maps: torch.Tensor, q: float = 0.99) -> torch.Tensor:
    """Each map divided by its ``q`` quantile and capped at 1: a few extreme pixels do not
    darken the rest (Smilkov et al. 2017 cap saliency maps at the 99th percentile)."""
    top = maps.flatten(1).quantile(q, dim=1).clamp_min(1e-30).view(-1, 1, 1)
    return (maps / top).clamp(max=1)


def _finish(fig: Figure, path: str | os.PathLike[str] | None, dpi: float) -> Figure:
    if path is not None:
        plotting.save(fig, path, dpi)
    return fig


def _predicted(model: Any, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Softmax probability and index of each image's top class."""
    net = M.model_of(model)
    with M.fp32_eval(net) as work, torch.no_grad():
        return M.batched_logits(work, x).softmax(1).max(1)


def _caption(classes: list[str], probs: torch.Tensor, pred: torch.Tensor, i: int) -> str:
    return f"predicted {classes[int(pred[i])]} ({100 * float(probs[i]):.0f}%)"


def _measured(
    model: Any,
    x: torch.Tensor,
    method: str,
    target: M.Target,
    explained: Mapping[str, F.Explanation] | None,
    **options: Any,
) -> F.Explanation:
    """``explained[method]`` when given (``cnnlab show`` computes it once for the figure and
    its JSON), else the map and its measurement (:func:`cnnlab.seeing.faithfulness.explain`)."""
    if explained is not None and method in explained:
        return explained[method]
    return F.explain(model, x, method, target, **options)


def _verdict_title(fig: Figure, title: str, found: Sequence[F.Explanation]) -> None:
    """The suptitle, and beneath it in words what the measurements say a reader should not
    believe (a map no better than random, or not class-specific)."""
    warnings = []
    for e in found:
        flagged = [s for s in e.scores if s.verdict != "faithful"]
        if flagged:
            label = "Grad-CAM" if e.method == "gradcam" else e.method
            kinds = sorted({part for s in flagged for part in s.verdict.split("; ")})
            warnings.append(f"{label}: {len(flagged)} of {len(e.scores)} maps {' or '.join(kinds)}")
    text = title + ("\nwarning: " + "; ".join(warnings) if warnings else "")
    fig.suptitle(text, fontsize=8, color="#a00000" if warnings else "black")


def _target_names(classes: list[str], x_pred: torch.Tensor, target: M.Target) -> list[str]:
    t = M.targets(torch.zeros(len(x_pred), len(classes)), target) if target is not None else x_pred
    return [classes[int(c)] for c in t]


# --- weights and activations -------------------------------------------------------------------


def plot_filters(
    model: Any,
    layer: str | None = None,
    *,
    input_size: tuple[int, ...] | None = None,
    max_filters: int = 64,
    max_channels: int = 12,
    path: str | os.PathLike[str] | None = None,
    dpi: float = DPI,
) -> Figure:
    """A convolution's kernels as a grid.

    A first layer (one or three input channels) shows each filter as one tile, in colour for
    RGB (each filter stretched to its own range, as in Krizhevsky et al. 2012, Fig. 3). A
    deeper layer shows a row per filter and a column per input channel, on a diverging scale
    shared by the row (red positive, blue negative).
    """
    w = M.filters(model, layer, input_size)
    net = M.model_of(model)
    size = input_size or _size_of(model)
    name = layer or L.default_layer(net, size, "filters")
    out, cin, kh, kw = w.shape
    title = f"{L.model_name(net)} {name}: {out} filters {kh}x{kw} on {cin} channel(s)"
    if cin in (1, 3):
        n = min(out, max_filters)
        cols = math.ceil(math.sqrt(n))
        rows = math.ceil(n / cols)
        fig = _figure(1.1 * cols + 0.4, 1.1 * rows + 0.6)
        axes = fig.subplots(rows, cols, squeeze=False)
        tiles = w[:n].flatten(1)
        lo, hi = tiles.amin(1).view(-1, 1, 1, 1), tiles.amax(1).view(-1, 1, 1, 1)
        tiles = ((w[:n] - lo) / (hi - lo).clamp_min(1e-12)).permute(0, 2, 3, 1)
        for i, ax in enumerate(axes.flat):
            if i < n:
                _image(ax, tiles[i])
            else:
                ax.axis("off")
    else:
        n, c = min(out, max_filters // 4 or 1), min(cin, max_channels)
        fig = _figure(0.7 * c + 0.6, 0.7 * n + 0.8)
        axes = fig.subplots(n, c, squeeze=False)
        for i in range(n):
            scale = float(w[i].abs().max()) or 1.0
            for j in range(c):
                ax = axes[i, j]
                ax.imshow(w[i, j].numpy(), cmap="RdBu_r", vmin=-scale, vmax=scale)
                ax.set_xticks([])
                ax.set_yticks([])
                if j == 0:
                    ax.set_ylabel(str(i), rotation=0, ha="right", va="center", fontsize=7)
                if i == 0:
                    ax.set_title(f"in {j}", fontsize=7)
        title += f" (first {n} filters, {c} channels)"
    fig.suptitle(title, fontsize=9)
    return _finish(fig, path, dpi)


def _size_of(model: Any) -> tuple[int, ...]:
    meta = getattr(model, "meta", None)
    if meta is not None:
        return tuple(meta.input_size)
    return M.registered_size(M.model_of(model))


def plot_feature_maps(
    model: Any,
    image: M.Images,
    layer: str | None = None,
    *,
    top: int = 16,
    path: str | os.PathLike[str] | None = None,
    dpi: float = DPI,
) -> Figure:
    """One image and the ``top`` channels of a layer that respond to it most (largest mean).

    Each map has its own colour scale (viridis, dark = low); a vector layer is drawn as bars.
    """
    net = M.model_of(model)
    x = M.as_input(model, image)[:1]
    size = tuple(x.shape[1:])
    name = layer or L.default_layer(net, size, "maps")
    maps = M.feature_maps(model, x, name)[0]
    pixels = display(model, x)[0]
    if maps.dim() == 1:
        fig = _figure(8, 3)
        ax0, ax1 = fig.subplots(1, 2, gridspec_kw={"width_ratios": [1, 3]})
        _image(ax0, pixels)
        ax1.bar(range(len(maps)), maps.numpy())
        ax1.set_xlabel("unit")
        ax1.set_title(f"{name}: {len(maps)} units", fontsize=9)
        return _finish(fig, path, dpi)
    order = maps.flatten(1).mean(1).argsort(descending=True)[:top]
    cols = min(6, len(order) + 1)
    rows = math.ceil((len(order) + 1) / cols)
    fig = _figure(1.6 * cols, 1.7 * rows + 0.4)
    axes = fig.subplots(rows, cols, squeeze=False).flat
    _image(axes[0], pixels)
    axes[0].set_title("input", fontsize=8)
    for ax, c in zip(axes[1:], order, strict=False):
        ax.imshow(maps[c].numpy(), cmap="viridis", interpolation="nearest")
        ax.set_title(f"ch {int(c)}  mean {float(maps[c].mean()):.2f}", fontsize=7)
        ax.set_xticks([])
        ax.set_yticks([])
    for ax in axes[len(order) + 1 :]:
        ax.axis("off")
    c, h, w = maps.shape
    fig.suptitle(
        f"{L.model_name(net)} {name} ({c}x{h}x{w}): the {len(order)} most active channels",
        fontsize=9,
    )
    return _finish(fig, path, dpi)


# --- attributions ------------------------------------------------------------------------------


def plot_saliency(
    model: Any,
    images: M.Images,
    target: M.Target = None,
    *,
    samples: int = 25,
    noise: float = 0.15,
    explained: Mapping[str, F.Explanation] | None = None,
    path: str | os.PathLike[str] | None = None,
    dpi: float = DPI,
) -> Figure:
    """Per image: the image, the plain gradient and SmoothGrad, each as ``max_c |gradient|``
    scaled to its own 99th percentile (Simonyan et al. 2014, Smilkov et al. 2017), with each
    map's deletion, insertion and class sensitivity beneath it
    (:mod:`cnnlab.seeing.faithfulness`; ``explained`` gives them precomputed)."""
    x = M.as_input(model, images)
    probs, pred = _predicted(model, x)
    plain_e = _measured(model, x, "saliency", target, explained)
    random = (
        torch.tensor([s.deletion_random for s in plain_e.scores]),
        torch.tensor([s.insertion_random for s in plain_e.scores]),
    )
    smooth_e = _measured(
        model, x, "smoothgrad", target, explained, samples=samples, noise=noise, random=random
    )
    plain, smooth = _clipped(plain_e.maps), _clipped(smooth_e.maps)
    classes = _classes(model, _num_classes(model, x))
    names = _target_names(classes, pred, target)
    pixels = display(model, x)
    fig = _figure(7.6, 2.5 * len(x) + 0.7)
    axes = fig.subplots(len(x), 3, squeeze=False)
    for i in range(len(x)):
        _image(axes[i, 0], pixels[i])
        axes[i, 0].set_title(_caption(classes, probs, pred, i), fontsize=8)
        for ax, m, e, label in (
            (axes[i, 1], plain, plain_e, "gradient"),
            (axes[i, 2], smooth, smooth_e, "SmoothGrad"),
        ):
            im = ax.imshow(m[i].numpy(), cmap="gray", vmin=0, vmax=1, interpolation="nearest")
            ax.set_title(f"{label}: {names[i]}", fontsize=8)
            ax.set_xticks([])
            ax.set_yticks([])
            ax.set_xlabel(_score_lines(e, i), fontsize=6)
    fig.colorbar(im, ax=axes[:, 1:].flatten().tolist(), shrink=0.5, label="|gradient| / 99th pct")
    _verdict_title(fig, "saliency: max over channels of |d score / d pixel|", [plain_e, smooth_e])
    return _finish(fig, path, dpi)


def _score_lines(e: F.Explanation, i: int) -> str:
    """The measurement of image ``i``'s map, in two short lines for under the map."""
    s = e.scores[i]
    mark = "" if s.verdict == "faithful" else f"\n{s.verdict.upper()}"
    return (
        f"deletion {s.deletion:.2f} (random {s.deletion_random:.2f})\n"
        f"insertion {s.insertion:.2f} (random {s.insertion_random:.2f})\n"
        f"class sensitivity {s.class_sensitivity:.2f}{mark}"
    )


def _num_classes(model: Any, x: torch.Tensor) -> int:
    meta = getattr(model, "meta", None)
    if meta is not None:
        return int(meta.num_classes)
    net = M.model_of(model)
    with M.fp32_eval(net) as work, torch.no_grad():
        return int(work(x[:1]).shape[1])


def plot_gradcam(
    model: Any,
    images: M.Images,
    layer: str | None = None,
    target: M.Target = None,
    *,
    explained: Mapping[str, F.Explanation] | None = None,
    path: str | os.PathLike[str] | None = None,
    dpi: float = DPI,
) -> Figure:
    """Per image: the image, and its Grad-CAM upsampled over it (each scaled to its maximum),
    with the map's deletion, insertion and class sensitivity beneath it
    (:mod:`cnnlab.seeing.faithfulness`); the title warns, in words, when maps are no better
    than random or not class-specific.

    The title names the layer and its map size: a 3x3 map (FastNet's last stage) is coarse by
    construction; an earlier layer (``layer=``) trades class-specificity for resolution.
    """
    net = M.model_of(model)
    x = M.as_input(model, images)
    size = tuple(x.shape[1:])
    name = layer or L.default_layer(net, size, "gradcam")
    e = _measured(model, x, "gradcam", target, explained, layer=name)
    probs, pred = _predicted(model, x)
    classes = _classes(model, _num_classes(model, x))
    names = _target_names(classes, pred, target)
    heat = _normalised(e.maps)  # placed at the fields' centres (methods.upsample)
    pixels = display(model, x)
    h, w = M.layer_row(net, name, size).output_shape[1:]
    fig = _figure(6.2, 2.6 * len(x) + 0.8)
    axes = fig.subplots(len(x), 2, squeeze=False)
    for i in range(len(x)):
        _image(axes[i, 0], pixels[i])
        axes[i, 0].set_title(_caption(classes, probs, pred, i), fontsize=8)
        im = _heat(axes[i, 1], pixels[i], heat[i])
        empty = "\n(all zero: no positive evidence)" if float(e.maps[i].max()) == 0 else ""
        axes[i, 1].set_title(f"for {names[i]}{empty}", fontsize=8)
        axes[i, 1].set_xlabel(_score_lines(e, i), fontsize=6)
    bar = fig.colorbar(im, ax=axes[:, 1].tolist(), shrink=0.6)
    bar.set_label("Grad-CAM / its max", fontsize=8)
    _verdict_title(
        fig, f"Grad-CAM at {name} ({h}x{w} map)\ncells placed at their fields' centres", [e]
    )
    return _finish(fig, path, dpi)


def plot_occlusion(
    model: Any,
    images: M.Images,
    window: int | tuple[int, int] | None = None,
    stride: int | tuple[int, int] | None = None,
    target: M.Target = None,
    *,
    score: str = "probability",
    explained: Mapping[str, F.Explanation] | None = None,
    path: str | os.PathLike[str] | None = None,
    dpi: float = DPI,
) -> Figure:
    """Per image: the image and the drop of the class's probability (or logit) when a grey
    square hides each part (Zeiler & Fergus 2014, Fig. 7), with the map's deletion, insertion
    and class sensitivity beneath it. Red: hiding it hurts the class; blue: hiding it helps.
    The square's size is drawn in the corner."""
    x = M.as_input(model, images)
    e = _measured(
        model, x, "occlusion", target, explained, window=window, stride=stride, score=score
    )
    sens = e.maps
    probs, pred = _predicted(model, x)
    classes = _classes(model, _num_classes(model, x))
    names = _target_names(classes, pred, target)
    pixels = display(model, x)
    h, w = x.shape[-2:]
    wh, ww = M.window_pair(window, (max(1, round(h / 7)), max(1, round(w / 7))), "window")
    fig = _figure(6.0, 2.6 * len(x) + 0.8)
    axes = fig.subplots(len(x), 2, squeeze=False)
    for i in range(len(x)):
        _image(axes[i, 0], pixels[i])
        axes[i, 0].set_title(_caption(classes, probs, pred, i), fontsize=8)
        scale = float(sens[i].abs().max()) or 1.0
        ax = axes[i, 1]
        im = ax.imshow(sens[i].numpy(), cmap="RdBu_r", vmin=-scale, vmax=scale)
        ax.add_patch(_rectangle(0, 0, wh, ww, color="black", lw=1))
        ax.set_title(f"drop of {names[i]}'s {score}", fontsize=8)
        ax.set_xticks([])
        ax.set_yticks([])
        ax.set_xlabel(_score_lines(e, i), fontsize=6)
        bar = fig.colorbar(im, ax=ax, shrink=0.8)
        bar.ax.tick_params(labelsize=7)
    _verdict_title(fig, f"occlusion by a {wh}x{ww} square of the training mean", [e])
    return _finish(fig, path, dpi)


def _rectangle(top: float, left: float, h: float, w: float, **kw: Any) -> Any:
    from matplotlib.patches import Rectangle

    return Rectangle((left - 0.5, top - 0.5), w, h, fill=False, **kw)


# --- receptive fields and patches --------------------------------------------------------------


def plot_receptive_field(
    model: Any,
    image: M.Images | None = None,
    layer: str | None = None,
    unit: tuple[int, int] | None = None,
    *,
    input_size: tuple[int, ...] | None = None,
    samples: int = 16,
    path: str | os.PathLike[str] | None = None,
    dpi: float = DPI,
) -> Figure:
    """A unit's theoretical receptive field (the analyzer's box) on the image, beside its
    effective receptive field (Luo et al. 2016: ``|d unit / d input|`` averaged over
    ``samples`` random inputs), with the same box drawn on both. The effective field is zero
    outside the box and concentrated near its centre."""
    net = M.model_of(model)
    x = M.as_input(model, image)[:1] if image is not None else None
    size = tuple(x.shape[1:]) if x is not None else (input_size or _size_of(model))
    name = layer or L.default_layer(net, size, "rf")
    row = M.layer_row(net, name, size)
    i, j = M.unit_of(row.output_shape, unit, name)
    box = M.receptive_box(net, size, name, (i, j))
    erf = M.effective_rf(net, size, name, (i, j), samples=samples)
    fig = _figure(8, 4.2)
    ax0, ax1 = fig.subplots(1, 2)
    if x is not None:
        _image(ax0, display(model, x)[0])
    else:
        ax0.imshow(torch.full(size[1:], 0.5).numpy(), cmap="gray", vmin=0, vmax=1)
    im = ax1.imshow((erf / erf.max().clamp_min(1e-30)).numpy(), cmap="magma", vmin=0, vmax=1)
    fig.colorbar(im, ax=ax1, shrink=0.8, label="|gradient| / max")
    # Show the whole box even where it reaches past the image (padding is what it sees there).
    top, left = min(box.top, 0) - 1, min(box.left, 0) - 1
    bottom, right = max(box.bottom, size[1]) + 1, max(box.right, size[2]) + 1
    for ax in (ax0, ax1):
        ax.add_patch(_rectangle(box.top, box.left, *box.size, color="cyan", lw=2))
        cy, cx = (box.top + box.bottom - 1) / 2, (box.left + box.right - 1) / 2
        ax.plot([cx], [cy], "+", color="cyan", ms=10)
        ax.set_xlim(left - 0.5, right - 0.5)
        ax.set_ylim(bottom - 0.5, top - 0.5)
        ax.set_facecolor("0.85")
        ax.set_xticks([])
        ax.set_yticks([])
    rf, jump, start = row.receptive_field, row.jump, row.start
    ax0.set_title(
        f"theoretical: rows {box.top}..{box.bottom - 1}, cols {box.left}..{box.right - 1}",
        fontsize=8,
    )
    ax1.set_title(f"effective ({samples} random inputs)", fontsize=8)
    fig.suptitle(
        f"{L.model_name(net)} {name} unit ({i}, {j}) of {'x'.join(map(str, row.output_shape))}: "
        f"receptive field {rf}, jump {jump}, start {start}",
        fontsize=9,
    )
    return _finish(fig, path, dpi)


def plot_top_patches(
    model: Any,
    images: M.Images,
    layer: str | None = None,
    *,
    channels: int | Sequence[int] = 8,
    k: int = 9,
    path: str | os.PathLike[str] | None = None,
    dpi: float = DPI,
) -> Figure:
    """For each of ``channels``, the ``k`` input patches that activate it most, each cut by
    the unit's exact receptive field (Zeiler & Fergus 2014, Fig. 2's top-9). Light grey marks
    where the field reaches past the image's border."""
    patches = M.top_patches(model, images, layer, channels=channels, k=k)
    net = M.model_of(model)
    m, kk = patches.activations.shape
    crops = display(model, patches.crops.flatten(0, 1)).view(m, kk, *patches.crops.shape[-2:], -1)
    rh, rw = patches.crops.shape[-2:]
    fig = _figure(1.0 * kk + 1.2, 1.0 * m + 0.6)
    axes = fig.subplots(m, kk, squeeze=False)
    for r in range(m):
        for c in range(kk):
            _image(axes[r, c], crops[r, c])
        axes[r, 0].set_ylabel(
            f"ch {int(patches.channels[r])}\n{float(patches.activations[r, 0]):.2f}",
            rotation=0,
            ha="right",
            va="center",
            fontsize=7,
        )
    fig.suptitle(
        f"{L.model_name(net)} {patches.layer}: top {kk} patches ({rh}x{rw} receptive field) "
        f"of {m} channels",
        fontsize=9,
    )
    return _finish(fig, path, dpi)


# --- whole-dataset views -----------------------------------------------------------------------


def plot_mistakes(
    model: Any,
    images: M.Images,
    labels: torch.Tensor,
    *,
    k: int = 16,
    pairs: int = 8,
    path: str | os.PathLike[str] | None = None,
    dpi: float = DPI,
) -> Figure:
    """The ``k`` most confident mistakes (true -> predicted, probability) and the most
    confused pairs of classes, with the row-normalised confusion matrix beside them."""
    found = M.mistakes(model, images, labels, k=k, pairs=pairs)
    num = found.confusion.shape[0]
    classes = _classes(model, num)
    n = len(found.index)
    cols = 4
    rows = max(1, math.ceil(n / cols))
    fig = _figure(12, max(5.0, 2.0 * rows + 0.6))
    left, right = fig.subfigures(1, 2, width_ratios=[1, 1.15])
    axes = left.subplots(rows, cols, squeeze=False).flat
    pixels = display(model, M.as_input(model, _pick(images, found.index))) if n else None
    for idx, ax in enumerate(axes):
        if idx >= n:
            ax.axis("off")
            continue
        _image(ax, pixels[idx])
        ax.set_title(
            f"{classes[int(found.true[idx])]}\n-> {classes[int(found.predicted[idx])]} "
            f"{100 * float(found.confidence[idx]):.0f}%",
            fontsize=7,
        )
    left.suptitle(f"the {n} most confident mistakes (true -> predicted)", fontsize=9)
    ax = right.subplots()
    rates = found.confusion.float() / found.confusion.sum(1, keepdim=True).clamp_min(1)
    im = ax.imshow(100 * rates.numpy(), cmap="Blues", vmin=0, vmax=100)
    right.colorbar(im, ax=ax, shrink=0.7, label="% of the true class")
    ax.set_xticks(range(num), [c[:12] for c in classes], rotation=90, fontsize=7)
    ax.set_yticks(range(num), [c[:12] for c in classes], fontsize=7)
    ax.set_xlabel("predicted")
    ax.set_ylabel("true")
    for rank, (t, p, _) in enumerate(found.pairs):
        ax.add_patch(_rectangle(t, p, 1, 1, color="red", lw=1.5))
        ax.text(p, t, str(rank + 1), color="red", ha="center", va="center", fontsize=7)
    ranked = ", ".join(
        f"{r + 1}. {classes[t]} -> {classes[p]} ({c})"
        for r, (t, p, c) in enumerate(found.pairs[:3])
    )
    right.suptitle(
        f"confusion of {len(labels)} images, accuracy {100 * found.accuracy:.2f}%\n"
        f"most confused: {ranked}",
        fontsize=8,
    )
    return _finish(fig, path, dpi)


def _pick(images: M.Images, index: torch.Tensor) -> M.Images:
    if isinstance(images, torch.Tensor):
        return images[index]
    items = list(images) if not isinstance(images, (str, os.PathLike)) else [images]
    return [items[int(i)] for i in index]


def plot_embeddings(
    model: Any,
    images: M.Images,
    labels: torch.Tensor | None = None,
    layer: str | None = None,
    *,
    method: str = "pca",
    seed: int = 0,
    path: str | os.PathLike[str] | None = None,
    dpi: float = DPI,
) -> Figure:
    """The penultimate features in 2-D, one dot per image coloured by class (by the predicted
    class when no labels are given)."""
    net = M.model_of(model)
    x = M.as_input(model, images)
    size = tuple(x.shape[1:])
    name = layer or L.default_layer(net, size, "embeddings")
    points = M.embeddings(model, x, name, method=method, seed=seed)
    coloured_by = "true class"
    if labels is None:
        labels = _predicted(model, x)[1]
        coloured_by = "predicted class"
    labels = torch.as_tensor(labels).cpu()
    classes = _classes(model, max(int(labels.max()) + 1, _num_classes(model, x)))
    fig = _figure(7.5, 6)
    ax = fig.subplots()
    cmap = "tab10" if len(classes) <= 10 else "tab20"
    from matplotlib import colormaps

    colours = colormaps[cmap]
    for c in range(len(classes)):
        sel = labels == c
        if sel.any():
            pts = points[sel].numpy()
            ax.scatter(pts[:, 0], pts[:, 1], s=4, color=colours(c % colours.N), label=classes[c])
    ax.legend(markerscale=3, fontsize=7, loc="best")
    axis = "principal component" if method == "pca" else "t-SNE dimension"
    ax.set_xlabel(f"{axis} 1")
    ax.set_ylabel(f"{axis} 2")
    dims = math.prod(M.feature_maps(model, x[:1], name).shape[1:])
    ax.set_title(
        f"{L.model_name(net)} {name} ({dims} features) of {len(x)} images by "
        f"{'PCA' if method == 'pca' else 't-SNE'}, coloured by {coloured_by}",
        fontsize=9,
    )
    return _finish(fig, path, dpi)
