"""The one table renderer (:mod:`cnnlab.table`) and the number formats (:mod:`cnnlab.formats`).

Every table cnnlab prints goes through these functions, so their layout is pinned here cell for
cell, and every number format at its edges: zero, tiny, huge, missing (None, NaN), the unit
boundaries, and the small model whose totals once read "0.000 G" and "0.0 MiB".
"""

from __future__ import annotations

import ast
import math
from pathlib import Path

import pytest

from cnnlab import formats, table
from cnnlab.formats import count, duration, number, percent, shape, size

SRC = Path(__file__).resolve().parents[1] / "src" / "cnnlab"

# --- tables ---------------------------------------------------------------------------------------

HEADER = ("name", "params", "note")
ROWS = [("lenet5", "61,706", "a|b"), ("vgg16", "138,357,544", "")]


def test_fixed_width_pads_to_the_widest_cell_and_aligns_numbers_right() -> None:
    assert table.fixed_width(HEADER, ROWS, right={1}) == [
        "name         params  note",
        "lenet5       61,706  a|b",
        "vgg16   138,357,544",
    ]
    untrimmed = table.fixed_width(HEADER, ROWS, right={1}, trim=False)
    assert untrimmed[2] == "vgg16   138,357,544      "  # blank cells keep their padding


def test_markdown_marks_number_columns_and_escapes_pipes() -> None:
    assert table.markdown(HEADER, ROWS, right={1}) == [
        "| name | params | note |",
        "|---|---:|---|",
        "| lenet5 | 61,706 | a\\|b |",
        "| vgg16 | 138,357,544 |  |",
    ]


def test_csv_joins_shapes_and_leaves_none_empty() -> None:
    records = [
        {"name": "x", "shape": [3, 224, 224], "rf": None},
        {"name": 'a,"b"', "shape": [1], "rf": 7},
    ]
    text = table.csv_text(["name", "shape", "rf"], records)
    assert text == 'name,shape,rf\nx,3x224x224,\n"a,""b""",1,7\n'


def test_html_table_escapes_every_cell_and_marks_number_columns() -> None:
    html = table.html(["class", "n"], [["<b>&'\"", "1,000"]], right=[1], caption="a < b")
    assert html == (
        '<div class="scroll"><table>\n'
        "<caption>a &lt; b</caption>\n"
        '<thead><tr><th scope="col">class</th><th class="num" scope="col">n</th></tr></thead>\n'
        "<tbody>\n"
        '<tr><td>&lt;b&gt;&amp;&#39;&#34;</td><td class="num">1,000</td></tr>\n'
        "</tbody>\n"
        "</table></div>\n"
    )


def test_html_table_footer_and_row_headers() -> None:
    html = table.html(None, [["model", "lenet5"]], row_headers=True, footer=["mean", "1"])
    assert "<thead>" not in html and "<caption>" not in html
    assert '<tr><th scope="row">model</th><td>lenet5</td></tr>' in html
    assert '<tfoot><tr><th scope="row">mean</th><td>1</td></tr></tfoot>' in html
    assert table.html(["a"], []).count("<tr>") == 1  # an empty table keeps its header


def test_escape_is_what_a_jinja2_template_writes() -> None:
    markupsafe = pytest.importorskip("markupsafe")
    text = "<a href=\"x\">'&'</a> plain"
    assert table.escape(text) == str(markupsafe.escape(text))


def test_html_table_parses_as_html() -> None:
    html5lib = pytest.importorskip("html5lib")
    html5lib.HTMLParser(strict=True).parseFragment(
        table.html(HEADER, ROWS, [1], caption="c", footer=["total", "1", ""])
    )


# --- percent and number ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("value", "kwargs", "text"),
    [
        (0.9123, {}, "91.23%"),
        (0, {}, "0.00%"),
        (1, {}, "100.00%"),
        (1e-9, {}, "0.00%"),
        (12.3456, {}, "1234.56%"),
        (0.4444, {"digits": 1}, "44.4%"),
        (8.5, {"scale": 1}, "8.50%"),  # a value already in percent
        (None, {}, "n/a"),
        (math.nan, {}, "n/a"),
        (math.nan, {"missing": ""}, ""),
    ],
)
def test_percent(value: float | None, kwargs: dict, text: str) -> None:
    assert percent(value, **kwargs) == text


def test_number() -> None:
    assert number(60_000) == "60,000"
    assert number(0) == "0"
    assert number(0.42131) == "0.421"
    assert number(1234.6, 0) == "1,235"
    assert number(2.5e12, 1) == "2,500,000,000,000.0"
    assert number(None) == number(math.nan) == "n/a"
    assert number(None, missing="-") == "-"


def test_shape() -> None:
    assert shape((3, 224, 224)) == "3x224x224"
    assert shape([400]) == "400"


# --- durations ------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("seconds", "text"),
    [
        (0, "0.0 s"),
        (0.04, "0.0 s"),
        (0.7, "0.7 s"),
        (56, "56.0 s"),
        (59.94, "59.9 s"),
        (59.96, "1 min 00 s"),  # rounds to a minute: never "60.0 s"
        (68, "1 min 08 s"),
        (3599.4, "59 min 59 s"),
        (3599.6, "1 h 00 min"),
        (3725, "1 h 02 min"),
        (3 * 86400, "72 h 00 min"),
        (-185, "-3 min 05 s"),  # a difference of clocks keeps its sign
        (-0.04, "0.0 s"),  # never "-0.0 s"
    ],
)
def test_duration(seconds: float, text: str) -> None:
    assert duration(seconds) == text


@pytest.mark.parametrize(
    ("seconds", "text"),
    [(0, "0 s"), (42.4, "42 s"), (89.4, "89 s"), (89.6, "1.5 min"), (390, "6.5 min"),
     (5399, "90.0 min"), (5400, "1.5 h"), (11520, "3.2 h"), (-400, "-6.7 min")],
)  # fmt: skip
def test_coarse_duration(seconds: float, text: str) -> None:
    assert duration(seconds, coarse=True) == text


def test_duration_of_nothing() -> None:
    for value in (None, math.nan, math.inf, -math.inf):
        assert duration(value) == "n/a"
        assert duration(value, missing="") == ""


# --- byte sizes -----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("nbytes", "text"),
    [
        (0, "0 B"),
        (1, "1 B"),
        (1023, "1,023 B"),
        (1024, "1.00 KiB"),
        (3136, "3.06 KiB"),  # LeNet-5's input, 1x28x28 float32
        (35_544, "34.7 KiB"),
        (246_824, "241 KiB"),  # LeNet-5's parameters: not "0.2 MiB"
        (1_047_552, "1,023 KiB"),
        (1_048_100, "1.0 MiB"),  # rounds to 1024 KiB: shown as MiB
        (2**20, "1.0 MiB"),
        (int(1.6 * 2**20), "1.6 MiB"),
        (int(1641.6 * 2**20), "1,641.6 MiB"),  # the memory tables' unit, unchanged
        (10_000 * 2**20 - 1, "10,000.0 MiB"),
        (10_000 * 2**20, "9.8 GiB"),
        (2**50, "1,048,576.0 GiB"),
        (None, "n/a"),
        (math.nan, "n/a"),
    ],
)
def test_size(nbytes: int | None, text: str) -> None:
    assert size(nbytes) == text


def test_size_refuses_a_negative_count() -> None:
    with pytest.raises(ValueError, match="-1"):
        size(-1)


# --- counts ---------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("n", "unit", "digits", "text"),
    [
        (718_071_616, "G", 3, "0.718 G"),  # AlexNet's MACs, as summary prints them
        (15_489_966_592, "G", 3, "15.490 G"),
        (429_332, "G", 3, "0.429 M"),  # LeNet-5's: never "0.000 G"
        (9_990_000, "G", 3, "0.010 G"),  # two significant digits still show
        (9_400_000, "G", 3, "9.400 M"),
        (999, "G", 3, "0.999 K"),
        (5, "G", 3, "5"),
        (0, "G", 3, "0"),
        (714_188_480, "M", 2, "714.19 M"),  # the models table below a billion
        (416_520, "M", 2, "0.42 M"),
        (50_000, "M", 2, "50.00 K"),
        (10**15, "G", 3, "1,000,000.000 G"),
        (10**15, None, 3, "1,000.000 T"),
        (429_332, None, 1, "429.3 K"),
        (0.5, None, 3, "0.500"),
    ],
)
def test_count(n: float, unit: str | None, digits: int, text: str) -> None:
    assert count(n, unit, digits) == text


def test_count_of_nothing_and_unknown_units() -> None:
    assert count(None) == count(math.nan) == "n/a"
    with pytest.raises(ValueError, match="'B'"):
        count(5, "B")


# --- the floor ------------------------------------------------------------------------------------


@pytest.mark.parametrize("module", ["table.py", "formats.py"])
def test_renderer_and_formats_import_nothing_of_cnnlab(module: str) -> None:
    """Floor 1: every floor may use them, so they use nothing of cnnlab."""
    tree = ast.parse((SRC / module).read_text(encoding="utf-8"))
    imported = [
        node.module or "" for node in ast.walk(tree) if isinstance(node, ast.ImportFrom)
    ] + [a.name for node in ast.walk(tree) if isinstance(node, ast.Import) for a in node.names]
    assert not [name for name in imported if name.startswith("cnnlab")], imported
    assert set(formats.__all__) <= set(dir(formats))
