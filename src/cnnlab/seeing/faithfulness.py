"""How far to trust an explanation: deletion, insertion and class sensitivity, measured per map.

A saliency, Grad-CAM or occlusion map is a claim: "these pixels are the evidence for the class".
:func:`explain` computes a map and tests that claim on the model itself, so every picture
carries its own measurement (a :class:`Faithfulness` per image):

* **Deletion** (Petsiuk, Das & Saenko 2018, "RISE", Sec. 4.1): hide the pixels in the map's
  order, most important first, in ``steps`` equal chunks, and record the class's softmax
  probability after each chunk; the score is the area under that curve over the fraction hidden
  (trapezoid rule, so in [0, 1]). A faithful map makes the probability fall fast: **lower is
  better**.
* **Insertion**: start from the fully hidden image and reveal the pixels in the map's order; the
  area under the probability curve, **higher is better**.
* Both are compared with **the same curve for a random order** of the pixels (``orders`` orders
  drawn from ``seed``, averaged): a map is only useful where it beats random. Ties in a map
  (Grad-CAM's flat regions, an all-zero map) are broken by a seeded random permutation, so a
  constant map *is* a random order and scores as random in expectation.
* **Class sensitivity**: ``1 - rho``, where ``rho`` is Spearman's rank correlation (Pearson's
  correlation of the pixels' average ranks, ties sharing their mean rank) between the map for
  the explained class and the map for the runner-up (the most probable other class). Deletion
  and insertion use only a map's order of the pixels, and so does this. 0: the two maps rank the
  pixels identically (the map says nothing about *which* class); 1: unrelated; 2: reversed.
  ``rho`` is 1 when both maps are constant and 0 when exactly one is.

Hidden pixels take their value in a blurred copy of the image (``baseline="blur"``, the
default: a Gaussian of standard deviation a seventh of the image's shorter side, reflected at
the border), RISE's start for insertion, used here for both curves. The other candidate was
the training mean (``baseline=0.0`` in the normalised input, the grey of occlusion's square).
On Fashion-MNIST's black backgrounds the grey puts a new blob wherever it goes, so hiding
*empty background* lowers the probability and a map that points beside the garment looks
faithful (a 2-epoch LeNet-5's Grad-CAM at ``features.relu3`` beat random deletion by 0.00 with
the mean and lost to it by 0.03 with the blur, on 32 test images); blurred background is still
background, so only hiding the object costs the class. Any baseline puts images off the
training distribution; the random order suffers the same, which is why each score is read
against it and not on its own.

Cost: per image, ``2 * (1 + orders) * (steps + 1)`` forward passes (136 with the defaults),
batched ``FORWARD_BATCH`` at a time, plus the runner-up's map. ``benchmarks/faithfulness.py``
records the time measured.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from typing import Any

import torch
from torch import nn

from cnnlab.errors import ConfigError
from cnnlab.seeing import methods as M

STEPS = 16  # chunks of pixels hidden or revealed: 17 points per curve
ORDERS = 3  # random orders averaged for the reference curves
# A map is "better than random" when its deletion area is at least this much below the random
# order's and its insertion area at least this much above (areas are in probability units, so
# 0.02 is two percentage points of probability on average along the curve). It is absolute on
# purpose: a network whose probabilities hardly move when pixels go (an untrained one, near
# 1/K everywhere) has no evidence to find, and a relative margin would call noise faithful.
MARGIN = 0.02
# Below this class sensitivity (a rank correlation above 0.9 with the runner-up's map) a map is
# "not class-specific": it would look the same whichever class was asked for.
MIN_SENSITIVITY = 0.1


@dataclass(frozen=True)
class Faithfulness:
    """The measurement of one map (or the mean over ``images`` maps; see :func:`mean`).

    Attributes:
        deletion: area under the class probability as the map's pixels are hidden (lower is
            better), in [0, 1].
        deletion_random: the same for random orders (mean of ``ORDERS``).
        insertion: area under the class probability as the map's pixels are revealed from the
            blurred image (higher is better), in [0, 1].
        insertion_random: the same for random orders.
        class_sensitivity: ``1 - Spearman rho`` of this map and the runner-up class's map, in
            [0, 2]; 0 when they rank the pixels identically (see the module docstring).
        images: how many maps the numbers are the mean of.
    """

    deletion: float
    deletion_random: float
    insertion: float
    insertion_random: float
    class_sensitivity: float
    images: int = 1

    @property
    def better_than_random(self) -> bool:
        """Both curves beat the random order by :data:`MARGIN`."""
        return (
            self.deletion_random - self.deletion >= MARGIN
            and self.insertion - self.insertion_random >= MARGIN
        )

    @property
    def class_specific(self) -> bool:
        return self.class_sensitivity >= MIN_SENSITIVITY

    def caveats(self) -> list[str]:
        """What a reader should not believe about the map, in words (empty: nothing)."""
        out = []
        if not self.better_than_random:
            out.append(
                f"no better than random: hiding its pixels first lowers the probability "
                f"(deletion {self.deletion:.2f} vs random {self.deletion_random:.2f}) and "
                f"revealing them raises it (insertion {self.insertion:.2f} vs random "
                f"{self.insertion_random:.2f}) by less than {MARGIN} over random order"
            )
        if not self.class_specific:
            out.append(
                f"not class-specific: the runner-up class's map ranks the pixels almost the "
                f"same way (class sensitivity {self.class_sensitivity:.2f} < {MIN_SENSITIVITY})"
            )
        return out

    @property
    def verdict(self) -> str:
        """``faithful``, or the caveats' short names joined by ``; ``."""
        short = []
        if not self.better_than_random:
            short.append("no better than random")
        if not self.class_specific:
            short.append("not class-specific")
        return "; ".join(short) or "faithful"

    def caption(self) -> str:
        """Two short lines for a figure: the scores, then the verdict in words."""
        return (
            f"deletion {self.deletion:.2f} (random {self.deletion_random:.2f}), insertion "
            f"{self.insertion:.2f} ({self.insertion_random:.2f})\n"
            f"class sensitivity {self.class_sensitivity:.2f}: "
            + ("beats random, class-specific" if self.verdict == "faithful" else self.verdict)
        )

    def to_dict(self) -> dict[str, Any]:
        return {**asdict(self), "verdict": self.verdict, "caveats": self.caveats()}


def mean(scores: Sequence[Faithfulness]) -> Faithfulness:
    """The mean of several images' measurements (``images`` counts them)."""
    if not scores:
        raise ConfigError("no measurements to average")
    n = sum(s.images for s in scores)

    def avg(name: str) -> float:
        return sum(getattr(s, name) * s.images for s in scores) / n

    return Faithfulness(
        avg("deletion"),
        avg("deletion_random"),
        avg("insertion"),
        avg("insertion_random"),
        avg("class_sensitivity"),
        n,
    )


# --- the maps, at the input's resolution -------------------------------------------------------


def _gradcam(model, x, target, *, layer=None, **_):
    return M.gradcam(model, x, layer, target, size=tuple(x.shape[-2:]))


def _saliency(model, x, target, **_):
    return M.saliency(model, x, target).abs().amax(1)  # Simonyan et al.: max_c |gradient|


def _smoothgrad(model, x, target, *, samples=25, noise=0.15, **_):
    return M.smoothgrad(model, x, target, samples=samples, noise=noise).abs().amax(1)


def _occlusion(model, x, target, *, window=None, stride=None, score="probability", **_):
    return M.occlusion(model, x, window, stride, target, score=score)


# The explanations that can be measured: name -> ``(model, x, target, **options) -> (N, H, W)``,
# one importance per input pixel, larger meaning more evidence for the class.
MAPS: dict[str, Callable[..., torch.Tensor]] = {
    "gradcam": _gradcam,
    "saliency": _saliency,
    "smoothgrad": _smoothgrad,
    "occlusion": _occlusion,
}


@dataclass
class Explanation:
    """An explanation of some images and its measurement.

    Attributes:
        method: a key of :data:`MAPS`.
        layer: Grad-CAM's layer (the default one when none was asked for), else None.
        maps: float32 ``(N, H, W)`` on the CPU, at the input's resolution (Grad-CAM placed
            with :func:`cnnlab.seeing.methods.upsample`), not normalised.
        targets: int64 ``(N,)``, the class explained per image.
        runner_up: int64 ``(N,)``, the most probable other class, whose map the class
            sensitivity compares with.
        scores: one :class:`Faithfulness` per image (empty when not measured).
        seconds: wall time of the measurement (not of the map).
        baseline: what hidden pixels showed (see the module docstring).
    """

    method: str
    layer: str | None
    maps: torch.Tensor
    targets: torch.Tensor
    runner_up: torch.Tensor
    scores: list[Faithfulness] = field(default_factory=list)
    seconds: float = 0.0
    baseline: str | float = "blur"

    @property
    def summary(self) -> Faithfulness:
        """The mean over the images."""
        return mean(self.scores)

    def to_dict(self, classes: Sequence[str] | None = None) -> dict[str, Any]:
        """JSON-ready: the method, layer, per-image scores with class names, and the mean."""

        def name(c: torch.Tensor) -> str | int:
            return classes[int(c)] if classes is not None else int(c)

        return {
            "method": self.method,
            "layer": self.layer,
            "steps": STEPS,
            "random_orders": ORDERS,
            "baseline": self.baseline,
            "images": [
                {"class": name(t), "runner_up": name(r), **s.to_dict()}
                for t, r, s in zip(self.targets, self.runner_up, self.scores, strict=True)
            ],
            "mean": self.summary.to_dict() if self.scores else None,
            "seconds": round(self.seconds, 3),
        }


def explain(
    model: Any,
    images: M.Images,
    method: str = "gradcam",
    target: M.Target = None,
    *,
    layer: str | None = None,
    measure: bool = True,
    steps: int | None = None,
    orders: int | None = None,
    seed: int = 0,
    baseline: str | float = "blur",
    random: tuple[torch.Tensor, torch.Tensor] | None = None,
    **options: Any,
) -> Explanation:
    """A map of each image by ``method`` and, with ``measure``, its :class:`Faithfulness`.

    Args:
        model: an ``nn.Module`` or a ``Predictor`` (see :mod:`cnnlab.seeing.methods`).
        method: ``gradcam``, ``saliency``, ``smoothgrad`` or ``occlusion``.
        target: a class for all images, one per image, or None for each image's prediction.
        layer: Grad-CAM's layer; default: :func:`cnnlab.seeing.layers.default_layer`'s.
        steps, orders, seed, baseline: see the module docstring (``"blur"`` or a value).
        random: the random orders' ``(deletion, insertion)`` areas ``(N,)`` from
            :func:`random_areas` for the same images, target, steps, orders, seed and baseline,
            to share between methods; computed when None.
        options: the method's own (``samples``, ``noise``; ``window``, ``stride``, ``score``).
    """
    # Read at call time, so that a test can make every figure's measurement cheap.
    steps = STEPS if steps is None else steps
    orders = ORDERS if orders is None else orders
    if method not in MAPS:
        raise ConfigError(f"unknown explanation {method!r}: pick one of {', '.join(MAPS)}")
    if steps < 1 or orders < 1:
        raise ConfigError(f"steps and orders must be at least 1 (got {steps}, {orders})")
    import time

    # Tensors made here must be usable by autograd even when the caller is under
    # torch.inference_mode() (the report page is): targets index a gradient's score.
    with torch.inference_mode(False):
        net = M.model_of(model)
        x = M.as_input(model, images)
        if method == "gradcam" and layer is None:
            from cnnlab.seeing import layers as L

            layer = L.default_layer(net, tuple(x.shape[1:]), "gradcam")
        with M.fp32_eval(net) as work, torch.no_grad():
            logits = M.batched_logits(work, x).cpu()
        t = M.targets(logits, target)
        runner = _runner_up(logits, t)
        maps = MAPS[method](model, x, t, layer=layer, **options).float().cpu()
        if not measure:
            return Explanation(method, layer, maps, t, runner)
        start = time.perf_counter()
        other = MAPS[method](model, x, runner, layer=layer, **options).float().cpu()
        deletion, insertion = areas(net, x, maps, t, steps=steps, seed=seed, baseline=baseline)
        if random is None:
            random = random_areas(
                net, x, t, steps=steps, orders=orders, seed=seed, baseline=baseline
            )
        sens = class_sensitivity(maps, other)
        scores = [
            Faithfulness(*(float(v[i]) for v in (deletion, random[0], insertion, random[1], sens)))
            for i in range(len(x))
        ]
        seconds = time.perf_counter() - start
        return Explanation(method, layer, maps, t, runner, scores, seconds, baseline)


def _runner_up(logits: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
    """The most probable class other than ``t``, per image."""
    others = logits.clone()
    others[torch.arange(len(t)), t.cpu()] = -torch.inf
    return others.argmax(1)


# --- the curves --------------------------------------------------------------------------------


def order_of(maps: torch.Tensor, seed: int = 0) -> torch.Tensor:
    """Each map's pixels, most important first, ties in a seeded random order.

    Shape:
        maps ``(N, H, W)`` -> int64 ``(N, H*W)`` flat pixel indices.
    """
    flat = maps.flatten(1).float()
    g = torch.Generator().manual_seed(seed)
    shuffle = torch.stack([torch.randperm(flat.shape[1], generator=g) for _ in range(len(flat))])
    # A stable sort of the shuffled values keeps the shuffle among equal values.
    ranked = (-flat.gather(1, shuffle)).sort(dim=1, stable=True).indices
    return shuffle.gather(1, ranked)


def random_orders(n: int, pixels: int, orders: int, seed: int = 0) -> torch.Tensor:
    """``orders`` random orders per image, int64 ``(orders, n, pixels)``; drawn from seeds
    ``seed + 1 ...`` so that none is the tie-breaking shuffle of :func:`order_of`."""
    out = []
    for o in range(orders):
        g = torch.Generator().manual_seed(seed + 1 + o)
        out.append(torch.stack([torch.randperm(pixels, generator=g) for _ in range(n)]))
    return torch.stack(out)


def curves(
    model: Any, x: torch.Tensor, order: torch.Tensor, t: torch.Tensor, *, steps: int = STEPS,
    baseline: str | float = "blur",
) -> tuple[torch.Tensor, torch.Tensor]:  # fmt: skip
    """The class probability as pixels are hidden (deletion) and revealed (insertion) in
    ``order``, at ``k / steps`` of them for ``k = 0 .. steps``.

    Shape:
        x ``(N, C, H, W)``, order int64 ``(N, H*W)``, t ``(N,)`` -> two float32
        ``(N, steps + 1)`` on the CPU.
    """
    net = M.model_of(model)
    n, _, h, w = x.shape
    pixels = h * w
    counts = [round(k * pixels / steps) for k in range(steps + 1)]
    rank = torch.empty_like(order)
    rank.scatter_(1, order, torch.arange(pixels).expand(n, -1).contiguous())  # pixel -> place
    # (N, steps+1, H, W): True where the pixel is among the first counts[k] of the order.
    first = rank.view(n, 1, h, w) < torch.tensor(counts).view(1, -1, 1, 1)
    first = first.to(x.device)
    hidden = hidden_image(x, baseline)
    per_pass = max(1, M.FORWARD_BATCH // (steps + 1))  # images whose curves fit one pass
    out = []
    with M.fp32_eval(net) as work, torch.no_grad():
        for hide_first in (True, False):  # deletion hides the first pixels, insertion the rest
            keep = ~first if hide_first else first  # (N, S, H, W)
            probs = []
            for s, chunk in M._chunks(x, per_pass):
                batch = torch.where(keep[s, :, None], chunk[:, None], hidden[s, None])
                p = work(batch.flatten(0, 1)).float().softmax(1).view(len(chunk), steps + 1, -1)
                probs.append(p.gather(2, t[s].to(p.device).view(-1, 1, 1).expand(-1, steps + 1, 1)))
            out.append(torch.cat(probs)[..., 0].cpu())
    return out[0], out[1]


def hidden_image(x: torch.Tensor, baseline: str | float = "blur") -> torch.Tensor:
    """What a hidden pixel shows: ``x`` blurred (see the module docstring), or a constant.

    Shape:
        ``(N, C, H, W)`` -> the same.
    """
    if not isinstance(baseline, str):
        return torch.full_like(x, float(baseline))
    if baseline != "blur":
        raise ConfigError(f"baseline must be 'blur' or a number, got {baseline!r}")
    h, w = x.shape[-2:]
    sigma = min(h, w) / 7
    radius = min(math.ceil(3 * sigma), h - 1, w - 1)  # reflection needs radius < side
    taps = torch.arange(-radius, radius + 1, dtype=torch.float32, device=x.device)
    kernel = torch.exp(-(taps**2) / (2 * sigma**2))
    kernel = kernel / kernel.sum()
    c = x.shape[1]
    out = x.float()
    for shape, pad in (((-1, 1), (0, 0, radius, radius)), ((1, -1), (radius, radius, 0, 0))):
        k = kernel.view(1, 1, *shape).expand(c, 1, *kernel.view(*shape).shape)
        out = nn.functional.conv2d(nn.functional.pad(out, pad, mode="reflect"), k, groups=c)
    return out


def area(curve: torch.Tensor) -> torch.Tensor:
    """Area under ``(N, steps + 1)`` curves over [0, 1] by the trapezoid rule: ``(N,)``."""
    steps = curve.shape[1] - 1
    return (curve.sum(1) - (curve[:, 0] + curve[:, -1]) / 2) / steps


def areas(
    model: Any, x: torch.Tensor, maps: torch.Tensor, t: torch.Tensor, *, steps: int = STEPS,
    seed: int = 0, baseline: str | float = "blur",
) -> tuple[torch.Tensor, torch.Tensor]:  # fmt: skip
    """Deletion and insertion areas ``(N,)`` of the maps' orders (see :func:`curves`)."""
    _check_maps(maps, x)
    d, i = curves(model, x, order_of(maps, seed), t, steps=steps, baseline=baseline)
    return area(d), area(i)


def random_areas(
    model: Any, x: torch.Tensor, t: torch.Tensor, *, steps: int = STEPS, orders: int = ORDERS,
    seed: int = 0, baseline: str | float = "blur",
) -> tuple[torch.Tensor, torch.Tensor]:  # fmt: skip
    """Deletion and insertion areas ``(N,)`` of random orders, averaged over ``orders``."""
    n, _, h, w = x.shape
    d, i = torch.zeros(n), torch.zeros(n)
    for order in random_orders(n, h * w, orders, seed):
        dc, ic = curves(model, x, order, t, steps=steps, baseline=baseline)
        d += area(dc) / orders
        i += area(ic) / orders
    return d, i


def _check_maps(maps: torch.Tensor, x: torch.Tensor) -> None:
    if maps.dim() != 3 or tuple(maps.shape) != (len(x), *x.shape[-2:]):
        raise ConfigError(
            f"maps {tuple(maps.shape)} do not match the images {tuple(x.shape)}: give one "
            "(H, W) map per image at the input's resolution"
        )


# --- class sensitivity ---------------------------------------------------------------------------


def ranks(values: torch.Tensor) -> torch.Tensor:
    """Average ranks (0-based) along the last axis, ties sharing their mean rank.

    Shape:
        ``(N, P)`` -> float64 ``(N, P)``.
    """
    v = values.double()
    out = torch.empty_like(v)
    for i, row in enumerate(v):
        sorted_v, idx = row.sort()
        _, inverse, counts = torch.unique_consecutive(
            sorted_v, return_inverse=True, return_counts=True
        )
        starts = counts.cumsum(0) - counts
        mean_rank = (starts + (counts - 1) / 2).double()
        out[i, idx] = mean_rank[inverse]
    return out


def class_sensitivity(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """``1 - Spearman rho`` of each pair of maps (see the module docstring for constant maps).

    Shape:
        a, b ``(N, H, W)`` (or ``(N, P)``) -> float32 ``(N,)`` in [0, 2].
    """
    ra, rb = ranks(a.flatten(1)), ranks(b.flatten(1))
    ra, rb = ra - ra.mean(1, keepdim=True), rb - rb.mean(1, keepdim=True)
    na, nb = ra.norm(dim=1), rb.norm(dim=1)
    flat_a, flat_b = na == 0, nb == 0
    rho = (ra * rb).sum(1) / (na * nb).clamp_min(1e-300)
    rho = torch.where(flat_a & flat_b, 1.0, torch.where(flat_a | flat_b, 0.0, rho))
    return (1 - rho.clamp(-1, 1)).float()
