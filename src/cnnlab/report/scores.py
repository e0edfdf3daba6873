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

# The per-class scores belong to the metrics (an evaluation result shows them in a notebook);
# they are re-exported here with the report's other confusion-matrix arithmetic.
from cnnlab.run.metrics import ClassScore, class_scores

__all__ = ["ClassScore", "ConfusedPair", "class_scores", "confused_pairs", "macro_average"]


@dataclass(frozen=True)
class ConfusedPair:
    """Images of class ``true`` predicted as ``predicted``: ``count`` of them, ``share`` of
    the true class."""

    true: str
    predicted: str
    count: int
    share: float


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
