"""The experiments framework (``cnnlab experiment``) and the training experiments' smoke tiers.

The framework is tested on ``tiny-test`` (``helpers/tiny_experiment.py``: two tinynet runs, a
measurement, a figure): results and summary written, finished runs and measurements reused on
``--resume``, a non-empty folder refused without it, and an experiment killed with SIGKILL in its
second run resumed to the same weights, bit for bit, as one that ran through. The smoke tiers of
``degradation``, ``batchnorm``, ``dropout`` and ``augmentation`` run once per module, and their
verdicts are checked against their own numbers.
"""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

import helpers.tiny_experiment as tiny
from cnnlab.cli import main
from cnnlab.errors import CnnlabError, ConfigError
from cnnlab.experiments import (
    EXPERIMENTS,
    experiment_names,
    get_experiment,
    list_experiments,
    run_experiment,
)
from cnnlab.experiments.page import find_results, write_page
from helpers import subprocess_env
from helpers.datasets import needs_fashion_mnist
from helpers.runs import bitwise_differences, weights

pytestmark = needs_fashion_mnist

MINE = ("degradation", "batchnorm", "dropout", "augmentation")
RESULT_KEYS = {
    "experiment", "title", "tier", "data", "seed", "claim", "source", "settings", "measured",
    "held", "verdict", "departures", "paper", "figures", "runs", "seconds", "machine", "cnnlab",
}  # fmt: skip


@pytest.fixture(scope="module")
def smoke(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """The smoke tier of each experiment of this module's, run once (one thread, quiet)."""
    root = tmp_path_factory.mktemp("experiments")
    for name in MINE:
        run_experiment(name, tier="smoke", out=root / name, threads=1, quiet=True)
    return {name: root / name for name in MINE}


def _results(folder: Path) -> dict:
    return json.loads((folder / "results.json").read_text())


# --- the registry and the command line -------------------------------------------------------


def test_registry_names_every_experiment_and_refuses_unknown_ones(capsys) -> None:
    names = [name for name, _ in EXPERIMENTS]
    assert names[:1] == ["degradation"] and set(MINE) <= set(experiment_names())
    for experiment in list_experiments():
        if experiment.name == tiny.NAME:  # registered by the tests, without a full tier
            continue
        assert experiment.name in experiment_names()
        assert {"smoke", "quick", "full"} <= set(experiment.tiers), experiment.name
        for tier, settings in experiment.tiers.items():
            assert settings["expected_s"] > 0, (experiment.name, tier)
        assert experiment.jobs(experiment.tiers["smoke"]) >= 1
    with pytest.raises(ConfigError, match=r"unknown experiment 'degradaton'.*degradation"):
        get_experiment("degradaton")
    assert main(["experiment", "list"]) == 0
    out = capsys.readouterr().out
    assert all(name in out for name in MINE)
    assert main(["experiment", "run", "no-such-thing", "--tier", "smoke"]) == 2
    assert "unknown experiment" in capsys.readouterr().err


def test_quick_tiers_fit_the_budget() -> None:
    # Issue #13: quick = at most 20 minutes on the 2-core machine; these aim far lower.
    for name in MINE:
        assert get_experiment(name).tiers["quick"]["expected_s"] <= 10 * 60, name


# --- the framework on tiny-test ------------------------------------------------------------------


def test_results_summary_and_reuse_on_resume(tmp_path: Path) -> None:
    out = tmp_path / "tiny"
    first = run_experiment(tiny.NAME, tier="smoke", out=out, threads=1, quiet=True)
    results = _results(out)
    assert set(results) >= RESULT_KEYS
    assert results["runs"] == ["first", "second"] and results["tier"] == "smoke"
    assert results["measured"]["pair"] == [1, 2] and results["measured"]["nan"] is None
    assert results["figures"] == [
        {"file": "curve.png", "caption": "training accuracy of the second run"}
    ]
    assert (out / "figures/curve.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert results["notes"] == ["a note"] and results["held"] == first.outcome.held
    summary = (out / "summary.md").read_text()
    for text in ("More epochs do not hurt.", first.outcome.verdict, "a test, not a paper"):
        assert text in summary
    assert "cnnlab experiment run tiny-test --tier smoke" in summary

    # Without --resume a folder that holds an experiment is refused, naming both fixes.
    with pytest.raises(ConfigError, match=r"--resume.*--out"):
        run_experiment(tiny.NAME, tier="smoke", out=out, threads=1, quiet=True)
    # With it, the finished runs and the measurement are reused: nothing is retrained.
    stamps = {p: p.stat().st_mtime_ns for p in out.glob("runs/*/model.safetensors")}
    calls = len(tiny.MEASURE_CALLS)
    again = run_experiment(tiny.NAME, tier="smoke", out=out, resume=True, threads=1, quiet=True)
    assert {p: p.stat().st_mtime_ns for p in stamps} == stamps and len(stamps) == 2
    assert len(tiny.MEASURE_CALLS) == calls
    assert again.results["measured"] == results["measured"] and again.results["resumed"]
    # The time counts every invocation; the runs' thread count is what they trained with.
    assert (
        again.results["seconds"]
        >= results["seconds"] + again.results["seconds_this_invocation"] - 0.2
    )
    assert results["machine"]["threads"] == "1" and len(results["machine"]["load_average"]) == 2
    # A resume with other settings is refused before anything runs.
    with pytest.raises(ConfigError, match=r"cannot resume.*seed"):
        run_experiment(tiny.NAME, tier="smoke", out=out, resume=True, seed=3, quiet=True)


def test_unknown_tier_and_missing_data_are_one_line_errors(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="unknown tier 'full' for tiny-test: use --tier smoke"):
        run_experiment(tiny.NAME, tier="full", out=tmp_path / "x", quiet=True)
    with pytest.raises(CnnlabError, match="no-such-data"):
        run_experiment(tiny.NAME, tier="smoke", data="no-such-data", out=tmp_path / "y", quiet=True)


def _experiment_cmd(out: Path, *extra: str) -> list[str]:
    args = ["experiment", "run", tiny.NAME, "--tier", "smoke", "--threads", "1", "--out"]
    return [sys.executable, "-m", "helpers.tiny_experiment", *args, str(out), *extra]


def test_sigkill_mid_experiment_then_resume_reuses_and_matches_bitwise(tmp_path: Path) -> None:
    straight, killed = tmp_path / "straight", tmp_path / "killed"
    # 30 ms a step: the second run's 24 steps take over 0.7 s after its first checkpoint.
    env = subprocess_env(TINYNET_STEP_DELAY="0.03")
    quiet = {"stdout": subprocess.DEVNULL, "stderr": subprocess.PIPE}
    reference = subprocess.Popen(_experiment_cmd(straight), env=env, **quiet)
    victim = subprocess.Popen(_experiment_cmd(killed), env=env, **quiet)
    deadline = time.monotonic() + 120
    while not list((killed / "runs/second/checkpoints").glob("step-*.json")):
        assert victim.poll() is None, victim.stderr.read().decode()
        assert time.monotonic() < deadline, "the second run never checkpointed"
        time.sleep(0.01)
    victim.send_signal(signal.SIGKILL)
    victim.wait()
    assert reference.wait(timeout=180) == 0, reference.stderr.read().decode()
    assert not (killed / "results.json").exists()
    assert not (killed / "runs/second/model.safetensors").exists(), "killed too late"
    first_model = killed / "runs/first/model.safetensors"
    stamp = first_model.stat().st_mtime_ns

    resumed = subprocess.run(
        _experiment_cmd(killed, "--resume"), env=env, capture_output=True, text=True, timeout=180
    )
    assert resumed.returncode == 0, resumed.stderr
    assert first_model.stat().st_mtime_ns == stamp  # the finished run was reused, not retrained
    for run in ("first", "second"):
        differ = bitwise_differences(
            weights(straight / "runs" / run), weights(killed / "runs" / run)
        )
        assert differ == [], f"{run}: {differ} differ after the resume"
    assert _results(killed)["measured"] == _results(straight)["measured"]


# --- the experiments' smoke tiers ------------------------------------------------------------


@pytest.mark.parametrize("name", MINE)
def test_smoke_tier_writes_results_figures_and_summary(smoke: dict[str, Path], name: str) -> None:
    folder = smoke[name]
    results = _results(folder)
    assert set(results) >= RESULT_KEYS and results["experiment"] == name
    assert results["figures"], name
    for fig in results["figures"]:
        assert (folder / "figures" / fig["file"]).read_bytes()[:4] == b"\x89PNG"
    assert len(results["runs"]) == get_experiment(name).jobs(results["settings"]) // (
        1 if name == "degradation" else 2
    )
    summary = (folder / "summary.md").read_text()
    assert results["verdict"] in summary and results["departures"][0] in summary


def test_degradation_verdict_follows_its_numbers(smoke: dict[str, Path]) -> None:
    from cnnlab.experiments.degradation import MARGIN

    results = _results(smoke["degradation"])
    final = results["measured"]["final"]
    assert set(final) == {"plain20", "plain56", "resnet20", "resnet56"}
    for f in final.values():
        assert 0 <= f["train_error"] <= 100 and 0 <= f["test_error"] <= 100
    p20, p56, r56 = (final[n]["train_error"] for n in ("plain20", "plain56", "resnet56"))
    # The verdict states plain-56's final training error beside plain-20's.
    assert f"plain-56 {p56:.2f}% against plain-20 {p20:.2f}%" in results["verdict"]
    degraded = None if abs(p56 - p20) < MARGIN else p56 > p20
    fixed = None if abs(p56 - r56) < MARGIN else p56 > r56
    expected = None if degraded is None or fixed is None else degraded and fixed
    assert results["held"] == expected
    curves = results["measured"]["curves"]["plain56"]
    assert curves["train_error"][-1] == p56 and len(curves["test_error"]) == 1
    assert results["paper"]["test_error"]["resnet56"] == 6.97


@pytest.mark.parametrize("name", ["dropout", "augmentation"])
def test_gap_verdicts_follow_their_numbers(smoke: dict[str, Path], name: str) -> None:
    from cnnlab.experiments.regularisers import MARGIN

    results = _results(smoke[name])
    off, on = (results["measured"][label] for label in results["runs"])
    for run in (off, on):
        assert run["gap"] == pytest.approx(run["final_train_acc"] - run["final_test_acc"])
        assert run["train_images"] == 256
    narrower = off["gap"] - on["gap"]
    assert results["held"] == (None if abs(narrower) < MARGIN else narrower > 0)
    assert f"{on['gap']:.2f} points with it against {off['gap']:.2f} without" in results["verdict"]


def test_batchnorm_verdict_follows_its_numbers(smoke: dict[str, Path]) -> None:
    results = _results(smoke["batchnorm"])
    off, on = results["measured"]["without-bn"], results["measured"]["with-bn"]
    target = off["test_acc_epoch"][-1]
    reached = next((i + 1 for i, v in enumerate(on["test_acc_epoch"]) if v >= target), None)
    assert results["measured"]["epoch_reaching_plain_final"] == reached
    assert results["held"] == (reached is not None and reached < off["epochs"])


def test_docs_page_from_results(smoke: dict[str, Path], tmp_path: Path) -> None:
    page = tmp_path / "docs/experiments.md"
    assert len(find_results([smoke["dropout"].parent])) == len(MINE)
    command = f"cnnlab experiment page {smoke['dropout'].parent} -o {page}"
    assert main(["experiment", "page", str(smoke["dropout"].parent), "-o", str(page)]) == 0
    text = page.read_text()
    assert f"`{command}`" in text
    # Sections in registry order, each with its rerun command and its figures copied.
    positions = [text.index(f"(`{name}`, smoke tier)") for name in MINE]
    assert positions == sorted(positions)
    for name in MINE:
        assert f"cnnlab experiment run {name} --tier smoke" in text
        for fig in _results(smoke[name])["figures"]:
            copied = tmp_path / "docs/figures/experiments" / f"{name}-smoke-{fig['file']}"
            assert copied.read_bytes() == (smoke[name] / "figures" / fig["file"]).read_bytes()
            assert f"](figures/experiments/{name}-smoke-{fig['file']})" in text
    assert main(["experiment", "page", str(tmp_path / "empty"), "-o", str(page)]) == 2


def test_cifar_resnets_follow_the_papers_section_4_2_recipe() -> None:
    from cnnlab.run.schedule import scheduled_lr
    from cnnlab.train.config import TrainConfig
    from cnnlab.train.recipes import resolve

    for model in ("resnet20", "plain56", "resnet110"):
        c = resolve(TrainConfig(model=model, recipe="paper"))[0]
        assert (c.batch_size, c.lr, c.momentum, c.weight_decay) == (128, 0.1, 0.9, 1e-4)
        assert (c.epochs, c.schedule, c.augment, c.crop_padding) == (
            164,
            "multistep",
            "crop+flip",
            4,
        )
        # Divided by 10 at 32k and 48k of 64k iterations: 50% and 75% of the epochs.
        lrs = [scheduled_lr(c, epoch, 0, 1) for epoch in (81, 82, 122, 123)]
        assert lrs == pytest.approx([0.1, 0.01, 0.01, 0.001])
    # The ImageNet ResNets keep Sec. 3.4's recipe.
    assert resolve(TrainConfig(model="resnet18", recipe="paper"))[0].batch_size == 256


def test_write_page_without_results_says_so(tmp_path: Path) -> None:
    out = write_page([tmp_path], tmp_path / "experiments.md")
    assert "No experiment has results yet" in out.read_text()


def test_eval_mode_training_accuracy_is_the_same_measured_live_or_reloaded(
    smoke: dict[str, Path],
) -> None:
    # A run trained now is measured by a callback on the trainer's data; one finished earlier
    # (killed before its measurement was kept) is reloaded from disk: both must agree.
    from cnnlab.experiments.regularisers import _reload
    from cnnlab.experiments.runner import train_or_reuse
    from cnnlab.train.config import TrainConfig, from_dict

    run_dir = smoke["dropout"] / "runs/dropout-0.5"
    config = from_dict(json.loads((run_dir / "config.json").read_text()))
    reused = train_or_reuse(run_dir, config, None)
    assert reused.history and isinstance(reused.config, TrainConfig)
    kept = json.loads(
        (smoke["dropout"] / "measurements/dropout-0.5-train-accuracy.json").read_text()
    )
    assert _reload(reused) == kept
