"""What a benchmark result was measured on: one description shared by every benchmark script.

Scripts run as ``python benchmarks/NAME.py``, so this module is importable as ``machine``.
"""

from __future__ import annotations

import os
import platform
from pathlib import Path
from typing import Any


def cpu_model() -> str:
    """The CPU's marketing name from /proc/cpuinfo (what `lscpu` shows), else platform's guess."""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


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
    }
