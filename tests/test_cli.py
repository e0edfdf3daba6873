"""The ``cnnlab`` command's contract: help, exit codes, one-line errors and printed output.

Every command prints help and exits 0 on ``--help``; a usage error exits 2 (argparse); a
:class:`~cnnlab.errors.CnnlabError` becomes exactly one ``cnnlab: error: ...`` line on stderr,
no traceback, and exit status 2. One section per command: models, summary and compare, data,
filter, export, eval and predict (train's flags and errors: the first sections). The library
behind each command is tested in its own module (``test_analysis.py``, ``test_data_*.py``,
``test_scratch_filters.py``, ``test_export.py``, ``test_train_*.py``, ``test_checkpoint.py``,
``test_predictor.py``, which also checks that ``cnnlab.load`` gives what ``cnnlab predict`` and
``cnnlab eval`` print); here only what the command adds.
"""

from __future__ import annotations

import dataclasses
import json
import re
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest
import skimage.data
import torch
from PIL import Image

import cnnlab
import helpers.models  # noqa: F401  (registers tinynet)
from cnnlab.cli import COMMANDS, main
from cnnlab.export import OnnxClassifier, read_metadata
from cnnlab.run.checkpoints import list_checkpoints
from cnnlab.run.config import TrainConfig
from cnnlab.run.load import load_trained
from cnnlab.runmeta import RunMeta
from cnnlab.scratch.filters import FILTERS, apply_filter
from helpers.datasets import SYSTEM_FASHION_MNIST, needs_fashion_mnist, needs_system_fashion_mnist
from helpers.foreign_files import KINDS, plant
from helpers.optional import needs_onnx


@pytest.fixture(autouse=True)
def _keep_threads() -> Iterator[None]:
    """eval and predict set the process's thread count (a command may); put it back."""
    threads = torch.get_num_threads()
    yield
    torch.set_num_threads(threads)


def _one_line_error(capsys: pytest.CaptureFixture[str]) -> str:
    err = capsys.readouterr().err
    assert err.startswith("cnnlab: error: ") and err.count("\n") == 1, err
    assert "Traceback" not in err
    return err


# --- help and usage ---------------------------------------------------------------------------


def test_help_lists_every_command(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as done:
        main(["--help"])
    assert done.value.code == 0
    out = capsys.readouterr().out
    assert all(name in out for name in COMMANDS)


@pytest.mark.parametrize("command", COMMANDS)
def test_every_command_has_help(command: str, capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as done:
        main([command, "--help"])
    assert done.value.code == 0
    assert capsys.readouterr().out.startswith(f"usage: cnnlab {command}")


def test_train_help_names_every_config_field(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit):
        main(["train", "--help"])
    text = capsys.readouterr().out
    for f in dataclasses.fields(TrainConfig):
        flag = f.name.upper() if f.metadata.get("positional") else "--" + f.name.replace("_", "-")
        assert flag in text, flag
        assert f.metadata["help"], f.name


def test_usage_errors_exit_2(capsys: pytest.CaptureFixture[str]) -> None:
    for argv in ([], ["nosuchcommand"], ["train", "--no-such-flag"], ["eval"]):
        with pytest.raises(SystemExit) as done:
            main(argv)
        assert done.value.code == 2, argv
        assert "usage: cnnlab" in capsys.readouterr().err


# --- one-line errors --------------------------------------------------------------------------


@pytest.mark.parametrize(
    "argv, says",
    [
        (["train", "tinynet", "--epochs", "0"], "--epochs must be at least 1"),
        (["train", "nosuchnet", "--out", "{tmp}/run"], "unknown model 'nosuchnet'"),
        (["eval", "{tmp}/nothing-here"], "nothing-here"),
        (["predict", "{tmp}/nothing-here", "{tmp}/a.png"], "nothing-here"),
    ],
    ids=["train-bad-flag-value", "train-unknown-model", "eval-missing", "predict-missing"],
)
def test_errors_are_one_line_with_exit_2(
    argv: list[str], says: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main([a.replace("{tmp}", str(tmp_path)) for a in argv]) == 2
    assert says in _one_line_error(capsys)


@pytest.mark.parametrize("kind", KINDS)
def test_eval_refuses_files_cnnlab_did_not_write(
    tmp_path: Path, kind: str, capsys: pytest.CaptureFixture[str]
) -> None:
    marker = tmp_path / "payload-ran"
    run = tmp_path / "run"
    plant(kind, run, marker)
    assert main(["eval", str(run)]) == 2
    err = _one_line_error(capsys)
    assert not marker.exists(), "the payload ran"
    if kind.startswith("pickle"):
        assert "pickle" in err


# --- models -----------------------------------------------------------------------------------


def test_models_json_lists_every_match_with_params_and_macs(
    capsys: pytest.CaptureFixture[str],
) -> None:
    assert main(["models", "resnet1*", "--format", "json"]) == 0
    rows = json.loads(capsys.readouterr().out)
    assert [r["name"] for r in rows] == cnnlab.list_models("resnet1*")
    by_name = {r["name"]: r for r in rows}
    # REFERENCE.md, torchvision table: resnet18 11,689,512 params, 1.814 GMACs.
    assert by_name["resnet18"]["params"] == 11_689_512
    assert round(by_name["resnet18"]["macs"] / 1e9, 3) == 1.814
    assert by_name["resnet18"]["torchvision"] == "resnet18"


def test_models_text_table_states_its_conventions(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["models", "alexnet*"]) == 0
    out = capsys.readouterr().out
    assert "60,965,224" in out and "61,100,840" in out and "714.19 M" in out
    assert "biases included" in out and "multiply-adds" in out


def test_models_no_match_exits_non_zero(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["models", "nonesuch*", "--no-macs"]) == 1
    assert "no model matches" in capsys.readouterr().out


# --- summary and compare ----------------------------------------------------------------------


def test_summary_unknown_model_is_one_line_error(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["summary", "resnet-18"]) == 2
    err = capsys.readouterr().err.strip()
    assert err.count("\n") == 0 and "did you mean" in err


def test_summary_json_schema(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["summary", "alexnet", "--input", "3x227x227", "--format", "json"]) == 0
    doc = json.loads(capsys.readouterr().out)
    assert {"model", "input_size", "batch_size", "rows", "totals"} <= set(doc)
    assert doc["input_size"] == [3, 227, 227]
    row_keys = set(
        [
            "name",
            "type",
            "input_shape",
            "output_shape",
            "filters",
            "kernel",
            "stride",
            "padding",
            "params",
            "macs",
            "activation_bytes",
            "receptive_field",
            "jump",
        ]
    )
    assert all(row_keys <= set(row) for row in doc["rows"])
    assert set(doc["totals"]) == {"params", "macs", "flops", "activation_bytes", "param_bytes",
                                  "training_memory_bytes"}  # fmt: skip
    conv1 = next(r for r in doc["rows"] if r["name"] == "features.0")
    assert conv1["macs"] == 72_855_552 and conv1["output_shape"] == [64, 56, 56]


def test_summary_errors_are_one_line(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["summary", "nosuchnet"]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("cnnlab: error: unknown model") and "\n" not in err
    assert main(["summary", "alexnet", "--input", "3x227x227", "--strict"]) == 2
    err = capsys.readouterr().err.strip()
    assert "does not fit a 56x56 input" in err and "\n" not in err


def test_summary_depth_and_batch(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["summary", "resnet18", "--depth", "1", "--batch", "4"]) == 0
    out = capsys.readouterr().out
    assert re.search(r"^layer1\s+Sequential\s+64x56x56\s+64x56x56", out, re.M)
    assert "batch 4" in out


def test_summary_and_compare_plots_are_written(
    tmp_path, capsys: pytest.CaptureFixture[str]
) -> None:
    png = tmp_path / "alexnet.png"
    assert main(["summary", "alexnet", "--input", "3x227x227", "--plot", str(png)]) == 0
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and png.stat().st_size > 10_000
    cmp_png = tmp_path / "compare.png"
    assert main(["compare", "alexnet", "resnet18", "vgg11", "--plot", str(cmp_png)]) == 0
    out = capsys.readouterr().out
    assert re.search(r"resnet18\s.*69\.76", out)  # torchvision's published top-1
    assert cmp_png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert main(["summary", "lenet5", "--plot", str(tmp_path / "x.notaformat")]) == 2
    assert "cannot write the figure" in capsys.readouterr().err


def test_compare_json(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["compare", "resnet1?", "--count", "conv-linear", "--format", "json"]) == 0
    rows = json.loads(capsys.readouterr().out)
    by = {r["model"]: r for r in rows}
    assert by["resnet18"]["gmacs"] == 1.814 and by["resnet18"]["top1"] == pytest.approx(69.758)
    assert main(["compare", "nosuch*"]) == 2


# --- data -------------------------------------------------------------------------------------


@needs_system_fashion_mnist
def test_data_info(no_user_data: Path, capsys) -> None:
    assert main(["data", "info", "fashion-mnist"]) == 0
    out = capsys.readouterr().out
    assert "Ankle boot" in out and "60,000" in out and str(SYSTEM_FASHION_MNIST) in out
    assert out.count("sha256 ok") == 4
    assert main(["data", "info", "fmnist", "--format", "json"]) == 0
    doc = json.loads(capsys.readouterr().out)
    assert doc["name"] == "fashion-mnist" and doc["train"]["step"] == "system copy"


def test_data_errors_exit_nonzero_with_one_line(no_user_data: Path, capsys) -> None:
    assert main(["data", "info", "imagenet"]) == 2
    err = capsys.readouterr().err
    assert err.startswith("cnnlab: error: unknown dataset 'imagenet'") and err.count("\n") == 1
    # not found anywhere: info says so and exits 1
    assert main(["data", "info", "mnist"]) == 1
    assert "not found; run `cnnlab data fetch mnist`" in capsys.readouterr().out
    # offline fetch: a clear one-line error, exit 2, no traceback
    assert main(["data", "fetch", "mnist", "--quiet"]) == 2
    err = capsys.readouterr().err
    assert "cannot reach http://127.0.0.1:9/mnist/" in err and "Traceback" not in err
    assert err.count("\n") == 1


def test_data_fetch_finds_existing_and_folder_info(no_user_data: Path, capsys) -> None:
    root = no_user_data / "shapes"
    for name in ("circle", "square"):
        (root / name).mkdir(parents=True)
        for i in range(3):
            Image.new("L", (5, 4), 40 * i).save(root / name / f"{i}.png")
    assert main(["data", "info", str(root)]) == 0
    out = capsys.readouterr().out
    assert "circle, square" in out and "1x4x5" in out
    assert main(["data", "fetch", str(root)]) == 2
    assert "nothing to fetch" in capsys.readouterr().err


@needs_fashion_mnist
def test_data_sample_writes_test_images_named_by_their_class(tmp_path: Path, capsys) -> None:
    from cnnlab.data import dataset_info, load_dataset

    out = tmp_path / "samples"
    assert main(["data", "sample", "fashion-mnist", "-n", "1", "--each-class", "-o", str(out)]) == 0
    assert "10 test images in" in capsys.readouterr().out
    images, labels = load_dataset("fashion-mnist", "test")
    classes = dataset_info("fashion-mnist").classes
    files = sorted(out.glob("*.png"), key=lambda p: int(p.name.split("-")[0]))
    assert len(files) == 10 and files[0].name == "0-ankle-boot.png"
    for path in files:  # the dataset's own pixels, each class once, named by its true class
        index = int(path.name.split("-")[0])
        assert np.array_equal(np.asarray(Image.open(path)), images[index, 0].numpy())
    assert sorted(int(labels[int(p.name.split("-")[0])]) for p in files) == list(range(10))
    assert {p.name.split("-", 1)[1] for p in files} == {
        "-".join(c.lower().replace("/", " ").split()) + ".png" for c in classes
    }
    assert main(["data", "sample", "fashion-mnist", "-n", "0", "-o", str(out)]) == 2
    assert "-n must be between 1 and" in _one_line_error(capsys)


# --- filter -----------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def photo(tmp_path_factory) -> str:
    path = tmp_path_factory.mktemp("img") / "camera.png"
    Image.fromarray(skimage.data.camera()[::2, ::2]).save(path)  # 256x256 keeps the test quick
    return str(path)


def test_filter_writes_an_edge_map(photo, tmp_path, capsys) -> None:
    out = tmp_path / "edges.png"
    assert main(["filter", photo, "--kernel", "sobel_x", "-o", str(out)]) == 0
    assert "wrote" in capsys.readouterr().out
    result = np.asarray(Image.open(out))
    src = np.asarray(Image.open(photo))
    assert result.shape == src.shape and result.dtype == np.uint8
    expected = apply_filter(src, "sobel_x", "reflect")
    np.testing.assert_array_equal(result, expected)
    assert 0 < (result > 128).mean() < 0.1  # a sparse edge map, not blank, not saturated


def test_filter_colour_list_and_grid(tmp_path, capsys) -> None:
    rgb = tmp_path / "astronaut.jpg"
    Image.fromarray(skimage.data.astronaut()[::4, ::4]).save(rgb)
    out = tmp_path / "blur.png"
    assert (
        main(["filter", str(rgb), "-k", "gaussian", "--padding", "circular", "-o", str(out)]) == 0
    )
    assert np.asarray(Image.open(out)).shape == (128, 128, 3)
    assert main(["filter", "--list"]) == 0
    listing = capsys.readouterr().out
    assert all(name in listing for name in FILTERS)
    grid = tmp_path / "grid.png"
    assert main(["filter", str(rgb), "--grid", str(grid)]) == 0
    assert Image.open(grid).size[0] > 500


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["{missing}", "-k", "box", "-o", "{out}"], "not found"),
        (["{garbage}", "-k", "box", "-o", "{out}"], "not an image"),
        (["{photo}", "-k", "box", "-o", "{out}", "--max-pixels", "1000"], "over the filter limit"),
        (["{bomb}", "-k", "box", "-o", "{out}"], "decompression bomb"),
        (["{photo}", "-k", "nope", "-o", "{out}"], "unknown kernel"),
        (["{photo}", "-k", "box"], "nothing to write"),
        (["{photo}", "-o", "{out}"], "needs --kernel"),
        (["{photo}", "-k", "box", "-o", "{tmp}/x.gif"], ".png"),
        (["{photo}", "--grid", "{tmp}/grid.txt"], ".png"),
        (["{photo}", "-k", "box", "-o", "{tmp}/no/such/dir/x.png"], "does not exist"),
        ([], "no input image"),
    ],
)
def test_filter_errors_are_one_line_exit_2(args, message, photo, tmp_path, capsys) -> None:
    garbage = tmp_path / "garbage.png"
    garbage.write_bytes(b"this is not a PNG")
    bomb = tmp_path / "bomb.png"
    if "{bomb}" in args:
        Image.new("1", (10000, 10000)).save(bomb)  # 100 Mpx, a few kB on disk
    fill = {
        "{missing}": str(tmp_path / "missing.png"),
        "{garbage}": str(garbage),
        "{photo}": photo,
        "{bomb}": str(bomb),
        "{out}": str(tmp_path / "out.png"),
    }
    argv = ["filter"] + [fill.get(a, a.replace("{tmp}", str(tmp_path))) for a in args]
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert err.startswith("cnnlab: error: ") and err.count("\n") == 1 and "Traceback" not in err
    assert message in err


# --- export -----------------------------------------------------------------------------------


@needs_onnx
def test_export_unknown_path_is_one_line_error(tmp_path: Path) -> None:
    proc = subprocess.run(
        [sys.executable, "-m", "cnnlab", "export", str(tmp_path / "nope"), "--onnx", "x.onnx"],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert proc.returncode == 2
    assert proc.stderr.startswith("cnnlab: error: ")
    assert "Traceback" not in proc.stderr
    assert len(proc.stderr.strip().splitlines()) == 1


@needs_onnx
def test_export_then_predict_from_onnx_alone(tmp_path: Path) -> None:
    """A run written through the train package's own writer, exported, predicted from the file."""
    from cnnlab.train.checkpoint import save_model

    torch.manual_seed(3)
    model = cnnlab.create_model("lenet5", num_classes=3)
    classes = ["cat", "dog", "ship"]
    meta = {
        "model": "lenet5",
        "model_kwargs": {},
        "num_classes": 3,
        "in_channels": 1,
        "input_size": [1, 28, 28],
        "dataset": "toy",
        "classes": classes,
        "mean": [0.5],
        "std": [0.25],
    }
    run = tmp_path / "run"
    run.mkdir()
    save_model(run / "model.safetensors", model, meta)
    out = tmp_path / "lenet.onnx"
    proc = subprocess.run(
        [
            sys.executable,
            "-m",
            "cnnlab",
            "export",
            str(run),
            "--onnx",
            str(out),
            "--format",
            "json",
        ],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert proc.returncode == 0, proc.stderr
    result = json.loads(proc.stdout)
    assert result["ok"] and result["max_abs_diff"] < 1e-4
    stored = read_metadata(out)
    assert stored["classes"] == classes and stored["mean"] == [0.5] and stored["std"] == [0.25]
    assert OnnxClassifier(out).meta == RunMeta.from_dict(meta)  # the run's whole record

    image = tmp_path / "x.png"
    Image.fromarray(np.random.default_rng(0).integers(0, 255, (40, 30), np.uint8)).save(image)
    predictions = {}
    for source in (run, out):
        proc = subprocess.run(
            [
                sys.executable,
                "-m",
                "cnnlab",
                "predict",
                str(source),
                str(image),
                "--format",
                "json",
            ],
            capture_output=True,
            text=True,
            timeout=120,
        )
        assert proc.returncode == 0, proc.stderr
        predictions[source.suffix] = json.loads(proc.stdout)[0]["predictions"]
    torch_top, onnx_top = predictions[""], predictions[".onnx"]
    assert [p["class"] for p in torch_top] == [p["class"] for p in onnx_top]
    for a, b in zip(torch_top, onnx_top, strict=True):
        assert a["probability"] == pytest.approx(b["probability"], rel=1e-4, abs=1e-6)


# --- eval and predict on a trained run --------------------------------------------------------


@needs_fashion_mnist
def test_eval_json_matches_results(trained_run: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["eval", str(trained_run), "--limit", "300", "--format", "json"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert {"top1", "top5", "loss", "per_class", "confusion"} <= set(out)
    results = json.loads((trained_run / "results.json").read_text())["test"]
    assert out["top1"] == pytest.approx(results["top1"])
    # training evaluated in channels-last, eval in the default layout: rounding differs slightly
    assert out["loss"] == pytest.approx(results["loss"], rel=1e-3)
    assert sum(map(sum, out["confusion"])) == 300 and len(out["per_class"]) == 10
    # a checkpoint file evaluates too (the last one holds the final weights)
    last = list_checkpoints(trained_run / "checkpoints")[-1]
    assert main(["eval", str(last), "--limit", "300", "--format", "json"]) == 0
    assert json.loads(capsys.readouterr().out)["top1"] == pytest.approx(out["top1"])


@needs_fashion_mnist
def test_predict_png_and_jpeg(
    trained_run: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from cnnlab.data import load_dataset
    from cnnlab.run.inputs import make_prepare

    images, _labels = load_dataset("fashion-mnist", "test")
    Image.fromarray(images[0, 0].numpy()).save(tmp_path / "a.png")
    Image.fromarray(images[1, 0].numpy()).convert("RGB").resize((56, 40)).save(tmp_path / "b.jpg")
    argv = ["predict", str(trained_run), str(tmp_path / "a.png"), str(tmp_path / "b.jpg")]
    assert main([*argv, "--top-k", "4", "--format", "json"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert [len(r["predictions"]) for r in out] == [4, 4]
    for r in out:
        probs = [p["probability"] for p in r["predictions"]]
        assert probs == sorted(probs, reverse=True) and 0 < sum(probs) <= 1 + 1e-6
    # the PNG holds a test image exactly: its top class is what eval's model predicts for it
    trained = load_trained(trained_run)
    model, meta = trained.model, trained.meta
    prepare = make_prepare((28, 28), meta.mean, meta.std, torch.device("cpu"))
    with torch.no_grad():
        x = prepare(images[:1])
        logits = model(x)
        if meta.tta:  # predict evaluates like the run's final report
            logits = (logits + model(x.flip(-1))) / 2
        expected = int(logits.argmax())
    assert out[0]["predictions"][0]["index"] == expected
    assert main(argv) == 0
    assert "a.png" in capsys.readouterr().out
