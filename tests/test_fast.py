"""The fast default model and recipe: documented size, learning, evaluation options, benchmarks.

The figures checked here are the ones ``src/cnnlab/models/fast.py`` documents (its design table)
and ``docs/performance.md`` reports.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
import torch

import cnnlab
from cnnlab.run.config import TrainConfig
from cnnlab.run.metrics import evaluate
from cnnlab.run.recipes import FAST_DEFAULT_MODEL, resolve
from cnnlab.train import RunResult, fit

ROOT = Path(__file__).resolve().parents[1]

# src/cnnlab/models/fast.py, design table: multiply-adds of conv + linear layers and parameters.
FASTNET_MACS = 7_665_600
FASTNET_PARAMS = 261_466
FASTNET_CONV_MACS = {  # per layer, the table's rows (a residual pair is two equal convolutions)
    "stages.0.0": 75_264,  # 4x4 at stride 2: 14x14 outputs
    "stages.1.0": 2_032_128,
    "stages.1.4.conv1.0": 1_016_064,
    "stages.1.4.conv2.0": 1_016_064,
    "stages.2.0": 2_032_128,
    "stages.2.4.conv1.0": 746_496,
    "stages.2.4.conv2.0": 746_496,
    "fc": 960,
}


def test_fastnet_is_the_default_of_cnnlab_train() -> None:
    assert FAST_DEFAULT_MODEL == "fastnet"
    config, _ = resolve(TrainConfig())
    assert config.model == "fastnet"
    assert config.recipe == "fast"
    assert (config.precision, config.channels_last, config.tta) == ("bf16", True, True)


def test_fastnet_has_the_documented_size() -> None:
    model = cnnlab.create_model("fastnet")
    assert sum(p.numel() for p in model.parameters()) == FASTNET_PARAMS
    assert cnnlab.model_info("fastnet").num_params == FASTNET_PARAMS
    report = cnnlab.analyze("fastnet")
    counted = {r.name: r.macs for r in report.rows if r.kind in ("conv", "linear")}
    assert counted == FASTNET_CONV_MACS
    assert sum(counted.values()) == FASTNET_MACS
    # Independent count from the layer shapes: out pixels x out channels x in channels x k x k.
    by_hand = sum(
        h * w * cout * cin * k * k
        for h, w, cin, cout, k in ((14, 14, 1, 24, 4), (14, 14, 24, 48, 3), (7, 7, 48, 96, 3))
    ) + sum(2 * h * w * c * c * 9 for h, w, c in ((7, 7, 48), (3, 3, 96)))
    assert by_hand + 96 * 10 == FASTNET_MACS


def test_fastnet_shapes_and_minimum_input() -> None:
    model = cnnlab.create_model("fastnet").eval()
    assert model(torch.randn(3, 1, 28, 28)).shape == (3, 10)
    assert model(torch.randn(1, 1, 8, 8)).shape == (1, 10)  # 8 -> 4 -> 2 -> 1
    rgb = cnnlab.create_model("fastnet", num_classes=7, in_channels=3).eval()
    assert rgb(torch.randn(2, 3, 32, 32)).shape == (2, 7)
    with pytest.raises(cnnlab.errors.InputSizeError, match="at least 1x8x8"):
        model(torch.randn(1, 1, 7, 7))


def test_fastnet_gradients_reach_every_parameter() -> None:
    model = cnnlab.create_model("fastnet")
    model(torch.randn(4, 1, 28, 28)).logsumexp(1).sum().backward()
    assert all(p.grad is not None and p.grad.abs().sum() > 0 for p in model.parameters())


def test_flip_tta_averages_the_logits_of_the_mirror() -> None:
    model = cnnlab.create_model("fastnet").eval()
    images = torch.randint(0, 256, (6, 1, 28, 28), dtype=torch.uint8)
    labels = torch.arange(6) % 10

    def prepare(u8: torch.Tensor) -> torch.Tensor:
        return u8.float() / 255

    with torch.no_grad():
        x = prepare(images)
        mean_logits = (model(x) + model(x.flip(-1))) / 2
    plain = evaluate(model, images, labels, prepare, 10, batch_size=4)
    tta = evaluate(model, images, labels, prepare, 10, batch_size=4, tta=True)
    expected = torch.nn.functional.cross_entropy(mean_logits, labels).item()
    assert tta.loss == pytest.approx(expected, rel=1e-5)
    assert tta.loss != pytest.approx(plain.loss)  # the mirror really was evaluated
    predicted = mean_logits.argmax(1).tolist()
    assert sum(tta.confusion[i][j] for i, j in zip(labels.tolist(), predicted, strict=True)) == 6


def test_fast_presets_are_the_fast_recipe_with_their_changes() -> None:
    """``--recipe fast94`` is the fast recipe trained longer (with its own changes), for every
    family, and a CLI choice."""
    import dataclasses

    from cnnlab.run.recipes import FAST_PRESETS

    choices = next(f for f in dataclasses.fields(TrainConfig) if f.name == "recipe")
    assert set(FAST_PRESETS) <= set(choices.metadata["choices"])
    changes = FAST_PRESETS["fast94"]
    for model in ("fastnet", "lenet5", "resnet18"):
        fast = resolve(TrainConfig(model=model))[0]
        long = resolve(TrainConfig(model=model, recipe="fast94"))[0]
        assert long.epochs == changes["epochs"] > fast.epochs
        assert {k: getattr(long, k) for k in changes} == changes
        undone = {k: getattr(fast, k) for k in changes}
        assert dataclasses.replace(long, recipe="fast", **undone) == fast
    with pytest.raises(cnnlab.errors.ConfigError, match="fast94"):
        resolve(TrainConfig(recipe="fast95"))


def test_no_flip_tta_for_digits() -> None:
    config, _ = resolve(TrainConfig(data="mnist"))
    assert config.tta is False
    assert resolve(TrainConfig(data="mnist", tta=True), {"tta"})[0].tta is True
    assert resolve(TrainConfig(recipe="paper"))[0].tta is False


def _small_run(tmp_path: Path, name: str, **overrides: object) -> RunResult:
    config = TrainConfig(
        recipe="fast",
        epochs=3,
        batch_size=32,
        limit_train=512,
        limit_test=256,
        val_size=256,
        # The recipe's peak lr 0.2 is tuned for batch 256; at batch 32 it diverges on some CPUs'
        # bf16 kernels (loss 6.5 in the first epoch on an AMD EPYC): scale it with the batch.
        lr=0.2 * 32 / 256,
        threads=1,
        progress=False,
        out=str(tmp_path / name),
        **overrides,
    )
    return fit(config, quiet=True)


@pytest.mark.slow
def test_fast_recipe_learns_and_the_test_curve_changes_nothing(tmp_path: Path) -> None:
    """Loss goes down; asking for the per-epoch test curve leaves the trained weights bitwise equal.

    The second half is the guarantee the time-to-accuracy benchmark rests on: the test set is only
    looked at, never used.
    """
    plain = _small_run(tmp_path, "plain")
    curve = _small_run(tmp_path, "curve", test_every_epoch=True)
    losses = [h["train_loss"] for h in plain.history]
    # The first epoch's mean includes the warm-up's large steps; the last one must be well
    # below chance (ln 10 = 2.30).
    assert losses[-1] < losses[0] and losses[-1] < 2.0
    assert plain.test.top1 > 0.3  # 10 classes: chance is 0.1 (seeded run: 0.40 measured)
    assert all("test_acc" not in h for h in plain.history)
    assert all(0 <= h["test_acc"] <= 1 and h["test_seconds"] > 0 for h in curve.history)
    assert curve.history[-1]["test_acc"] == pytest.approx(curve.test.top1)
    from safetensors.torch import load_file

    a = load_file(str(plain.run_dir / "model.safetensors"))
    b = load_file(str(curve.run_dir / "model.safetensors"))
    assert a.keys() == b.keys()
    assert all(torch.equal(a[k], b[k]) for k in a)


def _bench(script: str, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, str(ROOT / "benchmarks" / script), *args],
        capture_output=True,
        text=True,
        timeout=600,
        cwd=ROOT,
    )


@pytest.mark.slow
def test_time_to_accuracy_smoke(tmp_path: Path) -> None:
    out = tmp_path / "tta.json"
    done = _bench("time_to_accuracy.py", "--smoke", "--seed", "3", "--json", str(out))
    assert done.returncode == 0, done.stdout + done.stderr
    result = json.loads(out.read_text())
    (run,) = result["runs"]
    assert run["plain_command"].startswith("cnnlab train --recipe fast --seed 3")
    assert run["seconds_to_target"] is None or run["final_accuracy"] >= 0.93
    assert 0 < run["wall_seconds"] <= run["wall_seconds_with_curve"]
    assert run["curve"][-1]["test_acc"] == pytest.approx(run["final_accuracy"])
    table = _bench("time_to_accuracy.py", "--markdown", str(out))
    assert table.returncode == 0 and "| 3 |" in table.stdout


@pytest.mark.slow
def test_throughput_smoke(tmp_path: Path) -> None:
    out = tmp_path / "throughput.json"
    done = _bench("throughput.py", "--smoke", "--threads", "1", "--json", str(out))
    assert done.returncode == 0, done.stdout + done.stderr
    result = json.loads(out.read_text())
    assert [r["model"] for r in result["models"]] == ["lenet5", "resnet20"]
    for r in result["models"]:
        ratio = r["train_cnnlab"] / r["train_tutorial"]
        assert r["train_ratio"] == pytest.approx(ratio, abs=0.006)  # rounded to 2 decimals
        assert min(r["train_tutorial"], r["train_cnnlab"], r["infer_cnnlab"]) > 0
    assert {g["pipeline"] for g in result["gflops"]} == {"tutorial", "cnnlab"}
    assert result["peak_gflops"]["fp32"] > 0 and result["lenet5_epoch"]["speedup"] > 0
    table = _bench("throughput.py", "--markdown", str(out))
    assert table.returncode == 0 and "| lenet5 | 28x28 |" in table.stdout


@pytest.mark.slow
def test_step_profile_smoke(tmp_path: Path) -> None:
    """The profile's shares and work rate are consistent with the analyzer and with each other."""
    out = tmp_path / "profile.json"
    done = _bench("step_profile.py", "--batch", "32", "--steps", "3", "--json", str(out))
    assert done.returncode == 0, done.stdout + done.stderr
    result = json.loads(out.read_text())
    assert result["macs_per_image"] == FASTNET_MACS
    assert 0 < result["matrix_share"] < 1
    assert any(op["matrix"] for op in result["top_ops"])
    rate, work = result["images_per_s"], result["useful_gflop_per_s"]
    assert work == pytest.approx(
        rate * 3 * 2 * FASTNET_MACS / 1e9, rel=0.01, abs=0.05
    )  # 0.1 GFLOP/s


@pytest.mark.slow
def test_step_profile_widths_profile_a_fastnet_of_those_widths(tmp_path: Path) -> None:
    """``--widths`` of fastnet's own widths is fastnet; wider ones have the analyzer's MACs."""
    from cnnlab.models.fast import FASTNET_RESIDUAL, FastNet

    for widths, expected in (
        ((24, 48, 96), FASTNET_MACS),
        ((32, 64, 128), None),
    ):
        out = tmp_path / f"profile{widths[0]}.json"
        args = ("--batch", "16", "--steps", "2", "--widths", *map(str, widths))
        done = _bench("step_profile.py", *args, "--json", str(out))
        assert done.returncode == 0, done.stdout + done.stderr
        result = json.loads(out.read_text())
        if expected is None:
            net = FastNet(widths, FASTNET_RESIDUAL)
            report = cnnlab.analyze(net, input_size=(1, 28, 28), count="conv-linear")
            expected = report.totals["macs"]
            assert expected > FASTNET_MACS
        assert result["widths"] == list(widths) and result["macs_per_image"] == expected


def test_throughput_gpu_measurement_runs_on_any_device(monkeypatch: pytest.MonkeyPatch) -> None:
    """What ``throughput.py --device cuda`` runs works on the CPU too (no GPU in CI), and its
    table lists each case once with both loops and all four formats."""
    import argparse

    monkeypatch.syspath_prepend(str(ROOT / "benchmarks"))
    import throughput

    args = argparse.Namespace(device="cpu", smoke=True, only=["lenet5"], threads=1)
    with torch.random.fork_rng(devices=[]):  # it seeds the global RNG for each model it builds
        result = throughput.run_device(args, {"machine": {"torch": torch.__version__}})
    (row,) = result["training"]
    (formats,) = result["formats"]
    assert row["model"] == formats["model"] == "lenet5"
    # rounded to 2 decimals in the row
    assert row["plain_ratio"] == pytest.approx(row["train_cnnlab"] / row["train_plain"], abs=0.006)
    assert set(formats["rates"]) == {
        "fp32 nchw",
        "fp32 channels_last",
        "bf16 nchw",
        "bf16 channels_last",
    }
    table = throughput.cuda_markdown(result)
    assert table.count("| lenet5 | 28x28 |") == 1 and "matmul peak" in table


@pytest.mark.skipif(torch.cuda.is_available(), reason="checks the error without a GPU")
def test_throughput_device_cuda_without_a_gpu_is_a_one_line_error() -> None:
    done = _bench("throughput.py", "--device", "cuda", "--smoke")
    assert done.returncode == 2
    assert "no CUDA device is available" in done.stderr.strip().splitlines()[-1]
    assert "Traceback" not in done.stderr
