"""Notebooks: rich display of cnnlab's objects, the backend left alone, and the example notebook
executed from top to bottom (so it never goes stale)."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

import cnnlab
from cnnlab.run.metrics import EvalResult
from helpers import ROOT, subprocess_env
from helpers.datasets import needs_fashion_mnist
from helpers.optional import importable

RESULT = EvalResult(
    count=20,
    loss=0.5,
    top1=0.85,
    top5=1.0,
    per_class=[0.8, 0.9],
    confusion=[[8, 2], [1, 9]],
)


def valid_fragment(text: str) -> None:
    import html5lib

    html5lib.HTMLParser(strict=True).parseFragment(text)
    assert "<script" not in text and "http" not in text


def test_analyzer_report_displays_its_table() -> None:
    report = cnnlab.analyze("lenet5")
    html = report._repr_html_()
    valid_fragment(html)
    assert html.count("<tr>") == len(report.rows) + 1  # header + one per row
    assert "61,706" in html  # LeNet-5's parameter total, in the footer
    assert report._repr_markdown_() == report.to_markdown()


def test_eval_result_displays_scores_and_confusion() -> None:
    html = RESULT._repr_html_()
    valid_fragment(html)
    assert "top-1 85.00%" in html and "88.89%" in html  # precision of class 0: 8 / 9
    markdown = RESULT._repr_markdown_()
    assert "**top-1 85.00%**" in markdown and "| 1 | 1 | 9 |" in markdown


def test_model_info_displays_its_facts() -> None:
    info = cnnlab.model_info("alexnet_paper")
    html = info._repr_html_()
    valid_fragment(html)
    assert "alexnet_paper" in html and f"{info.num_params:,}" in html
    assert info._repr_markdown_().startswith("|  | alexnet_paper |")


def test_runs_table_displays_itself(tmp_path: Path) -> None:
    from cnnlab.report import runs_table

    assert runs_table([tmp_path])._repr_html_() == "<p>no runs found</p>"
    (tmp_path / "r").mkdir()
    (tmp_path / "r" / "config.json").write_text('{"model": "lenet5", "epochs": 1}')
    table = runs_table([tmp_path])
    valid_fragment(table._repr_html_())
    assert "interrupted" in table._repr_markdown_()


CORE_DISPLAY = """
import sys
import cnnlab
from cnnlab.run.metrics import EvalResult
result = EvalResult(count=2, loss=0.5, top1=0.5, top5=1.0, per_class=[1.0, 0.0],
                    confusion=[[1, 0], [1, 0]])
report = cnnlab.analyze("lenet5")
for thing in (cnnlab.model_info("lenet5"), report, result):
    assert thing._repr_html_() and thing._repr_markdown_()
print(sorted(m for m in sys.modules if m.startswith(("cnnlab.report", "jinja2"))))
"""


def test_core_objects_display_without_the_report_package() -> None:
    """Floors: the model info, the analyzer's report and an evaluation result render their own
    notebook forms (cnnlab.table), importing neither cnnlab.report nor Jinja2."""
    out = subprocess.run(
        [sys.executable, "-c", CORE_DISPLAY],
        capture_output=True,
        text=True,
        env=subprocess_env(),
        timeout=120,
    )
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "[]"


def test_analyzer_html_shows_the_text_tables_cells() -> None:
    report = cnnlab.analyze("lenet5")
    html = report.to_html()
    assert html.startswith('<div class="cnnlab-analysis">') and html.endswith("</div>\n")
    for line in report.footer():
        assert line.replace("'", "&#39;") in html
    assert "0.429 M" in html and "241 KiB" in html  # LeNet-5's totals keep their digits


IMPORT_EVERYTHING = """
import importlib, pkgutil, sys
import matplotlib
matplotlib.use("svg")
before = matplotlib.get_backend()
import cnnlab
names = [m.name for m in pkgutil.walk_packages(cnnlab.__path__, "cnnlab.")]
names.remove("cnnlab.__main__")  # runs the command line
for name in names:
    importlib.import_module(name)
import cnnlab.report.page, cnnlab.cli
cnnlab.cli.build_parser()
assert "matplotlib.pyplot" not in sys.modules, "something imported pyplot"
print(len(names), before, matplotlib.get_backend())
"""


def test_importing_every_module_leaves_the_backend_alone() -> None:
    out = subprocess.run(
        [sys.executable, "-c", IMPORT_EVERYTHING],
        capture_output=True,
        text=True,
        env=subprocess_env(MPLBACKEND="agg"),
        timeout=120,
    )
    assert out.returncode == 0, out.stderr
    count, before, after = out.stdout.split()
    assert int(count) > 40 and before == after == "svg"


@needs_fashion_mnist
@pytest.mark.skipif(
    not importable("nbclient", "nbformat", "ipykernel"), reason="nbclient/ipykernel not installed"
)
@pytest.mark.slow
def test_example_notebook_runs(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import nbformat
    from nbclient import NotebookClient

    if os.environ.get("PYTEST_XDIST_WORKER"):
        # The kernel is a process of its own: beside the other worker, two intra-op threads
        # each made it 6x slower (91 s instead of 15 s), as this worker's own torch runs one.
        monkeypatch.setenv("OMP_NUM_THREADS", "1")

    nb = nbformat.read(ROOT / "examples" / "lecture_tour.ipynb", as_version=4)
    assert all(not c.get("outputs") for c in nb.cells if c.cell_type == "code")  # stored clean
    # The notebook trains on all 55,000 images (about 90% in about a minute, README.md); the
    # suite on 2,048, its one setting, in seconds.
    (limit,) = [c for c in nb.cells if c.source.startswith("LIMIT_TRAIN = None")]
    limit.source = "LIMIT_TRAIN = 2048"
    NotebookClient(
        nb, timeout=180, kernel_name="python3", resources={"path": str(tmp_path)}
    ).execute()
    outputs = [o for c in nb.cells if c.cell_type == "code" for o in c.outputs]
    assert not [o for o in outputs if o.output_type == "error"]
    kinds = [set(o.get("data", {})) for o in outputs if o.output_type == "execute_result"]
    assert sum("text/html" in k for k in kinds) >= 5  # model info, 2 analyses, eval, runs
    assert sum("image/png" in k for k in kinds) >= 3  # the figures drew inline
    # the evaluation names the classes, not their indices
    html = "".join(o["data"].get("text/html", "") for o in outputs if "data" in o)
    assert all(name in html for name in ("T-shirt/top", "Ankle boot", "Sneaker"))
    text = "".join(o.get("text", "") for o in outputs if o.output_type == "stream")
    assert re.search(r"test accuracy \d+\.\d\d% on 10,000 images", text)
    assert "output volume 55x55x96, parameters 34,944" in text
    assert "ResNet-50  v1  3.858 G" in text
