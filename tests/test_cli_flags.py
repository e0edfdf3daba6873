"""Runs made with non-default flags work with every command that reads a run.

``cnnlab eval`` once failed on every built-in-dataset run trained with ``--seed`` (the seed was
passed to a loader that takes one only for image folders), and on every ``--classes`` run (the
whole test set, labels the model never learned). Each run here is trained once with several
non-default flags, then evaluated, predicted, shown and reported; and ``cnnlab train`` interrupted
by Ctrl-C prints the command that resumes it.
"""

from __future__ import annotations

import json
import os
import shlex
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import torch
from PIL import Image

import helpers.models  # noqa: F401  (registers tinynet)
from cnnlab.cli import main
from cnnlab.cli.train import parse, resume_command
from helpers import subprocess_env
from helpers.datasets import needs_fashion_mnist, photos
from helpers.runs import SMALL

pytestmark = needs_fashion_mnist

# Flags after SMALL win (argparse keeps the last value).
RUNS = {
    "seed-paper": ["lenet5", *SMALL, "--seed", "7", "--recipe", "paper"],
    "classes": ["tinynet", *SMALL, "--classes", "Sneaker,Ankle boot,Bag", "--seed", "3"],
    # an image folder split by non-default fractions and seed, at a chosen size: eval must
    # find the same held-out images (splits.json), not the default split's
    "folder": [
        "tinynet",
        "--data",
        "{photos}",
        *("--test-fraction", "0.25"),
        *("--val-fraction", "0.2", "--seed", "5", "--image-size", "32", "--epochs", "1"),
        *("--stall-patience", "0", "--no-progress", "--device", "cpu", "--threads", "1"),
    ],
}


@pytest.fixture(autouse=True)
def _keep_threads() -> Iterator[None]:
    threads = torch.get_num_threads()
    yield
    torch.set_num_threads(threads)


@pytest.fixture(scope="module")
def runs(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    root = tmp_path_factory.mktemp("flags")
    folder = photos(root / "photos", per_class=40, classes=("blue", "red", "green"))
    threads = torch.get_num_threads()
    for name, argv in RUNS.items():
        argv = [a.replace("{photos}", str(folder)) for a in argv]
        assert main(["train", *argv, "--out", str(root / name)]) == 0
    torch.set_num_threads(threads)
    return {name: root / name for name in RUNS}


@pytest.mark.parametrize("name", RUNS)
def test_eval_predict_show_report_read_the_run(
    name: str, runs: dict[str, Path], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    run = runs[name]
    results = json.loads((run / "results.json").read_text())["test"]
    # eval: the same test images training evaluated (its first 300), the same accuracy
    assert main(["eval", str(run), "--limit", "300", "--format", "json"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert out["count"] == results["count"] == (30 if name == "folder" else 300)  # 25% of 120
    assert out["top1"] == pytest.approx(results["top1"])
    if name == "folder":  # the very images training held out, class by class
        assert out["per_class"] == pytest.approx(results["per_class"])
    classes = json.loads((run / "config.json").read_text())["classes"]
    if classes:  # a --classes run: its classes by name, and only their images
        assert list(out["per_class"]) == classes.split(",")
    from cnnlab.data import load_dataset

    images, _ = load_dataset("fashion-mnist", "test")
    Image.fromarray(images[0, 0].numpy()).save(tmp_path / "boot.png")
    assert main(["predict", str(run), str(tmp_path / "boot.png"), "--format", "json"]) == 0
    assert json.loads(capsys.readouterr().out)[0]["predictions"]
    assert main(["show", str(run), "--what", "gradcam", "-o", str(tmp_path / "cam.png")]) == 0
    assert (tmp_path / "cam.png").stat().st_size > 0
    # labelled test images: the run's own (a --classes run's relabelled, a folder's held out)
    assert main(["show", str(run), "--what", "errors", "-o", str(tmp_path / "err.png")]) == 0
    assert (tmp_path / "err.png").stat().st_size > 0
    assert main(["report", str(run), "-o", str(tmp_path / "page.html")]) == 0
    assert (tmp_path / "page.html").stat().st_size > 0


def test_the_resume_command_repeats_the_settings_given(tmp_path: Path) -> None:
    argv = ["lenet5", "--seed", "7", "--classes", "Ankle boot,Bag", "--no-tta", "--lr", "0.05"]
    command = resume_command(*parse(argv))
    assert command == (
        "cnnlab train lenet5 --lr 0.05 --no-tta --classes 'Ankle boot,Bag' --seed 7 "
        "--out runs/lenet5-fashion-mnist --resume"
    )
    # the default model and run directory are named, as --resume needs them
    assert resume_command(*parse([])).endswith("--out runs/fastnet-fashion-mnist --resume")


def test_ctrl_c_prints_the_exact_resume_command(tmp_path: Path) -> None:
    out = tmp_path / "run"
    argv = ["train", "tinynet", *SMALL, "--epochs", "200", "--seed", "5", "--out", str(out)]
    proc = subprocess.Popen(
        [sys.executable, "-m", "helpers.tinynet_cli", *argv],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=subprocess_env(),
    )
    assert proc.stdout is not None
    for line in proc.stdout:  # interrupt during the second epoch, after a checkpoint
        if line.startswith("epoch 1/200"):
            break
    time.sleep(0.2)
    os.kill(proc.pid, signal.SIGINT)
    _, err = proc.communicate(timeout=120)
    assert proc.returncode == 130, err
    lines = err.strip().splitlines()
    assert lines[-2] == "cnnlab: interrupted; continue from the last checkpoint with:", err
    words = shlex.split(lines[-1])
    assert words[:3] == ["cnnlab", "train", "tinynet"] and words[-1] == "--resume"
    # exactly the settings of the run: --resume accepts them (it refuses any that differ)
    config, given = parse(words[2:])
    assert given >= {"seed", "epochs", "limit_train"} and config.epochs == 200
    assert (config.out, config.seed) == (str(out), 5)
