"""Number formats: percentages, durations, byte sizes and scaled counts, one function each.

The tables cnnlab prints -- ``summary``, ``models``, ``runs``, the run report, notebooks, the
experiments' summaries -- format their numbers here, so a percentage, a duration or a size reads
the same everywhere. Nothing here imports anything (floor 1).

Conventions (``docs/DESIGN.md``): a byte size is 1024-based (KiB, MiB, GiB; the slides' "KB" is
1024 bytes); a count (parameters, multiply-adds) scales by 1000 (K, M, G). A scaled figure keeps
at least two significant digits: a small model's multiply-adds read ``0.429 M``, never
``0.000 G``, and its memory ``241 KiB``, never ``0.0 MiB``.
"""

from __future__ import annotations

import math
import os
import unicodedata
from collections.abc import Iterable

__all__ = [
    "count",
    "count_unit",
    "duration",
    "number",
    "percent",
    "printable",
    "shape",
    "size",
    "size_unit",
]

MISSING = "n/a"  # what a value that is not there (None, NaN) reads as, unless the caller says

KIB = 1024
MIB = 1024**2
GIB = 1024**3
# MiB is the unit of memory while it reads in at most four digits ("1,641.6 MiB"); GiB above.
GIB_FROM = 10_000 * MIB

COUNT_UNITS = {"": 1, "K": 10**3, "M": 10**6, "G": 10**9, "T": 10**12}
# Unicode categories a terminal acts on instead of showing: controls (C0, DEL, C1: newlines,
# carriage returns, ANSI escapes), format characters (bidi overrides and isolates, zero-width
# marks), line and paragraph separators, and lone surrogates (which cannot even be encoded).
_UNPRINTABLE = frozenset({"Cc", "Cf", "Cs", "Zl", "Zp"})
ELLIPSIS = "\u2026"


def _absent(value: float | None) -> bool:
    return value is None or (isinstance(value, float) and math.isnan(value))


def percent(
    fraction: float | None, digits: int = 2, *, scale: float = 100, missing: str = MISSING
) -> str:
    """A fraction as a percentage: ``0.9123`` -> ``91.23%``; None or NaN -> ``missing``.

    A value already in percent (a training error of ``8.5``) is shown with ``scale=1``.
    """
    if _absent(fraction):
        return missing
    return f"{scale * fraction:.{digits}f}%"


def number(value: float | None, digits: int = 3, *, missing: str = MISSING) -> str:
    """A plain number: an int with thousands separators (``60,000``), a float with ``digits``
    decimals (``0.4213``); None or NaN -> ``missing``."""
    if _absent(value):
        return missing
    if isinstance(value, int):
        return f"{value:,}"
    return f"{value:,.{digits}f}"


def printable(text: str | os.PathLike[str], limit: int = 1000) -> str:
    """Text from a file, safe to print on one line: control characters escaped, length bounded.

    Every character a terminal would act on rather than show -- newlines, carriage returns,
    ANSI escape sequences (ESC), the other C0 and C1 controls, bidi overrides, line separators
    -- becomes ``\\xNN`` (below U+0100) or ``\\uNNNN``, so a crafted run file cannot print a
    fake line, recolour the terminal or reorder what follows. Text longer than ``limit``
    characters (counting escapes as written) ends in an ellipsis.

    >>> printable("ok\\x1b[31m\\nerror")
    'ok\\\\x1b[31m\\\\x0aerror'
    """
    pieces = []
    length = 0
    for char in os.fspath(text) if isinstance(text, os.PathLike) else str(text):
        if unicodedata.category(char) in _UNPRINTABLE:
            code = ord(char)
            char = f"\\x{code:02x}" if code < 0x100 else f"\\u{code:04x}"
        if length + len(char) > limit:
            pieces.append(ELLIPSIS)
            break
        pieces.append(char)
        length += len(char)
    return "".join(pieces)


def shape(dims: Iterable[int]) -> str:
    """A volume or a kernel size as the lectures write it: ``(3, 224, 224)`` -> ``3x224x224``."""
    return "x".join(map(str, dims))


def duration(seconds: float | None, *, coarse: bool = False, missing: str = MISSING) -> str:
    """A wall-clock duration: ``0.7 s``, ``42.1 s``, ``3 min 05 s``, ``1 h 02 min``.

    Below a minute the tenth of a second is shown; from a minute, whole seconds; from an hour,
    whole minutes. ``coarse`` is for estimates and long runs: ``42 s``, then minutes and hours
    to one decimal (``6.5 min``, ``3.2 h``). A negative duration (a difference of two clocks)
    keeps its sign: ``-3 min 05 s``. None, NaN or an infinite value -> ``missing``.
    """
    if _absent(seconds) or math.isinf(seconds):
        return missing
    if seconds < 0:
        text = duration(-seconds, coarse=coarse)
        return text if text == duration(0.0, coarse=coarse) else "-" + text
    if coarse:
        if round(seconds) < 90:
            return f"{seconds:.0f} s"
        return f"{seconds / 60:.1f} min" if seconds < 5400 else f"{seconds / 3600:.1f} h"
    if round(seconds, 1) < 60:
        return f"{seconds:.1f} s"
    minutes, secs = divmod(round(seconds), 60)
    if minutes < 60:
        return f"{minutes} min {secs:02d} s"
    hours, minutes = divmod(minutes, 60)
    return f"{hours} h {minutes:02d} min"


def size(nbytes: int | float | None, *, missing: str = MISSING) -> str:
    """A byte count, 1024-based: ``512 B``, ``3.06 KiB``, ``241 KiB``, ``1.6 MiB``,
    ``1,641.6 MiB``, ``26.8 GiB``.

    Below 1 MiB the figure is in KiB with three significant digits (so a small model's memory
    does not read ``0.0 MiB``); from 1 MiB it is in MiB with one decimal, the memory tables'
    unit, up to ``GIB_FROM`` (10,000 MiB), then in GiB with one decimal. None or NaN ->
    ``missing``.

    Raises:
        ValueError: ``nbytes`` is negative.
    """
    if _absent(nbytes):
        return missing
    if nbytes < 0:
        raise ValueError(f"a size in bytes is >= 0, got {nbytes!r}")
    if nbytes < KIB:
        return f"{nbytes:,.0f} B"
    if nbytes >= GIB_FROM:
        return f"{nbytes / GIB:,.1f} GiB"
    kib = nbytes / KIB
    decimals = 0 if kib >= 99.95 else 1 if kib >= 9.995 else 2
    if round(kib, decimals) < KIB:
        return f"{kib:,.{decimals}f} KiB"
    return f"{nbytes / MIB:,.1f} MiB"


def count(n: int | float | None, unit: str | None = None, digits: int = 3) -> str:
    """A count scaled by powers of 1000, with ``digits`` decimals: ``0.718 G``, ``36.58 M``.

    Args:
        n: what is counted (parameters, multiply-adds).
        unit: the unit to show ("K", "M", "G", "T", or "" for none); while fewer than two
            significant digits would show in it, the next smaller unit is used instead, so
            LeNet-5's 429,332 multiply-adds in "G" read ``0.429 M``, not ``0.000 G``. Default:
            the largest unit in which ``n`` is at least 1.
        digits: decimals shown.

    Below the unit "" (``n`` smaller than 1000 after falling back), the count is printed whole
    with thousands separators when it is an integer. None or NaN -> ``n/a``.
    """
    if _absent(n):
        return MISSING
    names = list(COUNT_UNITS)
    if unit is None:
        unit = next((u for u in reversed(names) if abs(n) >= COUNT_UNITS[u]), "")
    if unit not in COUNT_UNITS:
        raise ValueError(f"unknown unit {unit!r}: use one of {names}")
    smallest_shown = 10 ** (1 - digits)  # two significant digits: 0.01 at three decimals
    k = names.index(unit)
    while k > 0 and abs(round(n / COUNT_UNITS[names[k]], digits)) < smallest_shown:
        k -= 1
    if k == 0 and isinstance(n, int):
        return f"{n:,}"
    scaled = n / COUNT_UNITS[names[k]]
    return f"{scaled:,.{digits}f}" + (f" {names[k]}" if names[k] else "")


def count_unit(n: float) -> tuple[str, int]:
    """The unit ("", "K", "M", "G", "T") in which ``n`` reads at least 1, and its factor: for an
    axis or a column that holds counts up to ``n`` (``count_unit(429_332)`` -> ``("K", 1000)``)."""
    name = next((u for u in reversed(COUNT_UNITS) if abs(n) >= COUNT_UNITS[u]), "")
    return name, COUNT_UNITS[name]


def size_unit(nbytes: float) -> tuple[str, int]:
    """The 1024-based unit ("B", "KiB", "MiB", "GiB") for sizes up to ``nbytes``, and its factor,
    chosen as :func:`size` chooses (``size_unit(35_000)`` -> ``("KiB", 1024)``)."""
    if nbytes >= GIB_FROM:
        return "GiB", GIB
    if nbytes >= MIB:
        return "MiB", MIB
    return ("KiB", KIB) if nbytes >= KIB else ("B", 1)
