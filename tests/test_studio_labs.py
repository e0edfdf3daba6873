"""The studio's convolution and filters labs (issue 24, items 2 and 3).

The API (Starlette's TestClient) against independent references: the conv lab's output and
im2col against PyTorch's ``conv2d``/``unfold`` after ``F.pad`` in every border mode, pooling
against ``max_pool2d``/``avg_pool2d`` and autograd, the slides' box filter against the numbers
printed on slide 15, the filters on the shipped photo against ``cnnlab filter``'s function applied
directly, and bad input (oversize, not an image, decompression bombs, malformed JSON, geometry
that does not fit, absurd sizes) answered with one 4xx line while the server keeps serving.

In Chromium (one session, the page driven through its URL fragment): for 50 random
configurations the values the conv lab *displays* (the padded input, the filter, the output cells,
the element-wise products and their sum at a step, the backward pass of that cell, im2col) equal
cnnlab.scratch's, computed here by the naive loops; the box filter and the filtered photo as
shown; zero requests outside the studio and a clean console. Screenshots go to
$CNNLAB_STUDIO_SCREENSHOTS when set (docs/figures/studio), else to a temporary folder.
"""

from __future__ import annotations

import base64
import io
import json
import os
import re
import shutil
import struct
import subprocess
import sys
import zlib
from pathlib import Path

import numpy as np
import pytest

pytest.importorskip("starlette")
pytest.importorskip("httpx")

from starlette.testclient import TestClient

from cnnlab.studio import create_app, labs

PORT = 6072
TOKEN = "labs-token"
BASE = f"http://127.0.0.1:{PORT}"

# Lecture 001, slide 15 (S. Seitz): g = f ★ (1/9)·ones(3x3), as printed.
SLIDE_G = [
    "0 10 20 30 30 30 20 10",
    "0 20 40 60 60 60 40 20",
    "0 30 60 90 90 90 60 30",
    "0 30 50 80 80 90 60 30",
    "0 30 50 80 80 90 60 30",
    "0 20 30 50 50 60 40 20",
    "10 20 30 30 30 30 20 10",
    "10 10 10 0 0 0 0 0",
]
TORCH_MODE = {"zero": "constant", "reflect": "reflect", "replicate": "replicate",
              "circular": "circular"}  # fmt: skip


@pytest.fixture(scope="module")
def client(tmp_path_factory: pytest.TempPathFactory):
    app = create_app([tmp_path_factory.mktemp("labs")], TOKEN, port=PORT)
    with TestClient(app, base_url=BASE, headers={"X-Cnnlab-Token": TOKEN}) as c:
        yield c


def seeded(settings: dict) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The lab's random integers: input, weights, bias drawn in that order from the seed."""
    rng = np.random.default_rng(settings["seed"])
    c, k, f = settings["channels"], settings["kernel"], settings["filters"]
    shapes = {"x": (c, settings["h"], settings["w"]), "w": (f, c, k, k), "b": (f,)}
    return tuple(
        rng.integers(labs.RANDOM[n][0], labs.RANDOM[n][1] + 1, shape).astype(float)
        for n, shape in shapes.items()
    )


# --- the API -------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("mode", "stride", "padding", "dilation"),
    [("zero", 1, 1, 1), ("reflect", 2, 2, 1), ("replicate", 1, 3, 2), ("circular", 3, 1, 2)],
)
def test_conv_equals_torch_after_each_border(client, mode, stride, padding, dilation):
    import torch
    import torch.nn.functional as F

    settings = {"h": 9, "w": 8, "channels": 2, "kernel": 3, "filters": 3, "stride": stride,
                "padding": padding, "dilation": dilation, "mode": mode, "seed": 11}  # fmt: skip
    answer = client.post("/api/labs/conv", json=settings)
    assert answer.status_code == 200, answer.text
    data = answer.json()
    x, w, b = seeded(settings)
    assert data["x"] == x.tolist() and data["w"] == w.tolist() and data["b"] == b.tolist()
    pads = (padding,) * 4
    xp = F.pad(torch.tensor(x)[None], pads, mode=TORCH_MODE[mode])
    ref = F.conv2d(xp, torch.tensor(w), torch.tensor(b), stride=stride, dilation=dilation)
    np.testing.assert_array_equal(np.array(data["xp"]), xp[0].numpy())
    np.testing.assert_allclose(np.array(data["out"]), ref[0].numpy(), atol=1e-9)
    unfolded = F.unfold(xp, 3, dilation=dilation, stride=stride)[0]  # (C*k*k, Ho*Wo)
    np.testing.assert_array_equal(np.array(data["col"]), unfolded.numpy())
    assert data["out_size"] == list(ref.shape[2:])
    assert data["formula"]["rows"]["out"] == ref.shape[2]


def test_output_size_formula_and_the_analyzers_note(client):
    tiles = client.post("/api/labs/conv", json={"h": 7, "w": 7, "kernel": 3, "stride": 2,
                                                "padding": 0}).json()  # fmt: skip
    assert tiles["formula"]["rows"]["text"] == "(7 − 3 + 2·0)/2 + 1 = 3"
    assert tiles["notes"] == []
    # The slides' example: 3x3 at stride 3 on 7x7 gives 2.33, in the analyzer's own words.
    odd = client.post("/api/labs/conv", json={"h": 7, "w": 7, "kernel": 3, "stride": 3,
                                              "padding": 0}).json()  # fmt: skip
    assert odd["formula"]["rows"]["text"] == "(7 − 3 + 2·0)/3 + 1 = 2.33, floored to 2"
    assert odd["notes"] == [
        "3x3 filter at stride 3 does not fit a 7x7 input: (7-3)/3+1 = 2.33 (floored to 2x2)"
    ]
    dilated = client.post("/api/labs/conv", json={"h": 9, "w": 9, "kernel": 3, "dilation": 2,
                                                  "stride": 1, "padding": 1}).json()  # fmt: skip
    assert dilated["formula"]["rows"]["text"] == "(9 − 5 + 2·1)/1 + 1 = 7"


def test_the_slides_box_filter_gives_the_slides_numbers(client):
    data = client.get("/api/labs/box").json()
    f = np.array(data["f"])
    assert f.shape == (10, 10) and set(np.unique(f)) == {0, 90}
    printed = [" ".join(str(int(v)) for v in np.rint(row)) for row in data["g"]]
    assert printed == SLIDE_G
    np.testing.assert_allclose(data["g"], [[float(v) for v in r.split()] for r in SLIDE_G],
                               atol=1e-9)  # fmt: skip
    # The same example in the conv lab: 0, 10, 20, 30, ... cell by cell.
    conv = client.post("/api/labs/conv", json={"source": "slides"}).json()
    assert conv["settings"]["h"] == 10 and conv["out_size"] == [8, 8]
    np.testing.assert_allclose(conv["out"][0], data["g"], atol=1e-9)


@pytest.mark.parametrize(("kind", "size", "stride", "padding"),
                         [("max", 2, 2, 0), ("max", 3, 2, 1), ("avg", 3, 1, 1)])  # fmt: skip
def test_pooling_and_its_backward_equal_torch(client, kind, size, stride, padding):
    import torch
    import torch.nn.functional as F

    x = np.random.default_rng(5).integers(0, 10, (2, 7, 6)).astype(float)
    body = {"x": x.tolist(), "kind": kind, "size": size, "stride": stride, "padding": padding,
            "seed": 3}  # fmt: skip
    data = client.post("/api/labs/pool", json=body).json()
    xt = torch.tensor(x[None], requires_grad=True)
    pool = F.max_pool2d if kind == "max" else F.avg_pool2d
    out = pool(xt, size, stride, padding)
    out.backward(torch.tensor(np.array(data["dout"])[None]))
    np.testing.assert_allclose(data["out"], out[0].detach().numpy(), atol=1e-12)
    np.testing.assert_allclose(data["dx"], xt.grad[0].numpy(), atol=1e-12)
    if kind == "max":  # each cell's routed pixel holds its maximum
        t, l = data["pads"][0], data["pads"][2]
        for c, plane in enumerate(data["argmax"]):
            for i, row in enumerate(plane):
                for j, (r, col) in enumerate(row):
                    assert x[c, r - t, col - l] == data["out"][c][i][j]


def test_the_receptive_field_of_stacked_3x3_layers(client):
    data = client.get("/api/labs/receptive?layers=3&channels=64").json()
    assert [r["rf"] for r in data["stacked"]] == [3, 5, 7]
    assert data["stacked"][-1]["weights"] == 27 * 64 * 64  # 3 x 9C² (slides: 27C²)
    assert {s["kernel"]: (s["rf"], s["weights"]) for s in data["single"]} == {
        5: (5, 25 * 64 * 64), 7: (7, 49 * 64 * 64)}  # fmt: skip


def decoded(uri: str) -> np.ndarray:
    from PIL import Image

    assert uri.startswith("data:image/png;base64,")
    return np.asarray(Image.open(io.BytesIO(base64.b64decode(uri.split(",", 1)[1]))))


@pytest.fixture(scope="module")
def sample() -> dict[int, np.ndarray]:
    """The shipped photo as ``cnnlab filter`` reads it: {1: (H, W) gray, 3: (H, W, 3) RGB}."""
    from cnnlab.data.images import read_image

    path = labs.SAMPLES / labs.SAMPLE
    return {1: read_image(path, channels=1).numpy()[0],
            3: read_image(path, channels=3).numpy().transpose(1, 2, 0)}  # fmt: skip


def test_filters_on_the_sample_equal_cnnlab_filter(client, sample):
    from cnnlab.scratch.correlate import correlate2d
    from cnnlab.scratch.filters import FILTERS, apply_filter, gaussian, to_display

    assert client.post("/api/labs/photo", json={}).json()["photo"] == "sample"
    for name in FILTERS:  # every named kernel, in grayscale (the faster half)
        body = {"photo": "sample", "kernel": name, "mode": "reflect", "gray": True}
        got = decoded(client.post("/api/labs/filter", json=body).json()["png"])
        np.testing.assert_array_equal(got, apply_filter(sample[1], name, "reflect"), err_msg=name)
    for mode in ("zero", "reflect", "replicate", "circular"):  # each border, in colour
        body = {"photo": "sample", "kernel": "sobel_x", "mode": mode}
        got = decoded(client.post("/api/labs/filter", json=body).json()["png"])
        np.testing.assert_array_equal(got, apply_filter(sample[3], "sobel_x", mode), err_msg=mode)
    image = sample[1]
    gx, gy = (correlate2d(image, FILTERS[n].kernel, "same", "zero") for n in ("sobel_x", "sobel_y"))
    body = {"photo": "sample", "kernel": "sobel_magnitude", "mode": "zero", "gray": True}
    got = decoded(client.post("/api/labs/filter", json=body).json()["png"])
    np.testing.assert_array_equal(got, to_display(np.hypot(gx, gy), "abs"))
    typed = [[0, -1, 0], [-1, 5, -1], [0, -1, 0]]
    body = {"photo": "sample", "kernel": "custom", "values": typed, "mode": "replicate",
            "gray": True}  # fmt: skip
    answer = client.post("/api/labs/filter", json=body).json()
    expected = to_display(correlate2d(image, np.array(typed, float), "same", "replicate"), "clip")
    np.testing.assert_array_equal(decoded(answer["png"]), expected)
    # A Gaussian of any sigma runs as two 1-D passes: equal to the 2-D kernel but for rounding.
    body = {"photo": "sample", "kernel": "gaussian_sigma", "sigma": 2.0, "size": 13,
            "mode": "reflect", "gray": True}  # fmt: skip
    answer = client.post("/api/labs/filter", json=body).json()
    np.testing.assert_allclose(answer["kernel"], gaussian(13, 2.0), atol=1e-15)
    full = to_display(correlate2d(image, gaussian(13, 2.0), "same", "reflect"), "clip")
    difference = np.abs(decoded(answer["png"]).astype(int) - full)
    assert difference.max() <= 1 and (difference > 0).mean() < 0.001


def png_header(width: int, height: int) -> bytes:
    """A tiny PNG file whose header claims ``width`` x ``height`` pixels (a decompression bomb)."""

    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(
            ">I", zlib.crc32(kind + data))  # fmt: skip

    ihdr = struct.pack(">IIBBBBB", width, height, 8, 0, 0, 0, 0)
    return (b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr)
            + chunk(b"IDAT", zlib.compress(b"\x00" * 64)) + chunk(b"IEND", b""))  # fmt: skip


def upload(data: bytes) -> dict:
    return {"files": {"image": ("photo.png", data, "image/png")}}


BAD = [
    ("conv", {"content": b"{not json"}, 400, "not valid JSON"),
    ("conv", {"json": [1, 2]}, 400, "JSON object"),
    ("conv", {"json": {"h": 10**9}}, 400, "h must be an integer from 1 to 40"),
    ("conv", {"json": {"channels": -1}}, 400, "channels must be"),
    ("conv", {"json": {"kernel": "3x3"}}, 400, "kernel must be"),
    ("conv", {"json": {"mode": "mirror"}}, 400, "mode must be one of zero, reflect"),
    ("conv", {"json": {"h": 5, "w": 5, "kernel": 9, "padding": 0}}, 400, "does not fit an input"),
    (
        "conv",
        {"json": {"h": 4, "w": 4, "padding": 4, "mode": "reflect", "kernel": 3}},
        400,
        "reflect padding of 4 needs an input larger",
    ),
    (
        "conv",
        {"json": {"source": "grid", "h": 2, "w": 2, "channels": 1, "input": [[[1, 2], [3]]]}},
        400,
        "input must be nested lists",
    ),
    (
        "conv",
        {
            "json": {
                "source": "grid",
                "h": 2,
                "w": 2,
                "channels": 1,
                "input": [[[1, 2, 3], [3, 4, 5]]],
            }
        },
        400,
        "input has shape (1, 2, 3)",
    ),
    (
        "conv",
        {
            "content": b'{"source": "grid", "h": 1, "w": 1, "channels": 1, "kernel": 1, '
            b'"padding": 0, "input": [[[NaN]]]}'
        },
        400,
        "finite numbers",
    ),
    ("conv", {"json": {"source": "photo", "channels": 2}}, 400, "1 (gray) or 3 (RGB)"),
    ("conv", {"json": {"source": "photo", "photo": "p0000"}}, 404, "no photo"),
    ("conv", {"content": b"[" * 100_000}, 413, "over 65,536 bytes"),
    ("pool", {"json": {"x": [[[1.0]]], "size": 3}}, 400, "does not fit"),
    ("pool", {"json": {"x": [[[1.0] * 50] * 50]}}, 400, "H, W up to 40"),
    ("pool", {"json": {"x": "lots"}}, 400, "send the input as x"),
    ("photo", upload(b"GIF89a not really"), 400, "not an image"),
    ("photo", upload(b""), 400, "the upload is empty"),
    ("photo", upload(png_header(7000, 7000)), 413, "over the studio's limit of 40,000,000"),
    ("photo", upload(png_header(60000, 60000)), 400, "decompression bomb"),
    ("photo", upload(b"\x00" * (10 * 1024 * 1024 + 10)), 413, "over the studio's limit"),
    ("filter", {"json": {"kernel": "blur_everything"}}, 400, "kernel must be one of"),
    ("filter", {"json": {"kernel": "gaussian_sigma", "sigma": 0}}, 400, "sigma must be"),
    ("filter", {"json": {"kernel": "gaussian_sigma", "size": 4}}, 400, "size must be odd"),
    ("filter", {"json": {"kernel": "custom", "values": [[1] * 99] * 99}}, 400, "at most 15x15"),
    ("filter", {"json": {"kernel": "custom", "values": 7}}, 400, "a typed kernel is values"),
    ("filter", {"json": {"photo": "nope"}}, 404, "no photo"),
    ("receptive", {"params": {"layers": 99}}, 400, "layers must be an integer from 1 to 8"),
]


@pytest.mark.parametrize(("endpoint", "request_args", "status", "words"), BAD,
                         ids=[f"{b[0]}-{i}" for i, b in enumerate(BAD)])  # fmt: skip
def test_bad_input_gets_one_line_and_the_server_keeps_serving(
    client, endpoint, request_args, status, words
):
    method = "GET" if endpoint == "receptive" else "POST"
    answer = client.request(method, f"/api/labs/{endpoint}", **request_args)
    message = answer.json()["error"]
    assert answer.status_code == status, message
    assert words in message and "\n" not in message and len(message) < 400
    assert client.get("/api/labs/box").status_code == 200


# --- in Chromium ---------------------------------------------------------------------------------

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
DRIVER = shutil.which("chromedriver")
CONFIGS = 50
WAIT = 30  # seconds any one thing may take to show


def in_chromium(test):
    """A browser test: skipped without Chromium or selenium, marked slow like the suite's."""
    from helpers.optional import importable

    marks = [
        pytest.mark.skipif(
            not (CHROMIUM and DRIVER),
            reason="headless Chromium not installed (apt-get install chromium chromium-driver)",
        ),
        pytest.mark.skipif(not importable("selenium"), reason="selenium not installed"),
        pytest.mark.slow,
    ]
    for mark in marks:
        test = mark(test)
    return test


@pytest.fixture(scope="module")
def studio(tmp_path_factory: pytest.TempPathFactory):
    """``cnnlab studio`` on an empty runs folder; its address with the token."""
    from helpers import subprocess_env

    root = tmp_path_factory.mktemp("labs-runs")
    proc = subprocess.Popen(
        [sys.executable, "-m", "cnnlab", "studio", str(root), "--no-browser", "--port", "0"],
        stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
        env=subprocess_env(OMP_NUM_THREADS="1"),
    )  # fmt: skip
    url = None
    for line in proc.stdout:
        found = re.search(r"http://127\.0\.0\.1:\d+/\?token=\S+", line)
        if found:
            url = found.group(0)
            break
    if url is None:
        proc.kill()
        pytest.fail(f"cnnlab studio printed no address: {proc.stdout.read()}")
    try:
        yield url
    finally:
        proc.send_signal(2)
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()


@pytest.fixture(scope="module")
def browser():
    """Headless Chromium with every host but the studio's unresolvable (as
    tests/test_studio_browser.py starts it), logging the console and the network."""
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM
    for flag in ("--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
                 "--window-size=1280,900",
                 "--host-resolver-rules=MAP * ~NOTFOUND, EXCLUDE 127.0.0.1"):  # fmt: skip
        options.add_argument(flag)
    options.set_capability("goog:loggingPrefs", {"browser": "ALL", "performance": "ALL"})
    driver = webdriver.Chrome(service=Service(DRIVER), options=options)
    driver.set_script_timeout(WAIT)
    try:
        yield driver
    finally:
        driver.quit()


@pytest.fixture(scope="module")
def shots(tmp_path_factory: pytest.TempPathFactory) -> Path:
    folder = os.environ.get("CNNLAB_STUDIO_SCREENSHOTS")
    out = Path(folder) if folder else tmp_path_factory.mktemp("screenshots")
    out.mkdir(parents=True, exist_ok=True)
    return out


def configurations(count: int, seed: int = 2024) -> list[dict]:
    """Random settings whose window fits: sizes 3 to 16 (every tenth 32x32), up to 3 channels
    and filters, kernels up to 5, strides and dilations up to 3, borders up to 3 in every mode."""
    rng = np.random.default_rng(seed)
    found = []
    while len(found) < count:
        s = {"source": "photo" if len(found) % 10 == 9 else "random",
             "h": int(rng.integers(3, 17)), "w": int(rng.integers(3, 17)),
             "channels": int(rng.integers(1, 4)), "kernel": int(rng.integers(1, 6)),
             "filters": int(rng.integers(1, 4)), "stride": int(rng.integers(1, 4)),
             "padding": int(rng.integers(0, 4)), "dilation": int(rng.integers(1, 4)),
             "mode": str(rng.choice(list(TORCH_MODE))),
             "seed": int(rng.integers(0, 10**6))}  # fmt: skip
        if len(found) % 10 == 4:  # the lab's 32x32 input, now and then
            s |= {"h": 32, "w": 32}
        if s["source"] == "photo":
            s |= {"channels": 3 if len(found) % 20 == 9 else 1, "crop_x": 40, "crop_y": 10}
        extent = s["dilation"] * (s["kernel"] - 1) + 1
        if extent > min(s["h"], s["w"]) + 2 * s["padding"]:
            continue
        if s["mode"] == "reflect" and s["padding"] >= min(s["h"], s["w"]):
            continue
        found.append(s)
    return found


# Reads what the conv lab shows: every grid's cell texts, the sum, the status.
READ_LAB = """
const [query, done] = [arguments[0], arguments[arguments.length - 1]];
location.hash = '#/conv?' + query;
const started = performance.now();
const grids = (lab, cls) => Array.from(lab.querySelectorAll('table.' + cls), (t) =>
  Array.from(t.rows).map((r) => Array.from(r.cells).filter((c) => c.tagName === 'TD')
  .map((c) => c.textContent)).filter((r) => r.length));
(function poll() {
  const lab = document.getElementById('conv-lab');
  if (!lab || lab.dataset.key !== query || !lab.dataset.ready) {
    if (performance.now() - started > 20000) return done({timeout: true});
    return setTimeout(poll, 10);
  }
  const error = document.getElementById('conv-error');
  done({error: error && error.textContent, step: lab.dataset.step,
        inputs: grids(lab, 'conv-input'), weights: grids(lab, 'conv-weights'),
        outputs: grids(lab, 'conv-out'), products: grids(lab, 'conv-products'),
        dx: grids(lab, 'conv-dx'), dw: grids(lab, 'conv-dw'), col: grids(lab, 'conv-col'),
        sum: document.getElementById('conv-sum').textContent,
        status: document.getElementById('conv-status').textContent});
})();
"""


def numbers(texts) -> np.ndarray:
    """Displayed cell texts as numbers; an empty cell is NaN."""
    return np.array([[float(v.replace("−", "-")) if v else np.nan for v in row] for row in texts])


@in_chromium
def test_the_conv_lab_displays_scratchs_values(studio, browser):
    from urllib.parse import urlencode

    from cnnlab.scratch import fast, naive
    from cnnlab.scratch.padding import pad2d
    from cnnlab.scratch.windows import window_geometry

    browser.get(studio + "#/conv")
    rng = np.random.default_rng(7)
    for n, s in enumerate(configurations(CONFIGS)):
        geom = window_geometry((s["h"], s["w"]), s["kernel"], s["stride"], s["padding"],
                               s["dilation"])  # fmt: skip
        ho, wo = geom.out_size
        step = int(rng.integers(0, s["filters"] * ho * wo))
        query = urlencode({**s, "step": step})
        shown = browser.execute_async_script(READ_LAB, query)
        where = f"configuration {n}: {query}"
        assert not shown.get("timeout") and not shown["error"], f"{where}: {shown.get('error')}"
        # The input: the seeded integers (a photo crop: the values shown), padded by pad2d.
        xp_shown = np.stack([numbers(g) for g in shown["inputs"]])
        p = s["padding"]
        x = xp_shown[:, p : p + s["h"], p : p + s["w"]]
        _, w, b = seeded(s)
        if s["source"] == "random":
            np.testing.assert_array_equal(x, seeded(s)[0], err_msg=where)
        xp = pad2d(x[None], (p,) * 4, s["mode"])
        np.testing.assert_array_equal(xp_shown, xp[0], err_msg=where)
        out, cache = naive.conv2d_forward(xp, w, b, stride=s["stride"], dilation=s["dilation"])
        # The output cells filled so far (filters, then rows, then columns) hold scratch's values.
        shown_out = np.stack([numbers(g) for g in shown["outputs"]])
        flat = shown_out.reshape(-1)
        assert np.isnan(flat[step + 1 :]).all() and not np.isnan(flat[: step + 1]).any(), where
        np.testing.assert_array_equal(flat[: step + 1], out.reshape(-1)[: step + 1], err_msg=where)
        # The step's cell: its filter, products and sum; its backward pass.
        k, i, j = np.unravel_index(step, out.shape[1:])
        assert (
            shown["status"] == f"cell {step + 1} of {out[0].size}: filter {k}, row {i}, column {j}"
        )
        np.testing.assert_array_equal(np.stack([numbers(g) for g in shown["weights"]]), w[k])
        rows, cols = geom.window(i, j)
        np.testing.assert_array_equal(np.stack([numbers(g) for g in shown["products"]]),
                                      xp[0][:, rows, cols] * w[k], err_msg=where)  # fmt: skip
        assert float(shown["sum"]) == out[0, k, i, j], where
        dout = np.zeros_like(out)
        dout[0, k, i, j] = 1.0
        dxp, dw, _ = naive.conv2d_backward(dout, cache)
        np.testing.assert_array_equal(np.nan_to_num(np.stack([numbers(g) for g in shown["dx"]])),
                                      dxp[0], err_msg=where)  # fmt: skip
        np.testing.assert_array_equal(np.stack([numbers(g) for g in shown["dw"]]), dw[k])
        if shown["col"]:  # drawn when small enough
            col = fast.im2col(xp, cache.geom, padded=True)
            np.testing.assert_array_equal(numbers(shown["col"][0]), col, err_msg=where)


@in_chromium
def test_the_conv_lab_steps_by_keyboard_and_buttons(studio, browser, shots):
    from selenium.webdriver.common.keys import Keys

    from test_studio_browser import usable, wait_for

    browser.get(studio + "#/conv?step=4")
    wait_for(browser, "document.querySelector('#conv-lab[data-ready=\"1\"]')", "the conv lab")
    status = "document.getElementById('conv-status').textContent"
    assert browser.execute_script(f"return {status}").startswith("cell 5 of 18")
    browser.find_element("css selector", "#conv-step").click()
    assert browser.execute_script(f"return {status}").startswith("cell 6 of 18")
    browser.find_element("css selector", "body").send_keys(Keys.ARROW_LEFT, Keys.ARROW_LEFT)
    assert browser.execute_script(f"return {status}").startswith("cell 4 of 18")
    browser.find_element("css selector", "body").send_keys(Keys.END)
    assert browser.execute_script(f"return {status}").startswith("cell 18 of 18")
    browser.find_element("css selector", "body").send_keys(Keys.HOME, Keys.ARROW_RIGHT)
    wait_for(browser, "document.querySelectorAll('table.pool-out td').length === 12", "pooling")
    usable(browser)
    browser.execute_script("document.querySelector('#conv-step').click();"
                           "document.querySelector('#conv-step').click()")  # fmt: skip
    element_shot(browser, "#conv-size-h", shots / "conv-lab.png", upto="#conv-im2col-h")


@in_chromium
def test_the_filters_lab_shows_the_slides_and_the_photo(studio, browser, shots, sample):
    from cnnlab.scratch.filters import apply_filter
    from test_studio_browser import usable, wait_for

    browser.get(studio + "#/filters?kernel=sobel_x&mode=replicate")
    wait_for(browser, "document.querySelectorAll('table.box-g td').length === 64", "the box filter")
    shown = browser.execute_script(
        "return Array.from(document.querySelectorAll('table.box-g tr'), "
        "r => Array.from(r.cells, c => c.textContent).join(' '))"
    )
    assert shown == SLIDE_G
    browser.execute_script("document.querySelector('table.box-g td[data-r=\"3\"][data-c=\"2\"]')"
                           ".focus()")  # fmt: skip
    working = browser.execute_script("return document.getElementById('box-working').textContent")
    assert working == "g[3, 2] = (0 + 90 + 90 + 0 + 90 + 90 + 0 + 90 + 0) / 9 = 50"
    wait_for(browser, "(document.getElementById('filter-lab').dataset.shown || '')"
             ".startsWith('sobel_x:replicate:0')", "the filtered photo")  # fmt: skip
    uri = browser.execute_script("return document.getElementById('filter-result').src")
    np.testing.assert_array_equal(decoded(uri), apply_filter(sample[3], "sobel_x", "replicate"))
    timing = browser.execute_script("return document.getElementById('filter-time').textContent")
    assert re.search(r"512×512: the server filtered it in \d+ ms .* in the page \d+ ms", timing)
    wait_for(browser, "document.querySelectorAll('svg.rf').length === 3", "the receptive field")
    fields = browser.execute_script(
        "return Array.from(document.querySelectorAll('svg.rf'), s => "
        "[s.dataset.name, s.querySelectorAll('circle.seen').length])"
    )
    assert fields == [["stacked", 1 + 3 + 5 + 7], ["single-5", 1 + 5], ["single-7", 1 + 7]]
    usable(browser)
    element_shot(browser, "#box-lab", shots / "filters-box.png")
    element_shot(browser, "#filter-lab", shots / "filters-photo.png")
    element_shot(browser, "#rf-lab", shots / "filters-receptive-field.png")


@in_chromium
def test_no_request_left_the_studio_and_the_console_is_clean(studio, browser):
    base = studio.split("?")[0].rstrip("/")
    requests = [
        json.loads(entry["message"])["message"]["params"]["request"]["url"]
        for entry in browser.get_log("performance")
        if '"Network.requestWillBeSent"' in entry["message"]
    ]
    assert len(requests) > CONFIGS
    assert [u for u in requests if not u.startswith((base + "/", "data:", "blob:"))] == []
    assert [e for e in browser.get_log("browser") if e["level"] in ("SEVERE", "WARNING")] == []


def element_shot(browser, selector: str, path: Path, upto: str | None = None) -> None:
    """A screenshot of one part of the page at 1280 px (down to ``upto`` when given)."""
    from PIL import Image

    top, bottom, chrome = browser.execute_script(
        "const a = document.querySelector(arguments[0]).getBoundingClientRect();"
        "const b = arguments[1] ? document.querySelector(arguments[1]).getBoundingClientRect() : a;"
        "return [a.top + scrollY, (arguments[1] ? b.top : a.bottom) + scrollY,"
        " window.outerHeight - window.innerHeight]",
        selector, upto,
    )  # fmt: skip
    height = int(browser.execute_script("return document.documentElement.scrollHeight"))
    browser.set_window_size(1280, min(height, 5000) + chrome)
    png = browser.get_screenshot_as_png()
    browser.set_window_size(1280, 900)
    image = Image.open(io.BytesIO(png))
    scale = image.width / 1280
    box = (0, max(0, int((top - 8) * scale)), image.width, int((bottom + 4) * scale))
    image.crop(box).save(path)
