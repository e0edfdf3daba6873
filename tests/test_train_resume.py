"""Exact resume: a run killed with SIGKILL at a random point and resumed ends bitwise equal.

Two training subprocesses on the same small Fashion-MNIST subset and seed: one runs through; the
other is killed (SIGKILL, no chance to clean up) at a random moment after its first checkpoint,
then restarted with ``--resume``. On the CPU the two final ``model.safetensors`` and
``model_best.safetensors`` must hold the same tensors bit for bit, the metrics history must agree on
everything but timings, and so must the best-epoch and early-stopping state of the last checkpoint.
"""

from __future__ import annotations

import json
import random
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from safetensors.torch import load_file

from cnnlab.run.checkpoints import list_checkpoints
from helpers import subprocess_env
from helpers.datasets import needs_fashion_mnist
from helpers.runs import SMALL, TIMINGS, bitwise_differences, weights

ARGS = [
    "train",
    "tinynet",
    "--limit-train",
    "1024",
    "--val-size",
    "500",
    "--limit-test",
    "500",
    "--epochs",
    "3",
    "--batch-size",
    "64",
    "--checkpoint-every",
    "5",
    "--seed",
    "7",
    "--no-progress",
    "--threads",
    "1",
    "--device",
    "cpu",
    # The early-stopping counter runs (3 epochs: it can never stop the run); tinynet may sit at
    # chance for an epoch on this little data, so the stall guard is off.
    "--early-stop",
    "2",
    "--stall-patience",
    "0",
]


def _cmd(out: Path, *extra: str) -> list[str]:
    """``cnnlab ARGS --out OUT EXTRA`` with tinynet registered (``helpers/tinynet_cli.py``)."""
    return [sys.executable, "-m", "helpers.tinynet_cli", *ARGS, "--out", str(out), *extra]


def _env() -> dict[str, str]:
    # 20 ms a step: 48 steps take at least ~1 s, so a kill up to 0.5 s after the first checkpoint
    # (step 5) always lands mid-training, however fast the machine.
    return subprocess_env(TINYNET_STEP_DELAY="0.02")


@needs_fashion_mnist
@pytest.mark.slow
def test_sigkill_then_resume_is_bitwise_identical(tmp_path: Path) -> None:
    straight, killed = tmp_path / "straight", tmp_path / "killed"
    first = subprocess.Popen(
        _cmd(straight), env=_env(), stdout=subprocess.DEVNULL, stderr=subprocess.PIPE
    )
    victim = subprocess.Popen(
        _cmd(killed), env=_env(), stdout=subprocess.DEVNULL, stderr=subprocess.PIPE
    )
    # Kill at a random moment once the first checkpoint exists (possibly mid-write of the next).
    deadline = time.monotonic() + 120
    while not list((killed / "checkpoints").glob("step-*.json")):
        assert victim.poll() is None, victim.stderr.read().decode()
        assert time.monotonic() < deadline, "no checkpoint appeared"
        time.sleep(0.02)
    time.sleep(random.uniform(0.0, 0.5))
    assert victim.poll() is None, "the run finished before it could be killed; slow it down"
    victim.send_signal(signal.SIGKILL)
    victim.wait()
    assert not (killed / "model.safetensors").exists()
    steps_at_kill = sorted(p.name for p in (killed / "checkpoints").glob("step-*.json"))

    resumed = subprocess.run(
        _cmd(killed, "--resume"), env=_env(), capture_output=True, text=True, timeout=180
    )
    assert resumed.returncode == 0, resumed.stderr
    assert "resumed" in resumed.stdout, resumed.stdout
    assert first.wait(timeout=180) == 0, first.stderr.read().decode()

    differ = bitwise_differences(weights(straight), weights(killed))
    assert differ == [], f"{differ} differ after resume (killed after {steps_at_kill})"
    best = [load_file(str(run / "model_best.safetensors")) for run in (straight, killed)]
    assert bitwise_differences(*best) == [], f"model_best differs (killed after {steps_at_kill})"
    watches = [
        json.loads(list_checkpoints(run / "checkpoints")[-1].read_text())["watch"]
        for run in (straight, killed)
    ]
    assert watches[0] == watches[1] and watches[0]["best_epoch"] >= 1
    history = [
        [
            {k: v for k, v in json.loads(line).items() if k not in TIMINGS}
            for line in (run / "metrics.jsonl").read_text().splitlines()
        ]
        for run in (straight, killed)
    ]
    assert history[0] == history[1], f"killed after {steps_at_kill}"
    assert len(history[0]) == 3
    # Only the last two checkpoints are kept, and no temporary file is left behind.
    assert len(list((killed / "checkpoints").glob("step-*.json"))) == 2
    assert not list((killed / "checkpoints").glob(".*.tmp"))


def _edit_records(run: Path, change) -> list[Path]:
    """Rewrite every checkpoint record of ``run`` with ``change(record)``; oldest first."""
    found = list_checkpoints(run / "checkpoints")
    for path in found:
        path.write_text(json.dumps(change(json.loads(path.read_text()))))
    return found


def _unfinished_copy(straight: Path, out: Path) -> Path:
    shutil.copytree(straight, out)
    for name in ("results.json", "model.safetensors"):
        (out / name).unlink()
    return out


@needs_fashion_mnist
def test_resume_falls_back_past_checkpoints_it_cannot_use(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """A newest checkpoint whose record was edited is skipped like a torn one; checkpoints that
    validate but cannot be restored (records of weights only) are skipped with a note, and with
    none left the run starts over. Either way the run ends bitwise as the uninterrupted one."""
    import helpers.models  # noqa: F401  (registers tinynet)
    from cnnlab.cli import main

    args = ["train", "tinynet", *SMALL, "--checkpoint-every", "3"]  # checkpoints 6 and 8 kept
    straight = tmp_path / "straight"
    assert main([*args, "--out", str(straight)]) == 0
    want = weights(straight)

    edited = _unfinished_copy(straight, tmp_path / "edited")
    older, newest = list_checkpoints(edited / "checkpoints")
    record = json.loads(newest.read_text())
    newest.write_text(json.dumps({**record, "epoch": "1"}))  # valid JSON, wrong type
    capsys.readouterr()
    assert main([*args, "--out", str(edited), "--resume"]) == 0
    out = capsys.readouterr().out
    assert f"skipping damaged checkpoint: damaged run {edited}: checkpoints/{newest.name}" in out
    assert f"resumed {edited} from {older.name}" in out
    assert bitwise_differences(weights(edited), want) == []

    bare = _unfinished_copy(straight, tmp_path / "bare")
    pair_fields = ("format", "step", "tensors_file", "tensors_bytes", "tensors_sha256")
    older, newest = _edit_records(bare, lambda r: {k: r[k] for k in pair_fields})
    assert main([*args, "--out", str(bare), "--resume"]) == 0
    out = capsys.readouterr().out
    for name in (newest.name, older.name):
        assert f"note: cannot resume from {name} ({name}: it holds no training state" in out
    assert "could be restored; --resume starts from the beginning" in out
    assert bitwise_differences(weights(bare), want) == []
