"""The studio's architecture view: the analyzer's numbers through the API, and the page in Chromium.

API (Starlette's TestClient over :func:`cnnlab.studio.app.create_app`):

* over the whole registry, every diagram carries the analyzer's totals and rows, computed here
  directly by :func:`cnnlab.analysis.analyze`, and its data flow lines up with the rows;
* the lecture's formulas for AlexNet's conv1 (``(227 - 11 + 2·0)/4 + 1 = 55``,
  ``(11·11·3 + 1)·96 = 34,944``) and every formula's result equal the analyzer's figures;
* the slides' errata reach the rows they are about; blocks are residual, inception-like or
  dense where the networks are; a bad size or model is one line; compare mode's totals and
  published accuracy are :func:`cnnlab.analysis.compare.compare_models`'s.

Chromium (one session, as tests/test_studio_browser.py drives it, every other host unreachable):
googlenet, inception_v3, resnet152, resnext50_32x4d and densenet201 drawn with no console error;
a folded block opens on click and by keyboard; question mode rejects a wrong answer and accepts
the slides' AlexNet answers; the SVG export is valid SVG naming the layers and the PNG export a
PNG; compare mode draws its chart; no request leaves the studio. Screenshots go to
$CNNLAB_STUDIO_SCREENSHOTS (docs/figures/studio for the docs), else to a temporary folder.
"""

from __future__ import annotations

import base64
import json
import os
import re
import shutil
import subprocess
import sys
import warnings
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest

from helpers import subprocess_env
from helpers.optional import importable

pytestmark = pytest.mark.skipif(
    not importable("cnnlab.studio.app"), reason="the studio is not built"
)

TOKEN = "test-token"


@pytest.fixture(scope="module")
def client(tmp_path_factory: pytest.TempPathFactory):
    from starlette.testclient import TestClient

    from cnnlab.studio.app import create_app
    from cnnlab.studio.security import HEADER

    root = tmp_path_factory.mktemp("architecture-runs")
    app = create_app([root], TOKEN)
    with TestClient(app, base_url="http://127.0.0.1:8000", headers={HEADER: TOKEN}) as c:
        yield c


def ok(client, path: str) -> dict:
    r = client.get(path)
    assert r.status_code == 200, r.text[:300]
    return r.json()


# --- the API -------------------------------------------------------------------------------------


ROW_KEYS = ("name", "type", "input_shape", "output_shape", "filters", "kernel", "stride",
            "padding", "params", "macs", "activation_bytes", "receptive_field", "jump", "kind",
            "aliases", "input_shapes", "notes", "start")  # fmt: skip


def zoo() -> list[str]:
    from cnnlab.registry import list_models

    return list_models()


def test_the_zoo_holds_the_models_the_issue_names() -> None:
    assert {"googlenet", "inception_v3", "resnet152", "resnext50_32x4d", "densenet201"} <= set(
        zoo()
    )


@pytest.mark.parametrize("name", zoo())  # one test per model: xdist shares them out
def test_every_zoo_diagram_carries_the_analyzers_totals_and_rows(client, name: str) -> None:
    """The whole registry at each model's default input: totals and every row as analyze()
    gives them, a traced data flow that reads only earlier rows, and blocks that nest."""
    from cnnlab.analysis import analyze

    data = ok(client, f"/api/architecture/model/{name}")
    report = analyze(name)
    assert data["totals"] == report.totals, name
    assert data["input_size"] == list(report.input_size)
    assert len(data["rows"]) == len(report.all_rows), name
    for got, want in zip(data["rows"], report.all_rows, strict=True):
        assert {k: got[k] for k in ROW_KEYS} == json.loads(json.dumps(want.to_dict())), name
    assert data["traced"], f"{name}: the data flow did not line up with the analyzer's rows"
    for i, row in enumerate(data["rows"][1:], 1):
        assert row["sources"] and all(0 <= s < i for s in row["sources"]), (name, row["name"])
    for b in data["blocks"]:
        assert b["first"] < b["last"]
        if b["parent"] is not None:
            outer = data["blocks"][b["parent"]]
            assert outer["first"] <= b["first"] and b["last"] <= outer["last"]
        inside = data["rows"][b["first"] : b["last"] + 1]
        assert b["params"] == sum(r["params"] for r in inside)


def test_formulas_put_the_lectures_numbers_in(client) -> None:
    data = ok(client, "/api/architecture/model/alexnet_paper?size=227")
    conv1 = next(r for r in data["rows"] if r["kind"] == "conv")
    texts = [f["text"] for f in conv1["formulas"]]
    assert "(227 - 11 + 2·0)/4 + 1 = 55" in texts
    assert "(11·11·3 + 1)·96 = 34,944" in texts
    assert "(55·55·96)·(11·11·3) = 105,415,200" in texts
    assert conv1["answers"] == {"volume": [55, 55, 96], "params": 34944, "macs": 105415200}
    grouped = next(r for r in data["rows"] if r["kind"] == "conv" and r["groups"] == 2)
    assert "(5·5·48 + 1)·256 = 307,456" in [f["text"] for f in grouped["formulas"]]
    # Every formula's result is the analyzer's figure it explains.
    for name in ("alexnet_paper", "vgg16", "resnext50_32x4d", "inception_v3", "lenet5_paper"):
        for row in ok(client, f"/api/architecture/model/{name}")["rows"]:
            for f in row["formulas"]:
                result = f["text"].rsplit("= ", 1)[-1].split(" ")[0].replace(",", "")
                if f["what"].startswith("parameters"):
                    assert int(result) == row["params"], (name, f)
                elif f["what"].startswith(("multiply-adds", "operations")):
                    assert int(result) == row["macs"], (name, f)
                elif f["what"].startswith("output") and "→" not in f["text"]:
                    assert int(result) in row["output_shape"][1:], (name, f)
                elif f["what"].startswith("receptive"):
                    assert int(result) == row["receptive_field"], (name, f)


def test_a_window_that_does_not_tile_is_said_and_strict_refuses_it(client) -> None:
    data = ok(client, "/api/architecture/model/alexnet?size=224")
    conv1 = data["rows"][1]
    assert "(224 - 11 + 2·2)/4 + 1 = 55.25 → 55 (floored" in conv1["formulas"][0]["text"]
    assert data["warnings"] and "55.25" in data["warnings"][0]
    r = client.get("/api/architecture/model/alexnet?size=224&strict=1")
    assert r.status_code == 400 and "does not fit" in r.json()["error"]


def test_the_slides_errata_reach_their_rows(client) -> None:
    rows = ok(client, "/api/architecture/model/alexnet?size=227")["rows"]
    claims = {r["name"]: r["errata"] for r in rows if r["errata"]}
    assert "features.0" in claims and all(e["source"] for e in claims["features.0"])
    wrong = [(name, e) for name, es in claims.items() for e in es if not e["holds"]]
    assert wrong, "the AlexNet table of deck 002 has claims that do not hold"
    for _, e in wrong:
        assert e["reason"] and e["correct"] != e["slide"]
    # At another input size the claims (made at 227) are not shown.
    assert not any(r["errata"] for r in ok(client, "/api/architecture/model/alexnet")["rows"])


def test_blocks_are_residual_inception_and_dense_where_the_networks_are(client) -> None:
    def kinds(name: str) -> dict[str, tuple]:
        data = ok(client, f"/api/architecture/model/{name}")
        return {b["name"]: (b["kind"], b["shortcut"], b["summary"]) for b in data["blocks"]}

    resnet = kinds("resnet152")
    assert resnet["layer3"] == ("sequence", None, "36 × Bottleneck")
    assert resnet["layer3.0"][:2] == ("residual", "projection")
    assert resnet["layer3.1"][:2] == ("residual", "identity")
    assert kinds("googlenet")["inception3a"][0] == "concat"
    assert kinds("inception_v3")["Mixed_7b"][0] == "concat"
    assert kinds("densenet201")["features.denseblock3"][0] == "dense"
    grouped = ok(client, "/api/architecture/model/resnext50_32x4d")["rows"]
    assert {r["groups"] for r in grouped if r["kind"] == "conv"} == {1, 32}


@pytest.mark.parametrize(
    ("query", "words"),
    [
        ("model/alexnet_paper?size=abc", "not a size"),
        ("model/alexnet_paper?size=0", "from 1 to"),
        ("model/resnet5", "did you mean"),
        ("model/vgg16?size=8", "at least 3x32x32"),
        ("model/lenet5?size=32", "exactly 1x28x28"),
        ("compare?models=", "name 1 to"),
    ],
)
def test_bad_input_is_one_line_naming_the_fix(client, query: str, words: str) -> None:
    r = client.get(f"/api/architecture/{query}")
    assert r.status_code == 400, r.text
    message = r.json()["error"]
    assert words in message and "\n" not in message


def test_compare_gives_the_analyzers_totals_and_published_accuracy(client) -> None:
    from cnnlab.analysis.compare import compare_models, published_accuracy

    data = ok(client, "/api/architecture/compare?models=resnet50,vgg16,alexnet_paper")
    want = compare_models(["resnet50", "vgg16", "alexnet_paper"])
    assert [{k: m[k] for k in want[0]} for m in data["models"]] == want
    top1 = {m["model"]: m["top1"] for m in data["models"]}
    assert top1["resnet50"] == published_accuracy("resnet50")[0] > 75
    assert top1["alexnet_paper"] is None  # no torchvision weights for the 2012 net
    catalog = {m["name"]: m for m in ok(client, "/api/architecture")["models"]}
    assert catalog["densenet201"]["top1"] == pytest.approx(76.896)


def test_a_trained_runs_model_is_drawn_at_its_input(trained_run: Path, tmp_path) -> None:
    """A run's model (tinynet, trained on 28x28 Fashion-MNIST) through /api/runs/ID/architecture."""
    from starlette.testclient import TestClient

    import helpers.models  # noqa: F401  (registers tinynet)
    from cnnlab.analysis import analyze
    from cnnlab.registry import create_model
    from cnnlab.studio.app import create_app
    from cnnlab.studio.security import HEADER

    shutil.copytree(trained_run, tmp_path / "tiny")
    with TestClient(create_app([tmp_path], TOKEN), base_url="http://127.0.0.1:8000",
                    headers={HEADER: TOKEN}) as c:  # fmt: skip
        data = ok(c, "/api/runs/0/tiny/architecture")
        assert data["run"] == "0/tiny" and data["model"] == "tinynet"
        size = tuple(data["input_size"])
        want = analyze(create_model("tinynet", in_channels=size[0]), size)
        assert data["totals"]["params"] == want.totals["params"]
        assert data["totals"]["macs"] == want.totals["macs"]
        bigger = ok(c, "/api/runs/0/tiny/architecture?size=56")
        assert bigger["input_size"][1:] == [56, 56]
        assert c.get("/api/runs/0/nothing/architecture").status_code == 404


# --- the page in Chromium ------------------------------------------------------------------------

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
DRIVER = shutil.which("chromedriver")
BROWSER = [
    pytest.mark.skipif(not (CHROMIUM and DRIVER), reason="headless Chromium not installed"),
    pytest.mark.skipif(not importable("selenium"), reason="selenium not installed"),
    pytest.mark.slow,
]


@pytest.fixture(scope="module")
def studio(tmp_path_factory: pytest.TempPathFactory):
    """``cnnlab studio`` over an empty folder; its address with the token."""
    root = tmp_path_factory.mktemp("arch-studio")
    command = [sys.executable, "-m", "helpers.tinynet_cli", "studio", str(root)]
    proc = subprocess.Popen([*command, "--no-browser", "--port", "0"], stdout=subprocess.PIPE,
                            stderr=subprocess.STDOUT, text=True,
                            env=subprocess_env(OMP_NUM_THREADS="1"))  # fmt: skip
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
    """Headless Chromium with every host but the studio's unresolvable (as in
    tests/test_studio_browser.py), logging requests and the console."""
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
    driver.set_script_timeout(30)
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


def wait_for(browser, script: str, what: str, timeout: float = 30):
    from test_studio_browser import wait_for as wait

    return wait(browser, script, what, timeout)


def open_view(browser, studio: str, fragment: str) -> None:
    browser.get(studio.replace("/?", "/?") + fragment)
    # a new fragment keeps the page: wait for this model's diagram, not the previous one's
    model = fragment.split("/")[2].split("?")[0] if fragment.count("/") >= 2 else ""
    ready = f"svg.arch-diagram[data-ready][data-model=\"{model}\"]" if model else (
        "svg.arch-diagram[data-ready]")  # fmt: skip
    # the first diagram imports torch and traces the model: allow for a busy machine
    try:
        wait_for(browser, f"document.querySelector('{ready}') || "
                 "(document.querySelector('.arch-error:not([hidden])') || {}).textContent",
                 f"the diagram of {fragment}", timeout=90)  # fmt: skip
    except AssertionError as err:  # say what the page shows instead, and what it logged
        shown = browser.execute_script("return document.getElementById('view').innerText")
        logs = [e["message"] for e in browser.get_log("browser")]
        # once more after a reload: a first navigation has been seen to stall in the full
        # suite only (never alone), with an empty page and no error
        browser.refresh()
        try:
            wait_for(browser, f"document.querySelector('{ready}')", f"the diagram of {fragment}"
                     " after a reload", timeout=60)  # fmt: skip
        except AssertionError:
            raise AssertionError(f"{err}; the page shows {shown[:400]!r}; console {logs}") from None
        warnings.warn(f"{fragment}: drawn only after a reload; first it showed {shown[:200]!r}, "
                      f"console {logs}", stacklevel=2)  # fmt: skip


def shot(browser, path: Path, width: int = 1280, height: int = 1000) -> None:
    browser.set_window_size(width, height)
    assert browser.save_screenshot(str(path))
    browser.set_window_size(1280, 900)


@pytest.mark.parametrize("_", [pytest.param(None, marks=BROWSER)])
def test_the_page_in_chromium(studio, browser, shots, _) -> None:
    # Every model the issue names is drawn, with its blocks folded where they are many. The
    # server computes each diagram first (torch's import and the trace, slow on a busy machine),
    # so a stuck server and a stuck page fail apart, each with its own message.
    import httpx

    from test_studio_browser import screenshot, usable

    base, token = studio.split("/?token=")
    named = ("googlenet", "inception_v3", "resnet152", "resnext50_32x4d", "densenet201")
    for model in named:
        answer = httpx.get(f"{base}/api/architecture/model/{model}",
                           headers={"X-Cnnlab-Token": token}, timeout=180)  # fmt: skip
        assert answer.status_code == 200, answer.text[:300]
    for model in named:
        open_view(browser, studio, f"#/architecture/{model}")
        units, blocks = browser.execute_script(
            "const s = document.querySelector('svg.arch-diagram');"
            "return [s.querySelectorAll('g.unit').length, s.querySelectorAll('g.block').length]"
        )
        assert units > 3, model
        if model in ("resnet152", "densenet201"):
            assert blocks >= 1 and units + blocks < 80, f"{model}: {units} units, {blocks} blocks"
        if model == "resnext50_32x4d":  # every block opened: the grouped convolutions marked
            browser.find_element("css selector", 'button[data-action="open-all"]').click()
            text = "document.querySelector('svg.arch-diagram').textContent"
            wait_for(browser, f"{text}.includes('groups 32')", "the grouped convolutions")
            browser.find_element("css selector", 'button[data-action="fold-all"]').click()
    # A folded block opens on click, then a second one by keyboard.
    before = browser.execute_script("return document.querySelectorAll('svg g.frame').length")
    browser.execute_script("document.querySelector('svg.arch-diagram g.block').dispatchEvent("
                           "new MouseEvent('click', {bubbles: true}))")  # fmt: skip
    wait_for(browser, f"document.querySelectorAll('svg g.frame').length > {before}", "a block open")
    from selenium.webdriver.common.keys import Keys

    card = browser.find_element("css selector", "svg.arch-diagram g.block")
    name = card.get_attribute("data-block")
    browser.execute_script("arguments[0].focus()", card)
    card.send_keys(Keys.ENTER)
    wait_for(browser, f"document.querySelector('svg g.frame[data-block=\"{name}\"]')", "keyboard")

    # ResNet-50 with a bottleneck opened.
    open_view(browser, studio, "#/architecture/resnet50")
    browser.execute_script(
        "document.querySelector('svg.arch-diagram g.block[data-block=\"layer2.0\"]')"
        "?.dispatchEvent(new MouseEvent('click', {bubbles: true}))"
    )
    wait_for(browser, "document.querySelector('svg g.frame[data-block=\"layer2.0\"]')", "layer2.0")
    projection = 'svg g.unit[data-row="layer2.0.downsample.0"]'
    browser.execute_script(f"document.querySelector('{projection}')"
                           ".dispatchEvent(new MouseEvent('click', {bubbles: true}))")  # fmt: skip
    wait_for(browser, "document.querySelector('.arch-panel h2').textContent === "
             "'layer2.0.downsample.0'", "the projection's details")  # fmt: skip
    frame = 'svg g.frame[data-block="layer2.0"]'
    browser.execute_script(f"const f = document.querySelector('{frame}');"
                           "document.querySelector('.arch-canvas').scrollTop = f.getBBox().y - 40;"
                           "window.scrollTo(0, 0)")  # fmt: skip
    shot(browser, shots / "architecture-resnet50.png")

    # AlexNet at 227 in question mode: the slides' questions about conv1.
    open_view(browser, studio, "#/architecture/alexnet_paper?size=227&questions=1")
    assert "?" in browser.find_element("css selector", 'svg g.unit[data-row="features.conv1"]').text
    browser.execute_script("document.querySelector('svg g.unit[data-row=\"features.conv1\"]')"
                           ".dispatchEvent(new MouseEvent('click', {bubbles: true}))")  # fmt: skip
    wait_for(browser, "document.querySelector('form.arch-question[data-q=volume]')", "questions")
    hidden = browser.find_element("css selector", 'tr[data-field="parameters"] td').text
    assert hidden == "?"

    def answer(key: str, text: str) -> tuple[str, str]:
        field = browser.find_element("css selector", f"#arch-q-{key}")
        field.clear()
        field.send_keys(text + Keys.ENTER)
        return wait_for(browser, f"(v => v.dataset.verdict && [v.dataset.verdict, v.textContent])"
                        f"(document.querySelector('form.arch-question[data-q={key}] .verdict'))",
                        f"the verdict on {key}")  # fmt: skip

    verdict, text = answer("volume", "54x54x96")
    assert verdict == "wrong" and "(227 - 11 + 2·0)/4 + 1 = ?" in text
    verdict, text = answer("volume", "55 x 55 x 96")
    assert verdict == "right" and "(227 - 11 + 2·0)/4 + 1 = 55" in text
    verdict, _ = answer("params", "34848")  # the weights without the 96 biases
    assert verdict == "wrong"
    verdict, text = answer("params", "34,944")
    assert verdict == "right" and "(11·11·3 + 1)·96 = 34,944" in text
    verdict, text = answer("macs", "105415200")
    assert verdict == "right" and "(55·55·96)·(11·11·3) = 105,415,200" in text
    assert (
        "55×55×96"
        in browser.find_element("css selector", 'svg g.unit[data-row="features.conv1"]').text
    )
    slides = browser.find_elements("css selector", ".arch-panel ul.errata li")
    assert slides and "slide" in slides[0].text
    usable(browser)
    browser.execute_script("window.scrollTo(0, 0)")
    shot(browser, shots / "architecture-alexnet.png", height=1100)

    # Export: the SVG file is valid SVG that names the layers; the PNG is a PNG.
    browser.find_element("css selector", 'button[data-action="export-svg"]').click()
    exported = browser.execute_async_script(
        "const done = arguments[0];"
        "fetch(document.querySelector('a.export-link[data-kind=svg]').href)"
        ".then(r => r.text()).then(done)"
    )
    root = ET.fromstring(exported.split("?>", 1)[1])
    assert root.tag == "{http://www.w3.org/2000/svg}svg"
    words = " ".join(t.text or "" for t in root.iter("{http://www.w3.org/2000/svg}text"))
    assert "conv1 · Conv2d" in words and "fc8 · Linear" in words
    browser.find_element("css selector", 'button[data-action="export-png"]').click()
    png = browser.execute_async_script(
        "const done = arguments[0];"
        "const wait = () => { const a = document.querySelector('a.export-link[data-kind=png]');"
        "if (!a) return setTimeout(wait, 50);"
        "fetch(a.href).then(r => r.arrayBuffer()).then(b => {"
        "const u = new Uint8Array(b); let s = ''; for (const x of u.subarray(0, 16)) "
        "s += String.fromCharCode(x); done([btoa(s), u.length]); }); }; wait();"
    )
    assert base64.b64decode(png[0]).startswith(b"\x89PNG\r\n\x1a\n") and png[1] > 10_000

    # A size the model cannot take: the analyzer's one line, in the page.
    open_view(browser, studio, "#/architecture/vgg16?size=8")
    message = browser.find_element("css selector", ".arch-error").text
    assert "at least 3x32x32" in message and "\n" not in message

    # Compare mode: the table and the chart, a circle per model with a published accuracy.
    browser.get(studio + "#/architecture?compare=alexnet,vgg16,googlenet,resnet50,resnet152,"
                "densenet201,inception_v3,resnext50_32x4d,alexnet_paper")  # fmt: skip
    wait_for(browser, "document.querySelector('svg.arch-chart[data-ready]')", "the chart")
    dots = browser.execute_script(
        "return Array.from(document.querySelectorAll('svg.arch-chart g.dot'), g => g.dataset.model)"
    )
    assert len(dots) == 8 and "alexnet_paper" not in dots
    assert len(browser.find_elements("css selector", "table.arch-compare tbody tr")) == 9
    usable(browser)
    screenshot(browser, shots / "architecture-compare.png")

    base = studio.split("?")[0].rstrip("/")
    requests = [
        json.loads(entry["message"])["message"]["params"]["request"]["url"]
        for entry in browser.get_log("performance")
        if '"Network.requestWillBeSent"' in entry["message"]
    ]
    assert [u for u in requests if not u.startswith((base + "/", "data:", "blob:"))] == []
    refused = "/api/architecture/model/vgg16?size=8"  # the 400 above, logged by Chromium itself
    assert [e for e in browser.get_log("browser") if e["level"] in ("SEVERE", "WARNING")
            and not (e["source"] == "network" and refused in e["message"])] == []  # fmt: skip
