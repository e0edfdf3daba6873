"""cnnlab studio's guards: token, Host header, path confinement, hostile uploads, a fuzz loop."""

from __future__ import annotations

import io
import os
import random
import shutil
from pathlib import Path

import pytest

pytest.importorskip("starlette")
pytest.importorskip("httpx")

from starlette.testclient import TestClient

from cnnlab.studio import create_app

PORT = 6072
TOKEN = "secret-token"
BASE = f"http://127.0.0.1:{PORT}"


@pytest.fixture(scope="module")
def root(trained_run: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    top = tmp_path_factory.mktemp("guarded")
    root = top / "root"
    root.mkdir()
    shutil.copytree(trained_run, root / "demo")
    outside = top / "outside"
    shutil.copytree(trained_run, outside)  # a run the studio must never reach
    os.symlink(outside, root / "escape")
    return root


@pytest.fixture(scope="module")
def app(root: Path):
    return create_app([root], TOKEN, port=PORT)


@pytest.fixture(scope="module")
def client(app):
    with TestClient(
        app, base_url=BASE, headers={"X-Cnnlab-Token": TOKEN}, raise_server_exceptions=False
    ) as c:
        yield c


def test_token_is_required_and_becomes_a_strict_cookie(app):
    with TestClient(app, base_url=BASE) as bare:
        r = bare.get("/api/runs")
        assert r.status_code == 401 and "token" in r.json()["error"]
        assert bare.get("/api/runs", headers={"X-Cnnlab-Token": "wrong"}).status_code == 401
        first = bare.get(f"/?token={TOKEN}")
        assert first.status_code in (200, 404)
        cookie = first.headers["set-cookie"]
        assert "HttpOnly" in cookie and "SameSite=Strict" in cookie
        assert bare.get("/api/runs").status_code == 200  # the cookie now carries it


@pytest.mark.parametrize("host", ["evil.example:6072", "127.0.0.1:9999", "127.0.0.1", ""])
def test_foreign_host_header_is_refused(client, host):
    r = client.get("/api/runs", headers={"host": host})
    assert r.status_code == 403 and "Host" in r.json()["error"]


@pytest.mark.parametrize("host", ["localhost:6072", "[::1]:6072", "127.0.0.1:6072"])
def test_loopback_host_headers_pass(client, host):
    assert client.get("/api/models", headers={"host": host}).status_code == 200


@pytest.mark.parametrize(
    "path",
    [
        "/api/runs/0/../../etc/curves",
        "/api/runs/0/%2e%2e/outside/curves",
        "/api/runs/0/%2E%2E%2Foutside/curves",
        "/api/runs/0//etc/curves",
        "/api/runs//etc/passwd/curves",
        "/api/runs/0/escape/curves",  # a symlink out of the root
        "/api/runs/0/escape/summary",
        "/api/runs/5/demo/curves",
        "/api/runs/x/demo/curves",
        "/static/../app.py",
        "/static/%2e%2e/app.py",
        "/static//etc/passwd",
    ],
)
def test_paths_outside_the_roots_are_refused(client, path):
    r = client.get(path)
    assert 400 <= r.status_code < 500, (path, r.status_code)
    assert "error" in r.json()


def test_symlinked_run_is_not_listed(client):
    ids = {r["id"] for r in client.get("/api/runs").json()["runs"]}
    assert ids == {"0/demo"}


def _upload(client, data: bytes):
    return client.post("/api/runs/0/demo/inspect", files={"image": ("x.png", data)})


def test_hostile_uploads_are_refused(client, root):
    from PIL import Image

    r = _upload(client, b"not an image at all")
    assert r.status_code == 400 and "image" in r.json()["error"]
    assert str(root) not in r.json()["error"]
    assert _upload(client, b"").status_code == 400
    big = _upload(client, b"\0" * (10 * 1024 * 1024 + 10))
    assert big.status_code == 413
    for side, status in ((8_000, 413), (10_000, 400)):  # the studio's limit, then Pillow's
        buf = io.BytesIO()  # a decompression bomb: a tiny file of 64 or 100 megapixels
        Image.new("1", (side, side)).save(buf, "PNG")
        assert len(buf.getvalue()) < 100_000
        bomb = _upload(client, buf.getvalue())
        assert bomb.status_code == status and "pixels" in bomb.json()["error"], bomb.text
    assert not list((root / ".studio" / "images").glob("u*"))  # nothing refused is kept


def test_bad_json_and_unknown_values(client):
    post = client.post
    assert post("/api/jobs", content=b"{not json").status_code == 400
    assert post("/api/jobs", json=[1, 2]).status_code == 400
    r = post("/api/jobs", json={"kind": "train", "model": "nosuchnet"})
    assert r.status_code == 400 and "unknown model" in r.json()["error"]
    assert (
        post("/api/jobs", json={"kind": "train", "model": "lenet5", "epochs": -1}).status_code
        == 400
    )
    assert (
        post("/api/jobs", json={"kind": "train", "model": "lenet5", "data": "/etc"}).status_code
        == 400
    )
    assert post("/api/jobs", json={"kind": "bake"}).status_code == 400
    assert post("/api/jobs/77/stop").status_code == 404
    assert post("/api/runs/0/demo/explain", json={"image_id": "nope"}).status_code == 404
    assert post("/api/runs/0/demo/inspect", json={"test_index": 10**9}).status_code == 400
    r = post("/api/runs/0/demo/inspect", json={"test_index": 0})
    image = r.json()["image_id"]
    assert (
        post("/api/runs/0/demo/explain", json={"image_id": image, "method": "x"}).status_code == 400
    )
    bad_layer = {"image_id": image, "method": "gradcam", "layer": "nolayer"}
    assert post("/api/runs/0/demo/explain", json=bad_layer).status_code == 400
    assert (
        post("/api/runs/0/demo/explain", json={"image_id": image, "class": 99}).status_code == 400
    )
    assert client.get("/api/jobs").json()["jobs"] == []  # no bad request queued a job


def test_fuzz_every_endpoint_keeps_serving(client):
    """Random junk in every path parameter, query and body: always a 4xx, never a 5xx."""
    rng = random.Random(0)
    junk = [
        "",
        "..",
        "%2e%2e",
        "0",
        "-1",
        "9" * 30,
        "a/b",
        "%00",
        "\u202e",
        "{}",
        "[]",
        "null",
        "0/demo/..",
        "0/demo",
        "1e309",
        "<script>",
        "%ff%fe",
    ]
    gets = [
        "/api/runs/{j}/curves",
        "/api/runs/{j}/summary",
        "/api/runs/{j}/layers",
        "/api/runs/0/demo/confusion/{j}/{j}?page={j}&per_page={j}",
        "/api/events?runs={j}",
        "/static/{j}",
        "/api/runs/{j}/report",
        "/api/experiments/{j}",
        "/api/experiments/{j}/figures/{j}",
        "/api/experiments/0/{j}/figures/x.png",
        "/api/events?experiments={j}",
    ]
    posts = [
        "/api/jobs",
        "/api/jobs/{j}/stop",
        "/api/jobs/{j}/resume",
        "/api/runs/0/demo/inspect",
        "/api/runs/0/demo/explain",
        "/api/runs/{j}/inspect",
    ]
    bodies = [
        b"",
        b"{",
        b"[]",
        b"null",
        b'{"kind": 5}',
        b'{"test_index": "x"}',
        b'{"image_id": null, "method": 3}',
        b'{"kind": "train", "model": []}',
        b'{"kind": "experiment", "name": 5}',
        b'{"kind": "experiment", "name": "cost", "tier": [], "threads": -1}',
        b'{"image_id": "x", "method": "gradcam", "faithfulness": "yes"}',
        b"\xff" * 40,
    ]
    for _ in range(60):
        word = rng.choice(junk)
        path = rng.choice(gets).format(j=word)
        if "events" in path and word in ("", "0", "0/demo"):
            continue  # a valid stream (no runs: jobs only) never ends
        r = client.get(path)
        assert r.status_code < 500, (path, r.status_code, r.text)
    for _ in range(60):
        path = rng.choice(posts).format(j=rng.choice(junk))
        r = client.post(
            path,
            content=rng.choice(bodies),
            headers={
                "content-type": rng.choice(
                    ["application/json", "multipart/form-data; boundary=x", "text/plain"]
                )
            },
        )
        assert r.status_code < 500, (path, r.status_code, r.text)
    assert client.get("/api/runs").status_code == 200
