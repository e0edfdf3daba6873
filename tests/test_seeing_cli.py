"""``cnnlab show``: every ``--what`` on fastnet, lenet5, resnet18, vgg11, googlenet, densenet121.

Each model is random-initialised with three classes, saved with ``save_model`` and a
``RunMeta`` whose dataset is a small RGB image folder made here, so the dataset views
(patches, errors, embeddings) and the default test images need no download. All pictures of one
model are drawn in one test, so its weights are written and read once.
"""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
from PIL import Image

import cnnlab
from cnnlab.cli import main
from cnnlab.predictor import Predictor
from cnnlab.registry import create_model
from cnnlab.runmeta import RunMeta
from cnnlab.seeing import WHAT, show
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
# Small settings so one model's nine pictures take seconds: 2 test images per picture, 2
# SmoothGrad copies, 4 occlusion windows, low resolution.
QUICK = {"samples": 2, "window": 16, "stride": 16, "dpi": 30}
PER_IMAGE = ("maps", "saliency", "gradcam", "occlusion", "rf")


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


@pytest.mark.parametrize("name", list(MODELS))
def test_every_picture_of_every_model(
    name: str, folder: Path, odd_image: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path, predictor = _saved(name, folder, tmp_path)
    # The command itself, on an image of the wrong size (and channels, for the grey models).
    out = tmp_path / "cli.png"
    args = ["show", str(path), str(odd_image), "--what", "gradcam", "-o", str(out), "--dpi", "30"]
    assert main(args) == 0
    assert _is_png(out) and "gradcam of 1 image at " in capsys.readouterr().out
    # Every picture through the function the command calls, on the model in memory (VGG-11's
    # 100M-weight head is slow to rebuild).
    for what in WHAT:
        limit = 2 if what in PER_IMAGE else None  # the dataset views take all 12 test images
        shown = show(predictor, (), what, path=tmp_path / f"{what}.png", limit=limit, **QUICK)
        assert _is_png(tmp_path / f"{what}.png"), what
        assert shown.figure.axes, what


def test_every_what_through_the_command(
    folder: Path, odd_image: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path, _ = _saved("fastnet", folder, tmp_path)
    for what in WHAT:
        out = tmp_path / f"{what}.png"
        images = [str(odd_image)] if what in ("maps", "saliency", "occlusion", "rf") else []
        args = ["show", str(path), *images, "--what", what, "-o", str(out), "--dpi", "30"]
        args += ["--samples", "2"] if what in ("saliency", "rf") else []
        assert main(args) == 0, what
        assert _is_png(out), what
    printed = capsys.readouterr().out
    assert "gradcam of 4 images at stages: wrote" in printed  # no IMAGE: the run's test images
    assert "patches of 12 images at stages.1.3" in printed
    args = ["show", str(path), "--what", "gradcam", "--layer", "stages.1", "--class", "dots"]
    assert main([*args, "-o", str(tmp_path / "c.png")]) == 0
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
    names = ("filters", "maps", "rf", "patches", "occlusion", "saliency", "gradcam", "errors")
    for name in (*names, "embeddings"):
        assert _is_png(tmp_path / f"{name}.png"), name
