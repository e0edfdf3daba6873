"""The studio's JSON endpoints: thin routes over the functions the command line calls.

Each route parses, calls the library and returns its data: the runs list is
:func:`cnnlab.report.runs.find_runs` and :func:`~cnnlab.report.runs.read_run` (what ``cnnlab
runs --format json`` prints), a run's summary is the report's own arithmetic
(:mod:`cnnlab.report.scores`, :func:`cnnlab.report.page.worst_errors`), layers are the
analyzer's rows, predictions and explanations are :mod:`cnnlab.studio.inspect`'s. Errors are
:class:`~cnnlab.studio.security.Refused` (a 4xx and one line); the app turns them into JSON.
"""

from __future__ import annotations

import json
import math
import os
import threading
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any

from starlette.requests import Request
from starlette.responses import FileResponse, HTMLResponse, StreamingResponse
from starlette.responses import JSONResponse as _JSONResponse
from starlette.routing import Route

from cnnlab.studio import live
from cnnlab.studio.security import Refused, resolve_run, run_id

if TYPE_CHECKING:
    from cnnlab.studio.state import Studio

RUNNING_SECONDS = 30.0  # an unfinished run whose step log changed this recently is "running"
PER_PAGE = (1, 200)  # thumbnails of a confusion cell per page
JSON_BODY_BYTES = 64 * 1024


def finite(value: Any) -> Any:
    """``value`` with NaN and infinities as None: JSON has no NaN (a score of a class never
    predicted is NaN, "n/a" in the report)."""
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if isinstance(value, dict):
        return {k: finite(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [finite(v) for v in value]
    return value


class JSONResponse(_JSONResponse):
    """Strict JSON (no NaN), whatever the library's numbers hold."""

    def render(self, content: Any) -> bytes:
        return json.dumps(finite(content), allow_nan=False, separators=(",", ":")).encode()


def studio(request: Request) -> Studio:
    return request.app.state.studio


def run_dir(request: Request) -> Path:
    return resolve_run(request.path_params["run"], studio(request).roots)


async def json_body(request: Request) -> dict[str, Any]:
    """The request's JSON object, or a 400 naming what is wrong with it."""
    body = await request.body()
    if len(body) > JSON_BODY_BYTES:
        raise Refused(413, f"the JSON body is over {JSON_BODY_BYTES:,} bytes: send less")
    try:
        data = json.loads(body)
    except (ValueError, RecursionError):
        raise Refused(400, "the body is not valid JSON: send a JSON object") from None
    if not isinstance(data, dict):
        raise Refused(400, 'the body must be a JSON object, as {"key": value}')
    return data


# --- runs ----------------------------------------------------------------------------------------


def status_of(s: Studio, summary: Any) -> str:
    """A run's status as ``cnnlab runs`` says it, and ``running`` while a job or the step log
    shows it training (nothing on disk tells an interrupted run from a running one)."""
    if summary.status != "interrupted":
        return summary.status
    job = s.jobs.running()
    if job is not None and job.out.resolve() == summary.path.resolve():
        return "running"
    steps = summary.path / "steps.jsonl"
    try:
        if time.time() - steps.stat().st_mtime < RUNNING_SECONDS:
            return "running"
    except OSError:
        pass
    return summary.status


def path_status(s: Studio, path: Path) -> str:
    from cnnlab.report.runs import read_run

    return status_of(s, read_run(path))


# Run directory -> (its files' stamps, read_run's summary, the newest file time): a run whose
# files did not change is not read again. Reading 500 runs costs about 0.8 s on this project's
# CPU, their stamps a few ms; 20 clients asking for the list at once made that 13 s each.
_SUMMARIES: dict[Path, tuple[tuple[Any, ...], Any, float | None]] = {}
_READING = threading.Lock()


def read_run_cached(path: Path) -> tuple[Any, float | None]:
    """:func:`cnnlab.report.runs.read_run`'s summary of ``path`` and its newest file's time,
    read again only when one of the files it reads changed (size, time or inode)."""
    from cnnlab.report.runs import read_run
    from cnnlab.run.layout import RunFiles

    files = RunFiles(path)
    stamps = []
    for file in (files.config, files.metrics, files.results, files.splits, files.checkpoints,
                 files.steps):  # fmt: skip
        try:
            st = os.stat(file)
            stamps.append((st.st_size, st.st_mtime_ns, st.st_ino))
        except OSError:
            stamps.append(None)
    key = tuple(stamps)
    hit = _SUMMARIES.get(path)
    if hit is not None and hit[0] == key:
        return hit[1], hit[2]
    # One reader at a time: a request that meets the start-up reader (cnnlab.studio.app) waits
    # for its summaries instead of reading the same files beside it on the same cores.
    with _READING:
        hit = _SUMMARIES.get(path)
        if hit is not None and hit[0] == key:
            return hit[1], hit[2]
        times = [stamp[1] / 1e9 for stamp in stamps if stamp is not None]
        summary = read_run(path)
        _SUMMARIES[path] = (key, summary, max(times) if times else None)
        return summary, _SUMMARIES[path][2]


def list_runs(request: Request) -> JSONResponse:
    from cnnlab.report.runs import find_runs

    s = studio(request)
    runs = []
    for path in find_runs(s.roots):
        rid = run_id(path, s.roots)
        if rid is None:  # a symlinked run folder that points out of its root
            continue
        summary, modified = read_run_cached(path)
        record = summary.to_dict()
        del record["run"]
        runs.append({"id": rid, "path": str(path), **record,
                     "status": status_of(s, summary), "modified": modified})  # fmt: skip
    return JSONResponse({"roots": [str(r) for r in s.roots], "runs": runs})


def curves(request: Request) -> JSONResponse:
    from cnnlab.report.runs import read_run
    from cnnlab.run.layout import RunFiles

    path = run_dir(request)
    summary = read_run(path)  # checked records; a damaged file gives [] and the status says so
    return JSONResponse({"epochs": summary.history, "steps": RunFiles(path).read_steps()})


def summary(request: Request) -> JSONResponse:
    """The report's data of a finished run (:mod:`cnnlab.report.page`, ``scores``)."""
    from cnnlab.report.page import CONFUSED_PAIRS, worst_errors
    from cnnlab.report.runs import read_run
    from cnnlab.report.scores import class_scores, confused_pairs, macro_average
    from cnnlab.run.layout import RunFiles

    s, path = studio(request), run_dir(request)
    run = read_run(path)
    if run.status == "damaged":
        raise Refused(409, f"damaged run: {run.reason}")
    results = RunFiles(path).read_outcome()
    test = results.test if results is not None else None
    if test is None:
        raise Refused(409, "the run has no test results yet: its summary comes when it finishes")
    confusion = [list(row) for row in test.confusion]
    classes = list(test.classes)
    scores = class_scores(confusion, classes)
    worst, note = [], ""
    try:
        x, y, logits = s.inspector.test_set(path)
        worst = [
            {"index": _index(p.alt), "uri": p.uri, "alt": p.alt, "caption": p.caption}
            for p in worst_errors(x, y, logits, classes)
        ]
    except Exception as err:  # the data is not on this machine: the rest is still shown
        note = f"no gallery of worst errors: {err}"
    report = path / "report.html"
    rid = request.path_params["run"]
    return JSONResponse({
        "summary": {**run.to_dict(), "run": rid, "top5": test.top5, "loss": test.loss},
        "per_class": [vars(c) for c in [*scores, macro_average(scores)]],
        "confused": [vars(c) for c in confused_pairs(confusion, classes, CONFUSED_PAIRS)],
        "worst": worst,
        "worst_note": note,
        "confusion": confusion,
        "classes": classes,
        "report_url": f"/api/runs/{rid}/report" if report.is_file() else None,
    })  # fmt: skip


def _index(alt: str) -> int | None:
    """The test index :func:`~cnnlab.report.page.worst_errors` puts in its alt text."""
    word = alt.removeprefix("test image ").split(":", 1)[0]
    return int(word) if word.isdigit() else None


def report_page(request: Request) -> HTMLResponse:
    """The run's static ``report.html`` (``cnnlab report``), read through the checked opener."""
    from cnnlab import files
    from cnnlab.errors import CnnlabError

    path = run_dir(request) / "report.html"
    try:
        text = files.read_bytes(path, what="report.html", limit="json").decode("utf-8")
    except (CnnlabError, UnicodeDecodeError):
        raise Refused(404, "no report.html: run `cnnlab report RUN_DIR` to make it") from None
    return HTMLResponse(text)


def confusion_cell(request: Request) -> JSONResponse:
    """The test images of true class ``true`` predicted as ``pred`` (a page of thumbnails)."""
    from cnnlab.report.html import image_uri

    s, path = studio(request), run_dir(request)
    true, pred = _ints(request.path_params, ("true", "pred"), 0, 100_000)
    page, per_page = _ints(request.query_params, ("page", "per_page"), 0, 100_000, (0, 24))
    if not PER_PAGE[0] <= per_page <= PER_PAGE[1]:
        raise Refused(400, f"per_page must be from {PER_PAGE[0]} to {PER_PAGE[1]}")
    x, y, logits = s.inspector.test_set(path)
    k = logits.shape[1]
    if true >= k or pred >= k:
        raise Refused(404, f"no cell ({true}, {pred}): the run has {k} classes")
    hits = ((y == true) & (logits.argmax(1) == pred)).nonzero().flatten().tolist()
    chosen = hits[page * per_page : (page + 1) * per_page]
    images = [{"index": i, "uri": image_uri(x[i])} for i in chosen]
    return JSONResponse({"total": len(hits), "images": images})


def _ints(source: Any, names: tuple[str, ...], low: int, high: int, defaults=None) -> list[int]:
    out = []
    for n, name in enumerate(names):
        text = source.get(name)
        if text is None and defaults is not None:
            out.append(defaults[n])
            continue
        if text is None or not str(text).isdigit() or not low <= int(text) <= high:
            raise Refused(400, f"{name} must be an integer from {low} to {high}, not {text!r}")
        out.append(int(text))
    return out


# --- live ----------------------------------------------------------------------------------------


def events(request: Request) -> StreamingResponse:
    """``?runs=ID,ID`` and ``?experiments=ID,ID`` (experiment folders), plus every job."""
    from cnnlab.studio.experiments import folder_record, resolve_folder

    s = studio(request)
    status = _status(s)
    ids = [i for i in request.query_params.get("runs", "").split(",") if i]
    runs = [(i, resolve_run(i, s.roots)) for i in ids]
    folders = [i for i in request.query_params.get("experiments", "").split(",") if i]
    experiments = [
        live.WatchedExperiment(i, resolve_folder(s, i), lambda f: folder_record(s, f, status),
                               lambda p: run_id(p, s.roots))
        for i in folders
    ]  # fmt: skip
    body = live.stream(
        runs, lambda p: path_status(s, p), s.jobs, request.is_disconnected, experiments
    )
    headers = {"Cache-Control": "no-store", "X-Accel-Buffering": "no"}
    return StreamingResponse(body, media_type="text/event-stream", headers=headers)


# --- experiments (cnnlab.studio.experiments) ---------------------------------------------------


def _status(s: Studio) -> Any:
    return lambda summary: status_of(s, summary)


def experiments(request: Request) -> JSONResponse:
    from cnnlab.studio.experiments import listing

    s = studio(request)
    return JSONResponse(listing(s, _status(s)))


def experiment(request: Request) -> JSONResponse:
    from cnnlab.studio.experiments import folder_record, resolve_folder

    s = studio(request)
    folder = resolve_folder(s, request.path_params["folder"])
    return JSONResponse(folder_record(s, folder, _status(s), detail=True))


def experiment_figure(request: Request) -> FileResponse:
    from cnnlab.studio.experiments import figure_file

    path = figure_file(studio(request), request.path_params["folder"], request.path_params["file"])
    return FileResponse(path, media_type="image/png", headers={"Cache-Control": "no-store"})


# --- jobs ----------------------------------------------------------------------------------------


def jobs(request: Request) -> JSONResponse:
    return JSONResponse({"jobs": studio(request).jobs.list()})


async def start_job(request: Request) -> JSONResponse:
    job = studio(request).jobs.submit(await json_body(request))
    return JSONResponse(job.to_dict(), status_code=201)


def _job_id(request: Request) -> int:
    return _ints(request.path_params, ("job",), 0, 10**9)[0]


def stop_job(request: Request) -> JSONResponse:
    return JSONResponse(studio(request).jobs.stop(_job_id(request)).to_dict())


def resume_job(request: Request) -> JSONResponse:
    return JSONResponse(studio(request).jobs.resume(_job_id(request)).to_dict(), status_code=201)


# --- what a job can train ------------------------------------------------------------------------


def models(request: Request) -> JSONResponse:
    from cnnlab.registry import list_models, model_info

    infos = [model_info(name) for name in list_models()]
    return JSONResponse({"models": [
        {"name": i.name, "family": i.family, "paper": i.paper, "input_size": list(i.input_size),
         "description": i.description} for i in infos
    ]})  # fmt: skip


def datasets(request: Request) -> JSONResponse:
    s = studio(request)
    return JSONResponse({"datasets": s.named_datasets(), "folders": s.image_folders()})


# --- a model's insides ---------------------------------------------------------------------------


def layers(request: Request) -> JSONResponse:
    from cnnlab.analysis import analyze

    s, path = studio(request), run_dir(request)
    with s.inspector.lock:
        p = s.inspector.loaded(path)["predictor"]
        report = analyze(p.model, input_size=p.meta.input_size)
    rows = [{"name": r.name, "kind": r.kind, "type": r.type, "output_shape": list(r.output_shape)}
            for r in report.rows]  # fmt: skip
    return JSONResponse(rows)


async def inspect(request: Request) -> JSONResponse:
    from starlette.concurrency import run_in_threadpool

    s, path = studio(request), run_dir(request)
    kind = request.headers.get("content-type", "")
    if kind.startswith("multipart/form-data"):
        from cnnlab.studio.inspect import MAX_UPLOAD_BYTES

        async with request.form(
            max_files=1, max_fields=4, max_part_size=MAX_UPLOAD_BYTES + 1
        ) as form:
            upload = form.get("image")
            if upload is None or isinstance(upload, str):
                raise Refused(400, "send the image as the multipart field 'image'")
            data = await upload.read(MAX_UPLOAD_BYTES + 1)
        image_id = await run_in_threadpool(s.inspector.add_upload, data, path)
    else:
        body = await json_body(request)
        if "test_index" not in body:
            raise Refused(400, 'send {"test_index": N} or a multipart upload named image')
        image_id = await run_in_threadpool(s.inspector.add_test_image, path, body["test_index"])
    top5 = await run_in_threadpool(s.inspector.top5, path, image_id)
    return JSONResponse({"image_id": image_id, "top5": top5})


async def explain(request: Request) -> JSONResponse:
    from starlette.concurrency import run_in_threadpool

    s, path = studio(request), run_dir(request)
    body = await json_body(request)
    return JSONResponse(await run_in_threadpool(s.inspector.explain, path, body))


RUN = "/api/runs/{run:path}"
ROUTES = [
    Route("/api/runs", list_runs),
    Route(RUN + "/curves", curves),
    Route(RUN + "/summary", summary),
    Route(RUN + "/report", report_page),
    Route(RUN + "/confusion/{true}/{pred}", confusion_cell),
    Route(RUN + "/layers", layers),
    Route(RUN + "/inspect", inspect, methods=["POST"]),
    Route(RUN + "/explain", explain, methods=["POST"]),
    Route("/api/events", events),
    Route("/api/jobs", jobs, methods=["GET"]),
    Route("/api/jobs", start_job, methods=["POST"]),
    Route("/api/jobs/{job}/stop", stop_job, methods=["POST"]),
    Route("/api/jobs/{job}/resume", resume_job, methods=["POST"]),
    Route("/api/experiments", experiments),
    Route("/api/experiments/{folder:path}/figures/{file}", experiment_figure),
    Route("/api/experiments/{folder:path}", experiment),
    Route("/api/models", models),
    Route("/api/datasets", datasets),
]
