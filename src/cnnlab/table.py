"""Every table cnnlab shows: fixed-width for the terminal, GitHub Markdown, CSV and HTML.

``cnnlab summary``, ``compare``, ``models`` and ``runs``, the run report, the notebook display of
cnnlab's objects and the experiments' summaries render their tables through these functions, so
they all line up the same way: every column as wide as its widest cell, two spaces between
columns, numbers right-aligned, everything else left-aligned. Cells arrive formatted (numbers
through :mod:`cnnlab.formats`). Nothing here imports anything heavy (floor 1): a core type
displays itself in a notebook without importing the report package.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Collection, Iterable, Mapping, Sequence
from typing import Any

__all__ = ["csv_text", "escape", "fixed_width", "html", "markdown"]


def fixed_width(
    header: Sequence[str],
    rows: Iterable[Sequence[str]],
    right: Collection[int] = (),
    *,
    trim: bool = True,
) -> list[str]:
    """The lines of a fixed-width table, header first.

    Args:
        header: column titles.
        rows: cells, already formatted as strings, one sequence per row.
        right: indices of the columns aligned right (numbers); the others align left.
        trim: drop the spaces that padding leaves at the end of a line.
    """
    lines = [list(header), *(list(r) for r in rows)]
    widths = [max(len(line[k]) for line in lines) for k in range(len(header))]
    out = []
    for line in lines:
        cells = [
            c.rjust(w) if k in right else c.ljust(w)
            for k, (c, w) in enumerate(zip(line, widths, strict=True))
        ]
        text = "  ".join(cells)
        out.append(text.rstrip() if trim else text)
    return out


def markdown(
    header: Sequence[str], rows: Iterable[Sequence[str]], right: Collection[int] = ()
) -> list[str]:
    """The lines of a GitHub-flavoured Markdown table; ``|`` in a cell is escaped."""
    align = ["---:" if k in right else "---" for k in range(len(header))]
    lines = ["| " + " | ".join(header) + " |", "|" + "|".join(align) + "|"]
    lines += ["| " + " | ".join(c.replace("|", "\\|") for c in r) + " |" for r in rows]
    return lines


def csv_text(keys: Sequence[str], records: Iterable[Mapping[str, Any]]) -> str:
    """CSV with a header line of ``keys`` and one line per record (``\\n`` line ends).

    Lists are joined with ``x`` (a shape ``[3, 224, 224]`` becomes ``3x224x224``); None is empty.
    """
    buf = io.StringIO()
    writer = csv.writer(buf, lineterminator="\n")
    writer.writerow(keys)
    for record in records:
        writer.writerow([_csv_cell(record[k]) for k in keys])
    return buf.getvalue()


def _csv_cell(value: Any) -> Any:
    if isinstance(value, list):
        return "x".join(map(str, value))
    return "" if value is None else value


# Autoescaping's replacements (markupsafe's, so a table built here is byte for byte what a
# Jinja2 template would have written).
_HTML_ESCAPES = str.maketrans({"&": "&amp;", "<": "&lt;", ">": "&gt;", '"': "&#34;", "'": "&#39;"})


def escape(text: object) -> str:
    """``text`` safe to put between HTML tags or in a quoted attribute."""
    return str(text).translate(_HTML_ESCAPES)


def html(
    header: Sequence[str] | None,
    rows: Iterable[Sequence[str]],
    right: Collection[int] = (),
    *,
    caption: str = "",
    footer: Sequence[str] | None = None,
    row_headers: bool = False,
) -> str:
    """An HTML ``<table>`` in a horizontally scrolling ``<div class="scroll">``, every cell
    escaped, one line per row, ending with a newline.

    Args:
        header: column titles (``<thead>``); None for a table without one.
        rows: cells, already formatted as strings, one sequence per row.
        right: indices of the columns that hold numbers (``class="num"``: aligned right).
        caption: a ``<caption>`` above the table.
        footer: one more row in ``<tfoot>`` (a total or an average), its first cell a row header.
        row_headers: the first cell of every body row is a row header (``<th scope="row">``).
    """
    right = set(right)

    def row_html(row: Sequence[str], row_header: bool) -> str:
        return "".join(
            _cell("th", c, scope="row") if k == 0 and row_header else _cell("td", c, k in right)
            for k, c in enumerate(row)
        )

    lines = ['<div class="scroll"><table>']
    if caption:
        lines.append(f"<caption>{escape(caption)}</caption>")
    if header is not None:
        titles = "".join(_cell("th", h, k in right, "col") for k, h in enumerate(header))
        lines.append(f"<thead><tr>{titles}</tr></thead>")
    lines.append("<tbody>")
    lines += [f"<tr>{row_html(row, row_headers)}</tr>" for row in rows]
    lines.append("</tbody>")
    if footer is not None:
        lines.append(f"<tfoot><tr>{row_html(footer, True)}</tr></tfoot>")
    lines.append("</table></div>")
    return "\n".join(lines) + "\n"


def _cell(tag: str, text: str, number: bool = False, scope: str = "") -> str:
    attributes = (' class="num"' if number else "") + (f' scope="{scope}"' if scope else "")
    return f"<{tag}{attributes}>{escape(text)}</{tag}>"
