"""Measured cost on this machine: latency of a forward pass or a training step, and peak memory.

Shared by the ``kernel-stacks``, ``bottleneck`` and ``cost`` experiments. Timing on a shared
2-core machine is noisy, so every measurement says how it was taken: the median of ``repeats``
timed calls after ``warmup`` untimed ones, the threads torch used, and the machine's load
average (``os.getloadavg()``) before and after.

Peak memory (:func:`peak_memory`) is measured in a fresh Python process per model, so one model's
allocator cache cannot hide another's: the process builds the model, resets the kernel's
high-water mark of its resident set (writing ``5`` to ``/proc/self/clear_refs``, Linux 4.0+),
runs one warm-up and the timed forward passes and reads ``VmHWM`` from ``/proc/self/status``.
The result is the peak resident memory of the whole process during inference (weights,
activations, allocator caches, the Python interpreter and the torch libraries) and, beside it,
the increment over the resident memory of the built model before any pass (activations,
workspaces and the first pass's one-time allocations).
"""

from __future__ import annotations

import json
import os
import statistics
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager, contextmanager, nullcontext
from typing import Any

PRECISIONS = ("fp32", "bf16")


def machine_load() -> dict[str, Any]:
    """The 1-, 5- and 15-minute load averages and torch's thread count, for noisy timings."""
    import torch

    return {"loadavg": [round(v, 2) for v in os.getloadavg()], "threads": torch.get_num_threads()}


def time_calls(fn: Callable[[], Any], repeats: int, warmup: int = 1) -> dict[str, Any]:
    """Seconds per call of ``fn``: median and minimum of ``repeats`` calls after ``warmup``.

    Returns:
        ``{"median_s", "min_s", "times_s", "loadavg_before", "loadavg_after"}``.
    """
    if repeats < 1:
        raise ValueError(f"repeats must be at least 1, got {repeats}")
    before = [round(v, 2) for v in os.getloadavg()]
    for _ in range(warmup):
        fn()
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return {
        "median_s": statistics.median(times),
        "min_s": min(times),
        "times_s": times,
        "loadavg_before": before,
        "loadavg_after": [round(v, 2) for v in os.getloadavg()],
    }


def _autocast(precision: str) -> AbstractContextManager:
    import torch

    if precision not in PRECISIONS:
        raise ValueError(f"precision must be one of {PRECISIONS}, got {precision!r}")
    if precision == "bf16":
        return torch.autocast("cpu", dtype=torch.bfloat16)
    return nullcontext()


def forward_latency(
    model: Any, x: Any, *, repeats: int, warmup: int = 1, precision: str = "fp32"
) -> dict[str, Any]:
    """Seconds per forward pass of ``model`` (eval mode, no gradients) on the batch ``x``.

    Returns:
        :func:`time_calls`'s record plus ``per_image_s`` (the median over the batch size).
    """
    import torch

    model.eval()

    def forward() -> None:
        with torch.inference_mode(), _autocast(precision):
            model(x)

    record = time_calls(forward, repeats, warmup)
    record["per_image_s"] = record["median_s"] / len(x)
    return record


def backward_latency(
    model: Any, x: Any, *, repeats: int, warmup: int = 1, precision: str = "fp32"
) -> dict[str, Any]:
    """Seconds per forward and backward pass of a module with no loss of its own (a block).

    The gradient of ``output.sum()`` flows back through every layer, as a loss's would; no
    optimizer step (a block has no classifier to train). Train mode (batch statistics).

    Returns:
        :func:`time_calls`'s record plus ``per_image_s``.
    """
    model.train()

    def step() -> None:
        model.zero_grad(set_to_none=True)
        with _autocast(precision):
            out = model(x)
        out.float().sum().backward()

    record = time_calls(step, repeats, warmup)
    record["per_image_s"] = record["median_s"] / len(x)
    return record


def train_step_latency(
    model: Any, x: Any, y: Any, *, repeats: int, warmup: int = 1, precision: str = "fp32"
) -> dict[str, Any]:
    """Seconds per training step (forward, cross-entropy, backward, SGD update) on ``(x, y)``.

    The step is cnnlab's own (:func:`cnnlab.train.step.train_step`) with SGD and momentum 0.9,
    the model in train mode (batch norm on batch statistics). The model's weights change.

    Returns:
        :func:`time_calls`'s record plus ``per_image_s``.
    """
    import torch

    from cnnlab.run.config import TrainConfig
    from cnnlab.train.step import train_step

    config = TrainConfig(
        precision=precision, label_smoothing=0.0, grad_clip=0.0, aux_loss_weight=0.3
    )
    model.train()
    optimizer = torch.optim.SGD(model.parameters(), lr=1e-3, momentum=0.9)

    def step() -> None:
        train_step(model, optimizer, x, y, config, _autocast(precision))

    record = time_calls(step, repeats, warmup)
    record["per_image_s"] = record["median_s"] / len(x)
    return record


@contextmanager
def torch_threads(threads: int) -> Iterator[None]:
    """Run the block with ``threads`` torch threads (0: leave as is), then restore the count.

    One thread is the steadier clock on a shared machine: a 2-thread operation waits at every
    barrier for whichever core another process holds.
    """
    import torch

    before = torch.get_num_threads()
    if threads:
        torch.set_num_threads(threads)
    try:
        yield
    finally:
        torch.set_num_threads(before)


def time_model(
    model: Any,
    input_size: tuple[int, ...],
    *,
    batch: int,
    repeats: int,
    threads: int = 1,
    precisions: tuple[str, ...] = ("fp32",),
    num_classes: int = 10,
) -> dict[str, Any]:
    """Forward latency at batch 1 and per image at ``batch``, and training time per image.

    Args:
        model: the network (its weights change: the training steps update them).
        input_size: (C, H, W) of one image; inputs are random (timing does not depend on them).
        batch: images per batch for the throughput figures.
        repeats: timed calls per figure (median and minimum kept), after one warm-up.
        threads: torch threads while timing (0: the process's current count).
        precisions: "fp32" and/or "bf16" (autocast).

    Returns:
        ``{precision: {"forward_batch1_s", "forward_batch1_min_s", "forward_per_image_s",
        "train_per_image_s", "train_per_image_min_s"}, "batch", "repeats", "machine"}``.
    """
    import torch

    gen = torch.Generator().manual_seed(0)
    one = torch.randn(1, *input_size, generator=gen)
    xs = torch.randn(batch, *input_size, generator=gen)
    ys = torch.randint(0, num_classes, (batch,), generator=gen)
    out: dict[str, Any] = {"batch": batch, "repeats": repeats}
    with torch_threads(threads):
        out["machine"] = machine_load()
        for precision in precisions:
            single = forward_latency(model, one, repeats=repeats, precision=precision)
            many = forward_latency(model, xs, repeats=repeats, precision=precision)
            train = train_step_latency(model, xs, ys, repeats=repeats, precision=precision)
            out[precision] = {
                "forward_batch1_s": single["median_s"],
                "forward_batch1_min_s": single["min_s"],
                "forward_per_image_s": many["per_image_s"],
                "train_per_image_s": train["per_image_s"],
                "train_per_image_min_s": train["min_s"] / batch,
            }
        out["machine_after"] = machine_load()
    return out


# --- peak memory, in a fresh process per model ----------------------------------------------------


def _status_kib(field: str) -> int:
    """A ``VmRSS``/``VmHWM`` line of ``/proc/self/status``, in KiB."""
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith(field + ":"):
                return int(line.split()[1])
    raise OSError(f"/proc/self/status has no {field} line (Linux only)")


def measure_in_this_process(
    name: str, input_size: tuple[int, ...], repeats: int, threads: int = 0
) -> dict:
    """Build registered model ``name``, time batch-1 fp32 inference and read peak memory.

    Meant for a fresh process (:func:`peak_memory` starts one), where the peak belongs to this
    model alone; in a process that ran other models before, the allocator's cache can hide part
    of the rise. ``threads``: torch threads while timing (0: unchanged). See the module
    docstring.
    """
    import torch

    from cnnlab.registry import create_model

    torch.manual_seed(0)
    model = create_model(name).eval()
    x = torch.randn(1, *input_size)
    rss_before = _status_kib("VmRSS")
    with open("/proc/self/clear_refs", "w") as f:
        f.write("5")  # reset VmHWM to the current resident set: the model built, nothing run
    with torch_threads(threads):
        record = forward_latency(model, x, repeats=repeats, warmup=1)
        used = torch.get_num_threads()
    peak = _status_kib("VmHWM")
    record.update(
        peak_rss_bytes=peak * 1024,
        rss_before_bytes=rss_before * 1024,
        inference_increment_bytes=max(0, peak - rss_before) * 1024,
        threads=used,
    )
    return record


def peak_memory(
    name: str, input_size: tuple[int, ...], repeats: int, threads: int = 0, timeout_s: float = 600
) -> dict[str, Any]:
    """:func:`measure_in_this_process` run in a fresh Python process; its record.

    Raises:
        RuntimeError: the process failed (its last line of error output is in the message).
    """
    size = ",".join(str(int(s)) for s in input_size)
    done = subprocess.run(
        [
            sys.executable,
            "-m",
            "cnnlab.experiments.latency",
            name,
            size,
            str(repeats),
            str(threads),
        ],
        capture_output=True,
        text=True,
        timeout=timeout_s,
    )
    if done.returncode != 0:
        last = (done.stderr.strip().splitlines() or ["no error output"])[-1]
        raise RuntimeError(f"measuring {name} in a subprocess failed: {last}")
    return json.loads(done.stdout.strip().splitlines()[-1])


if __name__ == "__main__":  # the subprocess of peak_memory: NAME C,H,W REPEATS THREADS
    _name, _size, _repeats, _threads = sys.argv[1:5]
    _record = measure_in_this_process(
        _name, tuple(int(s) for s in _size.split(",")), int(_repeats), int(_threads)
    )
    print(json.dumps(_record))
