"""The reliability trials: crashes, full disks, malicious files and damaged data against cnnlab.

Each trial drives the real code path (``cnnlab train`` in a subprocess, the CLI commands that load
files, or the library reader a command uses) and classifies the outcome as a :class:`Result`.
The tests in this directory run the trials with small counts; ``benchmarks/reliability.py`` runs
them with the full counts and writes the table of ``docs/shipping.md``.

Trials:

* **kill -9 and resume** (:func:`kill_resume_trials`): a training run (``lenet5``, Fashion-MNIST
  subset, 2 epochs, 20 steps, a checkpoint every 3 steps) is SIGKILLed at a random step,
  mid-forward (inside a layer), mid-backward (inside a parameter's gradient hook) or mid-save (at
  each phase of a checkpoint write: tensors file complete but not renamed, JSON record complete
  but not renamed, both committed, an old pair's tensors deleted but not its record), then
  resumed with ``--resume``. Final weights, the best epoch's weights (``model_best.safetensors``),
  the final checkpoint's optimizer state, RNG states and best-epoch/early-stopping counters, and
  every step's loss must be bitwise equal to an uninterrupted run. The faults are injected by
  ``fault_runner.py`` through the trainer's callbacks.
* **kill during checkpoint writes** (:func:`write_kill_trials`): ``checkpoint_writer.py`` saves
  checkpoint pairs (real LeNet-5 state) in a loop and is SIGKILLed after a random delay, so the
  kill lands at a random byte of the write, fsync, rename or pruning. The newest *valid*
  checkpoint must be the last one committed (or the one being committed), load bit-exactly, and
  ``load_trained`` of the directory must load it; no partial or temporary file may ever be loaded.
* **full disk** (:func:`full_disk_trials`): training on a tiny tmpfs that a fault fills at a
  chosen step; the next checkpoint write hits a real ENOSPC. The earlier checkpoints must survive
  intact and a resume on a disk with space must end bitwise equal to an uninterrupted run. (Needs
  root for ``mount -t tmpfs``; skipped otherwise.)
* **malicious files** (:func:`malicious_trials`): pickle payloads (each would create a marker file
  when unpickled) disguised as cnnlab files, through every command that loads a file: ``train
  --resume``, ``eval``, ``predict``, ``export`` and :func:`cnnlab.run.load_trained`. Each payload
  is first shown to be live (``unsafe_load.py`` unpickles it and the marker appears).
* **damaged data** (:func:`damaged_data_trials`): bit flips, truncations and header edits of IDX
  files and of PNG/JPEG/GIF images, plus decompression bombs, through the IDX reader, image
  folders and ``predict``'s image reader, in a watchdog subprocess: every outcome must be a
  decoded array or a :class:`cnnlab.errors.DataError`, within 5 s per file, with bounded memory.
* **image modes** (:func:`image_mode_trials`): ``1, L, LA, P, P+transparency, RGB, RGBA, CMYK,
  I;16, I, F``, EXIF-rotated and animated images, each compared with an independently computed
  expected result.
* **NaN at step k** (:func:`nan_trials`): a forward hook makes the logits NaN at step k; training
  must stop at step k with a one-line error and leave the last checkpoint intact.
"""

from __future__ import annotations

import contextlib
import gzip
import hashlib
import io
import json
import multiprocessing
import os
import pickle
import queue
import random
import shutil
import signal
import subprocess
import sys
import time
import zlib
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from .checkpoint_writer import lenet_state
from .fault_runner import FAULT_ENV, LOSSES_ENV, SAVE_PHASES

HERE = Path(__file__).resolve().parent
PYTHON = sys.executable
HANG_SECONDS = 5.0  # a reader that takes longer on one file counts as hung
MEMORY_LIMIT_MB = 1024  # peak RSS growth allowed while reading damaged files

# A small, fast, deterministic training run (the flags of `cnnlab train`): 640 images,
# batch 64 -> 10 steps per epoch.
TRAIN_STEPS = 20
TRAIN_ARGS = [
    "lenet5",
    "--recipe",
    "paper",
    "--schedule",
    "constant",
    "--lr",
    "0.05",
    "--augment",
    "crop",
    "--crop-padding",
    "2",
    "--precision",
    "fp32",
    "--no-channels-last",
    "--epochs",
    "2",
    "--batch-size",
    "64",
    "--limit-train",
    "640",
    "--val-size",
    "200",
    "--limit-test",
    "200",
    "--checkpoint-every",
    "3",
    "--seed",
    "5",
    "--threads",
    "1",
    "--device",
    "cpu",
    "--no-progress",
    # The best-epoch and early-stopping state must survive a kill too (2 epochs: never stops);
    # the stall guard still counts epochs at chance, but this tiny run must not end on them.
    "--early-stop",
    "1",
    "--stall-patience",
    "0",
]
# Steps after which TRAIN_ARGS checkpoints: every 3 steps inside an epoch, and each epoch end.
SAVE_STEPS = (3, 6, 9, 10, 12, 15, 18, 20)


@dataclass
class Result:
    """One row of the reliability table."""

    trial: str
    count: int
    passed: int
    outcome: str
    details: list[dict[str, Any]] = field(default_factory=list)
    seconds: float = 0.0

    @property
    def ok(self) -> bool:
        return self.passed == self.count


# --- helpers ------------------------------------------------------------------------------------


def _env(**extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("CNNLAB_")}
    for k in ("RANK", "WORLD_SIZE", "LOCAL_RANK", "LOCAL_WORLD_SIZE"):
        env.pop(k, None)
    return env | {"PYTHONHASHSEED": "0", "OMP_NUM_THREADS": "1", **extra}


def run_training(
    work: Path,
    out: Path,
    *,
    fault: str = "",
    losses: Path | None = None,
    resume: bool = False,
    extra: Iterable[str] = (),
    timeout: float = 600,
) -> subprocess.CompletedProcess:
    """One ``cnnlab train`` subprocess (``fault_runner.py``) with an optional fault."""
    cmd = [PYTHON, str(HERE / "fault_runner.py"), *TRAIN_ARGS, *extra, "--out", str(out)]
    if resume:
        cmd.append("--resume")
    env = _env(**{FAULT_ENV: fault, LOSSES_ENV: str(losses) if losses else ""})
    return subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=timeout)


def read_losses(path: Path) -> dict[int, list[str]]:
    """Step -> every loss logged for it (a step re-run after a resume appears twice)."""
    out: dict[int, list[str]] = {}
    if path.exists():
        for line in path.read_text().splitlines():
            step, value = line.split()
            out.setdefault(int(step), []).append(value)
    return out


def final_state(run: Path) -> dict[str, Any]:
    """What must be bitwise equal between runs: final weights, last checkpoint, history."""
    from safetensors.torch import load_file

    from cnnlab.run.checkpoints import latest_valid_checkpoint, load_checkpoint
    from cnnlab.run.layout import BEST_MODEL_FILE, CHECKPOINT_DIR

    latest, _ = latest_valid_checkpoint(run / CHECKPOINT_DIR)
    assert latest is not None, f"{run} has no valid checkpoint"
    tensors, record = load_checkpoint(latest)
    history = [
        {k: v for k, v in h.items() if k not in ("seconds", "images_per_s")}
        for h in record["history"]
    ]
    return {
        "weights": load_file(str(run / "model.safetensors")),
        "best_weights": load_file(str(run / BEST_MODEL_FILE)),
        "checkpoint": tensors,
        "optimizer": record["optimizer"],
        "step": record["step"],
        "history": history,
        "watch": record["watch"],
    }


def _tensors_equal(a: dict[str, Any], b: dict[str, Any]) -> list[str]:
    import torch

    if a.keys() != b.keys():
        return [f"keys differ: {sorted(set(a) ^ set(b))[:5]}"]
    return [k for k in a if not torch.equal(a[k], b[k])]


def compare_runs(reference: dict[str, Any], other: dict[str, Any]) -> list[str]:
    """Everything that differs between two :func:`final_state` results (empty when equal)."""
    problems = []
    if bad := _tensors_equal(reference["weights"], other["weights"]):
        problems.append(f"final weights differ: {bad[:3]}")
    if bad := _tensors_equal(reference["best_weights"], other["best_weights"]):
        problems.append(f"model_best weights differ: {bad[:3]}")
    if bad := _tensors_equal(reference["checkpoint"], other["checkpoint"]):
        problems.append(f"final checkpoint tensors differ (optimizer/RNG/model): {bad[:3]}")
    for key in ("optimizer", "step", "history", "watch"):
        if reference[key] != other[key]:
            problems.append(f"final checkpoint {key} differs")
    return problems


# --- 1. kill -9 at a random point, then resume --------------------------------------------------


def reference_run(work: Path) -> tuple[dict[str, Any], dict[int, list[str]]]:
    """An uninterrupted run (with the same runner, no fault) and its per-step losses."""
    out, losses = work / "reference", work / "reference.losses"
    if not (out / "model.safetensors").exists():
        shutil.rmtree(out, ignore_errors=True)
        losses.unlink(missing_ok=True)
        proc = run_training(work, out, losses=losses)
        if proc.returncode != 0:
            raise RuntimeError(f"reference run failed:\n{proc.stdout[-2000:]}{proc.stderr[-3000:]}")
    return final_state(out), read_losses(losses)


def kill_points(n: int, rng: random.Random) -> list[str]:
    """``n`` faults cycling through forward, backward and save, at random steps."""
    saves = len(SAVE_STEPS)
    points = []
    for i in range(n):
        phase = ("forward", "backward", "save")[i % 3]
        if phase == "save":
            where = SAVE_PHASES[(i // 3) % len(SAVE_PHASES)]
            first = 3 if where == "pruned-tensors" else 1  # pruning starts at the third save
            points.append(f"save:{rng.randint(first, saves - 2)}:{where}")
        else:
            points.append(f"{phase}:{rng.randint(0, TRAIN_STEPS - 2)}")
    return points


def kill_resume_trials(work: Path, n: int, seed: int = 0) -> Result:
    t0 = time.perf_counter()
    reference, ref_losses = reference_run(work)
    details = []
    for i, fault in enumerate(kill_points(n, random.Random(seed))):
        out, losses = work / f"kill{i}", work / f"kill{i}.losses"
        shutil.rmtree(out, ignore_errors=True)
        losses.unlink(missing_ok=True)
        first = run_training(work, out, fault=fault, losses=losses)
        row: dict[str, Any] = {"fault": fault, "killed": first.returncode == -signal.SIGKILL}
        problems = []
        if not row["killed"]:
            problems.append(f"not killed (exit {first.returncode}): {first.stderr[-500:]}")
        second = run_training(work, out, losses=losses, resume=True)
        if second.returncode != 0:
            problems.append(f"resume failed (exit {second.returncode}): {second.stderr[-800:]}")
        else:
            row["resumed_from"] = next(
                (
                    ln.split(" from ")[1].split(" ")[0]
                    for ln in second.stdout.splitlines()
                    if ln.startswith("resumed ")
                ),
                "start",
            )
            problems += compare_runs(reference, final_state(out))
            logged = read_losses(losses)
            if set(logged) != set(ref_losses):
                problems.append(f"losses logged for steps {sorted(set(ref_losses) - set(logged))}")
            wrong = [s for s, vs in logged.items() if any(v != ref_losses[s][0] for v in vs)]
            if wrong:
                problems.append(f"per-step losses differ at steps {wrong[:5]}")
            row["recomputed_steps"] = sum(len(v) - 1 for v in logged.values())
        row["problems"] = problems
        details.append(row)
    passed = sum(not d["problems"] for d in details)
    return Result(
        "kill -9 mid-forward / mid-backward / mid-save, then `--resume`",
        n,
        passed,
        f"{passed}/{n} resumed runs bitwise equal to an uninterrupted run (weights, best-epoch "
        "weights, optimizer and RNG state, best-epoch and early-stopping state, per-step losses)",
        details,
        time.perf_counter() - t0,
    )


# --- 2. kill during checkpoint writes -----------------------------------------------------------


def write_kill_trials(work: Path, n: int, seed: int = 0) -> Result:
    import torch

    from cnnlab.errors import CheckpointError
    from cnnlab.run.checkpoints import latest_valid_checkpoint, load_checkpoint, validate_checkpoint
    from cnnlab.run.load import load_trained

    t0 = time.perf_counter()
    rng = random.Random(seed)
    details = []
    for i in range(n):
        directory, log = work / f"writes{i}" / "checkpoints", work / f"writes{i}.log"
        shutil.rmtree(directory.parent, ignore_errors=True)
        directory.mkdir(parents=True)
        log.unlink(missing_ok=True)
        proc = subprocess.Popen(
            [PYTHON, str(HERE / "checkpoint_writer.py"), str(directory), str(log)],
            env=_env(),
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
        )
        # Wait for the first commit, then kill after a random delay (mid-write most of the time).
        deadline = time.monotonic() + 120
        while not (log.exists() and log.read_text().strip()):
            time.sleep(0.005)
            if time.monotonic() > deadline or proc.poll() is not None:
                raise RuntimeError(f"checkpoint writer failed: {proc.stderr.read()[-2000:]!r}")
        time.sleep(rng.uniform(0.0, 0.5))
        proc.kill()
        proc.wait()
        proc.stderr.close()
        committed = [int(s) for s in log.read_text().split()] if log.exists() else []
        last = committed[-1] if committed else 0
        problems = []
        latest, rejected = latest_valid_checkpoint(directory)
        step = int(latest.stem.split("-")[1]) if latest else None
        # The newest valid pair is the last one logged, or the one committed just before the
        # kill landed between its JSON rename and the log line.
        if step not in (last, last + 1):
            problems.append(f"newest valid checkpoint {step}, last committed {last}")
        if latest is not None:
            tensors, _ = load_checkpoint(latest)
            want, _ = lenet_state(step)
            if any(not torch.equal(tensors[k], want[k]) for k in want):
                problems.append(f"checkpoint {step} loads different tensors")
            trained = load_trained(directory.parent)
            if trained.source != latest.with_suffix(".safetensors"):
                problems.append(f"load_trained read {trained.source}, not {latest.name}")
            sd = trained.model.state_dict()
            if any(not torch.equal(sd[k], want[f"model.{k}"]) for k in sd):
                problems.append("load_trained weights differ from the committed checkpoint")
        # Every other file must be refused by the validator, never loaded.
        leftovers = sorted(p.name for p in directory.iterdir())
        for p in directory.glob("step-*.json"):
            if p == latest:
                continue
            with contextlib.suppress(CheckpointError):
                record = validate_checkpoint(p)
                if record["step"] > (step or 0):
                    problems.append(f"{p.name} valid but newer than the chosen one")
        details.append(
            {
                "committed": last,
                "loaded": step,
                "rejected": rejected,
                "files": leftovers,
                "problems": problems,
            }
        )
    passed = sum(not d["problems"] for d in details)
    torn = sum(bool(d["rejected"]) or any(f.endswith(".tmp") for f in d["files"]) for d in details)
    return Result(
        "SIGKILL during checkpoint writes",
        n,
        passed,
        f"{passed}/{n} loaded the last committed checkpoint bit-exactly; {torn} kills left a torn "
        "or temporary file, none of which was loaded",
        details,
        time.perf_counter() - t0,
    )


# --- 3. full disk -------------------------------------------------------------------------------


@contextlib.contextmanager
def tmpfs(path: Path, size: str) -> Iterable[bool]:
    """Mount a size-limited tmpfs at ``path`` (root only); yields False if that is impossible."""
    path.mkdir(parents=True, exist_ok=True)
    ok = (
        os.geteuid() == 0
        and subprocess.run(
            ["mount", "-t", "tmpfs", "-o", f"size={size}", "tmpfs", str(path)],
            capture_output=True,
        ).returncode
        == 0
    )
    try:
        yield ok
    finally:
        if ok:
            subprocess.run(["umount", "-l", str(path)], capture_output=True)


def full_disk_trials(work: Path, steps: Iterable[int] = (4, 11)) -> Result:
    from cnnlab.run.checkpoints import latest_valid_checkpoint
    from cnnlab.run.layout import CHECKPOINT_DIR

    t0 = time.perf_counter()
    reference, _ = reference_run(work)
    details = []
    steps = list(steps)
    for k in steps:
        mount = work / f"disk{k}"
        with tmpfs(mount, "16m") as ok:
            if not ok:
                return Result(
                    "full disk (ENOSPC) during a checkpoint write",
                    0,
                    0,
                    "skipped: mounting a tmpfs needs root",
                    [],
                    0.0,
                )
            out = mount / "run"
            proc = run_training(work, out, fault=f"fill:{k}:{mount}")
            row: dict[str, Any] = {"fill_at_step": k, "exit": proc.returncode}
            err = proc.stderr.strip().splitlines()
            row["message"] = err[-1][:300] if err else ""
            row["traceback"] = "Traceback" in proc.stderr
            row["one_line_error"] = len(err) == 1 and err[0].startswith("cnnlab: error:")
            latest, _ = latest_valid_checkpoint(out / CHECKPOINT_DIR)
            row["survivor"] = latest.name if latest else None
            row["leftover_tmp"] = sorted(p.name for p in out.rglob(".*.tmp"))
            problems = []
            if proc.returncode == 0:
                problems.append("training did not notice the full disk")
            if latest is None:
                problems.append("no valid checkpoint survived")
            # Free the space (as a user would) and resume: must end equal to the reference.
            (mount / "filler").unlink()
            proc2 = run_training(work, out, resume=True)
            if proc2.returncode != 0:
                problems.append(f"resume failed: {proc2.stderr[-500:]}")
            else:
                problems += compare_runs(reference, final_state(out))
            row["problems"] = problems
            details.append(row)
    passed = sum(not d["problems"] for d in details)
    clean = sum(d["one_line_error"] for d in details)
    return Result(
        "full disk (real ENOSPC on a tmpfs) during a checkpoint write",
        len(steps),
        passed,
        f"{passed}/{len(steps)}: previous checkpoint intact and resume bitwise exact; "
        f"{clean}/{len(steps)} failed with a one-line cnnlab error (the rest: a traceback)",
        details,
        time.perf_counter() - t0,
    )


# --- 4. NaN at step k ---------------------------------------------------------------------------


def nan_trials(work: Path, steps: Iterable[int] = (8,)) -> Result:
    from cnnlab.run.checkpoints import latest_valid_checkpoint, load_checkpoint
    from cnnlab.run.layout import CHECKPOINT_DIR

    t0 = time.perf_counter()
    reference_run(work)  # the reference's checkpoints are the expected survivors
    details = []
    steps = list(steps)
    for k in steps:
        out = work / f"nan{k}"
        shutil.rmtree(out, ignore_errors=True)
        proc = run_training(work, out, fault=f"nan:{k}")
        err = proc.stderr.strip().splitlines()
        latest, _ = latest_valid_checkpoint(out / CHECKPOINT_DIR)
        problems = []
        if proc.returncode != 2:
            problems.append(f"exit {proc.returncode}, expected 2")
        if not (len(err) == 1 and f"at step {k} " in err[0] and "cnnlab: error:" in err[0]):
            problems.append(f"not a one-line error naming step {k}: {err[-3:]}")
        if (out / "model.safetensors").exists():
            problems.append("a final model was written")
        last_good = max(s for s in SAVE_STEPS if s < k)  # the loss of step k is NaN
        if latest is None or latest.name != f"step-{last_good:08d}.json":
            problems.append(
                f"last checkpoint {latest.name if latest else None}, expected {last_good}"
            )
        else:
            tensors, _ = load_checkpoint(latest)
            ref = _checkpoint_at(work, last_good)
            if ref is not None and _tensors_equal(ref, tensors):
                problems.append("the surviving checkpoint differs from the reference's")
        details.append(
            {
                "nan_at_step": k,
                "exit": proc.returncode,
                "message": err[-1] if err else "",
                "survivor": latest.name if latest else None,
                "problems": problems,
            }
        )
    passed = sum(not d["problems"] for d in details)
    return Result(
        "NaN injected into the logits at step k",
        len(steps),
        passed,
        f"{passed}/{len(steps)} stopped at step k with a one-line error, last good checkpoint "
        "intact",
        details,
        time.perf_counter() - t0,
    )


def _checkpoint_at(work: Path, step: int) -> dict[str, Any] | None:
    """The reference run's checkpoint at ``step``, re-created by a run stopped right after it."""
    from cnnlab.run.checkpoints import load_checkpoint
    from cnnlab.run.layout import CHECKPOINT_DIR

    out = work / f"ref-upto-{step}"
    if not (out / CHECKPOINT_DIR / f"step-{step:08d}.json").exists():
        shutil.rmtree(out, ignore_errors=True)
        run_training(work, out, fault=f"save:{SAVE_STEPS.index(step) + 1}:committed")
    path = out / CHECKPOINT_DIR / f"step-{step:08d}.json"
    return load_checkpoint(path)[0] if path.exists() else None


# --- 5. malicious files -------------------------------------------------------------------------


class _Payload:
    """Unpickling this calls a function of the file's choosing: ``open(marker, "w")``.

    Creating a file is harmless and easy to detect; a real attack would call ``os.system``.
    """

    def __init__(self, marker: Path) -> None:
        self.marker = str(marker)

    def __reduce__(self) -> tuple[Any, ...]:
        return (open, (self.marker, "w"))


def pickle_bytes(marker: Path, protocol: int = 4) -> bytes:
    return pickle.dumps({"state_dict": _Payload(marker)}, protocol=protocol)


def torch_save_bytes(marker: Path, zip_format: bool) -> bytes:
    import torch

    buf = io.BytesIO()
    torch.save({"state_dict": _Payload(marker)}, buf, _use_new_zipfile_serialization=zip_format)
    return buf.getvalue()


def _npy_object_bytes(marker: Path) -> bytes:
    buf = io.BytesIO()
    np.save(buf, np.array([_Payload(marker)], dtype=object), allow_pickle=True)
    return buf.getvalue()


def _safetensors_with_pickle_header(marker: Path) -> bytes:
    body = pickle_bytes(marker)
    return len(body).to_bytes(8, "little") + body


def _fake_checkpoint(run: Path, data: bytes, step: int = 99) -> Path:
    """A newest checkpoint pair whose tensors file is ``data`` and whose record matches it."""
    directory = run / "checkpoints"
    weights = directory / f"step-{step:08d}.safetensors"
    weights.write_bytes(data)
    record = json.loads(sorted(directory.glob("step-*.json"))[-1].read_text())
    record |= {
        "step": step,
        "tensors_file": weights.name,
        "tensors_bytes": len(data),
        "tensors_sha256": hashlib.sha256(data).hexdigest(),
    }
    json_path = weights.with_suffix(".json")
    json_path.write_text(json.dumps(record))
    return json_path


# Each payload: name -> function(run_dir, marker, outside_dir) returning the file to pass to
# eval/predict/export; it also plants the payload as the run's newest checkpoint for --resume.
def all_payloads() -> dict[str, Callable[[Path, Path, Path], Path]]:
    def as_model(make: Callable[[Path], bytes]) -> Callable[[Path, Path, Path], Path]:
        def plant(run: Path, marker: Path, outside: Path) -> Path:
            data = make(marker)
            (run / "model.safetensors").write_bytes(data)
            _fake_checkpoint(run, data)
            return run / "model.safetensors"

        return plant

    def checkpoint_named(run: Path, marker: Path, outside: Path) -> Path:
        (run / "model.safetensors").unlink()
        return _fake_checkpoint(run, pickle_bytes(marker))  # pass the .json: tensors are pickle

    def json_outside(run: Path, marker: Path, outside: Path) -> Path:
        evil = outside / "evil.safetensors"
        evil.write_bytes(pickle_bytes(marker))
        json_path = _fake_checkpoint(run, evil.read_bytes())
        json_path.with_suffix(".safetensors").unlink()  # the record names a file outside
        record = json.loads(json_path.read_text())
        record["tensors_file"] = os.path.relpath(evil, json_path.parent)
        json_path.write_text(json.dumps(record))
        (run / "model.safetensors").unlink()
        return json_path

    def symlink_outside(run: Path, marker: Path, outside: Path) -> Path:
        evil = outside / "evil.bin"
        evil.write_bytes(pickle_bytes(marker))
        (run / "model.safetensors").unlink()
        (run / "model.safetensors").symlink_to(evil)
        json_path = _fake_checkpoint(run, evil.read_bytes())
        json_path.with_suffix(".safetensors").unlink()
        json_path.with_suffix(".safetensors").symlink_to(evil)
        return run / "model.safetensors"

    def onnx_named(run: Path, marker: Path, outside: Path) -> Path:
        path = run / "model.onnx"
        path.write_bytes(pickle_bytes(marker))
        _fake_checkpoint(run, path.read_bytes())
        return path

    return {
        "pickle (protocol 4) as model.safetensors": as_model(pickle_bytes),
        "pickle (protocol 0, ASCII) as model.safetensors": as_model(
            lambda m: pickle_bytes(m, protocol=0)
        ),
        "torch.save zip archive as model.safetensors": as_model(
            lambda m: torch_save_bytes(m, True)
        ),
        "legacy torch.save as model.safetensors": as_model(lambda m: torch_save_bytes(m, False)),
        "NumPy object array (.npy, pickled) as model.safetensors": as_model(_npy_object_bytes),
        "safetensors framing with a pickle as its header": as_model(
            _safetensors_with_pickle_header
        ),
        "pickle as checkpoint tensors, record with matching size and SHA-256": checkpoint_named,
        "checkpoint JSON naming a pickle outside the run directory": json_outside,
        "symlinks to a pickle outside the run directory": symlink_outside,
        "pickle named model.onnx": onnx_named,
    }


def _fresh_case(work: Path, name: str) -> tuple[Path, Path, Path, Path]:
    """A clean copy of the template run: (case, run directory, outside directory, marker path).

    A payload that runs creates ``marker``; ``outside`` is where payloads try to point at.
    """
    case = work / name
    shutil.rmtree(case, ignore_errors=True)
    run, outside = case / "run", case / "outside"
    shutil.copytree(work / "template", run)
    outside.mkdir(parents=True)
    return case, run, outside, case / "marker"


def _payload_is_live(data_maker: Callable[[Path, Path, Path], Path], work: Path) -> bool:
    """Show the payload works: unpickling it (the unsafe way) in a subprocess creates the marker."""
    case, run, outside, marker = _fresh_case(work, "live")
    target = data_maker(run, marker, outside)
    if target.suffix == ".json":
        target = (
            outside / "evil.safetensors"
            if not target.with_suffix(".safetensors").exists()
            else target.with_suffix(".safetensors")
        )
    # torch.load reads a file named *.safetensors as safetensors: load a neutrally named copy.
    neutral = case / "payload.bin"
    neutral.write_bytes(target.read_bytes())
    target = neutral
    subprocess.run(
        [PYTHON, str(HERE / "unsafe_load.py"), str(target), str(marker)],
        capture_output=True,
        timeout=120,
        env=_env(),
    )
    return marker.exists()


def make_template(work: Path) -> Path:
    """A genuine tiny run directory (model.safetensors + checkpoints) to plant payloads in."""
    template = work / "template"
    if not (template / "model.safetensors").exists():
        shutil.rmtree(template, ignore_errors=True)
        proc = run_training(work, template, extra=["--epochs", "1"])
        if proc.returncode != 0:
            raise RuntimeError(f"template run failed: {proc.stderr[-2000:]}")
    return template


ENTRY_POINTS = ("train --resume", "eval", "predict", "export", "load_trained()")


def malicious_trials(
    work: Path,
    entry_points: Iterable[str] = ENTRY_POINTS,
    *,
    in_process: bool = False,
    payloads: Iterable[str] | None = None,
) -> Result:
    """Every payload through every entry point; ``in_process`` runs the CLI in this process."""
    t0 = time.perf_counter()
    make_template(work)
    image = work / "image.png"
    from PIL import Image

    Image.fromarray(np.full((28, 28), 128, np.uint8)).save(image)
    details = []
    live = 0
    entry_points = list(entry_points)
    payloads = {k: v for k, v in all_payloads().items() if payloads is None or k in payloads}
    for name, plant in payloads.items():
        is_live = _payload_is_live(plant, work)
        live += is_live
        for entry in entry_points:
            case, run, outside, marker = _fresh_case(work, "case")
            target = plant(run, marker, outside)
            row = {"payload": name, "entry": entry, "live": is_live}
            row |= _try_entry(entry, run, target, image, case, in_process)
            row["executed"] = marker.exists()
            row["refused"] = row["refused"] and not row["executed"]
            details.append(row)
    n = len(details)
    refused = sum(d["refused"] for d in details)
    executed = sum(d["executed"] for d in details)
    return Result(
        f"malicious files ({len(payloads)} payloads x {len(entry_points)} entry points)",
        n,
        refused,
        f"{refused}/{n} refused, {executed} executed; {live}/{len(payloads)} payloads shown live "
        "(they do run when unpickled)",
        details,
        time.perf_counter() - t0,
    )


def _try_entry(
    entry: str, run: Path, target: Path, image: Path, case: Path, in_process: bool
) -> dict[str, Any]:
    """Run one entry point on a planted payload; refused = clean error (or skipped on resume)."""
    if entry == "load_trained()":
        argv = ["load_trained", str(target)]
    elif entry == "train --resume":
        argv = ["train", *TRAIN_ARGS, "--epochs", "1", "--out", str(run), "--resume"]
    elif entry == "eval":
        argv = ["eval", str(target), "--limit", "50", "--device", "cpu"]
    elif entry == "predict":
        argv = ["predict", str(target), str(image), "--device", "cpu"]
    else:
        argv = ["export", str(target), "--onnx", str(case / "out.onnx")]
    if in_process:
        code, stdout, stderr = _main_in_process(argv)
    else:
        if argv[0] == "load_trained":
            cmd = [PYTHON, str(HERE / "load_trained_cli.py"), argv[1]]
        else:
            cmd = [PYTHON, "-m", "cnnlab", *argv]
        proc = subprocess.run(cmd, capture_output=True, text=True, timeout=600, env=_env())
        code, stdout, stderr = proc.returncode, proc.stdout, proc.stderr
    err = stderr.strip().splitlines()
    if entry == "train --resume":
        # The payload must be skipped as damaged (never loaded); training then goes on from an
        # older valid checkpoint or from the start.
        skipped = "skipping damaged checkpoint" in stdout
        return {
            "exit": code,
            "refused": code == 0 and skipped and "Traceback" not in stderr,
            "message": next((ln for ln in stdout.splitlines() if "skipping" in ln), "")[:200],
        }
    one_line = len(err) == 1 and err[0].startswith("cnnlab: error:")
    return {
        "exit": code,
        "refused": code == 2 and (one_line or entry == "load_trained()"),
        "message": (err[-1] if err else stdout.strip())[:200],
    }


def _main_in_process(argv: list[str]) -> tuple[int, str, str]:
    """``cnnlab ARGV`` (or ``load_trained``) here; an escaping exception becomes a traceback."""
    import traceback

    from cnnlab.cli import main
    from cnnlab.errors import CnnlabError
    from cnnlab.run.load import load_trained

    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        try:
            if argv[0] == "load_trained":
                try:
                    load_trained(argv[1])
                    code = 0
                except CnnlabError as e:
                    print(f"cnnlab: error: {e}", file=sys.stderr)
                    code = 2
            else:
                code = main(argv)
        except SystemExit as e:
            code = int(e.code or 0)
        except Exception:
            traceback.print_exc()
            code = 1
    return code, out.getvalue(), err.getvalue()


# --- 6. damaged data: IDX and images ------------------------------------------------------------


def _flip_bits(data: bytes, rng: random.Random, n: int, lo: int = 0) -> bytes:
    b = bytearray(data)
    for _ in range(n):
        i = rng.randrange(lo, len(b))
        b[i] ^= 1 << rng.randrange(8)
    return bytes(b)


def idx_bases() -> dict[str, bytes]:
    """Small valid IDX files (raw and gzip): 20 images 28x28 and their 20 labels."""
    rng = np.random.default_rng(0)
    images = (
        (0x00000803).to_bytes(4, "big")
        + b"".join(d.to_bytes(4, "big") for d in (20, 28, 28))
        + rng.integers(0, 256, 20 * 28 * 28, dtype=np.uint8).tobytes()
    )
    labels = (
        (0x00000801).to_bytes(4, "big")
        + (20).to_bytes(4, "big")
        + bytes(rng.integers(0, 10, 20, dtype=np.uint8))
    )
    return {
        "images.idx": images,
        "labels.idx": labels,
        "images.idx.gz": gzip.compress(images, mtime=0),
        "labels.idx.gz": gzip.compress(labels, mtime=0),
    }


def mutate(data: bytes, rng: random.Random, header: int) -> tuple[str, bytes]:
    """One random mutation: bit flips (anywhere / in the header), truncation, header edits."""
    kind = rng.choice(("flip", "flip-header", "truncate", "extend", "header-field", "zero-run"))
    if kind == "flip":
        return kind, _flip_bits(data, rng, rng.randint(1, 16))
    if kind == "flip-header":
        return kind, _flip_bits(data[:header], rng, rng.randint(1, 4)) + data[header:]
    if kind == "truncate":
        return kind, data[: rng.randrange(0, len(data))]
    if kind == "extend":
        return kind, data + bytes(rng.randrange(256) for _ in range(rng.randint(1, 64)))
    if kind == "header-field":
        b = bytearray(data)
        at = rng.randrange(0, max(1, min(header, len(b)) - 3))
        b[at : at + 4] = rng.choice(
            (b"\xff\xff\xff\xff", b"\x00\x00\x00\x00", b"\x7f\xff\xff\xff", b"\x00\x01\x00\x00")
        )
        return kind, bytes(b)
    b = bytearray(data)
    at = rng.randrange(0, len(b))
    b[at : at + rng.randint(1, 256)] = bytes(min(256, len(b) - at))
    return kind, bytes(b)


def idx_cases(n: int, seed: int) -> list[tuple[str, str, bytes]]:
    rng = random.Random(seed)
    bases = idx_bases()
    cases = []
    for i in range(n):
        name = rng.choice(sorted(bases))
        data = bases[name]
        if name.endswith(".gz") and rng.random() < 0.5:
            # Mutate the IDX bytes, then compress: the gzip layer is intact, the content is not.
            raw = gzip.decompress(data)
            kind, raw = mutate(raw, rng, 16)
            kind, data = f"{kind} (inside gzip)", gzip.compress(raw, mtime=0)
        else:
            kind, data = mutate(data, rng, 16 if "images" in name else 8)
        cases.append((f"{i:04d}-{name}", kind, data))
    return cases


def bomb_idx_gz(claim_mb: int, honest: bool) -> bytes:
    """gzip IDX whose header claims ``claim_mb`` MB of images; honest: the zeros are all there."""
    count = claim_mb * 2**20 // (28 * 28)
    header = (0x00000803).to_bytes(4, "big") + b"".join(
        d.to_bytes(4, "big") for d in (count, 28, 28)
    )
    comp = zlib.compressobj(9, zlib.DEFLATED, 31)
    out = [comp.compress(header)]
    todo = count * 28 * 28 if honest else 2**20
    chunk = bytes(2**22)
    while todo > 0:
        out.append(comp.compress(chunk[: min(todo, len(chunk))]))
        todo -= len(chunk)
    out.append(comp.flush())
    return b"".join(out)


def image_bases() -> dict[str, bytes]:
    """Small valid images in the formats the readers meet: PNG (L, RGB, P, RGBA), JPEG, GIF."""
    from PIL import Image

    rng = np.random.default_rng(1)
    rgb = Image.fromarray(rng.integers(0, 256, (24, 20, 3), dtype=np.uint8), "RGB")
    gray = rgb.convert("L")
    out = {}
    for name, img, fmt in (
        ("gray.png", gray, "PNG"),
        ("rgb.png", rgb, "PNG"),
        ("palette.png", rgb.convert("P"), "PNG"),
        ("rgba.png", rgb.convert("RGBA"), "PNG"),
        ("gray.jpg", gray, "JPEG"),
        ("rgb.jpg", rgb, "JPEG"),
        ("anim.gif", rgb.convert("P"), "GIF"),
    ):
        buf = io.BytesIO()
        img.save(buf, fmt)
        out[name] = buf.getvalue()
    return out


def image_cases(n: int, seed: int) -> list[tuple[str, str, bytes]]:
    rng = random.Random(seed)
    bases = image_bases()
    cases = []
    for i in range(n):
        name = rng.choice(sorted(bases))
        kind, data = mutate(bases[name], rng, 33 if name.endswith(".png") else 20)
        cases.append((f"{i:04d}-{name}", kind, data))
    return cases


def _png_bomb(width: int, height: int) -> bytes:
    """A valid grayscale PNG of zeros, ``width`` x ``height``, compressed to a few kB/MB."""

    def chunk(tag: bytes, body: bytes) -> bytes:
        return len(body).to_bytes(4, "big") + tag + body + zlib.crc32(tag + body).to_bytes(4, "big")

    ihdr = width.to_bytes(4, "big") + height.to_bytes(4, "big") + bytes([8, 0, 0, 0, 0])
    comp = zlib.compressobj(9)
    row = bytes(width + 1)
    parts = [comp.compress(row) for _ in range(height)]
    parts.append(comp.flush())
    return (
        b"\x89PNG\r\n\x1a\n"
        + chunk(b"IHDR", ihdr)
        + chunk(b"IDAT", b"".join(parts))
        + chunk(b"IEND", b"")
    )


def bomb_cases(quick: bool) -> list[tuple[str, str, bytes]]:
    """Decompression bombs: IDX gzip streams and PNGs that expand far beyond their size."""
    claim = 64 if quick else 256
    cases = [
        (
            "bomb-lying.idx.gz",
            f"IDX header claims {claim} MB, stream holds 1 MB",
            bomb_idx_gz(claim, honest=False),
        ),
        (
            "bomb-honest.idx.gz",
            f"IDX gzip expanding to {claim} MB of zeros",
            bomb_idx_gz(claim, honest=True),
        ),
        (
            "bomb-over-limit.png",
            "PNG header 20000x20000 (over the pixel limit)",
            _png_bomb(20000, 20000) if not quick else _png_header_only(20000, 20000),
        ),
        ("bomb-header-only.png", "PNG header 60000x60000, no data", _png_header_only(60000, 60000)),
    ]
    if not quick:
        cases.append(
            (
                "bomb-under-limit.png",
                "PNG 9000x9000 of zeros (under the limit)",
                _png_bomb(9000, 9000),
            )
        )
    return cases


def _png_header_only(width: int, height: int) -> bytes:
    data = _png_bomb(1, 1)
    ihdr = width.to_bytes(4, "big") + height.to_bytes(4, "big") + bytes([8, 0, 0, 0, 0])
    body = b"IHDR" + ihdr
    return (
        data[:8] + (13).to_bytes(4, "big") + body + zlib.crc32(body).to_bytes(4, "big") + data[33:]
    )


def _reader_child(files: list[tuple[str, str]], start: int, results: Any) -> None:
    """Child: read each file with the reader its kind needs; report outcome, time and memory."""
    import resource

    from cnnlab.data.idx import IMAGES_MAGIC, LABELS_MAGIC, read_idx
    from cnnlab.data.images import read_image
    from cnnlab.errors import DataError

    base = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    for i in range(start, len(files)):
        path, reader = files[i]
        results.put(("start", i))
        t = time.perf_counter()
        msg = ""
        try:
            if reader == "idx":
                magic = (
                    IMAGES_MAGIC if "images" in Path(path).name or "bomb" in path else LABELS_MAGIC
                )
                read_idx(path, magic)
            else:  # predict and image folders both read through read_image
                for channels in (None, 1, 3) if reader == "image" else (None,):
                    read_image(path, channels=channels)
            outcome = "decoded"
        except DataError as err:
            outcome = "DataError"
            msg = str(err)
        except MemoryError:
            outcome = "MemoryError"
        except BaseException as err:  # anything else is a bug: record its type
            outcome = f"{type(err).__name__}: {str(err)[:150]}"
        peak = (resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - base) / 1024
        results.put(
            (
                "done",
                i,
                outcome,
                time.perf_counter() - t,
                peak,
                msg.count("\n") == 0 and bool(msg) if outcome == "DataError" else True,
            )
        )


def read_files(files: list[tuple[str, str]]) -> list[dict[str, Any]]:
    """Read files in a watchdog child (restarted after a hang); return one record per file.

    The child reports "start i" before and the outcome after each file; when the parent hears
    nothing for :data:`HANG_SECONDS`, the file in progress counts as a hang (or a crash) and a
    fresh child goes on with the next file.
    """
    # Import the readers (and torch) here, so the forked child starts at once; the child uses
    # NumPy and Pillow only, no torch thread pools, so forking is safe.
    import cnnlab.data.idx
    import cnnlab.data.images  # noqa: F401

    ctx = multiprocessing.get_context("fork")
    records: dict[int, dict[str, Any]] = {}
    start = 0
    while start < len(files):
        results = ctx.Queue()
        proc = ctx.Process(target=_reader_child, args=(files, start, results), daemon=True)
        proc.start()
        current = start
        while True:
            try:
                msg = results.get(timeout=HANG_SECONDS)
            except queue.Empty:
                proc.kill()
                proc.join()
                records[current] = {
                    "outcome": "hang or crash",
                    "seconds": HANG_SECONDS,
                    "peak_mb": None,
                    "one_line": False,
                }
                start = current + 1
                break
            if msg[0] == "start":
                current = msg[1]
                continue
            _, i, outcome, seconds, peak, one_line = msg
            records[i] = {
                "outcome": outcome,
                "seconds": seconds,
                "peak_mb": peak,
                "one_line": one_line,
            }
            if i == len(files) - 1:
                proc.join(timeout=30)
                start = len(files)
                break
    return [records[i] | {"file": Path(files[i][0]).name} for i in range(len(files))]


def damaged_data_trials(
    work: Path, n_idx: int, n_images: int, quick: bool, seed: int = 0
) -> list[Result]:
    directory = work / "damaged"
    shutil.rmtree(directory, ignore_errors=True)
    directory.mkdir(parents=True)
    out = []
    for label, cases, reader in (
        (f"{n_idx} mutated IDX files (raw and gzip)", idx_cases(n_idx, seed), "idx"),
        (f"{n_images} mutated PNG/JPEG/GIF files", image_cases(n_images, seed + 1), "image"),
        ("decompression bombs (IDX gzip, PNG)", bomb_cases(quick), "bomb"),
    ):
        t0 = time.perf_counter()
        files = []
        for name, _, data in cases:
            path = directory / name
            path.write_bytes(data)
            files.append((str(path), "idx" if ".idx" in name else reader))
        if reader == "bomb":  # one fresh child per bomb, so each peak is that file's own
            records = [rec for f in files for rec in read_files([f])]
        else:
            records = read_files(files)
        for rec, (_, kind, _) in zip(records, cases, strict=True):
            rec["mutation"] = kind
        bad = [
            r
            for r in records
            if r["outcome"] not in ("decoded", "DataError")
            or r["seconds"] > HANG_SECONDS
            or not r["one_line"]
            or (r["peak_mb"] or 0) > MEMORY_LIMIT_MB
        ]
        counts: dict[str, int] = {}
        for r in records:
            counts[r["outcome"]] = counts.get(r["outcome"], 0) + 1
        slowest = max(r["seconds"] for r in records)
        peak = max((r["peak_mb"] or 0) for r in records)
        if reader == "bomb":
            summary = "; ".join(
                f"{r['mutation']} ({(directory / r['file']).stat().st_size // 1024:,} kB): "
                f"{r['outcome']}, {r['seconds']:.2f} s, +{r['peak_mb'] or 0:.0f} MB"
                for r in records
            )
        else:
            summary = (
                f"{counts.get('DataError', 0)} DataError, {counts.get('decoded', 0)} decoded "
                f"(damage in pixel data only), {len(bad)} other; slowest {slowest:.2f} s, "
                f"peak memory growth {peak:.0f} MB"
            )
        out.append(
            Result(
                label,
                len(records),
                len(records) - len(bad),
                summary,
                records,
                time.perf_counter() - t0,
            )
        )
    # An image folder with one damaged file among good ones: the folder reader reports it.
    out.append(_folder_trial(work))
    return out


def _folder_trial(work: Path) -> Result:
    from PIL import Image

    from cnnlab.data import load_dataset
    from cnnlab.errors import DataError

    t0 = time.perf_counter()
    folder = work / "folder"
    shutil.rmtree(folder, ignore_errors=True)
    details = []
    bases = image_bases()
    rng = random.Random(3)
    for i in range(5):
        for cls in ("a", "b"):
            (folder / f"f{i}" / cls).mkdir(parents=True)
            for j in range(4):
                Image.fromarray(np.full((8, 8), 40 * j, np.uint8)).save(
                    folder / f"f{i}" / cls / f"{j}.png"
                )
        damaged = folder / f"f{i}" / "b" / "9.png"
        damaged.write_bytes(bases["gray.png"][: rng.randrange(10, len(bases["gray.png"]) - 10)])
        try:
            for split in ("train", "test"):
                load_dataset(str(folder / f"f{i}"), split)
            details.append({"outcome": "loaded (damage not noticed)", "ok": False})
        except DataError as err:
            details.append(
                {"outcome": "DataError", "ok": "9.png" in str(err), "message": str(err)[:200]}
            )
        except Exception as err:
            details.append({"outcome": type(err).__name__, "ok": False})
    passed = sum(d["ok"] for d in details)
    return Result(
        "image folder with one truncated file",
        len(details),
        passed,
        f"{passed}/{len(details)} DataError naming the damaged file",
        details,
        time.perf_counter() - t0,
    )


# --- 7. image-mode matrix -----------------------------------------------------------------------


def _luma(rgb: np.ndarray) -> np.ndarray:
    """ITU-R 601-2 luma as Pillow computes it (L = R*299/1000 + G*587/1000 + B*114/1000)."""
    r, g, b = (rgb[..., i].astype(np.int64) for i in range(3))
    return ((r * 19595 + g * 38470 + b * 7471 + 0x8000) >> 16).astype(np.uint8)


def mode_cases(directory: Path) -> list[dict[str, Any]]:
    """Files in every mode, each with the (C, H, W) array read_image must return per channels."""
    from PIL import Image

    rng = np.random.default_rng(2)
    h, w = 6, 5
    rgb = rng.integers(0, 256, (h, w, 3), dtype=np.uint8)
    gray = rng.integers(0, 256, (h, w), dtype=np.uint8)
    alpha = rng.integers(0, 256, (h, w), dtype=np.uint8)
    cases = []

    def add(
        name: str,
        img: Image.Image,
        fmt: str,
        native: str,
        expect_rgb: np.ndarray | None,
        expect_gray: np.ndarray | None,
        **save: Any,
    ) -> None:
        path = directory / name
        img.save(path, fmt, **save)
        cases.append(
            {"name": name, "path": path, "native": native, "rgb": expect_rgb, "gray": expect_gray}
        )

    def gray3(g: np.ndarray) -> np.ndarray:
        return np.stack([g] * 3, axis=-1)

    bits = rng.integers(0, 2, (h, w)).astype(bool)
    one = (bits * 255).astype(np.uint8)
    add("mode-1.png", Image.fromarray(bits), "PNG", "gray", gray3(one), one)
    add("mode-L.png", Image.fromarray(gray, "L"), "PNG", "gray", gray3(gray), gray)
    # LA / RGBA: composited on white, alpha dropped.
    a64 = alpha.astype(np.int64)  # 255 * (255 - alpha) would overflow in uint8
    over = (gray.astype(np.int64) * a64 + 255 * (255 - a64) + 127) // 255
    la = Image.fromarray(np.stack([gray, alpha], -1), "LA")
    add("mode-LA.png", la, "PNG", "gray", gray3(over.astype(np.uint8)), over.astype(np.uint8))
    cases[-1]["tolerance"] = 1
    rgba = Image.fromarray(np.dstack([rgb, alpha]), "RGBA")
    comp = (rgb.astype(np.int64) * a64[..., None] + 255 * (255 - a64[..., None]) + 127) // 255
    add("mode-RGBA.png", rgba, "PNG", "rgb", comp.astype(np.uint8), _luma(comp.astype(np.uint8)))
    cases[-1]["tolerance"] = 1
    palette = Image.fromarray(rgb, "RGB").quantize(16)
    prgb = np.asarray(palette.convert("RGB"))
    add("mode-P.png", palette, "PNG", "rgb", prgb, _luma(prgb))
    ptrans = palette.copy()
    add("mode-P-transparency.png", ptrans, "PNG", "rgb", None, None, transparency=0)
    idx = np.asarray(ptrans)
    pt = prgb.copy()
    pt[idx == 0] = 255
    cases[-1]["rgb"], cases[-1]["gray"] = pt, _luma(pt)
    add("mode-RGB.png", Image.fromarray(rgb, "RGB"), "PNG", "rgb", rgb, _luma(rgb))
    cmyk = Image.fromarray(rgb, "RGB").convert("CMYK")
    add(
        "mode-CMYK.tif",
        cmyk,
        "TIFF",
        "rgb",
        np.asarray(cmyk.convert("RGB")),
        _luma(np.asarray(cmyk.convert("RGB"))),
    )
    wide = rng.integers(0, 65536, (h, w), dtype=np.uint16)
    g16 = ((wide.astype(np.int64) * 255 + 32767) // 65535).astype(np.uint8)
    add("mode-I16.png", Image.fromarray(wide), "PNG", "gray", gray3(g16), g16)
    fl = rng.uniform(-20, 300, (h, w)).astype(np.float32)
    gf = np.clip(np.rint(fl), 0, 255).astype(np.uint8)
    add("mode-F.tif", Image.fromarray(fl, "F"), "TIFF", "gray", gray3(gf), gf)
    # EXIF orientation 6: the stored pixels are shown rotated 90 degrees clockwise.
    exif = Image.Exif()
    exif[0x0112] = 6
    rot = np.rot90(rgb, k=-1)
    add(
        "exif-rotated.png",
        Image.fromarray(rgb, "RGB"),
        "PNG",
        "rgb",
        rot,
        _luma(rot),
        exif=exif.tobytes(),
    )
    # Animated GIF: the first frame.
    f1, f2 = Image.fromarray(gray, "L"), Image.fromarray(255 - gray, "L")
    path = directory / "animated.gif"
    f1.save(path, "GIF", save_all=True, append_images=[f2], duration=100)
    first = np.asarray(Image.open(path).convert("L"))
    cases.append(
        {"name": "animated.gif", "path": path, "native": "any", "rgb": gray3(first), "gray": first}
    )
    # Refused: a text file with an image name, an empty file.
    for name, data in (("not-an-image.png", b"hello, world\n" * 10), ("empty.jpg", b"")):
        (directory / name).write_bytes(data)
        cases.append({"name": name, "path": directory / name, "refuse": True})
    return cases


def image_mode_trials(work: Path) -> Result:
    from cnnlab.data.images import read_image
    from cnnlab.errors import DataError

    t0 = time.perf_counter()
    directory = work / "modes"
    shutil.rmtree(directory, ignore_errors=True)
    directory.mkdir(parents=True)
    details = []
    for case in mode_cases(directory):
        row = {"file": case["name"]}
        try:
            if case.get("refuse"):
                try:
                    read_image(case["path"])
                    row |= {"outcome": "decoded (should be refused)", "ok": False}
                except DataError as err:
                    row |= {"outcome": "refused: DataError", "ok": True, "message": str(err)[:120]}
                details.append(row)
                continue
            got3 = read_image(case["path"], channels=3).permute(1, 2, 0).numpy()
            got1 = read_image(case["path"], channels=1)[0].numpy()
            native = read_image(case["path"])
            tol = case.get("tolerance", 0)
            checks = []
            if case.get("rgb") is not None:
                checks.append(np.abs(got3.astype(int) - case["rgb"].astype(int)).max() <= tol)
            if case.get("gray") is not None:
                checks.append(
                    np.abs(got1.astype(int) - case["gray"].astype(int)).max() <= max(tol, 1)
                )
            if case.get("gray_approx") is not None:
                checks.append(np.abs(got1.astype(int) - case["gray_approx"].astype(int)).max() <= 1)
            want_c = {"gray": 1, "rgb": 3}.get(case["native"])
            if want_c is not None:
                checks.append(native.shape[0] == want_c)
            row |= {
                "outcome": f"converted ({native.shape[0]} channel(s) by default)",
                "ok": all(checks) and bool(checks),
            }
        except Exception as err:
            row |= {"outcome": f"{type(err).__name__}: {err}"[:150], "ok": False}
        details.append(row)
    passed = sum(d["ok"] for d in details)
    return Result(
        "image-mode matrix (1, L, LA, P, P+tRNS, RGB, RGBA, CMYK, I;16, F, EXIF, GIF)",
        len(details),
        passed,
        f"{passed}/{len(details)} converted or refused as documented",
        details,
        time.perf_counter() - t0,
    )
