"""The hostile-input suites' case counts, for ``benchmarks/reliability.py --only hostile``.

The suites run each hostile case and assert it ended cleanly (exit 0 or 2 with one line, no
traceback, no hang, the right answer). A suite that runs its cases in a loop calls
:func:`record` with its count and failures; a suite with one test per case is counted by the
``hostile`` marker (``conftest.py``). Nothing is written unless :data:`ENV` names a file, so the
normal test run is unchanged.
"""

from __future__ import annotations

import json
import os

ENV = "CNNLAB_HOSTILE_TALLY"  # a JSON-lines file each case group appends its count to


def record(surface: str, cases: int, failures: list[str]) -> None:
    """Append one group's count: ``cases`` bad inputs of ``surface``, of which ``failures``
    (one line each: the case and what went wrong) did not end cleanly."""
    path = os.environ.get(ENV)
    if not path:
        return
    line = json.dumps({"surface": surface, "cases": cases, "failures": failures})
    with open(path, "a", encoding="utf-8") as f:  # one write per line: safe across xdist workers
        f.write(line + "\n")
