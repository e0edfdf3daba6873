"""DDP under ``torchrun``: 2 CPU processes (gloo) equal 1 process on the same global batch.

``cnnlab train`` treats ``--batch-size`` as the global batch: each of the two ranks takes half of
every (identically drawn and augmented) batch and DDP averages the gradients, so for a model
without batch norm and dropout (``lenet5``) the final weights must equal a single-process run's
up to floating-point summation order. The test also checks, with an audit hook in each rank, that
only rank 0 created, renamed or wrote anything in the run directory, and that a DDP run killed with
SIGKILL and resumed under ``torchrun`` ends bitwise equal to an uninterrupted DDP run.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file

from helpers import TESTS_DIR, subprocess_env
from helpers.datasets import needs_fashion_mnist

pytestmark = [needs_fashion_mnist, pytest.mark.slow]

# Everything that could differ between a 1- and a 2-process run is pinned: recipe fields, seed,
# threads. lenet5 has neither batch norm (per-rank statistics) nor dropout (per-rank RNG).
TRAIN = [  # the flags of `cnnlab train`
    "lenet5",
    "--recipe",
    "paper",
    "--optimizer",
    "sgd",
    "--lr",
    "0.05",
    "--momentum",
    "0.9",
    "--weight-decay",
    "5e-4",
    "--schedule",
    "constant",
    "--augment",
    "crop",
    "--crop-padding",
    "2",
    "--precision",
    "fp32",
    "--no-channels-last",
    "--batch-size",
    "64",
    "--limit-train",
    "1280",
    "--val-size",
    "500",
    "--limit-test",
    "500",
    "--seed",
    "11",
    "--threads",
    "1",
    "--device",
    "cpu",
    "--no-progress",
]

# `cnnlab train` with each rank's writes under the run directory recorded (and, on request, a
# slow rank 1): a script, because torchrun starts its workers from a file.
RUNNER = TESTS_DIR / "helpers" / "ddp_runner.py"


def _env(run: Path, log: Path, **extra: str) -> dict[str, str]:
    return subprocess_env(
        OMP_NUM_THREADS="1", CNNLAB_TEST_WATCH=str(run), CNNLAB_TEST_LOG=str(log), **extra
    )


def _torchrun(runner: Path, *args: str, nproc: int = 2) -> list[str]:
    return [
        sys.executable,
        "-m",
        "torch.distributed.run",
        "--standalone",
        "--nproc_per_node",
        str(nproc),
        str(runner),
        *args,
    ]


def _run(cmd: list[str], env: dict[str, str], timeout: float = 300) -> subprocess.CompletedProcess:
    proc = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=timeout)
    assert proc.returncode == 0, proc.stdout[-2000:] + proc.stderr[-4000:]
    return proc


def _weights(run: Path) -> dict[str, torch.Tensor]:
    return load_file(str(run / "model.safetensors"))


def _children(pid: int) -> list[int]:
    """Direct child processes of ``pid`` (Linux /proc)."""
    path = Path(f"/proc/{pid}/task/{pid}/children")
    return [int(c) for c in path.read_text().split()] if path.exists() else []


def _alive(pid: int) -> bool:
    """True while ``pid`` runs (a zombie awaiting its parent counts as dead)."""
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0] != "Z"
    except (FileNotFoundError, ProcessLookupError):
        return False


def test_two_process_ddp_equals_single_process(tmp_path: Path) -> None:
    single, ddp = tmp_path / "single", tmp_path / "ddp"
    logs = tmp_path / "log"
    logs.mkdir()
    _run(
        [sys.executable, str(RUNNER), *TRAIN, "--epochs", "1", "--out", str(single)],
        _env(single, logs / "single"),
    )
    proc = _run(
        _torchrun(RUNNER, *TRAIN, "--epochs", "1", "--out", str(ddp)), _env(ddp, logs / "ddp")
    )
    assert "x2 ranks" in proc.stdout  # the trainer saw the process group

    a, b = _weights(single), _weights(ddp)
    assert a.keys() == b.keys()
    worst = max(float((a[k] - b[k]).abs().max()) for k in a)
    for k in a:
        torch.testing.assert_close(b[k], a[k], rtol=1e-4, atol=1e-5, msg=lambda m, k=k: f"{k}: {m}")
    assert worst > 0 or all(torch.equal(a[k], b[k]) for k in a)

    # Same metrics (all-reduced over ranks) up to rounding, same epochs and steps.
    hist_a = [json.loads(x) for x in (single / "metrics.jsonl").read_text().splitlines()]
    hist_b = [json.loads(x) for x in (ddp / "metrics.jsonl").read_text().splitlines()]
    assert [h["step"] for h in hist_a] == [h["step"] for h in hist_b] == [20]
    for ha, hb in zip(hist_a, hist_b, strict=True):
        assert hb["train_loss"] == pytest.approx(ha["train_loss"], rel=1e-4)
        assert hb["val_acc"] == pytest.approx(ha["val_acc"], abs=1 / 500 + 1e-9)

    # Same files, and only rank 0 touched the run directory.
    def files(run: Path) -> list[str]:
        return sorted(str(p.relative_to(run)) for p in run.rglob("*") if p.is_file())

    assert files(ddp) == files(single)
    rank0 = json.loads((logs / "ddp.0").read_text())
    rank1 = json.loads((logs / "ddp.1").read_text())
    assert rank1 == [], f"rank 1 wrote into the run directory: {rank1[:5]}"
    written = {Path(p).name for _, p in rank0}
    assert {"config.json", "metrics.jsonl"} <= written
    assert "model.safetensors" in written


def test_ddp_run_killed_and_resumed_equals_uninterrupted(tmp_path: Path) -> None:
    args = [*TRAIN, "--epochs", "2", "--checkpoint-every", "3"]
    straight, killed = tmp_path / "straight", tmp_path / "killed"
    logs = tmp_path / "log"
    logs.mkdir()
    first = subprocess.Popen(
        _torchrun(RUNNER, *args, "--out", str(straight)),
        env=_env(straight, logs / "straight"),
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    victim = subprocess.Popen(
        _torchrun(RUNNER, *args, "--out", str(killed)),
        env=_env(killed, logs / "killed"),
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )
    deadline = time.monotonic() + 240
    while not list((killed / "checkpoints").glob("step-*.json")):
        assert victim.poll() is None, victim.stderr.read().decode()[-3000:]
        assert time.monotonic() < deadline, "no checkpoint appeared"
        time.sleep(0.01)
    assert victim.poll() is None, "the run finished before it could be killed"
    # torchrun starts each worker in a session of its own, so killing the agent (or its process
    # group) would leave the workers running: kill the workers and the agent, all with SIGKILL.
    workers = [
        pid
        for pid in _children(victim.pid)
        if str(RUNNER) in Path(f"/proc/{pid}/cmdline").read_bytes().decode(errors="replace")
    ]
    assert len(workers) == 2, f"expected 2 workers under torchrun, found {workers}"
    for pid in [*workers, victim.pid]:
        os.kill(pid, signal.SIGKILL)
    victim.wait()
    victim.stderr.close()
    deadline = time.monotonic() + 30
    while any(_alive(pid) for pid in workers):
        assert time.monotonic() < deadline, "the workers survived SIGKILL"
        time.sleep(0.05)
    assert not (killed / "model.safetensors").exists()

    # Resuming with another number of processes is refused with a message naming the fix.
    wrong = subprocess.run(
        [sys.executable, "-m", "cnnlab", "train", *args, "--out", str(killed), "--resume"],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert wrong.returncode == 2
    assert "--nproc_per_node 2" in wrong.stderr and "Traceback" not in wrong.stderr

    proc = _run(
        _torchrun(RUNNER, *args, "--out", str(killed), "--resume"), _env(killed, logs / "resumed")
    )
    assert "resumed" in proc.stdout
    assert first.wait(timeout=300) == 0
    a, b = _weights(straight), _weights(killed)
    assert a.keys() == b.keys()
    for k in a:
        assert torch.equal(a[k], b[k]), f"{k} differs after a DDP resume"
    assert json.loads((logs / "resumed.1").read_text()) == []


# Regression test: rank 1 reaches the run-directory check 8 s late, long after rank 0 could have
# written config.json; it must not mistake rank 0's new run for an old one (the trainer has a
# barrier between every rank's check and rank 0's first write). The runner's callback sleeps in
# rank 1's on_setup.
def test_slow_rank_does_not_mistake_rank0s_new_run_for_an_old_one(tmp_path: Path) -> None:
    out, logs = tmp_path / "run", tmp_path / "log"
    logs.mkdir()
    proc = subprocess.run(
        _torchrun(RUNNER, *TRAIN, "--epochs", "1", "--out", str(out)),
        env=_env(out, logs / "slow", CNNLAB_TEST_SLOW_RANK1="8"),
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert proc.returncode == 0, proc.stderr[-1500:]
