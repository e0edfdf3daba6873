"""Looking at runs: one HTML page per run, runs side by side, loggers.

* :func:`write_report` / :func:`build_report` -- ``cnnlab report RUN_DIR``: one self-contained
  HTML page (:mod:`cnnlab.report.page`).
* :func:`runs_table` -- ``cnnlab runs [DIR...]``: a :class:`RunsTable` with every run's status
  and accuracy, and their curves overlaid (:mod:`cnnlab.report.runs`).
* :class:`TensorBoardLog` -- ``cnnlab train --log tensorboard`` (:mod:`cnnlab.report.loggers`).

Every page is rendered from the Jinja2 templates in ``cnnlab/report/templates`` and makes no
request of any kind. Heavy imports happen on first use.
"""

from __future__ import annotations

from cnnlab.lazy import lazy_exports

__all__ = [
    "RunReport",
    "RunsTable",
    "TensorBoardLog",
    "build_report",
    "find_runs",
    "read_run",
    "runs_table",
    "write_report",
]

__getattr__ = lazy_exports(
    __name__,
    {
        "RunReport": "cnnlab.report.page",
        "build_report": "cnnlab.report.page",
        "write_report": "cnnlab.report.page",
        "RunsTable": "cnnlab.report.runs",
        "find_runs": "cnnlab.report.runs",
        "read_run": "cnnlab.report.runs",
        "runs_table": "cnnlab.report.runs",
        "TensorBoardLog": "cnnlab.report.loggers",
    },
)
