"""Where a model runs: the device, the CPU thread count, and putting process state back.

``cnnlab train``, ``eval``, ``predict`` and ``show`` all choose a device and a thread count the
same way. Library callers that train or evaluate many times in one process (experiments,
notebooks) wrap the work in :func:`preserved_process_state`, which restores the thread count and
every global RNG afterwards.
"""

from __future__ import annotations

import contextlib
import os
import platform
import random
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import torch

from cnnlab.errors import ConfigError

BUSY_LOAD_PER_CORE = 2  # 1-minute load average per core above which one thread is faster


def pick_device(name: str) -> torch.device:
    """``auto`` is CUDA when available, else the CPU; asking for CUDA without one is an error."""
    if name == "cuda" and not torch.cuda.is_available():
        raise ConfigError("--device cuda: no CUDA device is available; use --device cpu or auto")
    if name == "auto":
        name = "cuda" if torch.cuda.is_available() else "cpu"
    return torch.device(name)


def cpu_model() -> str:
    """The CPU's marketing name from /proc/cpuinfo (what `lscpu` shows), else platform's guess."""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def describe_machine() -> dict[str, Any]:
    """What this process runs on, for every record of a measurement: one description.

    Benchmarks' result files, experiments' results and the report page's "this page" table all
    take their machine facts from here. The load average is part of it because a busy machine's
    timings are pessimistic.

    Returns:
        ``cpu`` (its name), ``cores`` (usable by this process), ``threads`` (torch's intra-op
        count now), ``gpu`` (CUDA device 0's name or None), ``load_average`` (1, 5, 15 minutes, or
        None), and the versions of ``python``, ``torch``, ``torchvision``, ``numpy``, ``cnnlab``
        and the ``platform``.
    """
    import torchvision

    from cnnlab import __version__

    try:
        load: list[float] | None = [round(v, 2) for v in os.getloadavg()]
    except (AttributeError, OSError):
        load = None
    return {
        "cpu": cpu_model(),
        "cores": usable_cores(),
        "threads": torch.get_num_threads(),
        "gpu": torch.cuda.get_device_name(0) if torch.cuda.is_available() else None,
        "load_average": load,
        "python": platform.python_version(),
        "torch": torch.__version__,
        "torchvision": torchvision.__version__,
        "numpy": np.__version__,
        "cnnlab": __version__,
        "platform": platform.platform(),
    }


def usable_cores() -> int:
    """The cores this process may run on (its CPU affinity, not the machine's total)."""
    if hasattr(os, "sched_getaffinity"):
        return len(os.sched_getaffinity(0))
    return os.cpu_count() or 1


def choose_threads(requested: int) -> tuple[int, str | None]:
    """Intra-op threads: ``requested``, or the usable cores split between local DDP ranks.

    On a machine that is already busy (1-minute load average at least twice the core count) more
    than one thread makes PyTorch's OpenMP workers wait on each other: LeNet-5 trained at 270
    images/s with 2 threads and 2,800 with 1 on a loaded 2-core machine (measured here). Then
    one thread is chosen, with a note. Twice the core count, because a run that just finished
    (or this process's own start-up) still weighs on the 1-minute average and must not halve the
    next run's threads.

    Returns:
        The thread count, and a note to print when the machine was busy.
    """
    if requested:
        return requested, None
    cores = usable_cores()
    n = max(1, cores // int(os.environ.get("LOCAL_WORLD_SIZE", "1")))
    load = os.getloadavg()[0] if hasattr(os, "getloadavg") else 0.0
    if n > 1 and load >= BUSY_LOAD_PER_CORE * cores:
        note = (
            f"note: the machine is busy (load {load:.1f} on {cores} cores): training "
            f"with 1 thread instead of {n}; pass --threads {n} to override"
        )
        return 1, note
    return n, None


def set_threads(requested: int) -> tuple[int, str | None]:
    """:func:`choose_threads`, then set it with ``torch.set_num_threads``."""
    n, note = choose_threads(requested)
    torch.set_num_threads(n)
    return n, note


@contextlib.contextmanager
def preserved_process_state() -> Iterator[None]:
    """Run a block, then restore the thread count and the torch, NumPy and Python RNG states.

    Training seeds every global RNG and sets the thread count; an experiment that trains ten
    models in one process, or a notebook cell, must not inherit the last run's settings.
    """
    threads = torch.get_num_threads()
    torch_rng = torch.get_rng_state()
    numpy_rng = np.random.get_state()
    python_rng = random.getstate()
    try:
        yield
    finally:
        torch.set_num_threads(threads)
        torch.set_rng_state(torch_rng)
        np.random.set_state(numpy_rng)
        random.setstate(python_rng)
