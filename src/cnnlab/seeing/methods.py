"""What a trained network computes, as tensors: maps, gradients, occlusion, receptive fields.

Every function takes a model (an ``nn.Module``, or a :class:`~cnnlab.predictor.Predictor` from
:func:`cnnlab.load`) and images, and returns plain tensors on the CPU; the figures are drawn
from them by :mod:`cnnlab.seeing.figures`. Images are either the model's float input
``(N, C, H, W)`` as given, or, with a ``Predictor``, image files and uint8 tensors of any size,
read, converted to the model's channels, resized and normalised exactly as ``cnnlab predict``
does.

The methods and their sources:

* :func:`feature_maps`: a layer's activations (Zeiler & Fergus 2014, Fig. 2; the lectures'
  "activation maps").
* :func:`saliency`: the gradient of a class score with respect to the input (Simonyan, Vedaldi &
  Zisserman 2014, "Deep inside convolutional networks"); :func:`smoothgrad` averages it over
  noisy copies (Smilkov et al. 2017).
* :func:`gradcam`: ``ReLU(sum_k alpha_k A_k)`` with ``alpha_k`` the spatial mean of the score's
  gradient on map ``A_k`` (Selvaraju et al. 2017). For a network that ends in global average
  pooling and one linear layer it equals CAM (Zhou et al. 2016) divided by ``H*W``; the tests
  check that identity.
* :func:`occlusion`: how much the class score drops when a grey square hides each part of the
  image (Zeiler & Fergus 2014, Section 4.2), all positions batched.
* :func:`receptive_box` and :func:`effective_rf`: the input box a unit can see, from the
  analyzer's receptive field, jump and start (the lectures' arithmetic), and the input gradient
  of that unit (Luo et al. 2016, "Understanding the effective receptive field"), which is
  exactly zero outside the box.
* :func:`filters`, :func:`top_patches` (Zeiler & Fergus's top-9 crops, cut by the exact box),
  :func:`mistakes` and :func:`embeddings` (penultimate features in 2-D by PCA, or t-SNE with
  scikit-learn, van der Maaten & Hinton 2008).

Gradients are taken in float32 with the model in eval mode and autocast off, whatever precision
it trained in; training flags are restored afterwards. Class scores are logits (pre-softmax),
as in Simonyan et al. and Grad-CAM.
"""

from __future__ import annotations

import copy
import math
import os
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import torch
from torch import nn

from cnnlab.errors import ConfigError, DataError
from cnnlab.seeing import layers as L

if TYPE_CHECKING:
    from cnnlab.analysis.report import Row

Target = int | Sequence[int] | torch.Tensor | None
Images = torch.Tensor | str | os.PathLike[str] | Sequence[Any]

GRAD_BATCH = 32  # images per forward + backward pass: bounded memory for any N
FORWARD_BATCH = 256  # images per forward-only pass


# --- inputs and the fp32, eval-mode context ----------------------------------------------------


def model_of(model: Any) -> nn.Module:
    """The ``nn.Module`` of ``model`` (a module, or a ``Predictor``)."""
    net = getattr(model, "model", model) if not isinstance(model, nn.Module) else model
    if not isinstance(net, nn.Module):
        raise ConfigError(
            f"cannot look inside a {type(net).__name__}: gradients and hooks need the PyTorch "
            "model; load the run directory or its .safetensors file, not an .onnx export"
        )
    return net


def as_input(model: Any, images: Images) -> torch.Tensor:
    """The model's float input ``(N, C, H, W)`` for ``images``, on the model's device.

    Float tensors are taken as the prepared input (one ``(C, H, W)`` image gets a batch axis).
    File paths and uint8 tensors need a ``Predictor``, whose reading and preprocessing they get.
    """
    net = model_of(model)
    device = _device(net)
    if isinstance(images, torch.Tensor) and images.is_floating_point():
        x = images[None] if images.dim() == 3 else images
        if x.dim() != 4:
            raise DataError(f"expected images (N, C, H, W), got shape {tuple(images.shape)}")
        x = x.to(device, torch.float32)
        return x.clone() if x.is_inference() else x  # made under inference_mode: no autograd
    if not callable(getattr(model, "inputs", None)) or getattr(model, "meta", None) is None:
        raise ConfigError(
            "image files and uint8 pixels need the model's preprocessing: pass a Predictor "
            "from cnnlab.load(RUN_DIR), or float tensors already normalised for the model"
        )
    channels = model.meta.in_channels
    if isinstance(images, torch.Tensor) and images.dim() == 4:
        return model.inputs(in_channels_of(images, channels)).to(device, torch.float32)
    items = [images] if isinstance(images, (str, os.PathLike, torch.Tensor)) else list(images)
    if not items:
        raise DataError("no images given: pass at least one image file or tensor")
    # Tensors in other channel counts are converted the way read_image converts files; then the
    # Predictor reads and prepares everything exactly as `cnnlab predict` does.
    items = [
        in_channels_of(_batched(t), channels)[0] if isinstance(t, torch.Tensor) else t
        for t in items
    ]
    return model.inputs(items).to(device, torch.float32)


def _batched(image: torch.Tensor) -> torch.Tensor:
    return image[None] if image.dim() == 3 else image


def in_channels_of(images: torch.Tensor, channels: int) -> torch.Tensor:
    """uint8 ``(N, C, H, W)`` pixels with ``channels`` channels: RGB to grey by Pillow's luma
    weights, grey to RGB by repetition (what ``read_image(path, channels=...)`` does to files).

    Raises:
        DataError: not uint8 ``(N, C, H, W)``, or a channel count that cannot be converted.
    """
    if images.dim() != 4 or images.dtype != torch.uint8:
        raise DataError(
            f"expected uint8 pixels (N, C, H, W), got {images.dtype} {tuple(images.shape)}: "
            "pass uint8 images, or float tensors already normalised for the model"
        )
    if images.shape[1] != channels:
        if images.shape[1] == 3 and channels == 1:  # ITU-R 601 luma, as Pillow's "L" mode
            w = torch.tensor([0.299, 0.587, 0.114]).view(1, 3, 1, 1)
            return (images.float() * w).sum(1, keepdim=True).round().clamp(0, 255).byte()
        if images.shape[1] == 1 and channels == 3:
            return images.expand(-1, 3, -1, -1).contiguous()
        raise DataError(f"cannot convert {images.shape[1]}-channel images to {channels}")
    return images


def _device(net: nn.Module) -> torch.device:
    p = next(iter(net.parameters()), None)
    return p.device if p is not None else torch.device("cpu")


@contextmanager
def fp32_eval(net: nn.Module) -> Iterator[nn.Module]:
    """``net`` in eval mode, float32, autocast off; every module's flag restored afterwards.

    A model kept in bf16 or fp16, or whose weights are inference tensors, is copied to float32
    (the original is left as it is).
    """
    from cnnlab.run.metrics import eval_mode

    state = net.state_dict()
    low = any(t.is_floating_point() and t.dtype != torch.float32 for t in state.values())
    # Weights made under torch.inference_mode() (a model loaded inside it) cannot be saved for
    # a backward pass: gradients need a copy of them as ordinary tensors.
    frozen = any(t.is_inference() for t in state.values())
    work = net
    if low or frozen:
        with torch.inference_mode(False):
            work = copy.deepcopy(net)
            work.load_state_dict({k: v.clone() for k, v in state.items()}, assign=True)
            work = work.float()
    device = _device(work).type
    with eval_mode(work), torch.autocast(device, enabled=False), torch.inference_mode(False):
        yield work


def targets(logits: torch.Tensor, target: Target) -> torch.Tensor:
    """The class per image: ``None`` is the predicted one; an int is the same for all.

    Returns:
        int64 ``(N,)`` on ``logits``' device.
    """
    n, k = logits.shape
    if target is None:
        return logits.argmax(1)
    t = torch.as_tensor(target, dtype=torch.int64, device=logits.device).flatten()
    if t.numel() == 1:
        t = t.expand(n)
    if t.numel() != n:
        raise ConfigError(f"{t.numel()} targets for {n} images: give one class, or one per image")
    bad = t[(t < 0) | (t >= k)]
    if bad.numel():
        raise ConfigError(
            f"class {int(bad[0])} is out of range: the model has {k} classes (0-{k - 1})"
        )
    return t


def _resolve(net: nn.Module, layer: str | None, size: tuple[int, ...], method: str) -> L.Layer:
    name = layer if layer is not None else L.default_layer(net, size, method)
    return L.resolve(net, name, size)


def _chunks(x: torch.Tensor, size: int) -> Iterator[tuple[slice, torch.Tensor]]:
    for start in range(0, len(x), size):
        s = slice(start, start + size)
        yield s, x[s]


def _score(logits: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
    """Sum over the batch of each image's target logit: one backward gives every image's
    gradient, since images do not interact in eval mode."""
    return logits.float().gather(1, t[:, None]).sum()


# --- activations -------------------------------------------------------------------------------


def feature_maps(
    model: Any, images: Images, layer: str | None = None, *, batch_size: int = FORWARD_BATCH
) -> torch.Tensor:
    """A layer's output for each image.

    Args:
        model: an ``nn.Module`` or a ``Predictor``.
        images: see the module docstring.
        layer: an analyzer row name or module path; default: the first convolution's block.
        batch_size: images per forward pass; the pass stops at the layer.

    Returns:
        float32 on the CPU: ``(N, C, h, w)`` for a map, ``(N, D)`` for a vector.
    """
    net = model_of(model)
    x = as_input(model, images)
    lay = _resolve(net, layer, tuple(x.shape[1:]), "maps")
    out = []
    with fp32_eval(net) as work, torch.no_grad():
        lay = L.remap(lay, net, work)
        for _, chunk in _chunks(x, batch_size):
            with L.tap(work, lay, stop=True) as (t, run):
                run(chunk)
                out.append(t.result().detach().float().cpu())
    return torch.cat(out)


def filters(
    model: Any, layer: str | None = None, input_size: tuple[int, ...] | None = None
) -> torch.Tensor:
    """The kernels of a convolution: float32 ``(out, in / groups, kh, kw)`` on the CPU.

    Args:
        layer: a convolution's name; default: the model's first convolution.
        input_size: ``(C, H, W)`` for the analysis that finds the default (the model's
            registered input size when None).
    """
    net = model_of(model)
    meta = getattr(model, "meta", None)
    size = input_size or (meta.input_size if meta else registered_size(net))
    name = layer if layer is not None else L.default_layer(net, size, "filters")
    lay = L.resolve(net, name, size)
    w = getattr(lay.module, "weight", None)
    if not isinstance(w, torch.Tensor) or w.dim() != 4:
        raise ConfigError(
            f"layer {name!r} has no 2-D convolution kernels: name a Conv2d layer, such as "
            f"{L.default_layer(net, size, 'filters')}"
        )
    return w.detach().float().cpu().clone()


def registered_size(net: nn.Module) -> tuple[int, ...]:
    """The registered ``(C, H, W)`` of a zoo model."""
    info = getattr(net, "cnnlab_info", None)
    if info is None:
        raise ConfigError("pass input_size=(C, H, W): the model is not a registered zoo model")
    return tuple(info.input_size)


# --- gradients ---------------------------------------------------------------------------------


def saliency(
    model: Any, images: Images, target: Target = None, *, batch_size: int = GRAD_BATCH
) -> torch.Tensor:
    """The gradient of each image's class score with respect to its input pixels.

    Simonyan et al. (2014) show ``max_c |gradient|`` as the saliency map; the figure does that.

    Args:
        target: a class for all images, one per image, or None for each image's prediction.

    Returns:
        float32 ``(N, C, H, W)`` on the CPU, the same shape as the model's input.
    """
    net = model_of(model)
    x = as_input(model, images)
    out = torch.empty(x.shape)
    with fp32_eval(net) as work:
        for s, chunk in _chunks(x, batch_size):
            out[s] = _input_gradient(work, chunk, target if _scalar(target) else _part(target, s))
    return out


def smoothgrad(
    model: Any,
    images: Images,
    target: Target = None,
    *,
    samples: int = 25,
    noise: float = 0.15,
    seed: int = 0,
    batch_size: int = GRAD_BATCH,
) -> torch.Tensor:
    """SmoothGrad: the saliency gradient averaged over ``samples`` noisy copies of each image.

    Smilkov et al. (2017) add Gaussian noise of standard deviation ``noise * (max - min)`` of
    the image (10-20% works best there) and explain the clean image's class.

    Returns:
        float32 ``(N, C, H, W)`` on the CPU.
    """
    if samples < 1 or noise < 0:
        raise ConfigError(f"SmoothGrad needs samples >= 1 and noise >= 0 (got {samples}, {noise})")
    net = model_of(model)
    x = as_input(model, images)
    g = torch.Generator(device="cpu").manual_seed(seed)
    out = torch.empty(x.shape)
    with fp32_eval(net) as work:
        with torch.no_grad():
            t = targets(batched_logits(work, x), target)
        for i in range(len(x)):
            xi = x[i : i + 1]
            sigma = noise * float(xi.max() - xi.min())
            total = torch.zeros(xi.shape)
            for start in range(0, samples, batch_size):
                m = min(batch_size, samples - start)
                eps = torch.randn((m, *xi.shape[1:]), generator=g).to(xi.device) * sigma
                total += _input_gradient(work, xi + eps, int(t[i])).sum(0, keepdim=True)
            out[i] = total[0] / samples
    return out


def _scalar(target: Target) -> bool:
    return target is None or isinstance(target, int)


def _part(target: Target, s: slice) -> Target:
    t = torch.as_tensor(target).flatten()
    return t if t.numel() == 1 else t[s]


def _input_gradient(work: nn.Module, x: torch.Tensor, target: Target) -> torch.Tensor:
    x = x.detach().requires_grad_(True)
    with torch.enable_grad():
        logits = work(x)
        (grad,) = torch.autograd.grad(_score(logits, targets(logits, target)), x)
    return grad.detach().float().cpu()


def batched_logits(work: nn.Module, x: torch.Tensor) -> torch.Tensor:
    """float32 ``(N, K)`` logits of ``x`` in batches of :data:`FORWARD_BATCH`."""
    return torch.cat([work(chunk).float() for _, chunk in _chunks(x, FORWARD_BATCH)])


def gradcam(
    model: Any,
    images: Images,
    layer: str | None = None,
    target: Target = None,
    *,
    size: tuple[int, int] | None = None,
    batch_size: int = GRAD_BATCH,
) -> torch.Tensor:
    """Grad-CAM of each image at a layer.

    ``alpha_k = mean_ij d score / d A_k(i, j)`` and the map is ``ReLU(sum_k alpha_k A_k)``
    (Selvaraju et al. 2017, Eq. 1-2). The forward pass up to the layer records no graph and
    the backward pass stops at the layer, so the cost is about one forward pass.

    Args:
        layer: a layer with a ``(C, h, w)`` output; default: the last convolution's block
            whose map is still spatial (``layer4`` of a ResNet; see
            :func:`cnnlab.seeing.layers.default_layer`).
        target: a class for all images, one per image, or None for each image's prediction.
        size: ``(H, W)`` of the input to place the maps on, each cell at the centre of its
            receptive field (:func:`upsample` with the analyzer's start and jump); None keeps
            the layer's ``(h, w)``.

    Returns:
        float32 ``(N, h, w)`` (or ``(N, *size)``) on the CPU, non-negative and not normalised;
        all zero where no position speaks for the class (then nothing at this layer does).
    """
    net = model_of(model)
    x = as_input(model, images)
    in_size = tuple(x.shape[1:])
    lay = _resolve(net, layer, in_size, "gradcam")
    maps = []
    with fp32_eval(net) as work:
        lay = L.remap(lay, net, work)
        for s, chunk in _chunks(x, batch_size):
            t_s = target if _scalar(target) else _part(target, s)
            with L.tap(work, lay, grad_from_here=True) as (tap, run):
                with torch.no_grad():
                    logits = run(chunk)
                a = tap.result()
            _check_spatial(a, lay.name, "Grad-CAM")
            (g,) = torch.autograd.grad(_score(logits, targets(logits, t_s)), a)
            alpha = g.mean(dim=(2, 3), keepdim=True)  # (n, C, 1, 1)
            maps.append(torch.relu((alpha * a).sum(1)).detach().float().cpu())  # (n, h, w)
    out = torch.cat(maps)
    if size is not None:
        row = layer_row(net, lay.name, in_size)
        out = upsample(out, size, per_axis(row.start), per_axis(row.jump))
    return out


def _check_spatial(a: torch.Tensor, name: str, method: str) -> None:
    if a.dim() != 4:
        raise ConfigError(
            f"{method} needs a map: layer {name!r} outputs {tuple(a.shape[1:])}; pick a layer "
            "with a CxHxW output (`cnnlab summary` lists them)"
        )


def upsample(
    maps: torch.Tensor,
    size: tuple[int, int],
    start: tuple[float, float] | None = None,
    jump: tuple[int, int] | None = None,
) -> torch.Tensor:
    """``(N, h, w)`` maps -> ``(N, *size)`` on the input, bilinear between cells.

    With the layer's ``start`` and ``jump`` (the analyzer's, per axis) cell ``(i, j)`` lands on
    the centre of its receptive field, ``start + i * jump``, and pixels beyond the first or last
    centre take the edge cell's value. Without them the map is stretched over the image (what
    resizing libraries do), which shifts it wherever padding made the fields off-centre:
    ResNet-18's 7x7 ``layer4`` cells are centred on pixels 0, 32, ..., 192 of a 224x224 image,
    not on 16, 48, ..., 208.
    """
    if start is None or jump is None:
        return nn.functional.interpolate(
            maps[:, None], size=tuple(size), mode="bilinear", align_corners=False
        )[:, 0]
    n, h, w = maps.shape
    axes = []
    for length, cells, s0, j in ((size[0], h, start[0], jump[0]), (size[1], w, start[1], jump[1])):
        index = (torch.arange(length, dtype=torch.float32) - s0) / j  # fractional cell index
        axes.append(index / max(cells - 1, 1) * 2 - 1)  # grid_sample's [-1, 1] cell centres
    gy, gx = torch.meshgrid(axes[0], axes[1], indexing="ij")
    grid = torch.stack([gx, gy], dim=-1).expand(n, -1, -1, -1).to(maps)
    placed = nn.functional.grid_sample(
        maps[:, None], grid, mode="bilinear", padding_mode="border", align_corners=True
    )
    return placed[:, 0]


# --- occlusion ---------------------------------------------------------------------------------


def occlusion(
    model: Any,
    images: Images,
    window: int | tuple[int, int] | None = None,
    stride: int | tuple[int, int] | None = None,
    target: Target = None,
    *,
    fill: float = 0.0,
    score: str = "logit",
    batch_size: int = FORWARD_BATCH,
) -> torch.Tensor:
    """Occlusion sensitivity: the drop in the class score when a square hides each position.

    Every window position of every image runs in batches of ``batch_size``. A pixel's value is
    the mean drop over the windows that cover it (the last row and column of windows end at
    the border, so every pixel is covered). With one window covering the whole image the map
    is the score of the image minus the score of the filled image, everywhere.

    Args:
        window: square side (or ``(h, w)``); default: a seventh of the image's side.
        stride: step between windows; default: half the window.
        target: a class for all images, one per image, or None for each image's prediction.
        fill: the occluder's value in the model's input, 0 = the training mean after
            normalisation (Zeiler & Fergus's grey square).
        score: ``logit`` or ``probability`` (the softmax; Zeiler & Fergus, Fig. 7).

    Returns:
        float32 ``(N, H, W)`` on the CPU: positive where hiding the pixels lowers the score.
    """
    if score not in ("logit", "probability"):
        raise ConfigError(f"score must be 'logit' or 'probability', got {score!r}")
    net = model_of(model)
    x = as_input(model, images)
    h, w = x.shape[-2:]
    wh, ww = window_pair(window, (max(1, round(h / 7)), max(1, round(w / 7))), "window")
    sh, sw = window_pair(stride, (max(1, wh // 2), max(1, ww // 2)), "stride")
    if wh > h or ww > w:
        raise ConfigError(f"occlusion window {wh}x{ww} is larger than the {h}x{w} input")
    masks = _windows(h, w, wh, ww, sh, sw).to(x.device)  # (P, H, W) bool
    cover = masks.flatten(1).float()  # (P, H*W)
    out = torch.empty(len(x), h, w)
    with fp32_eval(net) as work, torch.no_grad():
        for i in range(len(x)):
            xi = x[i : i + 1]
            logits = work(xi).float()
            t = targets(logits, _one(target, i))
            base = _class_score(logits, t, score)  # (1,)
            drops = []
            for start in range(0, len(masks), batch_size):
                m = masks[start : start + batch_size, None]  # (p, 1, H, W)
                hidden = torch.where(m, torch.full_like(xi, fill), xi)
                drops.append(base - _class_score(work(hidden).float(), t, score))
            drop = torch.cat(drops)  # (P,)
            out[i] = ((drop @ cover) / cover.sum(0)).view(h, w).cpu()
    return out


def window_pair(
    v: int | tuple[int, int] | None, default: tuple[int, int], what: str
) -> tuple[int, int]:
    """An occlusion window or stride as ``(h, w)``; ``default`` when None."""
    if v is None:
        return default
    a, b = (v, v) if isinstance(v, int) else (int(v[0]), int(v[1]))
    if a < 1 or b < 1:
        raise ConfigError(f"occlusion {what} must be at least 1 (got {v})")
    return a, b


def _windows(h: int, w: int, wh: int, ww: int, sh: int, sw: int) -> torch.Tensor:
    """Boolean masks ``(P, H, W)``, one per window position, the last ones flush with the
    bottom and right borders."""
    tops = sorted(set(range(0, h - wh + 1, sh)) | {h - wh})
    lefts = sorted(set(range(0, w - ww + 1, sw)) | {w - ww})
    rows = torch.arange(h)
    cols = torch.arange(w)
    r = torch.stack([(rows >= t) & (rows < t + wh) for t in tops])  # (nt, H)
    c = torch.stack([(cols >= s) & (cols < s + ww) for s in lefts])  # (nl, W)
    return (r[:, None, :, None] & c[None, :, None, :]).flatten(0, 1)  # (nt*nl, H, W)


def _one(target: Target, i: int) -> Target:
    return target if _scalar(target) else int(torch.as_tensor(target).flatten()[i])


def _class_score(logits: torch.Tensor, t: torch.Tensor, score: str) -> torch.Tensor:
    values = logits.softmax(1) if score == "probability" else logits
    return values[:, int(t[0])]


# --- receptive fields --------------------------------------------------------------------------


@dataclass(frozen=True)
class Box:
    """Input pixels ``[top, bottom) x [left, right)``; may reach past the image's border."""

    top: int
    left: int
    bottom: int
    right: int

    @property
    def size(self) -> tuple[int, int]:
        return (self.bottom - self.top, self.right - self.left)

    def clip(self, h: int, w: int) -> Box:
        """The part inside an ``h`` x ``w`` image."""
        return Box(max(self.top, 0), max(self.left, 0), min(self.bottom, h), min(self.right, w))

    def crop(self, image: torch.Tensor, fill: float = float("nan")) -> torch.Tensor:
        """``image[..., box]`` of a ``(C, H, W)`` image, ``fill`` where the box leaves it."""
        h, w = image.shape[-2:]
        out = torch.full((*image.shape[:-2], *self.size), fill, dtype=torch.float32)
        c = self.clip(h, w)
        if c.bottom > c.top and c.right > c.left:
            rows = slice(c.top - self.top, c.bottom - self.top)
            cols = slice(c.left - self.left, c.right - self.left)
            out[..., rows, cols] = image[..., c.top : c.bottom, c.left : c.right].float()
        return out


def receptive_box(
    model: Any, input_size: tuple[int, ...], layer: str | None = None, unit=None
) -> Box:
    """The input box that output unit ``(i, j)`` of ``layer`` sees, from the analyzer's row.

    Unit ``(i, j)`` is centred on ``(start + i * jump, start + j * jump)`` and sees
    ``receptive_field`` pixels around it (see :class:`cnnlab.analysis.report.Row`).

    Args:
        input_size: ``(C, H, W)``.
        layer: default: the deepest map whose field fits in half the input (see
            :func:`cnnlab.seeing.layers.default_layer`).
        unit: ``(i, j)`` in the layer's map; default: its centre ``(h // 2, w // 2)``.
    """
    net = model_of(model)
    size = tuple(int(s) for s in input_size)
    name = layer if layer is not None else L.default_layer(net, size, "rf")
    row = layer_row(net, name, size)
    (i, j) = unit_of(row.output_shape, unit, name)
    rf, jump, start = per_axis(row.receptive_field), per_axis(row.jump), per_axis(row.start)
    lo = [start[d] + (i, j)[d] * jump[d] - (rf[d] - 1) / 2 for d in range(2)]
    return Box(
        math.floor(lo[0]), math.floor(lo[1]), math.ceil(lo[0]) + rf[0], math.ceil(lo[1]) + rf[1]
    )


def layer_row(net: nn.Module, name: str, size: tuple[int, ...]) -> Row:
    """The analyzer's row for ``name``: a row name, or a container's last row."""
    report = L.analysis(net, size)
    L.resolve(net, name, size)  # the one-line error for an unknown name
    for r in report.all_rows:
        if r.name == name:
            return r
    inside = [r for r in report.all_rows if r.name.startswith(name + ".")]
    if not inside:
        raise L.unknown_layer(net, name, size)
    return inside[-1]


def per_axis(v: Any) -> tuple[Any, Any]:
    """An analyzer value (one number for a square field, ``[h, w]`` otherwise) as ``(h, w)``."""
    return (v, v) if not isinstance(v, list) else (v[0], v[1])


def unit_of(shape: list[int], unit: Any, name: str) -> tuple[int, int]:
    """``unit`` checked against a ``[C, h, w]`` map (default: its centre); ``(0, 0)`` for a
    vector, whose every unit sees the whole field."""
    if len(shape) != 3:
        return (0, 0)  # a vector: every unit sees the whole field
    h, w = shape[1:]
    i, j = (h // 2, w // 2) if unit is None else (int(unit[0]), int(unit[1]))
    if not (0 <= i < h and 0 <= j < w):
        raise ConfigError(f"unit ({i}, {j}) is outside layer {name!r}'s {h}x{w} map")
    return i, j


def effective_rf(
    model: Any,
    input_size: tuple[int, ...],
    layer: str | None = None,
    unit: tuple[int, int] | None = None,
    *,
    channel: int | None = None,
    inputs: torch.Tensor | None = None,
    samples: int = 8,
    seed: int = 0,
) -> torch.Tensor:
    """The effective receptive field of one output unit: ``|d unit / d input|``.

    Luo et al. (2016) back-propagate a one at the centre unit and average the input gradient's
    magnitude over random inputs; it is exactly zero outside :func:`receptive_box`.

    Args:
        input_size: ``(C, H, W)`` of the input.
        layer: default: as :func:`receptive_box`.
        unit: ``(i, j)`` in the layer's map; default: the centre.
        channel: one channel of the unit; None sums all channels at ``(i, j)``.
        inputs: float images ``(N, C, H, W)`` to take the gradient at; default: ``samples``
            standard-normal images drawn with ``seed``.

    Returns:
        float32 ``(H, W)`` on the CPU: summed over input channels, averaged over images.
    """
    net = model_of(model)
    size = tuple(int(s) for s in input_size)
    name = layer if layer is not None else L.default_layer(net, size, "rf")
    lay = L.resolve(net, name, size)
    if inputs is None:
        g = torch.Generator().manual_seed(seed)
        inputs = torch.randn((samples, *size), generator=g)
    x = as_input(net, inputs)
    with fp32_eval(net) as work:
        lay = L.remap(lay, net, work)
        x = x.detach().requires_grad_(True)
        with L.tap(work, lay, stop=True) as (t, run), torch.enable_grad():
            run(x)
            a = t.result()
        i, j = unit_of(list(a.shape[1:]), unit, name)
        picked = a[:, :, i, j] if a.dim() == 4 else a
        picked = picked[:, channel] if channel is not None else picked.sum(1)
        (grad,) = torch.autograd.grad(picked.sum(), x)
    return grad.abs().sum(1).mean(0).detach().float().cpu()


# --- dataset-level views -----------------------------------------------------------------------


@dataclass
class TopPatches:
    """The input crops that most activate each of some channels (Zeiler & Fergus, Fig. 2).

    Attributes:
        layer: the layer's name.
        channels: int64 ``(M,)``.
        activations: float32 ``(M, k)``, highest first; one unit per image.
        images: int64 ``(M, k)``: index into the images given.
        units: int64 ``(M, k, 2)``: ``(i, j)`` of the unit in the layer's map.
        boxes: ``M`` lists of ``k`` :class:`Box` es, each that unit's receptive field.
        crops: float32 ``(M, k, C, rh, rw)`` cut from the model's input by the boxes,
            NaN where a box leaves the image.
    """

    layer: str
    channels: torch.Tensor
    activations: torch.Tensor
    images: torch.Tensor
    units: torch.Tensor
    boxes: list[list[Box]]
    crops: torch.Tensor


def top_patches(
    model: Any,
    images: Images,
    layer: str | None = None,
    *,
    channels: int | Sequence[int] = 8,
    k: int = 9,
    batch_size: int = FORWARD_BATCH,
) -> TopPatches:
    """For each channel, the ``k`` images whose strongest unit is strongest, and its crop.

    Args:
        layer: default: the deepest map whose units see at most half the input's side.
        channels: how many channels (the ones whose top activations are largest), or which.
        k: crops per channel (Zeiler & Fergus show 9), at most one per image.
    """
    net = model_of(model)
    x = as_input(model, images)
    size = tuple(x.shape[1:])
    name = layer if layer is not None else L.default_layer(net, size, "patches")
    best, where = _strongest_units(net, x, name, size, batch_size)  # (N, C) each
    k = min(k, len(x))
    top = best.topk(k, dim=0)  # (k, C)
    if isinstance(channels, int):
        order = top.values.mean(0).argsort(descending=True)[:channels]
    else:
        order = torch.as_tensor(list(channels), dtype=torch.int64)
        if order.numel() and (order.min() < 0 or order.max() >= best.shape[1]):
            raise ConfigError(f"layer {name!r} has channels 0-{best.shape[1] - 1}")
    idx = top.indices[:, order].T  # (M, k)
    flat = where.gather(0, top.indices)[:, order].T  # (M, k) flat position in the map
    w_map = layer_row(net, name, size).output_shape[-1]
    units = torch.stack([flat // w_map, flat % w_map], dim=-1)
    boxes = [[receptive_box(net, size, name, (int(u[0]), int(u[1]))) for u in row] for row in units]
    pixels = x.cpu()
    crops = torch.stack(
        [
            torch.stack([b.crop(pixels[int(n)]) for b, n in zip(bs, ns, strict=True)])
            for bs, ns in zip(boxes, idx, strict=True)
        ]
    )  # (M, k, C, rh, rw)
    return TopPatches(name, order, top.values[:, order].T.contiguous(), idx, units, boxes, crops)


def _strongest_units(net: nn.Module, x: torch.Tensor, name: str, size, batch_size: int):
    """Per image and channel, the largest activation in the map and its flat position."""
    lay = L.resolve(net, name, size)
    values, places = [], []
    with fp32_eval(net) as work, torch.no_grad():
        lay = L.remap(lay, net, work)
        for _, chunk in _chunks(x, batch_size):
            with L.tap(work, lay, stop=True) as (t, run):
                run(chunk)
                a = t.result()
            _check_spatial(a, name, "top patches")
            v, p = a.flatten(2).max(2)  # (n, C)
            values.append(v.float().cpu())
            places.append(p.cpu())
    return torch.cat(values), torch.cat(places)


@dataclass
class Mistakes:
    """The most confident mistakes and the most confused pairs of classes.

    Attributes:
        index: int64 ``(M,)``: which images (into those given), most confident first.
        true: int64 ``(M,)``; predicted: int64 ``(M,)``.
        confidence: float32 ``(M,)``: softmax probability of the wrong prediction.
        confusion: int64 ``(K, K)``: rows true, columns predicted.
        pairs: ``(true, predicted, count)`` off the diagonal, most frequent first.
        accuracy: the fraction right.
    """

    index: torch.Tensor
    true: torch.Tensor
    predicted: torch.Tensor
    confidence: torch.Tensor
    confusion: torch.Tensor
    pairs: list[tuple[int, int, int]]
    accuracy: float


def mistakes(
    model: Any, images: Images, labels: torch.Tensor, *, k: int = 16, pairs: int = 8
) -> Mistakes:
    """The ``k`` wrong predictions made with the highest probability, and the confusions.

    A ``Predictor`` classifies as ``cnnlab eval`` does (flip averaging when the run used it).
    """
    labels = torch.as_tensor(labels, dtype=torch.int64).cpu()
    logits = _all_logits(model, images)
    if len(logits) != len(labels):
        raise DataError(f"{len(logits)} images but {len(labels)} labels")
    probs = logits.softmax(1)
    conf, pred = probs.max(1)
    wrong = (pred != labels).nonzero().flatten()
    order = wrong[conf[wrong].argsort(descending=True)][:k]
    num = logits.shape[1]
    confusion = torch.bincount(labels * num + pred, minlength=num * num).view(num, num)
    off = confusion.clone().fill_diagonal_(0)
    top = off.flatten().topk(min(pairs, num * num))
    found = [
        (int(i) // num, int(i) % num, int(c)) for c, i in zip(top.values, top.indices, strict=True)
    ]
    return Mistakes(
        order,
        labels[order],
        pred[order],
        conf[order],
        confusion,
        [p for p in found if p[2] > 0],
        float((pred == labels).float().mean()) if len(labels) else 0.0,
    )


def _all_logits(model: Any, images: Images) -> torch.Tensor:
    if (
        isinstance(images, torch.Tensor)
        and images.dtype == torch.uint8
        and hasattr(model, "logits")
    ):
        return model.logits(images).float().cpu()  # the Predictor's own path (TTA as evaluated)
    net = model_of(model)
    x = as_input(model, images)
    with fp32_eval(net) as work, torch.no_grad():
        return batched_logits(work, x).cpu()


def embeddings(
    model: Any,
    images: Images,
    layer: str | None = None,
    *,
    method: str = "pca",
    seed: int = 0,
    batch_size: int = FORWARD_BATCH,
) -> torch.Tensor:
    """The penultimate features of each image, projected to 2-D.

    Args:
        layer: default: the last row before the logits (see
            :func:`cnnlab.seeing.layers.default_layer`); maps are flattened.
        method: ``pca`` (the two leading principal components, signs fixed so the largest
            loading is positive) or ``tsne`` (scikit-learn's t-SNE, PCA-initialised, ``seed``).

    Returns:
        float32 ``(N, 2)`` on the CPU.
    """
    if method not in ("pca", "tsne"):
        raise ConfigError(f"embedding method must be 'pca' or 'tsne', got {method!r}")
    net = model_of(model)
    x = as_input(model, images)
    name = layer if layer is not None else L.default_layer(net, tuple(x.shape[1:]), "embeddings")
    feats = feature_maps(net, x, name, batch_size=batch_size).flatten(1).double()
    return project(feats, method, seed)


def project(features: torch.Tensor, method: str = "pca", seed: int = 0) -> torch.Tensor:
    """``(N, D)`` features -> ``(N, 2)`` by PCA or t-SNE (see :func:`embeddings`)."""
    if len(features) < 3:
        raise DataError(f"an embedding needs at least 3 images, got {len(features)}")
    f = features.double()
    if method == "tsne":
        try:
            from sklearn.manifold import TSNE
        except ImportError:
            raise ConfigError(
                "t-SNE needs scikit-learn: `pip install scikit-learn` (or cnnlab[seeing]), "
                "or use the PCA embedding"
            ) from None
        perplexity = min(30.0, (len(f) - 1) / 3)
        tsne = TSNE(2, perplexity=perplexity, init="pca", random_state=seed)
        return torch.from_numpy(tsne.fit_transform(f.numpy())).float()
    centred = f - f.mean(0)
    _, _, vh = torch.linalg.svd(centred, full_matrices=False)
    axes = vh[:2]  # (2, D)
    signs = torch.sign(axes.gather(1, axes.abs().argmax(1, keepdim=True)))
    axes = axes * torch.where(signs == 0, 1.0, signs)
    out = centred @ axes.T
    if out.shape[1] < 2:
        out = torch.cat([out, torch.zeros(len(out), 2 - out.shape[1], dtype=out.dtype)], 1)
    return out.float()
