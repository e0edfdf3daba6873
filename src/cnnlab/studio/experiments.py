"""The experiments view's data: cnnlab's experiments, their results under the roots, figures.

``GET /api/experiments`` lists the catalogue (:mod:`cnnlab.experiments.catalogue`: each
experiment's title, claim and source as its module states them, its tiers with their expected
times) and, under each, the experiment folders found in the runs roots. A folder is one that
``cnnlab experiment run`` wrote (``experiment.json``); it is ``finished`` once its
``results.json`` is there, and then shows the verdict as ``cnnlab experiment run`` printed it
(:func:`cnnlab.experiments.page.verdict_words`). ``GET /api/experiments/ID`` adds a folder's
findings, departures, figures and runs; ``GET /api/experiments/ID/figures/FILE`` serves one of its
figure PNGs, confined to the folder's ``figures/``. A tier starts as an ordinary job
(``POST /api/jobs`` with ``{"kind": "experiment"}``, :mod:`cnnlab.studio.jobs`) and its progress
streams from ``/api/events?experiments=ID`` (:mod:`cnnlab.studio.live`).

The routes are :mod:`cnnlab.studio.api`'s; nothing here imports torch: the experiments' modules
are data until one runs.
"""

from __future__ import annotations

import os
import re
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

from cnnlab.studio.security import Refused, resolve_run, run_id

if TYPE_CHECKING:
    from cnnlab.report.runs import RunSummary
    from cnnlab.studio.state import Studio

    Status = Callable[[RunSummary], str]  # a run's status as the runs list says it

DEPTH = 3  # folders below each root searched for experiment folders (ROOT/experiments/NAME-TIER)
FIGURE_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.+-]{0,120}\.png$")
FIGURE_BYTES = 20 * 2**20  # an experiment's figure is a few hundred kB at most
# What a detail adds to a folder's record, taken from results.json as the runner wrote it.
DETAIL_FIELDS = ("findings", "departures", "paper", "learned", "notes", "settings", "measured")


def catalogue() -> list[dict[str, Any]]:
    """Every experiment this cnnlab has, in the lectures' order, with its tiers' expected times."""
    from cnnlab.experiments.catalogue import list_experiments
    from cnnlab.experiments.timings import expected

    rows = []
    for e in list_experiments():
        tiers = []
        for tier in e.tiers:
            guess = expected(e, tier)
            tiers.append({"tier": tier, "expected_s": guess.seconds, "words": guess.words(),
                          "measured_on": guess.measured_on})  # fmt: skip
        rows.append({"name": e.name, "title": e.title, "claim": e.claim, "source": e.source,
                     "data": list(e.data), "tiers": tiers})  # fmt: skip
    return rows


def find_folders(roots: list[Path]) -> list[Path]:
    """Experiment folders (holding ``experiment.json``) in the roots, :data:`DEPTH` deep.

    Run directories and hidden folders (the studio's own ``.studio``) are not searched; an
    experiment folder's own runs are not experiments.
    """
    from cnnlab.experiments.base import REQUEST_FILE
    from cnnlab.report.runs import is_run_dir

    found: list[Path] = []

    def walk(path: Path, depth: int) -> None:
        if os.path.lexists(path / REQUEST_FILE):
            found.append(path)
            return
        if depth == 0 or is_run_dir(path):
            return
        try:
            children = sorted(c for c in path.iterdir() if c.is_dir() and c.name[0] != ".")
        except OSError:
            return
        for child in children:
            walk(child, depth - 1)

    for root in roots:
        walk(root, DEPTH)
    return found


def folder_runs(s: Studio, folder: Path, status: Status) -> list[dict[str, Any]]:
    """The runs an experiment trained (``OUT/runs/LABEL``), as the runs list shows them."""
    from cnnlab.report.runs import find_runs, read_run

    runs_dir = folder / "runs"
    if not runs_dir.is_dir():
        return []
    out = []
    for path in find_runs([runs_dir]):
        rid = run_id(path, s.roots)
        if rid is None:  # a symlink out of the roots
            continue
        summary = read_run(path)
        record = summary.to_dict()
        del record["run"]
        out.append({"id": rid, "label": path.relative_to(runs_dir).as_posix(), **record,
                     "status": status(summary)})  # fmt: skip
    return out


def folder_record(
    s: Studio, folder: Path, status: Status, *, detail: bool = False
) -> dict[str, Any]:
    """One experiment folder: what was asked, its state and, when finished, its verdict.

    ``state`` is ``finished`` (``results.json``), ``queued`` or ``running`` (a studio job, or a
    run of it training now), ``unfinished`` (stopped: ``--resume`` continues it) or ``damaged``
    (a file unreadable: ``reason`` says which).
    """
    from cnnlab.errors import CnnlabError
    from cnnlab.experiments.base import REQUEST_FILE, RESULTS_FILE, read_record
    from cnnlab.experiments.page import rerun_command, verdict_words

    fid = run_id(folder, s.roots)
    record: dict[str, Any] = {"id": fid, "path": str(folder), "state": "unfinished", "reason": ""}
    try:
        asked = read_record(folder / REQUEST_FILE, folder)
        record |= {k: asked.get(k) for k in ("experiment", "tier", "data", "seed")}
        results = read_record(folder / RESULTS_FILE, folder) if os.path.lexists(
            folder / RESULTS_FILE) else None  # fmt: skip
    except CnnlabError as err:
        return record | {"state": "damaged", "reason": str(err)}
    job = _job_of(s, folder)
    record["job"] = job
    runs = folder_runs(s, folder, status) if detail or results is None else []
    if results is not None:
        try:
            figures = [{"file": str(f["file"]), "caption": str(f["caption"]),
                        "url": f"/api/experiments/{fid}/figures/{f['file']}"}
                       for f in results.get("figures", [])]  # fmt: skip
            record |= {
                "state": "finished",
                "title": results.get("title"),
                "verdict_words": verdict_words(results),
                "verdict": results.get("verdict"),
                "judged": results.get("judged"),
                "held": results.get("held"),
                "seconds": results.get("seconds"),
                "figures": figures,
                "rerun": rerun_command(results),
            }
        except (KeyError, TypeError, AttributeError) as err:
            return record | {"state": "damaged", "reason": f"{RESULTS_FILE}: {err!r} is wrong"}
        if detail:
            from cnnlab.experiments.timings import machine_words

            record |= {k: results.get(k) for k in DETAIL_FIELDS}
            record["machine"] = machine_words(results.get("machine") or {})
    elif job is not None and job["state"] in ("queued", "running"):
        record["state"] = job["state"]
    elif any(r["status"] == "running" for r in runs):
        record["state"] = "running"
    if detail or results is None:
        record["runs"] = runs
    return record


def _job_of(s: Studio, folder: Path) -> dict[str, Any] | None:
    """The newest studio job writing ``folder``, if any."""
    jobs = [j for j in s.jobs.list() if j["experiment"] and j["run"] == run_id(folder, s.roots)]
    return jobs[-1] if jobs else None


def resolve_folder(s: Studio, fid: str) -> Path:
    """The experiment folder ``fid`` names, inside its root (404 if it is none)."""
    from cnnlab.experiments.base import REQUEST_FILE

    path = resolve_run(fid, s.roots)
    if not os.path.lexists(path / REQUEST_FILE):
        raise Refused(404, f"no experiment folder {fid!r}: pick one from /api/experiments")
    return path


def listing(s: Studio, status: Status) -> dict[str, Any]:
    """``GET /api/experiments``: the catalogue, each row with its folders; folders of
    experiments this cnnlab does not know (or damaged ones) as ``others``; experiment jobs."""
    folders = [folder_record(s, f, status) for f in find_folders(s.roots)]
    rows = catalogue()
    names = {r["name"] for r in rows}
    for row in rows:
        row["results"] = [f for f in folders if f.get("experiment") == row["name"]]
    others = [f for f in folders if f.get("experiment") not in names]
    jobs = [j for j in s.jobs.list() if j["experiment"]]
    return {"experiments": rows, "others": others, "jobs": jobs}


def figure_file(s: Studio, fid: str, name: str) -> Path:
    """A PNG of the folder's ``figures/``: a plain name, a regular file inside it (no symlink
    out of it), not larger than :data:`FIGURE_BYTES`."""
    folder = resolve_folder(s, fid)
    if not FIGURE_NAME.match(name):
        raise Refused(404, f"no figure {name!r}: a figure is a .png named in the experiment")
    figures = (folder / "figures").resolve()
    path = (figures / name).resolve()
    if path.parent != figures or not path.is_file() or path.stat().st_size > FIGURE_BYTES:
        raise Refused(404, f"no figure {name!r} in {folder.name}/figures")
    return path
