"""``cnnlab report``: the page's sections, its self-containment, the reproducing command, the
first batch as the model saw it, the Grad-CAM hook, and the per-class arithmetic."""

from __future__ import annotations

import dataclasses
import math
import re
import shlex
import shutil
import sys
import types
from importlib.machinery import ModuleSpec
from pathlib import Path

import pytest
import torch

from cnnlab.cli import main
from cnnlab.report import page
from cnnlab.report.scores import class_scores, confused_pairs, macro_average
from helpers.datasets import needs_fashion_mnist
from helpers.runs import SMALL

SECTIONS = ("run", "reproduce", "environment", "curves", "confusion", "per-class",
            "confused-pairs", "worst-errors", "augmented", "gradcam", "layers",
            "timings")  # fmt: skip


def external_references(text: str) -> list[str]:
    """Every src/href/url() that points outside the file (anything but data: and #fragments)."""
    refs = re.findall(r"""(?:src|href)\s*=\s*["']?([^"'\s>]+)""", text, re.I)
    refs += re.findall(r"url\(\s*['\"]?([^'\")]+)", text, re.I)
    return [r for r in refs if not r.startswith(("data:", "#"))]


def check_html(text: str) -> None:
    """Well-formed HTML5 (html5lib's strict parser raises on any parse error) with no script and
    nothing fetched from outside the file."""
    import html5lib

    html5lib.HTMLParser(strict=True).parse(text)
    assert "<script" not in text.lower()
    assert external_references(text) == []
    assert not re.search(r"""(?:src|href)\s*=\s*["']?(?:https?:)?//""", text, re.I)


@pytest.fixture(scope="module")
def page_path(trained_run: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("report") / "page.html"
    assert main(["report", str(trained_run), "-o", str(out)]) == 0
    return out


def test_report_has_every_section_and_is_self_contained(page_path: Path, capsys) -> None:
    text = page_path.read_text()
    for section in SECTIONS:
        assert f'<section id="{section}">' in text, section
    check_html(text)
    images = re.findall(r'<img[^>]*src="([^"]+)"', text)
    assert len(images) > 40 and all(i.startswith("data:image/png;base64,") for i in images)
    assert "tinynet" in text and "status-finished" in text
    assert "T-shirt/top" in text and "macro average" in text  # per-class table, escaped names


def test_report_prints_its_path_and_defaults_into_the_run(trained_run: Path, tmp_path, capsys):
    run = tmp_path / "run"
    shutil.copytree(trained_run, run)
    assert main(["report", str(run), "--limit", "100"]) == 0
    assert capsys.readouterr().out.strip() == str(run / "report.html")
    assert (run / "report.html").stat().st_size > 10_000


def test_report_of_a_folder_without_a_run_is_a_one_line_error(tmp_path: Path, capsys) -> None:
    assert main(["report", str(tmp_path)]) == 2
    err = capsys.readouterr().err
    assert err.startswith("cnnlab: error:") and "no training run" in err and err.count("\n") == 1


def test_interrupted_run_shows_its_newest_checkpoint(trained_run: Path, tmp_path: Path) -> None:
    run = tmp_path / "run"
    shutil.copytree(trained_run, run)
    (run / "results.json").unlink()
    (run / "model.safetensors").unlink()
    report = page.build_report(run, limit=200)
    assert report.run.status == "interrupted"
    assert "newest checkpoint" in report.confusion_source
    assert sum(s.support for s in report.scores) == 200
    assert "has not finished" in report.to_html()


def test_the_command_reproduces_the_stored_config(trained_run: Path) -> None:
    """Both commands train the stored config: the short one through the recipe (it names only
    what the run chose), the pinned one with every recipe value spelled out."""
    import json

    from cnnlab.cli.train import parse
    from cnnlab.run.config import from_dict, matters
    from cnnlab.run.recipes import resolve

    stored = from_dict(json.loads((trained_run / "config.json").read_text()))
    baseline = page.recipe_baseline(stored)
    assert baseline is not None
    read = [f.name for f in dataclasses.fields(stored) if matters(stored, f.name)]
    assert len(read) < len(dataclasses.fields(stored))  # tinynet's SGD + onecycle: some unread
    for short in (False, True):
        argv = shlex.split(page.train_command(stored, baseline=baseline if short else None))
        assert argv[:3] == ["cnnlab", "train", "tinynet"]
        config, given = parse(argv[2:])
        config = resolve(config, given)[0]  # the pinned command leaves only unread ones to it
        for name in ("resume", "progress"):  # how a run is watched, not what it trains
            setattr(config, name, getattr(stored, name))
        assert {n: getattr(config, n) for n in read} == {n: getattr(stored, n) for n in read}
    ddp = page.train_command(stored, world_size=2)
    assert ddp.startswith("torchrun --standalone --nproc_per_node 2 -m cnnlab train tinynet")


def test_the_command_names_only_what_differs_from_the_recipe() -> None:
    from cnnlab.run.config import TrainConfig
    from cnnlab.run.recipes import resolve

    config = resolve(TrainConfig(model="lenet5", epochs=3, lr=0.05), {"epochs", "lr"})[0]
    baseline = resolve(TrainConfig(model="lenet5"), set())[0]  # no recipe field given
    short = page.train_command(config, baseline=baseline)
    assert short == "cnnlab train lenet5 --epochs 3 --lr 0.05"
    pinned = page.train_command(config)
    assert "--weight-decay" in pinned and "--batch-size" in pinned


def test_the_command_leaves_out_what_training_never_reads() -> None:
    """AdamW reads no --nesterov, onecycle no --lr-decay, flips alone no --crop-padding, only
    GoogLeNet and Inception v3 the auxiliary loss weight."""
    from cnnlab.run.config import TrainConfig
    from cnnlab.run.recipes import resolve

    given = {"optimizer", "lr", "augment"}
    config = resolve(TrainConfig(model="resnet18", optimizer="adamw", lr=1e-3, augment="flip"),
                     given)[0]  # fmt: skip
    for command in (page.train_command(config), page.train_command(
            config, baseline=page.recipe_baseline(config))):  # fmt: skip
        argv = shlex.split(command)
        assert "--optimizer" in argv and "--lr" in argv
        for unread in ("--nesterov", "--no-nesterov", "--lr-decay", "--plateau-patience",
                       "--step-epochs", "--crop-padding", "--aux-loss-weight"):  # fmt: skip
            assert unread not in argv, (unread, command)
    googlenet = resolve(TrainConfig(model="googlenet", schedule="step"), {"schedule"})[0]
    pinned = shlex.split(page.train_command(googlenet))
    assert "--aux-loss-weight" in pinned and "--step-epochs" in pinned and "--lr-decay" in pinned
    assert "--warmup" not in pinned and "--plateau-patience" not in pinned


def test_label_smoothing_explains_the_training_loss_floor() -> None:
    """Smoothing 0.1 over 10 classes: targets 0.91 and 0.01, whose entropy is the floor."""
    import math

    floor = page.smoothing_floor(0.1, 10)
    assert math.isclose(floor, -(0.91 * math.log(0.91) + 9 * 0.01 * math.log(0.01)))
    assert page.smoothing_floor(0.0, 10) == 0.0
    text = page.smoothing_note(0.1, 10)
    assert "0.50" in text and "cannot reach 0" in text and "validation loss" in text


def _first_input_matches_the_page(argv: list[str], out: Path) -> None:
    """Train ``argv``; the page's augmented images, prepared as training prepares them, are
    bitwise the first training input the network received."""
    import helpers.models  # noqa: F401  (registers tinynet)
    from cnnlab.cli.train import parse
    from cnnlab.train import Callback, fit
    from cnnlab.train.trainer import run_data

    seen: list[torch.Tensor] = []

    class FirstInput(Callback):
        def on_train_start(self, trainer) -> None:
            self.prepare = trainer.prepare

            def hook(module, args):
                if module.training and not seen:
                    seen.append(args[0].detach().clone())

            trainer.model.register_forward_pre_hook(hook)

    first = FirstInput()
    config, given = parse([*argv, "--out", str(out)])
    result = fit(config, given=given, quiet=True, callbacks=[first])
    pairs = page.first_batch(result.config, run_data(result.config))
    assert len(pairs) == min(page.AUGMENTED, result.config.batch_size)
    images = torch.stack([_decode(p[1].uri) for p in pairs])
    assert torch.equal(first.prepare(images), seen[0][: len(pairs)])
    stored = [_decode(p[0].uri) for p in pairs]
    assert any(
        s.shape != i.shape or not torch.equal(s, i) for s, i in zip(stored, images, strict=True)
    )


@needs_fashion_mnist
def test_first_batch_is_what_the_model_saw_at_step_1(tmp_path: Path) -> None:
    argv = ["tinynet", *SMALL, "--augment", "crop+flip", "--crop-padding", "3", "--seed", "5"]
    _first_input_matches_the_page(argv, tmp_path / "run")


def test_first_batch_of_a_photo_folder_is_its_random_resized_crop(tmp_path: Path) -> None:
    """A photo folder trains on random-resized crops, not the named datasets' padded crops: the
    page shows those (it once redrew the batch with another augmenter)."""
    from helpers.datasets import photos

    data = photos(tmp_path / "photos", per_class=12, size=(40, 56))
    argv = ["tinynet", "--data", str(data), "--image-size", "24", "--augment", "crop+flip"]
    argv += ["--epochs", "1", "--batch-size", "8", "--no-progress", "--stall-patience", "0"]
    _first_input_matches_the_page([*argv, "--threads", "1", "--device", "cpu"], tmp_path / "run")


def _decode(uri: str) -> torch.Tensor:
    """A PNG data URI back to a uint8 (C, H, W) image."""
    import base64
    import io

    import numpy as np
    from PIL import Image

    data = base64.b64decode(uri.split(",", 1)[1])
    pixels = torch.from_numpy(np.array(Image.open(io.BytesIO(data))))
    return pixels[None] if pixels.dim() == 2 else pixels.permute(2, 0, 1)


def test_worst_errors_are_the_wrong_ones_with_the_highest_loss() -> None:
    labels = torch.tensor([0, 1, 2, 0])
    logits = torch.tensor([[5.0, 0, 0], [0, 0, 1], [9, 0, 0], [0, 3, 0]])
    images = torch.zeros(4, 1, 4, 4, dtype=torch.uint8)
    found = page.worst_errors(images, labels, logits, ["a", "b", "c"])
    assert [p.caption.split(":")[0] for p in found] == ["#2", "#3", "#1"]
    assert found[0].caption.startswith("#2: c → a") and all(p.wrong for p in found)


def test_gradcam_section_without_the_seeing_module_says_so() -> None:
    import importlib.util

    if importlib.util.find_spec("cnnlab.seeing") is not None:
        pytest.skip("cnnlab.seeing exists: the section shows Grad-CAM")
    pictures, note = page.gradcam_pictures(None, torch.zeros(1), torch.zeros(1))  # type: ignore[arg-type]
    assert pictures == [] and "cnnlab.seeing" in note


def test_gradcam_hook_overlays_the_seeing_modules_maps(trained_run: Path, monkeypatch) -> None:
    """The documented hook: ``cnnlab.seeing.gradcam(model, x) -> (N, h, w)`` maps, overlaid."""
    import cnnlab

    calls = []

    def gradcam(model, x):
        calls.append(x.shape)
        return torch.rand(len(x), 7, 7)

    seeing = types.ModuleType("cnnlab.seeing")
    seeing.__spec__ = ModuleSpec("cnnlab.seeing", None)
    seeing.gradcam = gradcam  # type: ignore[attr-defined]
    monkeypatch.setitem(sys.modules, "cnnlab.seeing", seeing)
    predictor = cnnlab.load(trained_run, device="cpu")
    images = torch.randint(0, 255, (10, 1, 28, 28), dtype=torch.uint8)
    pictures, note = page.gradcam_pictures(predictor, images, torch.zeros(10, dtype=torch.long))
    assert note == "" and len(pictures) == page.GRADCAM_IMAGES
    assert calls == [torch.Size([page.GRADCAM_IMAGES, 1, 28, 28])]
    assert _decode(pictures[0].uri).shape == (3, 28, 28)  # RGB heat over the image

    def broken(model, x):
        raise RuntimeError("no spatial layer")

    seeing.gradcam = broken  # type: ignore[attr-defined]
    pictures, note = page.gradcam_pictures(predictor, images, torch.zeros(10, dtype=torch.long))
    assert pictures == [] and "no spatial layer" in note


def test_class_scores_by_hand() -> None:
    confusion = [[8, 2, 0], [1, 9, 0], [0, 0, 0]]  # class c: no images, never predicted
    a, b, c = class_scores(confusion, ["a", "b", "c"])
    assert (a.precision, a.recall, a.support) == (8 / 9, 0.8, 10)
    assert math.isclose(a.f1, 2 * (8 / 9) * 0.8 / (8 / 9 + 0.8))
    assert b.precision == 9 / 11 and b.recall == 0.9
    assert math.isnan(c.precision) and math.isnan(c.recall) and math.isnan(c.f1)
    macro = macro_average([a, b, c])
    assert math.isclose(macro.recall, 0.85) and macro.support == 20
    assert math.isnan(class_scores([[0, 5], [0, 5]], ["x", "y"])[0].precision)  # never predicted
    pairs = confused_pairs([[5, 3, 1], [3, 5, 0], [0, 4, 5]], ["a", "b", "c"], top=3)
    assert [(p.true, p.predicted, p.count) for p in pairs] == [
        ("c", "b", 4),
        ("a", "b", 3),
        ("b", "a", 3),
    ]
    assert math.isclose(pairs[0].share, 4 / 9)
