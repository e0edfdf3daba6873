"""The studio's job queue: ``cnnlab train`` and ``cnnlab experiment run`` as subprocesses,
one at a time.

A job started from the page is the same command a user would type (:attr:`Job.command`, shown
on the page), run as ``python -m cnnlab ...`` in the first runs root, so a run made in the studio
is identical to one made in the terminal. Stop sends SIGINT, which ``cnnlab train`` answers as it
answers Ctrl-C: it keeps its newest checkpoint and exits 130, and the run resumes with
``--resume`` (:meth:`JobQueue.resume` queues exactly that). Each job's output goes to
``ROOT/.studio/jobs/ID.log`` (a hidden folder: the runs list does not search it). Closing the
studio interrupts the running job the same way (:meth:`JobQueue.shutdown`).
"""

from __future__ import annotations

import dataclasses
import itertools
import os
import signal
import subprocess
import sys
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from cnnlab.studio.security import Refused

STATES = ("queued", "running", "stopped", "finished", "failed")
INTERRUPTED = 130  # `cnnlab train`'s exit status after Ctrl-C (cnnlab.cli.train)
STOP_SECONDS = 60.0  # a stopped job that has not exited by then is killed
LOG_TAIL = 2000  # characters of a job's output kept in its record
LIMITS = {"epochs": (1, 10_000), "seed": (0, 2**31 - 1), "threads": (0, 1024)}
EXPERIMENTS_DIR = "experiments"  # experiment jobs write ROOT/experiments/NAME-TIER


@dataclass
class Job:
    """One queued or finished command; :meth:`to_dict` is the API's job record."""

    id: int
    kind: str
    command: list[str]
    run: str | None
    out: Path
    state: str = "queued"
    started: float | None = None
    ended: float | None = None
    returncode: int | None = None
    log: str = ""  # the end of the job's output
    experiment: dict[str, str] | None = None  # {"name", "tier"} of an experiment job
    process: subprocess.Popen[bytes] | None = field(default=None, repr=False)
    stop_asked: bool = False

    def to_dict(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "kind": self.kind,
            "state": self.state,
            "command": self.command,
            "run": self.run,
            "started": self.started,
            "ended": self.ended,
            "returncode": self.returncode,
            "log": self.log,
            "experiment": self.experiment,
        }


def _int(spec: dict[str, Any], name: str, default: int) -> int:
    value = spec.get(name, default)
    low, high = LIMITS[name]
    if isinstance(value, bool) or not isinstance(value, int) or not low <= value <= high:
        raise Refused(400, f"{name} must be an integer from {low} to {high}, not {value!r}")
    return value


def _choice(
    spec: dict[str, Any], name: str, choices: list[str], default: str, what: str = ""
) -> str:
    value = spec.get(name, default)
    if value not in choices:
        raise Refused(400, f"unknown {what or name} {value!r}: pick one of {', '.join(choices)}")
    return value


class JobQueue:
    """Jobs in order; a worker thread runs the oldest queued one when none is running.

    Args:
        root: the first runs root: jobs run there and write their runs under it.
        run_id: turns a run directory into its studio id.
        data_choice: checks a job's ``data`` (a named dataset or a folder under a root) and
            returns the word to pass to ``--data``.
        python: the interpreter that runs ``-m cnnlab``.
    """

    def __init__(
        self,
        root: Path,
        run_id: Any,
        data_choice: Any,
        python: str = sys.executable,
    ) -> None:
        self.root = root
        self.run_id = run_id
        self.data_choice = data_choice
        self.python = python
        self.jobs: list[Job] = []
        self.version = 0  # bumped on every change: the live view sends the changed jobs
        self._ids = itertools.count(1)
        self._lock = threading.Lock()
        self._wake = threading.Condition(self._lock)
        self._closed = False
        self._worker = threading.Thread(target=self._work, name="studio-jobs", daemon=True)
        self._worker.start()

    # --- the API's verbs ------------------------------------------------------------------------

    def submit(self, spec: Any) -> Job:
        """Queue the job ``spec`` describes (the JSON body of ``POST /api/jobs``)."""
        if not isinstance(spec, dict):
            raise Refused(400, 'a job is a JSON object: {"kind": "train", "model": ...}')
        kind = spec.get("kind")
        experiment = None
        if kind == "train":
            command, out = self._train(spec)
        elif kind == "experiment":
            command, out, experiment = self._experiment(spec)
        else:
            raise Refused(400, f"unknown job kind {kind!r}: use 'train' or 'experiment'")
        return self._add(kind, command, out, experiment)

    def stop(self, job_id: int) -> Job:
        """Interrupt a running job cleanly (SIGINT), or take a queued one off the queue."""
        with self._lock:
            job = self._get(job_id)
            if job.state == "queued":
                job.state, job.ended = "stopped", time.time()
            elif job.state == "running" and job.process is not None:
                job.stop_asked = True
                job.process.send_signal(signal.SIGINT)
            else:
                raise Refused(
                    409, f"job {job_id} is {job.state}: only a queued or running job stops"
                )
            self._changed()
            return job

    def resume(self, job_id: int) -> Job:
        """Queue the job's command with ``--resume`` on the folder of a stopped or failed job
        (``cnnlab train`` and ``cnnlab experiment run`` both continue from their checkpoints)."""
        with self._lock:
            job = self._get(job_id)
            if job.state not in ("stopped", "failed"):
                raise Refused(409, f"job {job_id} is {job.state}: resume a stopped or failed job")
            command = job.command if "--resume" in job.command else [*job.command, "--resume"]
        return self._add(job.kind, command, job.out, job.experiment)

    def list(self) -> list[dict[str, Any]]:
        with self._lock:
            return [j.to_dict() for j in self.jobs]

    def running(self) -> Job | None:
        with self._lock:
            return next((j for j in self.jobs if j.state == "running"), None)

    def shutdown(self, wait: float = STOP_SECONDS) -> Job | None:
        """Close the queue and interrupt the running job cleanly; returns it (None if none)."""
        with self._lock:
            self._closed = True
            for job in self.jobs:
                if job.state == "queued":
                    job.state, job.ended = "stopped", time.time()
            job = next((j for j in self.jobs if j.state == "running"), None)
            if job is not None and job.process is not None:
                job.stop_asked = True
                job.process.send_signal(signal.SIGINT)
            self._wake.notify_all()
        if job is not None and job.process is not None:
            try:
                job.process.wait(wait)
            except subprocess.TimeoutExpired:
                job.process.kill()
        self._worker.join(5)
        return job

    # --- building commands ----------------------------------------------------------------------

    def _train(self, spec: dict[str, Any]) -> tuple[list[str], Path]:
        from cnnlab.registry import list_models
        from cnnlab.run.config import TrainConfig

        model = spec.get("model")
        if not isinstance(model, str) or model not in list_models():
            raise Refused(400, f"unknown model {model!r}: pick one from /api/models")
        recipes = next(f for f in dataclasses.fields(TrainConfig) if f.name == "recipe")
        recipe = _choice(spec, "recipe", list(recipes.metadata["choices"]), "fast")
        data = self.data_choice(spec.get("data", "fashion-mnist"))
        epochs, seed = _int(spec, "epochs", 1), _int(spec, "seed", 0)
        threads = _int(spec, "threads", 0)
        out = self._new_dir(f"{model}-{Path(data).name}")
        command = ["cnnlab", "train", model, "--data", data, "--recipe", recipe]
        command += ["--epochs", str(epochs), "--seed", str(seed), "--threads", str(threads)]
        limits = {k: spec.get(k) for k in ("limit_train", "limit_test") if spec.get(k) is not None}
        for name, value in limits.items():  # small runs (a lesson's demo, the tests)
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise Refused(400, f"{name} must be a positive integer, not {value!r}")
            command += ["--" + name.replace("_", "-"), str(value)]
        return [*command, "--out", str(out)], out

    def _experiment(self, spec: dict[str, Any]) -> tuple[list[str], Path, dict[str, str]]:
        """``cnnlab experiment run NAME --tier T``: a name from the catalogue and one of that
        experiment's own tiers (a course's experiment may define fewer than three)."""
        from cnnlab.experiments.catalogue import experiment_names, get_experiment

        name = _choice(spec, "name", experiment_names(), "", "experiment")
        tier = _choice(spec, "tier", list(get_experiment(name).tiers), "quick")
        threads = _int(spec, "threads", 0)
        out = self._new_dir(f"{EXPERIMENTS_DIR}/{name}-{tier}")
        command = ["cnnlab", "experiment", "run", name, "--tier", tier]
        if threads:
            command += ["--threads", str(threads)]
        return [*command, "--out", str(out)], out, {"name": name, "tier": tier}

    def _new_dir(self, name: str) -> Path:
        """A run folder under the root that neither exists nor is taken by a queued job."""
        taken = {j.out for j in self.jobs}
        for n in itertools.count(1):
            path = self.root / (name if n == 1 else f"{name}-{n}")
            if not os.path.lexists(path) and path not in taken:
                return path
        raise AssertionError("unreachable")

    # --- running ---------------------------------------------------------------------------------

    def _add(
        self, kind: str, command: list[str], out: Path, experiment: dict[str, str] | None = None
    ) -> Job:
        with self._lock:
            if self._closed:
                raise Refused(503, "the studio is closing: start the job after it restarts")
            job = Job(next(self._ids), kind, command, self.run_id(out), out, experiment=experiment)
            self.jobs.append(job)
            self._changed()
            return job

    def _get(self, job_id: int) -> Job:
        job = next((j for j in self.jobs if j.id == job_id), None)
        if job is None:
            raise Refused(404, f"no job {job_id}: see /api/jobs")
        return job

    def _changed(self) -> None:
        self.version += 1
        self._wake.notify_all()

    def _work(self) -> None:
        while True:
            with self._lock:
                job = None
                while not self._closed:
                    job = next((j for j in self.jobs if j.state == "queued"), None)
                    if job is not None:
                        break
                    self._wake.wait()
                if self._closed:
                    return
                self._start(job)
            self._finish(job)

    def _start(self, job: Job) -> None:
        """Start ``job`` (the lock held): its own session, so a Ctrl-C in the studio's terminal
        reaches the studio only, which then stops the job itself and says so."""
        logs = self.root / ".studio" / "jobs"
        logs.mkdir(parents=True, exist_ok=True)
        with open(logs / f"{job.id}.log", "wb") as log:
            job.process = subprocess.Popen(
                [self.python, "-m", "cnnlab", *job.command[1:]],
                cwd=self.root,
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        job.state, job.started = "running", time.time()
        self._changed()

    def _finish(self, job: Job) -> None:
        assert job.process is not None
        code = job.process.wait()
        log = self.root / ".studio" / "jobs" / f"{job.id}.log"
        text = log.read_text(errors="replace") if log.is_file() else ""
        with self._lock:
            job.returncode, job.ended = code, time.time()
            job.log = text[-LOG_TAIL:]
            if code == 0:
                job.state = "finished"
            elif job.stop_asked and code in (INTERRUPTED, -signal.SIGINT):
                job.state = "stopped"
            else:
                job.state = "failed"
            self._changed()
