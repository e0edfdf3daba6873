"""Training, checkpoints, eval and predict: configuration, recipes, files on disk, refusals.

A tiny registered CNN (``tinynet``: conv, batch norm, dropout) keeps the end-to-end runs to a few
seconds on a 2-core CPU; the exact-resume test with SIGKILL is in ``test_train_resume.py``.
"""

from __future__ import annotations

import argparse
import itertools
import json
import math
import pickle
import random
import struct
from pathlib import Path

import numpy as np
import pytest
import torch
from safetensors.torch import save_file

from cnnlab.cli import main
from cnnlab.errors import CheckpointError, ConfigError, TrainingError
from cnnlab.train import checkpoint as ckpt
from cnnlab.train.config import TrainConfig, add_config_arguments, config_from_args, differences
from cnnlab.train.inputs import input_size_for, split_train_val
from cnnlab.train.metrics import Tally
from cnnlab.train.recipes import paper_recipe, recipe_settings, resolve

# Registered in-process here and in the subprocesses of the resume test (same source, once).
TINY_MODEL = '''
import os, time
import torch
from torch import nn
from cnnlab.registry import _REGISTRY, register_model

# Seconds each training forward sleeps: lets a test kill a run at a chosen moment on any machine
# speed (sleeping changes no number, so bitwise comparisons still hold).
_STEP_DELAY = float(os.environ.get("TINYNET_STEP_DELAY", "0"))

class _NaNAfter(nn.Module):
    """Identity until `steps` training forwards have run, then NaN (for the non-finite test)."""
    def __init__(self, steps):
        super().__init__()
        self.steps, self.calls = steps, 0
    def forward(self, x):
        self.calls += self.training
        if self.training and _STEP_DELAY:
            time.sleep(_STEP_DELAY)
        return x * float("nan") if self.steps and self.calls > self.steps else x

if "tinynet" not in _REGISTRY:
    @register_model(family="test", paper="cnnlab tests", input_size=(1, 28, 28),
                    min_input_size=(8, 8), num_params=1_450, num_classes=10)
    def tinynet(*, num_classes, in_channels, dropout=0.1, nan_after=0):
        """A tiny CNN for tests: conv-BN-ReLU-pool, conv-ReLU, global pool, dropout, linear."""
        return nn.Sequential(
            nn.Conv2d(in_channels, 8, 3, padding=1), nn.BatchNorm2d(8), nn.ReLU(),
            nn.MaxPool2d(2), nn.Conv2d(8, 16, 3, padding=1), nn.ReLU(),
            nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Dropout(dropout),
            nn.Linear(16, num_classes), _NaNAfter(nan_after))
'''
TINY_RUNNER = (
    TINY_MODEL + "\nimport sys\nfrom cnnlab.cli import main\nsys.exit(main(sys.argv[1:]))\n"
)
exec(TINY_MODEL)


def _has_fashion_mnist() -> bool:
    try:
        from cnnlab.data import find_dataset

        return find_dataset("fashion-mnist", "train") is not None
    except Exception:
        return False


needs_fashion_mnist = pytest.mark.skipif(
    not _has_fashion_mnist(), reason="Fashion-MNIST not installed (cnnlab data fetch fashion-mnist)"
)

SMALL = [
    "--limit-train",
    "512",
    "--val-size",
    "256",
    "--limit-test",
    "300",
    "--epochs",
    "1",
    "--batch-size",
    "64",
    "--no-progress",
    "--device",
    "cpu",
    "--threads",
    "1",
]


def _parse(argv: list[str]) -> tuple[TrainConfig, set[str]]:
    parser = argparse.ArgumentParser()
    add_config_arguments(parser)
    return config_from_args(parser.parse_args(argv))


# --- configuration and recipes ----------------------------------------------------------------


def test_every_config_field_is_a_flag_with_help() -> None:
    parser = argparse.ArgumentParser()
    add_config_arguments(parser)
    text = parser.format_help()
    import dataclasses

    for f in dataclasses.fields(TrainConfig):
        flag = f.name.upper() if f.metadata.get("positional") else "--" + f.name.replace("_", "-")
        assert flag in text, flag
        assert f.metadata["help"], f.name


def test_flags_parse_into_config_and_record_what_was_given() -> None:
    config, given = _parse(["resnet20", "--lr", "0.5", "--no-nesterov", "--epochs", "3"])
    assert (config.model, config.lr, config.nesterov, config.epochs) == ("resnet20", 0.5, False, 3)
    assert given == {"model", "lr", "nesterov", "epochs"}
    assert config.batch_size is None  # left to the recipe
    with pytest.raises(ConfigError, match="--epochs must be at least 1"):
        _parse(["--epochs", "0"])
    with pytest.raises(ConfigError, match="label-smoothing"):
        _parse(["--label-smoothing", "1.5"])


def test_paper_recipes_follow_the_lectures() -> None:
    alexnet, vgg, resnet = paper_recipe("alexnet"), paper_recipe("vgg"), paper_recipe("resnet")
    for r in (alexnet, vgg):  # seeds/001 slide 109
        assert (r["optimizer"], r["momentum"], r["lr"], r["weight_decay"], r["batch_size"]) == (
            "sgd",
            0.9,
            0.01,
            5e-4,
            128,
        )
        assert r["schedule"] == "plateau" and r["lr_decay"] == pytest.approx(0.1)
    # slide 122, with the paper's weight decay (the slide's 1e-5 is a typo for 1e-4)
    assert (resnet["lr"], resnet["weight_decay"], resnet["batch_size"]) == (0.1, 1e-4, 256)
    assert paper_recipe("resnext") == resnet  # variants inherit their family's recipe
    assert paper_recipe("googlenet")["aux_loss_weight"] == 0.3
    assert paper_recipe("no-such-family") == paper_recipe("lenet")
    assert recipe_settings("fast", "vgg")["schedule"] == "onecycle"


def test_resolve_keeps_explicit_settings_and_drops_flips_for_digits() -> None:
    config, given = _parse(["tinynet", "--recipe", "paper", "--lr", "0.3"])
    resolved, notes = resolve(config, given)
    assert resolved.lr == 0.3 and resolved.weight_decay == 5e-4 and resolved.epochs == 30
    assert all(getattr(resolved, f) is not None for f in ("batch_size", "schedule", "augment"))
    config, given = _parse(["tinynet", "--recipe", "fast", "--data", "mnist"])
    resolved, notes = resolve(config, given)
    assert "flip" not in resolved.augment and "mirrored digit" in notes[0]


def test_resume_differences_ignore_where_and_how_it_runs() -> None:
    a = TrainConfig(model="tinynet", lr=0.1, out="x", threads=1)
    b = TrainConfig(model="tinynet", lr=0.2, out="y", threads=2, progress=False)
    assert differences(a, b) == ["lr: 0.1 in the run, 0.2 now"]


def test_scheduled_lr_shapes() -> None:
    from cnnlab.train.loop import scheduled_lr

    cfg = TrainConfig(lr=1.0, schedule="onecycle", warmup=0.25, epochs=4)
    lrs = [scheduled_lr(cfg, 0, s, 100) for s in range(100)]
    assert max(lrs) == pytest.approx(1.0) and lrs.index(max(lrs)) == 24
    assert lrs[-1] == 0.0 and all(a <= b for a, b in itertools.pairwise(lrs[:25]))
    assert all(a >= b for a, b in itertools.pairwise(lrs[24:]))
    step = TrainConfig(lr=1.0, schedule="step", lr_decay=0.96, step_epochs=8)
    assert scheduled_lr(step, 7, 0, 1) == 1.0 and scheduled_lr(step, 16, 0, 1) == 0.96**2
    multi = TrainConfig(lr=1.0, schedule="multistep", epochs=10)
    assert [round(scheduled_lr(multi, e, 0, 1), 6) for e in (4, 5, 7, 8)] == [1, 0.1, 0.1, 0.01]


def test_input_size_for_small_and_fixed_models() -> None:
    from cnnlab.registry import ModelInfo

    free = ModelInfo("m", "f", "p", (3, 224, 224), (63, 63), 0)
    size, note = input_size_for(free, (28, 28), None)
    assert size == (63, 63) and "5.06x the pixels" in note
    assert input_size_for(free, (64, 64), None) == ((64, 64), None)
    fixed = ModelInfo("m", "f", "p", (1, 32, 32), (32, 32), 0, fixed_input=True)
    assert input_size_for(fixed, (28, 28), None)[0] == (32, 32)
    with pytest.raises(ConfigError, match="takes exactly 32x32"):
        input_size_for(fixed, (28, 28), 40)
    with pytest.raises(ConfigError, match="below m's minimum"):
        input_size_for(free, (28, 28), 32)


def test_validation_split_is_fixed_by_seed_and_disjoint() -> None:
    images = torch.arange(100, dtype=torch.uint8).view(100, 1, 1, 1)
    labels = torch.arange(100)
    tr, trl, va, val = split_train_val(images, labels, 20, seed=3)
    assert len(va) == 20 and len(tr) == 80
    assert set(trl.tolist()).isdisjoint(val.tolist())
    assert torch.equal(split_train_val(images, labels, 20, seed=3)[3], val)
    assert not torch.equal(split_train_val(images, labels, 20, seed=4)[3], val)
    with pytest.raises(ConfigError, match="--val-size"):
        split_train_val(images, labels, 100, seed=0)


# --- metrics ----------------------------------------------------------------------------------


def test_tally_matches_an_independent_computation() -> None:
    g = torch.Generator().manual_seed(0)
    logits = torch.randn(257, 7, generator=g)
    labels = torch.randint(0, 7, (257,), generator=g)
    tally = Tally.zeros(7)
    for s in (slice(0, 100), slice(100, 257)):  # two batches add up to one pass
        tally.add(logits[s], labels[s])
    r = tally.result()
    x, y = logits.numpy().astype(np.float64), labels.numpy()
    logp = x - np.log(np.exp(x).sum(1, keepdims=True))
    assert r.loss == pytest.approx(-logp[np.arange(257), y].mean(), rel=1e-5)
    pred = x.argmax(1)
    assert r.top1 == pytest.approx((pred == y).mean())
    top5 = np.argsort(-x, axis=1)[:, :5]
    assert r.top5 == pytest.approx(np.mean([y[i] in top5[i] for i in range(257)]))
    conf = np.zeros((7, 7), dtype=int)
    np.add.at(conf, (y, pred), 1)
    assert r.confusion == conf.tolist()
    for c in range(7):
        assert r.per_class[c] == pytest.approx(conf[c, c] / conf[c].sum())


# --- checkpoint files -------------------------------------------------------------------------


def test_optimizer_state_round_trips_through_safetensors_and_json(tmp_path: Path) -> None:
    for make in (
        lambda p: torch.optim.SGD(p, lr=0.1, momentum=0.9),
        lambda p: torch.optim.AdamW(p, lr=0.01),
    ):
        model = torch.nn.Linear(3, 2)
        opt = make(model.parameters())
        for _ in range(2):
            model(torch.randn(4, 3)).sum().backward()
            opt.step()
        tensors, data = ckpt.optimizer_state_to_files(opt)
        save_file(tensors, str(tmp_path / "o.safetensors"))
        data = json.loads(json.dumps(data))
        back = ckpt.read_tensors(tmp_path / "o.safetensors")
        fresh = make(model.parameters())
        fresh.load_state_dict(ckpt.optimizer_state_from_files(back, data))
        a, b = opt.state_dict(), fresh.state_dict()
        assert a["param_groups"] == b["param_groups"]
        for i in a["state"]:
            for k, v in a["state"][i].items():
                assert torch.equal(v, b["state"][i][k])


def test_rng_states_round_trip() -> None:
    tensors, scalars = ckpt.capture_rng()
    scalars = json.loads(json.dumps(scalars))
    expected = (torch.rand(3), np.random.rand(3), random.random())
    torch.rand(5), np.random.rand(5), random.random()
    ckpt.restore_rng(tensors, scalars)
    assert torch.equal(torch.rand(3), expected[0])
    assert np.array_equal(np.random.rand(3), expected[1])
    assert random.random() == expected[2]
    assert tensors["torch"].dtype == torch.uint8


def _write_pair(directory: Path, step: int) -> Path:
    return ckpt.save_checkpoint(
        directory,
        step,
        {"model.w": torch.full((3,), float(step))},
        {"epoch": 0},
        {"model": "tinynet"},
    )


def test_checkpoints_keep_two_and_fall_back_past_damage(tmp_path: Path) -> None:
    for step in (5, 10, 15):
        _write_pair(tmp_path, step)
    assert [p.name for p in ckpt.list_checkpoints(tmp_path)] == [
        "step-00000010.json",
        "step-00000015.json",
    ]
    leftover = tmp_path / ".step-00000020.safetensors.tmp"  # a write the crash interrupted
    leftover.write_bytes(b"half a write")
    newest = tmp_path / "step-00000015.safetensors"
    newest.write_bytes(newest.read_bytes()[:-4])  # truncated
    latest, rejected = ckpt.latest_valid_checkpoint(tmp_path)
    assert latest.name == "step-00000010.json" and "step-00000015" in rejected[0]
    assert ckpt.remove_temporaries(tmp_path) == [leftover] and not leftover.exists()
    (tmp_path / "step-00000010.json").write_text("{not json")
    assert ckpt.latest_valid_checkpoint(tmp_path)[0] is None
    _write_pair(tmp_path, 30)
    record = json.loads((tmp_path / "step-00000030.json").read_text())
    record["step"] = 31
    (tmp_path / "step-00000030.json").write_text(json.dumps(record))
    with pytest.raises(CheckpointError, match="records step 31, not 30"):
        ckpt.validate_checkpoint(tmp_path / "step-00000030.json")


class _Payload:
    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self) -> tuple:
        return (Path.touch, (self.marker,))


@pytest.mark.parametrize(
    "kind", ["pickle", "pickle-in-dir", "torch.save", "truncated", "no-metadata", "garbage"]
)
def test_load_trained_refuses_files_cnnlab_did_not_write(
    tmp_path: Path, kind: str, capsys: pytest.CaptureFixture[str]
) -> None:
    marker = tmp_path / "payload-ran"
    run = tmp_path / "run"
    run.mkdir()
    target = run / "model.safetensors"
    if kind == "pickle":
        target.write_bytes(pickle.dumps(_Payload(marker)))
    elif kind == "torch.save":
        torch.save({"w": torch.zeros(2), "p": _Payload(marker)}, target)
    elif kind == "truncated":
        save_file({"w": torch.zeros(100)}, str(target), metadata={"cnnlab": "{}"})
        target.write_bytes(target.read_bytes()[:-10])
    elif kind == "no-metadata":
        save_file({"w": torch.zeros(2)}, str(target))
    elif kind == "pickle-in-dir":
        target = run / "model.pt"
        target.write_bytes(pickle.dumps(_Payload(marker)))
    else:
        target.write_bytes(struct.pack("<Q", 2**40) + b"x" * 64)
    assert main(["eval", str(run)]) == 2
    err = capsys.readouterr().err
    assert err.startswith("cnnlab: error: ") and err.count("\n") == 1, err
    assert "Traceback" not in err
    assert not marker.exists(), "the payload ran"
    if kind.startswith("pickle"):
        assert "pickle" in err
    with pytest.raises(CheckpointError):
        ckpt.load_trained(target)
    assert not marker.exists(), "the payload ran"


def test_load_trained_refuses_weights_of_another_architecture(tmp_path: Path) -> None:
    from cnnlab.registry import create_model

    model = create_model("tinynet", num_classes=10, in_channels=1)
    meta = {
        "model": "tinynet",
        "num_classes": 5,
        "in_channels": 1,
        "input_size": [1, 28, 28],
        "classes": list("abcde"),
        "mean": [0.5],
        "std": [0.5],
    }
    ckpt.save_model(tmp_path / "m.safetensors", model, meta)
    with pytest.raises(CheckpointError, match="do not fit tinynet"):
        ckpt.load_trained(tmp_path / "m.safetensors")
    ckpt.save_model(tmp_path / "m.safetensors", model, {**meta, "model": "nonet"})
    with pytest.raises(CheckpointError, match="unknown model 'nonet'"):
        ckpt.load_trained(tmp_path / "m.safetensors")
    partial = {k: v for k, v in meta.items() if k != "classes"}
    ckpt.save_model(tmp_path / "m.safetensors", model, {**partial, "num_classes": 10})
    with pytest.raises(CheckpointError, match="lacks classes"):
        ckpt.load_trained(tmp_path / "m.safetensors")


# --- end to end (tiny model, small subset) ----------------------------------------------------


@pytest.fixture(scope="module")
def trained_run(tmp_path_factory: pytest.TempPathFactory) -> Path:
    if not _has_fashion_mnist():
        pytest.skip("Fashion-MNIST not installed")
    out = tmp_path_factory.mktemp("train") / "run"
    assert main(["train", "tinynet", *SMALL, "--epochs", "2", "--out", str(out)]) == 0
    return out


def test_run_directory_holds_everything(trained_run: Path) -> None:
    names = {p.name for p in trained_run.iterdir()}
    assert {
        "config.json",
        "metrics.jsonl",
        "model.safetensors",
        "results.json",
        "checkpoints",
        "figures",
    } <= names
    config = json.loads((trained_run / "config.json").read_text())
    assert config["model"] == "tinynet" and config["recipe"] == "fast" and config["lr"] > 0
    lines = [json.loads(x) for x in (trained_run / "metrics.jsonl").read_text().splitlines()]
    assert [x["epoch"] for x in lines] == [1, 2] and lines[1]["step"] == 2 * (512 // 64)
    for x in lines:
        assert set(x) == {
            "epoch",
            "step",
            "train_loss",
            "train_acc",
            "val_loss",
            "val_acc",
            "lr",
            "seconds",
            "images_per_s",
        }
        assert all(math.isfinite(v) for v in x.values())
    assert sorted(p.name for p in (trained_run / "figures").iterdir()) == [
        "accuracy.png",
        "confusion.png",
        "loss.png",
    ]
    for png in (trained_run / "figures").iterdir():
        assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    meta = ckpt.read_header(trained_run / "model.safetensors")
    assert meta["classes"][0] == "T-shirt/top" and meta["input_size"] == [1, 28, 28]
    assert len(list((trained_run / "checkpoints").glob("*.json"))) == 2


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


def test_predict_png_and_jpeg(
    trained_run: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from PIL import Image

    from cnnlab.data import load_dataset

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
    from cnnlab.train.inputs import make_prepare

    model, meta = ckpt.load_trained(trained_run)
    prepare = make_prepare((28, 28), meta["mean"], meta["std"], torch.device("cpu"))
    with torch.no_grad():
        x = prepare(images[:1])
        logits = model(x)
        if meta.get("tta"):  # predict evaluates like the run's final report
            logits = (logits + model(x.flip(-1))) / 2
        expected = int(logits.argmax())
    assert out[0]["predictions"][0]["index"] == expected
    assert main(argv) == 0
    assert "a.png" in capsys.readouterr().out


def test_existing_run_needs_resume_and_matching_config(trained_run: Path) -> None:
    from cnnlab.train.loop import train

    config, given = _parse(["tinynet", *SMALL, "--epochs", "2", "--out", str(trained_run)])
    with pytest.raises(ConfigError, match="already holds a run: pass --resume"):
        train(config, given)
    config, given = _parse(
        [
            "tinynet",
            *SMALL,
            "--epochs",
            "2",
            "--out",
            str(trained_run),
            "--resume",
            "--lr",
            "0.01",
            "--seed",
            "3",
        ]
    )
    with pytest.raises(
        ConfigError,
        match=r"config differs \(lr: [0-9.]+ in the run, 0.01 now; seed: 0 in the run, 3 now\)",
    ):
        train(config, given)


@needs_fashion_mnist
def test_non_finite_loss_stops_with_the_step_and_keeps_checkpoints(tmp_path: Path) -> None:
    from cnnlab.train.loop import train

    config, given = _parse(
        ["tinynet", *SMALL, "--checkpoint-every", "2", "--out", str(tmp_path / "run")]
    )
    # nan_after=5: the 6th training forward returns NaN logits.
    import cnnlab.train.loop as loop

    original = loop.model_kwargs_for
    loop.model_kwargs_for = lambda c: {"nan_after": 5}
    try:
        with pytest.raises(TrainingError, match=r"at step 6 \(epoch 1\).*lower --lr"):
            train(config, given)
    finally:
        loop.model_kwargs_for = original
    kept = [p.name for p in ckpt.list_checkpoints(tmp_path / "run" / "checkpoints")]
    assert kept == ["step-00000002.json", "step-00000004.json"]
    assert not (tmp_path / "run" / "model.safetensors").exists()


def test_auxiliary_losses_are_weighted_like_googlenet() -> None:
    from collections import namedtuple

    from cnnlab.train.loop import loss_and_logits

    out_type = namedtuple("Out", "logits aux_logits2 aux_logits1")
    g = torch.Generator().manual_seed(1)
    main_, aux2, aux1 = (torch.randn(6, 4, generator=g) for _ in range(3))
    labels = torch.tensor([0, 1, 2, 3, 0, 1])
    cfg = TrainConfig(aux_loss_weight=0.3, label_smoothing=0.0)
    loss, logits = loss_and_logits(out_type(main_, aux2, aux1), labels, cfg)
    ce = torch.nn.functional.cross_entropy
    expected = ce(main_, labels) + 0.3 * (ce(aux2, labels) + ce(aux1, labels))
    assert torch.allclose(loss, expected) and logits is main_
    loss, _ = loss_and_logits(out_type(main_, None, None), labels, cfg)  # aux_logits=False
    assert torch.allclose(loss, ce(main_, labels))
