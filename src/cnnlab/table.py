"""Tables as text: fixed-width for the terminal, GitHub Markdown, and CSV.

``cnnlab summary``, ``cnnlab compare`` and ``cnnlab models`` print their tables through these
functions, so the three commands line up the same way: every column as wide as its widest cell,
two spaces between columns, numbers right-aligned, everything else left-aligned.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Collection, Iterable, Mapping, Sequence
from typing import Any

__all__ = ["csv_text", "fixed_width", "markdown"]


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
