"""``cnnlab show``: every row of the pictures' table on fastnet, lenet5, resnet18, vgg11,
googlenet and densenet121, and through the command.

The tests over pictures are generated from :data:`cnnlab.seeing.views.VIEWS`: a new row is
drawn on every model and through the command without new test code. Each model is
random-initialised with three classes, saved with ``save_model`` and a ``RunMeta`` whose dataset
is a small RGB image folder made here, so the dataset pictures and the default test images need
no download. A model is built and written once for all its pictures (a module-scoped fixture, so
pytest runs one model's tests together).
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch
from PIL import Image

import cnnlab
from cnnlab.cli import main
from cnnlab.predictor import Predictor
from cnnlab.registry import create_model
from cnnlab.runmeta import RunMeta
from cnnlab.seeing import VIEWS, WHAT, View, default_layer, show
from cnnlab.seeing import methods as M
from cnnlab.train.checkpoint import save_model

CLASSES = ("stripes", "dots", "plain")
MODELS = {  # name: (channels, side)
    "fastnet": (1, 28),
    "lenet5": (1, 28),
    "resnet18": (3, 32),
    "vgg11": (3, 32),
    "googlenet": (3, 32),
    "densenet121": (3, 32),
}
# Small settings so that each picture takes a second: 2 test images per per-image picture, 2
# SmoothGrad copies or random inputs, 4 occlusion windows, low resolution.
QUICK = {"samples": 2, "window": 16, "stride": 16, "dpi": 30}
TEST_IMAGES = 4 * len(CLASSES)  # in the folder's test split


def _picture(kind: int, g: torch.Generator, size: tuple[int, int] = (32, 32)) -> Image.Image:
    x = torch.rand(3, *size, generator=g) * 60
    if kind == 0:
        x[:, :, ::4] += 150
    elif kind == 1:
        x[:, ::6, ::6] += 180
    return Image.fromarray(x.clamp(0, 255).byte().permute(1, 2, 0).numpy())


@pytest.fixture(scope="module")
def folder(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """ROOT/{train,test}/CLASS/*.png: four 32x32 RGB images per class and split."""
    root = tmp_path_factory.mktemp("pictures")
    g = torch.Generator().manual_seed(0)
    for split in ("train", "test"):
        for k, name in enumerate(CLASSES):
            (root / split / name).mkdir(parents=True)
            for i in range(4):
                _picture(k, g).save(root / split / name / f"{i}.png")
    return root


@pytest.fixture(scope="module")
def odd_image(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """An RGB image of another size than any model takes (50x40)."""
    path = tmp_path_factory.mktemp("odd") / "odd.png"
    _picture(0, torch.Generator().manual_seed(1), (50, 40)).save(path)
    return path


def _saved(name: str, folder: Path, out: Path) -> tuple[Path, Predictor]:
    """The model written as `cnnlab train` writes it, and the same model in memory."""
    channels, side = MODELS[name]
    torch.manual_seed(0)
    model = create_model(name, num_classes=len(CLASSES), in_channels=channels)
    meta = RunMeta(
        model=name,
        num_classes=len(CLASSES),
        in_channels=channels,
        input_size=(channels, side, side),
        classes=CLASSES,
        mean=(0.4,) * channels,
        std=(0.25,) * channels,
        dataset=str(folder),
    )
    path = out / f"{name}.safetensors"
    save_model(path, model, meta)
    return path, Predictor(model.eval(), meta, path)


def _is_png(path: Path) -> bool:
    return path.is_file() and path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


@pytest.fixture(scope="module", params=list(MODELS))
def zoo_run(
    request: pytest.FixtureRequest, folder: Path, tmp_path_factory: pytest.TempPathFactory
) -> tuple[Path, Predictor]:
    """Each model of MODELS in turn, saved and in memory (VGG-11's 100M-weight head is slow to
    rebuild, so the pictures are drawn on the model in memory)."""
    return _saved(request.param, folder, tmp_path_factory.mktemp(request.param))


@pytest.fixture(scope="module")
def fastnet_run(folder: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    return _saved("fastnet", folder, tmp_path_factory.mktemp("fastnet"))[0]


@pytest.fixture(autouse=True)
def _cheap_measurements(monkeypatch: pytest.MonkeyPatch) -> None:
    """Every figure measures its maps (cnnlab.seeing.faithfulness); here with 2 steps and one
    random order, enough to run every line (tests/test_seeing_faithfulness.py checks values)."""
    from cnnlab.seeing import faithfulness

    monkeypatch.setattr(faithfulness, "STEPS", 2)
    monkeypatch.setattr(faithfulness, "ORDERS", 1)


def _quick_flags(view: View) -> list[str]:
    """QUICK as command-line flags, for the options the picture takes."""
    return [a for o in view.options if o in QUICK for a in (f"--{o}", str(QUICK[o]))]


def test_the_command_reads_any_image(
    zoo_run: tuple[Path, Predictor],
    odd_image: Path,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    """On an image of the wrong size (and channels, for the grey models)."""
    out = tmp_path / "cli.png"
    args = ["show", str(zoo_run[0]), str(odd_image), "--what", "gradcam", "-o", str(out)]
    assert main([*args, "--dpi", "30"]) == 0
    assert _is_png(out) and "gradcam of 1 image at " in capsys.readouterr().out


@pytest.mark.parametrize("view", VIEWS, ids=WHAT)
def test_every_picture_of_every_model(
    view: View, zoo_run: tuple[Path, Predictor], tmp_path: Path
) -> None:
    """Through the function the command calls; per-image pictures on 2 test images, the
    dataset ones on all of them."""
    predictor = zoo_run[1]
    limit = 2 if view.images == "some" else None
    shown = show(predictor, (), view.name, path=tmp_path / "x.png", limit=limit, **QUICK)
    assert _is_png(tmp_path / "x.png")
    assert shown.figure.axes
    assert shown.images == {"none": 0, "some": 2, "dataset": TEST_IMAGES}[view.images]
    assert (shown.layer is None) == (view.default_layer is None)


@pytest.mark.parametrize("view", VIEWS, ids=WHAT)
def test_every_picture_through_the_command(
    view: View,
    fastnet_run: Path,
    odd_image: Path,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    """Without IMAGE: the row's number of test images and its default layer, in the one line
    printed. With IMAGE files: drawn from them, or a one-line error for a labelled picture."""
    out = tmp_path / f"{view.name}.png"
    args = ["show", str(fastnet_run), "--what", view.name, "-o", str(out), "--dpi", "30"]
    args += _quick_flags(view)
    assert main(args) == 0
    assert _is_png(out)
    n = 0 if view.images == "none" else min(view.limit or TEST_IMAGES, TEST_IMAGES)
    of = f" of {n} image{'s' if n != 1 else ''}" if n else ""
    at = ""
    if view.default_layer is not None:
        channels, side = MODELS["fastnet"]
        net = create_model("fastnet", num_classes=len(CLASSES), in_channels=channels)
        at = f" at {default_layer(net, (channels, side, side), view.name)}"
    printed = capsys.readouterr().out.splitlines()
    assert printed[0] == f"{view.name}{of}{at}: wrote {out}"
    # A measured explanation: one line of scores per map, and the JSON beside the figure.
    assert [line.split(":")[0].strip() for line in printed[1:-1]] == list(view.explains)
    scores = out.with_name(out.stem + ".faithfulness.json")
    assert scores.exists() == bool(view.explains)
    if view.explains:
        body = json.loads(scores.read_text())
        assert set(body) == {"figure", *view.explains}
        assert len(body[view.explains[0]]["images"]) == n
    if view.images == "none":
        return
    files = [str(odd_image)] * (3 if view.images == "dataset" else 1)  # an embedding needs 3
    out.unlink()
    code = main([*args[:2], *files, *args[2:]])
    if view.labelled:
        err = capsys.readouterr().err.strip()
        assert code == 2 and "\n" not in err and "needs labelled images" in err
    else:
        assert code == 0 and _is_png(out)
        assert f"{view.name} of {len(files)} image" in capsys.readouterr().out


def test_the_command_names_what_it_drew(
    fastnet_run: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = str(tmp_path / "x.png")
    for what in ("gradcam", "patches"):
        assert main(["show", str(fastnet_run), "--what", what, "-o", out, "--dpi", "30"]) == 0
    printed = capsys.readouterr().out
    assert "gradcam of 4 images at stages.1: wrote" in printed  # no IMAGE: the run's test images
    assert "patches of 12 images at stages.1.3" in printed
    args = ["show", str(fastnet_run), "--what", "gradcam", "--layer", "stages.1", "--class", "dots"]
    assert main([*args, "-o", out, "--dpi", "30"]) == 0
    assert "at stages.1:" in capsys.readouterr().out


@pytest.mark.parametrize(
    ("extra", "message"),
    [
        (["--what", "gradcam", "--layer", "features.c4"], "no layer 'features.c4' (did you mean"),
        (["--what", "gradcam", "--class", "hats"], "unknown class 'hats': pick one of stripes"),
        (["--what", "gradcam", "--class", "7"], "--class 7 is out of range"),
        (["IMG", "--what", "errors"], "--what errors needs labelled images"),
        (["--what", "occlusion", "--window", "0"], "--window must be at least 1"),
    ],
)
def test_errors_are_one_line(
    extra: list[str],
    message: str,
    folder: Path,
    odd_image: Path,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    path, _ = _saved("lenet5", folder, tmp_path)
    extra = [str(odd_image) if e == "IMG" else e for e in extra]
    assert main(["show", str(path), *extra, "-o", str(tmp_path / "x.png")]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("cnnlab: error: ") and "\n" not in err
    assert message in err


def test_images_are_read_as_predict_reads_them(folder: Path, odd_image: Path, tmp_path: Path):
    from cnnlab.data.images import read_image

    predictor = cnnlab.load(_saved("fastnet", folder, tmp_path)[0], device="cpu")
    x = M.as_input(predictor, [odd_image])
    assert x.shape == (1, 1, 28, 28)
    expected = predictor.prepare(read_image(odd_image, channels=1)[None])
    torch.testing.assert_close(x, expected)
    rgb = read_image(odd_image)  # a 3-channel uint8 tensor is converted to grey as Pillow does
    torch.testing.assert_close(M.as_input(predictor, rgb[None]), expected, atol=0.02, rtol=0)


def test_the_example_runs_on_a_trained_run(trained_run: Path, tmp_path: Path, capsys) -> None:
    """examples/seeing.py, in lecture order, on a real (tiny) training run's test images."""
    import runpy
    import sys

    example = Path(__file__).resolve().parents[1] / "examples" / "seeing.py"
    argv = [str(example), str(trained_run), "--out", str(tmp_path), "--limit", "64"]
    old, sys.argv = sys.argv, argv
    try:
        runpy.run_path(str(example), run_name="__main__")
    finally:
        sys.argv = old
    out = capsys.readouterr().out
    assert "3. " in out and "100.0% inside that box" in out  # the effective field stays inside
    assert "9. embeddings: (64, 2)" in out
    # The example's own nine figures (a lecture of its own: a new picture need not join it).
    names = ("filters", "maps", "rf", "patches", "occlusion", "saliency", "gradcam", "errors")
    for name in (*names, "embeddings"):
        assert _is_png(tmp_path / f"{name}.png"), name
