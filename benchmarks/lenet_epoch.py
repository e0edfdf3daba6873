"""One LeNet-5 epoch, whole process: ``cnnlab train lenet5 --epochs 1`` against the tutorial way.

Both sides are timed as whole processes, from just before the process is started to its exit, so
interpreter start-up, importing torch, reading the dataset, the training epoch and the test
evaluation are inside both figures:

* **cnnlab** -- the command a user types, ``cnnlab train lenet5 --epochs 1`` (the fast recipe:
  the dataset held in memory as uint8, batches augmented whole, bf16 and channels-last where the
  model's family row says so; it also validates on 5,000 held-out images and writes a checkpoint,
  the figures and the run directory).
* **tutorial** -- the pipeline the PyTorch tutorials teach (benchmarks/tutorial.py, without
  cnnlab's training code): ``torchvision.datasets.FashionMNIST`` with per-sample
  ``RandomCrop(28, padding=2)``, ``RandomHorizontalFlip``, ``ToTensor`` and ``Normalize``, a
  ``DataLoader`` with 2 worker processes and batch 128, SGD with momentum, fp32, then the test
  set through a ``DataLoader`` of 1,000. The model is the same LeNet-5 (``cnnlab.create_model``),
  so the two differ only in the pipeline.

* **floor** -- ``python -c FLOOR_CODE``: import torch and build one optimizer, nothing else; no
  process that trains with torch.optim can finish sooner, so it shows how much of the goal's time
  (the tutorial's over 4) is left for the work itself.

The three alternate (floor, tutorial, cnnlab, floor, ...) so that a change in the machine's load
hits all; the medians give the speedup (the goal: 4x)::

    python benchmarks/lenet_epoch.py --repeats 3 --json benchmarks/results/lenet_epoch.json
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

TARGET_SPEEDUP = 4.0
TUTORIAL_BATCH = 128
TUTORIAL_WORKERS = 2
TUTORIAL_PADDING = 2  # the crop padding of cnnlab's fast recipe, so both see the same crops
# The floor under any PyTorch training process: start Python, import torch, build one optimizer.
# The optimizer counts because torch.optim's first use imports torch._dynamo (its methods are
# wrapped by torch._disable_dynamo, which imports the compiler lazily): about 0.9 s here, paid by
# every process that trains with torch.optim, the tutorial's and cnnlab's alike.
FLOOR_CODE = "import torch; torch.optim.SGD([torch.zeros(1, requires_grad=True)], lr=0.1)"


def tutorial_child(root: Path) -> None:
    """The tutorial's epoch (run in its own process by :func:`time_process`); prints a JSON line.

    The pipeline is benchmarks/tutorial.py's, with augmentation and DataLoader workers.
    """
    import torch
    from tutorial import train_and_test, tutorial_dataset  # benchmarks/tutorial.py

    import cnnlab

    train_set = tutorial_dataset(root, True, 28, crop_padding=TUTORIAL_PADDING)
    test_set = tutorial_dataset(root, False, 28)
    torch.manual_seed(0)
    model = cnnlab.create_model("lenet5")
    accuracy = train_and_test(model, train_set, test_set, TUTORIAL_BATCH, TUTORIAL_WORKERS)
    print(json.dumps({"test_accuracy": accuracy}))


def time_process(command: list[str]) -> dict[str, Any]:
    """Wall seconds of ``command`` from start to exit, and the load average around it."""
    load = os.getloadavg()[0]
    usage0 = resource.getrusage(resource.RUSAGE_CHILDREN)
    t0 = time.perf_counter()
    done = subprocess.run(command, capture_output=True, text=True)
    seconds = time.perf_counter() - t0
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    # CPU seconds of the process and the children it waited for (the DataLoader's workers): on a
    # busy machine a steadier guide than the wall time.
    cpu = sum(getattr(usage, f) - getattr(usage0, f) for f in ("ru_utime", "ru_stime"))
    if done.returncode != 0:
        raise SystemExit(f"{' '.join(command)} failed:\n{done.stdout[-2000:]}{done.stderr[-2000:]}")
    return {
        "seconds": round(seconds, 2),
        "cpu_seconds": round(cpu, 2),
        "load_average_before": round(load, 2),
        "load_average_after": round(os.getloadavg()[0], 2),
        "stdout_tail": done.stdout.strip().splitlines()[-1:],
    }


def cnnlab_command() -> list[str]:
    script = Path(sys.executable).parent / "cnnlab"
    return [str(script)] if script.exists() else [sys.executable, "-m", "cnnlab"]


def measure(repeats: int, work: Path) -> dict[str, Any]:
    # benchmarks/tutorial.py puts cnnlab's located IDX files where torchvision reads them.
    from tutorial import make_tutorial_root

    root = make_tutorial_root(work)
    tutorial = [sys.executable, __file__, "--tutorial-child", str(root)]
    runs: dict[str, list[dict[str, Any]]] = {"tutorial": [], "cnnlab": [], "floor": []}
    for i in range(repeats):
        runs["floor"].append(time_process([sys.executable, "-c", FLOOR_CODE]))
        runs["tutorial"].append(time_process(tutorial))
        ours = [*cnnlab_command(), "train", "lenet5", "--epochs", "1", "--no-progress"]
        runs["cnnlab"].append(time_process([*ours, "--out", str(work / f"run{i}")]))
        result = json.loads((work / f"run{i}" / "results.json").read_text())
        runs["cnnlab"][-1]["test_accuracy"] = result["test"]["top1"]
        runs["tutorial"][-1]["test_accuracy"] = json.loads(runs["tutorial"][-1]["stdout_tail"][0])[
            "test_accuracy"
        ]
    med = {k: statistics.median(r["seconds"] for r in v) for k, v in runs.items()}
    cpu = {k: statistics.median(r["cpu_seconds"] for r in v) for k, v in runs.items()}
    return {
        "tutorial_command": "python benchmarks/lenet_epoch.py --tutorial-child ROOT",
        "cnnlab_command": "cnnlab train lenet5 --epochs 1",
        "floor_command": f"python -c '{FLOOR_CODE}'",
        # The goal's time for the whole cnnlab process, and how much of it the floor leaves.
        "target_seconds": round(med["tutorial"] / TARGET_SPEEDUP, 2),
        "floor_share_of_target": round(med["floor"] / (med["tutorial"] / TARGET_SPEEDUP), 2),
        "median_seconds": med,
        "speedup": round(med["tutorial"] / med["cnnlab"], 2),
        "median_cpu_seconds": cpu,
        "cpu_speedup": round(cpu["tutorial"] / cpu["cnnlab"], 2),
        "target_speedup": TARGET_SPEEDUP,
        "runs": runs,
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=3, help="processes of each kind")
    parser.add_argument("--json", type=Path, help="write the result JSON here")
    parser.add_argument("--tutorial-child", type=Path, metavar="ROOT", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.tutorial_child:
        tutorial_child(args.tutorial_child)
        return 0
    from machine import header, write_result  # benchmarks/machine.py

    with tempfile.TemporaryDirectory(prefix="cnnlab-lenet-epoch-") as tmp:
        result = {**header("lenet_epoch"), **measure(args.repeats, Path(tmp))}
    if args.json:
        write_result(args.json, result)
    med = result["median_seconds"]
    print(
        f"LeNet-5 epoch, whole process: tutorial {med['tutorial']:.1f} s, cnnlab "
        f"{med['cnnlab']:.1f} s: {result['speedup']}x (goal {TARGET_SPEEDUP}x); in CPU seconds "
        f"{result['cpu_speedup']}x; load average {result['machine']['load_average'][0]}"
    )
    print(
        f"the goal needs the whole process in {result['target_seconds']:.2f} s; importing torch "
        f"and building one optimizer take {med['floor']:.2f} s of it"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
