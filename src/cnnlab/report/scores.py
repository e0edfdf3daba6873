"""Per-class precision, recall and F1, and the most confused pairs, from a confusion matrix.

Everything here is arithmetic on the exact integer counts of
:class:`~cnnlab.run.metrics.EvalResult` (``confusion[true][predicted]``), so the numbers a report
shows add up to the test accuracy training printed. Conventions (scikit-learn's with
``zero_division=nan``): precision of a class never predicted, recall of a class with no images,
and F1 where both are undefined are NaN, shown as "n/a".
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass


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


@dataclass(frozen=True)
class ConfusedPair:
    """Images of class ``true`` predicted as ``predicted``: ``count`` of them, ``share`` of
    the true class."""

    true: str
    predicted: str
    count: int
    share: float


def class_scores(confusion: Sequence[Sequence[int]], classes: Sequence[str]) -> list[ClassScore]:
    """Precision, recall, F1 and support of every class, in label order."""
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


def macro_average(scores: Sequence[ClassScore]) -> ClassScore:
    """The unweighted mean of each score over the classes where it is defined."""

    def mean(values: list[float]) -> float:
        defined = [v for v in values if not math.isnan(v)]
        return sum(defined) / len(defined) if defined else math.nan

    return ClassScore(
        "macro average",
        mean([s.precision for s in scores]),
        mean([s.recall for s in scores]),
        mean([s.f1 for s in scores]),
        sum(s.support for s in scores),
    )


def confused_pairs(
    confusion: Sequence[Sequence[int]], classes: Sequence[str], top: int = 10
) -> list[ConfusedPair]:
    """The off-diagonal cells with the most images, largest first (ties: label order)."""
    cells = [
        (confusion[i][j], i, j)
        for i in range(len(classes))
        for j in range(len(classes))
        if i != j and confusion[i][j] > 0
    ]
    cells.sort(key=lambda c: (-c[0], c[1], c[2]))
    return [
        ConfusedPair(classes[i], classes[j], n, n / max(sum(confusion[i]), 1))
        for n, i, j in cells[:top]
    ]
