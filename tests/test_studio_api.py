"""cnnlab studio's API against tiny real runs (Starlette's TestClient; a real server for SSE)."""

from __future__ import annotations

import io
import json
import shutil
import socket
import threading
import time
from pathlib import Path

import pytest

pytest.importorskip("starlette")
pytest.importorskip("httpx")

from starlette.testclient import TestClient

from cnnlab.studio import create_app

PORT = 6071
TOKEN = "test-token"
BASE = f"http://127.0.0.1:{PORT}"


@pytest.fixture(scope="module")
def root(trained_run: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A runs root with the finished tiny run as ``demo`` and a damaged copy."""
    root = tmp_path_factory.mktemp("studio")
    shutil.copytree(trained_run, root / "demo")
    shutil.copytree(trained_run, root / "broken")
    (root / "broken" / "results.json").write_text("null")
    return root


@pytest.fixture(scope="module")
def client(root: Path):
    app = create_app([root], TOKEN, port=PORT)
    with TestClient(app, base_url=BASE, headers={"X-Cnnlab-Token": TOKEN}) as c:
        yield c


def test_runs_list_shows_finished_and_damaged(client):
    body = client.get("/api/runs").json()
    runs = {r["id"]: r for r in body["runs"]}
    assert set(runs) == {"0/demo", "0/broken"}
    demo = runs["0/demo"]
    assert demo["status"] == "finished" and demo["epochs_done"] == 2
    assert 0 <= demo["test_top1"] <= 1 and demo["model"] == "tinynet"
    assert runs["0/broken"]["status"] == "damaged"
    assert "results.json" in runs["0/broken"]["reason"]


def test_curves_have_epochs_and_steps(client, root):
    body = client.get("/api/runs/0/demo/curves").json()
    assert [e["epoch"] for e in body["epochs"]] == [1, 2]
    steps = body["steps"]
    assert steps and steps[0]["step"] >= 1
    assert [s["step"] for s in steps] == sorted(s["step"] for s in steps)


def test_summary_is_the_reports_arithmetic(client, root):
    from cnnlab.report.scores import class_scores
    from cnnlab.run.layout import RunFiles

    body = client.get("/api/runs/0/demo/summary").json()
    test = RunFiles(root / "demo").read_outcome().test
    assert body["confusion"] == [list(r) for r in test.confusion]
    assert body["classes"] == list(test.classes)
    recalls = [c.recall for c in class_scores(body["confusion"], body["classes"])]
    assert [c["recall"] for c in body["per_class"][:-1]] == pytest.approx(recalls, nan_ok=True)
    assert body["worst"] and all(w["uri"].startswith("data:image/png") for w in body["worst"])
    assert all(isinstance(w["index"], int) for w in body["worst"])
    assert client.get("/api/runs/0/broken/summary").status_code == 409


def test_confusion_cell_lists_its_images(client):
    body = client.get("/api/runs/0/demo/summary").json()
    confusion = body["confusion"]
    true, pred = max(
        ((i, j) for i in range(10) for j in range(10) if i != j),
        key=lambda c: confusion[c[0]][c[1]],
    )
    cell = client.get(f"/api/runs/0/demo/confusion/{true}/{pred}?per_page=3").json()
    assert cell["total"] == confusion[true][pred]
    assert len(cell["images"]) == min(3, cell["total"])
    assert client.get("/api/runs/0/demo/confusion/99/0").status_code == 404
    assert client.get("/api/runs/0/demo/confusion/1/0?per_page=0").status_code == 400


def test_models_datasets_layers(client):
    models = client.get("/api/models").json()["models"]
    assert {"lenet5", "resnet18"} <= {m["name"] for m in models}
    assert all(m["family"] for m in models)
    data = client.get("/api/datasets").json()
    assert "fashion-mnist" in {d["name"] for d in data["datasets"]}
    layers = client.get("/api/runs/0/demo/layers").json()
    assert layers and all(len(row["output_shape"]) >= 1 for row in layers)


def test_inspect_matches_predict_and_explain_has_scores(client, root):
    import cnnlab

    r = client.post("/api/runs/0/demo/inspect", json={"test_index": 3})
    assert r.status_code == 200, r.text
    body = r.json()
    assert len(body["top5"]) == 5
    assert sum(t["probability"] for t in body["top5"]) <= 1 + 1e-6
    # the same numbers as `cnnlab predict` on the same pixels, as a file
    png = root / ".studio" / "images" / f"{body['image_id']}.png"
    p = cnnlab.load(root / "demo", device="cpu")
    expected = p.top_k(p.predict([png]), 5)[0]
    assert [t["class"] for t in body["top5"]] == [t.name for t in expected]
    assert [t["probability"] for t in body["top5"]] == pytest.approx(
        [t.probability for t in expected], abs=1e-6
    )
    for method in ("gradcam", "saliency", "occlusion", "features"):
        e = client.post(
            "/api/runs/0/demo/explain",
            json={"image_id": body["image_id"], "method": method, "class": 2},
        )
        assert e.status_code == 200, (method, e.text)
        out = e.json()
        assert out["png"].startswith("data:image/png;base64,")
        if method != "features":
            assert out["class"] == 2
            scores = next(iter(out["faithfulness"].values()))
            assert scores["mean"] is not None and "deletion" in json.dumps(scores)
        else:
            assert out["faithfulness"] is None and out["layer"]


def test_a_map_alone_is_the_map_with_scores(client, root):
    """``"faithfulness": false`` answers the same picture without the scores (the quick answer
    to a layer or class switch); the scores come with the next request; a layer switch draws
    another layer's map, and saliency ignores the layer."""
    image = client.post("/api/runs/0/demo/inspect", json={"test_index": 5}).json()["image_id"]
    layers = [r["name"] for r in client.get("/api/runs/0/demo/layers").json()
              if len(r["output_shape"]) == 3]  # fmt: skip
    ask = {"image_id": image, "method": "gradcam", "class": 1, "layer": layers[-1]}
    quick = client.post("/api/runs/0/demo/explain", json=ask | {"faithfulness": False}).json()
    full = client.post("/api/runs/0/demo/explain", json=ask).json()
    assert quick["faithfulness"] is None and full["faithfulness"]["gradcam"]["mean"]
    assert quick["png"] == full["png"] and quick["layer"] == full["layer"] == layers[-1]
    other = client.post("/api/runs/0/demo/explain",
                        json=ask | {"faithfulness": False, "layer": layers[1]}).json()  # fmt: skip
    assert other["layer"] == layers[1] and other["png"] != quick["png"]
    saliency = ask | {"method": "saliency", "faithfulness": False}
    assert client.post("/api/runs/0/demo/explain", json=saliency).json()["layer"] is None
    r = client.post("/api/runs/0/demo/explain", json=ask | {"layer": "nosuch"})
    assert r.status_code == 400 and "nosuch" in r.json()["error"]


def test_upload_is_decoded_by_the_safe_reader(client):
    from PIL import Image

    buf = io.BytesIO()
    Image.new("L", (40, 30), 128).save(buf, "PNG")
    r = client.post("/api/runs/0/demo/inspect", files={"image": ("x.png", buf.getvalue())})
    assert r.status_code == 200, r.text
    assert len(r.json()["top5"]) == 5


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture
def live_server(tmp_path: Path):
    """A real uvicorn server (the SSE stream and the job processes need one)."""
    import uvicorn

    port = _free_port()
    app = create_app([tmp_path], TOKEN, port=port)
    server = uvicorn.Server(uvicorn.Config(app, port=port, log_level="warning", lifespan="on"))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.time() + 10
    while not server.started and time.time() < deadline:
        time.sleep(0.05)
    yield f"http://127.0.0.1:{port}", app, tmp_path
    server.should_exit = True
    thread.join(20)


def _wait(client, job_id: int, states: set[str], seconds: float = 60) -> dict:
    deadline = time.time() + seconds
    while time.time() < deadline:
        job = next(j for j in client.get("/api/jobs").json()["jobs"] if j["id"] == job_id)
        if job["state"] in states:
            return job
        time.sleep(0.1)
    raise AssertionError(f"job {job_id} never reached {states}: {job}")


@pytest.mark.slow
def test_job_start_stop_resume_with_live_events(live_server):
    """A tiny `cnnlab train` job: live step events within 1 s of the record, a clean stop that
    leaves a resumable run, and a resume that finishes it."""
    import httpx

    base, _, root = live_server
    client = httpx.Client(base_url=base, headers={"X-Cnnlab-Token": TOKEN}, timeout=30)
    spec = {
        "kind": "train",
        "model": "lenet5",
        "data": "fashion-mnist",
        "epochs": 2,
        "threads": 1,
        # Long enough that the stream connects mid-training and the stop lands in epoch 2, after
        # epoch 1's checkpoint: 10,000 images were 0.6 s an epoch on a quiet AMX machine (CI),
        # over before two step records (0.5 s apart) reached the stream.
        "limit_train": 40000,
        "limit_test": 200,
    }
    r = client.post("/api/jobs", json=spec)
    assert r.status_code == 201, r.text
    job = r.json()
    assert (
        job["command"][:3] == ["cnnlab", "train", "lenet5"]
        and job["run"] == "0/lenet5-fashion-mnist"
    )
    run = root / "lenet5-fashion-mnist"
    deadline = time.time() + 30
    while not (run / "steps.jsonl").exists() and time.time() < deadline:
        time.sleep(0.05)
    lags = []
    deadline = time.time() + 30  # the keep-alive lines wake the loop: it cannot wait forever
    with client.stream("GET", f"/api/events?runs={job['run']}") as events:
        name = None
        for line in events.iter_lines():
            if time.time() > deadline:
                break
            if line.startswith("event: "):
                name = line[7:]
            elif line.startswith("data: ") and name == "step":
                lags.append(time.time() - json.loads(line[6:])["t"])
                if len(lags) >= 2:
                    break
    assert lags and max(lags) < 1.0, lags
    deadline = time.time() + 60
    while not any((run / "checkpoints").glob("step-*.json")) and time.time() < deadline:
        time.sleep(0.05)  # stopped after epoch 1's checkpoint: a run that can resume
    client.post(f"/api/jobs/{job['id']}/stop").raise_for_status()
    stopped = _wait(client, job["id"], {"stopped", "failed", "finished"})
    assert stopped["state"] == "stopped", stopped["log"]
    assert not (run / "results.json").exists() and any((run / "checkpoints").glob("step-*"))
    r = client.post(f"/api/jobs/{job['id']}/resume")
    assert r.status_code == 201 and r.json()["command"][-1] == "--resume"
    done = _wait(client, r.json()["id"], {"stopped", "failed", "finished"}, 120)
    assert done["state"] == "finished", done["log"]
    runs = {x["id"]: x for x in client.get("/api/runs").json()["runs"]}
    assert runs["0/lenet5-fashion-mnist"]["status"] == "finished"
