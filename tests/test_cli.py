"""The ``cnnlab`` command's contract: help, exit codes, one-line errors; train, eval and predict.

Every command prints help and exits 0 on ``--help``; a usage error exits 2 (argparse); a
:class:`~cnnlab.errors.CnnlabError` becomes exactly one ``cnnlab: error: ...`` line on stderr,
no traceback, and exit status 2. The library behind each command is tested in its own module
(``test_train_*.py``, ``test_checkpoint.py``); here only what the command adds.
"""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Iterator
from pathlib import Path

import pytest
import torch

import helpers.models  # noqa: F401  (registers tinynet)
from cnnlab.cli import COMMANDS, main
from cnnlab.train import checkpoint as ckpt
from cnnlab.train.config import TrainConfig
from helpers.datasets import needs_fashion_mnist
from helpers.foreign_files import KINDS, plant


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
    last = ckpt.list_checkpoints(trained_run / "checkpoints")[-1]
    assert main(["eval", str(last), "--limit", "300", "--format", "json"]) == 0
    assert json.loads(capsys.readouterr().out)["top1"] == pytest.approx(out["top1"])


@needs_fashion_mnist
def test_predict_png_and_jpeg(
    trained_run: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from PIL import Image

    from cnnlab.data import load_dataset
    from cnnlab.train.inputs import make_prepare

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
    trained = ckpt.load_trained(trained_run)
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
