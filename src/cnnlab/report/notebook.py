"""Rich display in Jupyter: the HTML and Markdown forms of cnnlab's result objects.

Jupyter shows an object through its ``_repr_html_`` (or ``_repr_markdown_``) method. The analyzer's
:class:`~cnnlab.analysis.report.Report`, an :class:`~cnnlab.run.metrics.EvalResult`, a
:class:`~cnnlab.registry.ModelInfo` and a :class:`~cnnlab.report.runs.RunsTable` each have both,
delegating here, so every table a notebook shows is rendered by the same templates as the HTML
report (:mod:`cnnlab.report.html`). Nothing here imports IPython.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING

from cnnlab import table
from cnnlab.report import html
from cnnlab.report.scores import class_scores

if TYPE_CHECKING:
    from cnnlab.analysis.report import Report
    from cnnlab.registry import ModelInfo
    from cnnlab.run.metrics import EvalResult


def analysis_html(
    report: Report, header: Sequence[str], body: Sequence[Sequence[str]], right: range
) -> str:
    """The analyzer's table with its totals and conventions (``header``/``body`` are the cells
    of its text table, so both forms show the same figures)."""
    return html.render(
        "analysis.html.j2",
        model=report.model,
        input="x".join(map(str, report.input_size)),
        batch=report.batch_size,
        table=html.table(header, body, right),
        footer=report._footer(),
    )


def _score_rows(result: EvalResult, classes: Sequence[str]) -> list[list[str]]:
    scores = class_scores(result.confusion, classes)
    return [
        [s.name, f"{s.support:,}", html.pct(s.precision), html.pct(s.recall), html.pct(s.f1)]
        for s in scores
    ]


SCORE_HEADER = ("class", "images", "precision", "recall (accuracy)", "F1")


def eval_html(result: EvalResult, classes: Sequence[str] | None = None) -> str:
    """Headline numbers, per-class precision/recall/F1 and the confusion matrix as tables."""
    names = list(classes) if classes else [str(i) for i in range(len(result.per_class))]
    confusion = [
        [name, *(f"{v:,}" for v in row)] for name, row in zip(names, result.confusion, strict=True)
    ]
    k = len(names)
    return html.render(
        "eval.html.j2",
        top1=html.pct(result.top1),
        top5=html.pct(result.top5),
        k=min(5, k),
        loss=f"{result.loss:.4f}",
        count=f"{result.count:,}",
        scores=html.table(SCORE_HEADER, _score_rows(result, names), range(1, 5)),
        confusion=html.table(
            ["true \\ predicted", *names],
            confusion,
            range(1, k + 1),
            caption="confusion matrix: rows are true classes, columns predicted",
        ),
    )


def eval_markdown(result: EvalResult, classes: Sequence[str] | None = None) -> str:
    """The same as :func:`eval_html`, in Markdown."""
    names = list(classes) if classes else [str(i) for i in range(len(result.per_class))]
    lines = [
        f"**top-1 {html.pct(result.top1)}**, top-{min(5, len(names))} {html.pct(result.top5)}, "
        f"loss {result.loss:.4f} (mean cross-entropy) on {result.count:,} images",
        "",
        *table.markdown(SCORE_HEADER, _score_rows(result, names), range(1, 5)),
        "",
        "confusion matrix (rows: true class, columns: predicted):",
        "",
        *table.markdown(
            ["true \\ predicted", *names],
            [[n, *map(str, row)] for n, row in zip(names, result.confusion, strict=True)],
            range(1, len(names) + 1),
        ),
    ]
    return "\n".join(lines)


def _info_facts(info: ModelInfo) -> list[tuple[str, str]]:
    c, h, w = info.input_size
    return [
        ("model", info.name),
        ("family", info.family),
        ("paper", info.paper),
        ("description", info.description),
        ("default input", f"{c}x{h}x{w}" + (" (fixed)" if info.fixed_input else "")),
        ("smallest input", f"{info.min_input_size[0]}x{info.min_input_size[1]}"),
        ("parameters", f"{info.num_params:,} at {info.num_classes} classes"),
        ("torchvision", info.torchvision or "no equivalent"),
    ]


def model_info_html(info: ModelInfo) -> str:
    return html.render("facts.html.j2", facts=_info_facts(info), caption="")


def model_info_markdown(info: ModelInfo) -> str:
    rows = [[label, value] for label, value in _info_facts(info)]
    return "\n".join(table.markdown(["", info.name], rows))
