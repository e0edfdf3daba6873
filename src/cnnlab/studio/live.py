"""Live updates: server-sent events from the run files, polled by size and modification time.

``GET /api/events?runs=ID,ID`` streams ``text/event-stream``. Every :data:`POLL_SECONDS` the
stream looks at each watched run's step log, ``metrics.jsonl`` and ``results.json`` (one
``stat`` each; a file is read only when its size or time changed) and the job queue's version,
and sends what is new:

* ``step``: ``{"run", "step", "epoch", "loss", "lr", "t"}``, one per new line of the step log;
* ``epoch``: a ``metrics.jsonl`` record with ``"run"``;
* ``status``: ``{"run", "status"}`` when the run's status changes (``cnnlab.report.runs``);
* ``job``: a job record (:meth:`cnnlab.studio.jobs.Job.to_dict`) whenever one changes;
* ``experiment``: ``{"experiment": ID, ...}``, an experiment folder's record
  (:func:`cnnlab.studio.experiments.folder_record`) when ``?experiments=ID`` is watched and a run
  of it appears or changes status, or its results are written; its runs' ``step``, ``epoch``
  and ``status`` events come as any run's, from their first record.

No file watcher library: polling four times a second costs a few ``stat`` calls, works on every
file system (network mounts included) and brings a new record to the browser within 0.25 s
plus the transfer. The events a page missed before it connected are in ``/api/runs/ID/curves``.
"""

from __future__ import annotations

import asyncio
import json
import os
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from cnnlab.run.layout import RunFiles
from cnnlab.run.records import read_steps

POLL_SECONDS = 0.25
KEEPALIVE_SECONDS = 15.0  # a comment line now and then, so proxies and browsers keep the stream
MAX_RUNS = 64  # runs one stream may watch


def event(name: str, data: Any) -> str:
    """One server-sent event (JSON data on one line)."""
    return f"event: {name}\ndata: {json.dumps(data, allow_nan=False)}\n\n"


def _stamp(path: Path) -> tuple[int, int] | None:
    try:
        st = os.stat(path)
    except OSError:
        return None
    return st.st_size, st.st_mtime_ns


@dataclass
class Watched:
    """What a stream has already sent of one run."""

    id: str
    files: RunFiles
    step_offset: int = 0
    epochs_sent: int = 0
    status: str | None = None
    stamps: dict[str, tuple[int, int] | None] = field(default_factory=dict)

    def changed(self, name: str, path: Path) -> bool:
        stamp = _stamp(path)
        if self.stamps.get(name, ()) == stamp:
            return False
        self.stamps[name] = stamp
        return True

    def start_at_end(self) -> None:
        """Skip what is on disk now: the page reads it from ``/api/runs/ID/curves``."""
        _, self.step_offset = read_steps(self.files.steps, self.files.root)
        self.epochs_sent = len(self._epochs())
        self.changed("steps", self.files.steps)
        self.changed("metrics", self.files.metrics)

    def _epochs(self) -> list[dict[str, Any]]:
        try:
            return self.files.read_history()
        except Exception:  # a damaged file: the status event says so
            return []

    def poll(self, status_of: Callable[[Path], str]) -> list[str]:
        out = []
        if self.changed("steps", self.files.steps):
            records, self.step_offset = read_steps(
                self.files.steps, self.files.root, self.step_offset
            )
            out += [event("step", {"run": self.id, **r}) for r in records]
        if self.changed("metrics", self.files.metrics):
            epochs = self._epochs()
            if len(epochs) < self.epochs_sent:  # rewritten (a resume cut it back)
                self.epochs_sent = 0
            out += [event("epoch", {"run": self.id, **e}) for e in epochs[self.epochs_sent :]]
            self.epochs_sent = len(epochs)
        if self.changed("results", self.files.results) or self.status is None:
            status = status_of(self.files.root)
            if status != self.status:
                self.status = status
                out.append(event("status", {"run": self.id, "status": status}))
        return out


@dataclass
class WatchedExperiment:
    """An experiment folder: its runs as they appear (``OUT/runs/LABEL``), watched like any run,
    and an ``experiment`` event (``describe(folder)``, the folder's record) whenever a run
    appears or changes status or ``results.json`` is written."""

    id: str
    folder: Path
    describe: Callable[[Path], dict[str, Any]]
    identify: Callable[[Path], str | None]  # a run directory's id (None: outside the roots)
    runs: dict[Path, Watched] = field(default_factory=dict)
    stamps: dict[str, tuple[int, int] | None] = field(default_factory=dict)

    def _new_runs(self) -> list[Watched]:
        from cnnlab.report.runs import is_run_dir

        found = []
        try:
            with os.scandir(self.folder / "runs") as entries:
                paths = [Path(e.path) for e in entries if e.is_dir() and e.name[0] != "."]
        except OSError:
            return []
        for path in sorted(paths)[:MAX_RUNS]:
            rid = self.identify(path) if path not in self.runs else None
            if rid is not None and is_run_dir(path):
                self.runs[path] = Watched(rid, RunFiles(path))
                found.append(self.runs[path])
        return found

    def start_at_end(self) -> None:
        for w in self._new_runs():
            w.start_at_end()
        self.stamps["results"] = _stamp(self.folder / "results.json")

    def poll(self, status_of: Callable[[Path], str]) -> list[str]:
        new = self._new_runs()  # a run found now is sent from its first record
        out = []
        changed = bool(new)
        for w in self.runs.values():
            texts = w.poll(status_of)
            changed |= any(t.startswith("event: status") for t in texts)
            out += texts
        stamp = _stamp(self.folder / "results.json")
        if stamp != self.stamps.get("results") or "sent" not in self.stamps:
            self.stamps["results"] = stamp
            self.stamps["sent"] = None
            changed = True
        if changed:
            out.append(event("experiment", {"experiment": self.id, **self.describe(self.folder)}))
        return out


async def stream(
    runs: list[tuple[str, Path]],
    status_of: Callable[[Path], str],
    jobs: Any,
    disconnected: Callable[[], Any],
    experiments: list[WatchedExperiment] = (),  # type: ignore[assignment]
) -> AsyncIterator[str]:
    """The event stream of ``runs`` (id, directory), ``experiments`` and the job queue ``jobs``."""
    watched: list[Watched | WatchedExperiment] = [
        Watched(rid, RunFiles(path)) for rid, path in runs[:MAX_RUNS]
    ]
    watched += list(experiments)[:MAX_RUNS]
    for w in watched:
        await asyncio.to_thread(w.start_at_end)
    yield ": cnnlab studio events\n\n"
    jobs_seen: dict[int, dict[str, Any]] = {}
    version = -1
    quiet = 0.0
    while not await disconnected():
        sent = False
        for w in watched:
            for text in await asyncio.to_thread(w.poll, status_of):
                yield text
                sent = True
        if jobs.version != version:
            version = jobs.version
            for record in jobs.list():
                if jobs_seen.get(record["id"]) != record:
                    jobs_seen[record["id"]] = record
                    yield event("job", record)
                    sent = True
        quiet = 0.0 if sent else quiet + POLL_SECONDS
        if quiet >= KEEPALIVE_SECONDS:
            quiet = 0.0
            yield ": keep-alive\n\n"
        await asyncio.sleep(POLL_SECONDS)
