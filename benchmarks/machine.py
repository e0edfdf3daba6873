"""What a benchmark result was measured on: one description shared by every benchmark script.

Scripts run as ``python benchmarks/NAME.py``, so this module is importable as ``machine``.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

from cnnlab.run.device import cpu_model, describe_machine  # noqa: F401  (scripts import cpu_model)


def describe() -> dict[str, Any]:
    """The machine (:func:`cnnlab.run.device.describe_machine`: CPU, cores, threads, versions, the
    load average now)."""
    return describe_machine()


def header(benchmark: str) -> dict[str, Any]:
    """The fields every result JSON starts with: which benchmark, the command line, the machine."""
    return {
        "benchmark": benchmark,
        "benchmark_command": " ".join(["python", *sys.argv]),
        "machine": describe(),
    }


def write_result(path: Path, result: dict[str, Any]) -> None:
    """Write a result JSON (indented, newline-terminated), creating its folder."""
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(result, indent=2) + "\n")
