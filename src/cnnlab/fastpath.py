"""The fastest way to run a trained model that still gives float32's answers.

A float32 forward pass in the default (NCHW) memory format is the reference. Other ways to run
the same weights can be faster on a CPU's matrix units: channels-last activations (oneDNN's
blocked convolutions) and bf16 autocast. :func:`choose` tries each on a slice of the first batch
and keeps the fastest one whose logits **agree with the reference within the export tolerance**
(:data:`cnnlab.export.RTOL`, :data:`cnnlab.export.ATOL`: every element within
``atol + rtol * |fp32|``, the rule an ONNX export must pass). ``cnnlab eval`` and
``cnnlab predict`` go through :class:`cnnlab.predictor.Predictor`, which calls it once.

What the rule picks, measured by ``benchmarks/throughput.py --inference-only``
(docs/performance.md, AMD EPYC): channels-last float32 agrees to about 1e-7 and gave 1.10-1.68x
the images/s of an eval; it has also come out slower overall (ResNet-18 at 32x32, the
``infer_*`` columns of benchmarks/results/throughput_families.json), so
the choice is measured, not tabled. bf16 autocast moves logits by 9e-5 to 2e-2, outside the
tolerance, so for a trained model it is tried but not taken (it would change reported numbers,
not just speed); only logits tiny enough for the absolute tolerance (an untrained GoogLeNet's,
about 1e-12) let it through.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from contextlib import nullcontext
from dataclasses import dataclass, field
from typing import Any

import torch
from torch import nn

from cnnlab.export import ATOL, RTOL
from cnnlab.run.metrics import main_logits

PROBE_IMAGES = 64  # images of the first batch the paths are timed on
TIMED_RUNS = 1  # per path, after one untimed run (which also gives the logits compared)
# A candidate replaces the reference only when at least this much faster on the probe: a probe
# of a few runs on a shared machine is noisy, and a change of path that does not clearly pay
# was measured to lose as often as it won (benchmarks/throughput.py, ResNet-18 at 32x32).
MIN_GAIN = 1.15


@dataclass(frozen=True)
class Path:
    """One way to run a model: float32 or bf16 autocast, NCHW or channels-last."""

    name: str
    channels_last: bool = False
    bf16: bool = False

    def apply(self, model: nn.Module) -> Callable[[torch.Tensor], Any]:
        """Put ``model``'s weights in this path's memory format; return ``x -> model output``.

        The model is changed in place (its parameters' strides, never their values).
        """
        memory = torch.channels_last if self.channels_last else torch.contiguous_format
        model.to(memory_format=memory)

        def run(x: torch.Tensor) -> Any:
            context = torch.autocast(x.device.type, torch.bfloat16) if self.bf16 else nullcontext()
            with context:
                out = model(x.contiguous(memory_format=memory))
            if not self.bf16:
                return out
            if isinstance(out, (tuple, list)):
                return type(out)(o.float() if isinstance(o, torch.Tensor) else o for o in out)
            return out.float()

        return run


REFERENCE = Path("fp32")
CANDIDATES = (
    Path("fp32 channels-last", channels_last=True),
    Path("bf16 channels-last", True, True),
)


@dataclass(frozen=True)
class Choice:
    """What :func:`choose` measured and picked.

    Attributes:
        path: the fastest path that agreed (the reference unless one was at least
            :data:`MIN_GAIN` times faster).
        seconds: best timed seconds per path name, for the paths that agreed.
        max_abs_diff: largest ``|logit - fp32 logit|`` per candidate name.
        agreed: candidate name -> whether it was within the tolerance.
    """

    path: Path
    seconds: dict[str, float] = field(default_factory=dict)
    max_abs_diff: dict[str, float] = field(default_factory=dict)
    agreed: dict[str, bool] = field(default_factory=dict)


def agrees(got: torch.Tensor, want: torch.Tensor, rtol: float = RTOL, atol: float = ATOL) -> bool:
    """Every element of ``got`` within ``atol + rtol * |want|`` (check_onnx's rule)."""
    got, want = got.double(), want.double()
    return got.shape == want.shape and bool(((got - want).abs() <= atol + rtol * want.abs()).all())


def _best_seconds(run: Callable[[torch.Tensor], Any], x: torch.Tensor) -> float:
    best = float("inf")
    for _ in range(TIMED_RUNS):
        t = time.perf_counter()
        run(x)
        best = min(best, time.perf_counter() - t)
    return best


@torch.inference_mode()
def choose(
    model: nn.Module, x: torch.Tensor, candidates: tuple[Path, ...] = CANDIDATES
) -> tuple[Choice, Callable[[torch.Tensor], Any]]:
    """The fastest path for ``model`` on input like ``x`` that agrees with float32 NCHW.

    Args:
        model: the network, already in eval mode; left in the chosen path's memory format.
        x: a prepared float batch ``(N, C, H, W)``; the first :data:`PROBE_IMAGES` are used.
        candidates: the paths tried against :data:`REFERENCE`.

    Returns:
        The :class:`Choice` and the chosen path's runner (``x -> model output``).
    """
    x = x[:PROBE_IMAGES]
    reference = REFERENCE.apply(model)
    want = main_logits(reference(x)).float()
    seconds = {REFERENCE.name: _best_seconds(reference, x)}
    diffs, agreed = {}, {}
    for path in candidates:
        run = path.apply(model)
        got = main_logits(run(x)).float()  # also the warm-up: first calls create kernels
        diffs[path.name] = float((got - want).abs().max())
        agreed[path.name] = agrees(got, want)
        if agreed[path.name]:
            seconds[path.name] = _best_seconds(run, x)
    fastest = min(seconds, key=seconds.__getitem__)
    if seconds[fastest] * MIN_GAIN > seconds[REFERENCE.name]:
        fastest = REFERENCE.name
    path = next(p for p in (REFERENCE, *candidates) if p.name == fastest)
    return Choice(path, seconds, diffs, agreed), path.apply(model)
