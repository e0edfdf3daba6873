"""What a benchmark result was measured on: one description shared by every benchmark script.

Scripts run as ``python benchmarks/NAME.py``, so this module is importable as ``machine``.
"""

from __future__ import annotations

import json
import os
import platform
import sys
from pathlib import Path
from typing import Any

from cnnlab.run.device import cpu_model


def describe() -> dict[str, Any]:
    """CPU, cores, torch threads, versions and the load average now (a busy machine's timings
    are pessimistic, so every result records it)."""
    import torch
    import torchvision

    import cnnlab

    return {
        "cpu": cpu_model(),
        "cores": os.cpu_count(),
        "threads": torch.get_num_threads(),
        "torch": torch.__version__,
        "torchvision": torchvision.__version__,
        "cnnlab": cnnlab.__version__,
        "python": platform.python_version(),
        "platform": platform.platform(),
        "load_average": [round(v, 2) for v in os.getloadavg()],
        "gpu": torch.cuda.get_device_name(0) if torch.cuda.is_available() else None,
    }


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
