"""Classification metrics: loss, top-1, top-5, per-class accuracy and the confusion matrix.

Evaluation accumulates exact integer counts (a confusion matrix) plus a float64 loss sum, so the
tallies of several processes (DDP ranks) or batches add up to the same numbers as one pass over
all the data. Top-1 accuracy is the trace of the confusion matrix over its total.
"""

from __future__ import annotations

import contextlib
import math
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from typing import Any

import torch
from torch import nn
from torch.nn import functional as F

from cnnlab import table
from cnnlab.formats import percent

TOP_K = 5  # the ImageNet convention the lectures' comparison tables use (top-5 error)


@dataclass
class Tally:
    """Running sums of one evaluation.

    Attributes:
        confusion: ``(K, K)`` int64, ``confusion[true, predicted]``.
        sums: float64 ``[loss_sum, topk_correct]``.
    """

    confusion: torch.Tensor
    sums: torch.Tensor

    @classmethod
    def zeros(cls, num_classes: int) -> Tally:
        return cls(
            torch.zeros(num_classes, num_classes, dtype=torch.int64),
            torch.zeros(2, dtype=torch.float64),
        )

    def add(self, logits: torch.Tensor, labels: torch.Tensor) -> None:
        """Count one batch. Shape: logits ``(N, K)``, labels ``(N,)``."""
        logits, labels = logits.detach().float().cpu(), labels.cpu()
        k = logits.shape[1]
        loss = F.cross_entropy(logits, labels, reduction="sum")
        top = logits.topk(min(TOP_K, k), dim=1).indices  # (N, min(5, K))
        self.sums += torch.tensor(
            [loss.item(), (top == labels[:, None]).any(dim=1).sum().item()], dtype=torch.float64
        )
        self.confusion += torch.bincount(labels * k + top[:, 0], minlength=k * k).view(k, k)

    def result(self) -> EvalResult:
        n = int(self.confusion.sum())
        per_class_total = self.confusion.sum(dim=1)
        per_class = torch.where(
            per_class_total > 0,
            self.confusion.diagonal().double() / per_class_total.clamp(min=1),
            torch.full_like(per_class_total, float("nan"), dtype=torch.float64),
        )
        return EvalResult(
            count=n,
            loss=float(self.sums[0]) / max(n, 1),
            top1=float(self.confusion.diagonal().sum()) / max(n, 1),
            top5=float(self.sums[1]) / max(n, 1),
            per_class=[float(v) for v in per_class],
            confusion=self.confusion.tolist(),
        )


@dataclass
class EvalResult:
    """Metrics over a dataset; accuracies are fractions in [0, 1], loss is mean cross-entropy."""

    count: int
    loss: float
    top1: float
    top5: float
    per_class: list[float]  # accuracy of each true class (NaN for a class with no samples)
    confusion: list[list[int]]  # [true][predicted] counts

    def to_dict(self, classes: list[str] | tuple[str, ...] | None = None) -> dict[str, Any]:
        """The JSON form ``cnnlab eval --format json`` prints: top1, top5, loss, per_class..."""
        names = list(classes) if classes else [str(i) for i in range(len(self.per_class))]
        return {
            "count": self.count,
            "top1": self.top1,
            "top5": self.top5,
            "loss": self.loss,
            "per_class": {
                n: (None if v != v else v) for n, v in zip(names, self.per_class, strict=True)
            },
            "confusion": self.confusion,
        }

    def to_markdown(self, classes: Sequence[str] | None = None) -> str:
        """Headline numbers, per-class precision/recall/F1 and the confusion matrix."""
        names = self._names(classes)
        confusion = [[n, *map(str, row)] for n, row in zip(names, self.confusion, strict=True)]
        lines = [
            f"**top-1 {percent(self.top1)}**, top-{min(TOP_K, len(names))} "
            f"{percent(self.top5)}, loss {self.loss:.4f} (mean cross-entropy) on "
            f"{self.count:,} images",
            "",
            *table.markdown(SCORE_HEADER, self._score_rows(names), range(1, 5)),
            "",
            "confusion matrix (rows: true class, columns: predicted):",
            "",
            *table.markdown(["true \\ predicted", *names], confusion, range(1, len(names) + 1)),
        ]
        return "\n".join(lines)

    def to_html(self, classes: Sequence[str] | None = None) -> str:
        """The same as :meth:`to_markdown`, as an HTML fragment."""
        names = self._names(classes)
        confusion = [
            [n, *(f"{v:,}" for v in row)] for n, row in zip(names, self.confusion, strict=True)
        ]
        headline = (
            f"<p><strong>top-1 {percent(self.top1)}</strong>, top-{min(TOP_K, len(names))} "
            f"{percent(self.top5)}, loss {self.loss:.4f} (mean cross-entropy) on "
            f"{self.count:,} images</p>"
        )
        scores = table.html(SCORE_HEADER, self._score_rows(names), range(1, 5))
        matrix = table.html(
            ["true \\ predicted", *names],
            confusion,
            range(1, len(names) + 1),
            caption="confusion matrix: rows are true classes, columns predicted",
        )
        return f'<div class="cnnlab-eval">\n{headline}\n{scores}\n{matrix}\n</div>\n'

    def _names(self, classes: Sequence[str] | None) -> list[str]:
        return list(classes) if classes else [str(i) for i in range(len(self.per_class))]

    def _score_rows(self, names: Sequence[str]) -> list[list[str]]:
        return [
            [s.name, f"{s.support:,}", percent(s.precision), percent(s.recall), percent(s.f1)]
            for s in class_scores(self.confusion, names)
        ]

    def _repr_html_(self) -> str:
        """Headline numbers, per-class scores and the confusion matrix in a Jupyter notebook."""
        return self.to_html()

    def _repr_markdown_(self) -> str:
        return self.to_markdown()


SCORE_HEADER = ("class", "images", "precision", "recall (accuracy)", "F1")


@dataclass(frozen=True)
class ClassScore:
    """How one class fared on the test set.

    Attributes:
        name: class name.
        precision: of the images predicted as this class, the share that are (NaN: none predicted).
        recall: of the images of this class, the share found (the per-class accuracy).
        f1: harmonic mean of the two (NaN when either is undefined; 0 when both are 0).
        support: test images of this class.
    """

    name: str
    precision: float
    recall: float
    f1: float
    support: int


def class_scores(confusion: Sequence[Sequence[int]], classes: Sequence[str]) -> list[ClassScore]:
    """Precision, recall, F1 and support of every class, in label order.

    Conventions (scikit-learn's with ``zero_division=nan``): precision of a class never
    predicted, recall of a class with no images, and F1 where both are undefined are NaN.
    """
    k = len(classes)
    out = []
    for i in range(k):
        tp = confusion[i][i]
        support = sum(confusion[i])
        predicted = sum(confusion[r][i] for r in range(k))
        precision = tp / predicted if predicted else math.nan
        recall = tp / support if support else math.nan
        if math.isnan(precision) or math.isnan(recall):
            f1 = math.nan
        else:
            f1 = 2 * precision * recall / (precision + recall) if precision + recall else 0.0
        out.append(ClassScore(classes[i], precision, recall, f1, support))
    return out


def main_logits(out: torch.Tensor | tuple[torch.Tensor, ...]) -> torch.Tensor:
    """The logits of a model's output: models with auxiliary heads (GoogLeNet) return a tuple."""
    return out[0] if isinstance(out, (tuple, list)) else out


def logits_of(
    model: Callable[[torch.Tensor], Any], x: torch.Tensor, tta: bool = False
) -> torch.Tensor:
    """A model's logits for a prepared batch; with ``tta``, averaged with the mirror's.

    Flip test-time augmentation: the fast recipe trains with random horizontal flips, so the
    mirrored image is as good an input as the original and the mean of both logits is a
    slightly better estimate. Evaluation, the training report and :mod:`cnnlab.predictor` all
    call this one function, so a reported accuracy and a prediction average the same way.

    Shape:
        x: ``(N, C, H, W)`` float -> ``(N, K)``, on the model's device.
    """
    logits = main_logits(model(x))
    if tta:
        logits = (logits + main_logits(model(x.flip(-1)))) / 2
    return logits


def batches(n: int, batch_size: int) -> Iterator[slice]:
    """Consecutive slices covering ``range(n)``, the last one possibly shorter."""
    for start in range(0, n, batch_size):
        yield slice(start, min(start + batch_size, n))


@contextlib.contextmanager
def eval_mode(model: nn.Module | Callable[[torch.Tensor], Any]) -> Iterator[None]:
    """Eval mode for the block, then each submodule's own flag back; a non-module runs as it is.

    Each flag is restored, not just the top one, so a model with some layers deliberately kept
    in eval mode (frozen batch norm) comes back exactly as it was.
    """
    if not isinstance(model, nn.Module):  # an ONNX Runtime session has no training mode
        yield
        return
    flags = [(m, m.training) for m in model.modules()]
    model.eval()
    try:
        yield
    finally:
        for m, flag in flags:
            m.training = flag


@torch.inference_mode()
def evaluate(
    model: nn.Module | Callable[[torch.Tensor], Any],
    images: torch.Tensor,
    labels: torch.Tensor,
    prepare: Callable[[torch.Tensor], torch.Tensor],
    num_classes: int,
    batch_size: int = 500,
    reduce: Callable[[Tally], None] | None = None,
    tta: bool = False,
) -> EvalResult:
    """Evaluate ``model`` (switched to eval mode, then back) on uint8 images.

    Args:
        model: the network (or an :class:`~cnnlab.export.OnnxClassifier`); its output (or first
            output, for auxiliary-head models) is logits.
        images: ``(N, C, H, W)`` uint8 on the CPU.
        labels: ``(N,)`` int64.
        prepare: turns a uint8 batch into the model's float input on its device.
        num_classes: K, the confusion matrix side.
        batch_size: images per forward pass.
        reduce: called on the local tally before the result is computed (DDP all-reduce).
        tta: also run each image's horizontal mirror and average the two logits
            (:func:`logits_of`).
    """
    tally = Tally.zeros(num_classes)
    with eval_mode(model):
        for s in batches(len(images), batch_size):
            tally.add(logits_of(model, prepare(images[s]), tta), labels[s])
    if reduce is not None:
        reduce(tally)
    return tally.result()


def format_result(result: EvalResult, classes: list[str] | tuple[str, ...]) -> str:
    """A human-readable report: headline numbers, then per-class accuracy and the confusion."""
    lines = [
        f"images  {result.count}",
        f"top-1   {percent(result.top1)}",
        f"top-{TOP_K}   {percent(result.top5)}"
        if len(classes) > TOP_K
        else f"top-{len(classes)}   {percent(result.top5)} (only {len(classes)} classes)",
        f"loss    {result.loss:.4f} (mean cross-entropy)",
        "",
        "per-class accuracy:",
    ]
    width = max(len(c) for c in classes)
    for name, acc in zip(classes, result.per_class, strict=True):
        lines.append(f"  {name.ljust(width)}  {percent(acc).rjust(7)}")
    lines += ["", "confusion matrix (rows: true class, columns: predicted):"]
    cell = max(5, max(len(str(v)) for row in result.confusion for v in row) + 1)
    lines.append(" " * (width + 2) + "".join(str(j).rjust(cell) for j in range(len(classes))))
    for i, row in enumerate(result.confusion):
        lines.append(f"  {classes[i].ljust(width)}" + "".join(str(v).rjust(cell) for v in row))
    return "\n".join(lines)
