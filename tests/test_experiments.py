"""The experiments framework (``cnnlab experiment``): the table, the runner and the page.

The framework is tested on ``tiny-test`` (``helpers/tiny_experiment.py``: two tinynet runs, a
measurement, a figure): results and summary written, finished runs and measurements reused on
``--resume``, a non-empty folder refused without it, and an experiment killed with SIGKILL in its
second run resumed to the same weights, bit for bit, as one that ran through. Every experiment of
the table has its tiers checked here and its smoke tier run in ``test_experiments_smoke.py``.
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
from cnnlab import files
from cnnlab.cli import main
from cnnlab.errors import CnnlabError, ConfigError
from cnnlab.experiments import (
    EXPERIMENTS,
    experiment_names,
    get_experiment,
    list_experiments,
    page,
    run_experiment,
)
from cnnlab.experiments.page import write_page
from helpers import subprocess_env
from helpers.datasets import needs_fashion_mnist
from helpers.runs import bitwise_differences, weights

pytestmark = needs_fashion_mnist

OWN = experiment_names(added=False)  # cnnlab's own, without tiny-test
RESULT_KEYS = {
    "experiment", "title", "tier", "data", "seed", "claim", "source", "settings", "measured",
    "held", "verdict", "departures", "paper", "figures", "runs", "seconds", "machine", "cnnlab",
}  # fmt: skip


def _results(folder: Path) -> dict:
    return json.loads((folder / "results.json").read_text())


# --- the registry and the command line -------------------------------------------------------


def test_registry_lists_the_table_then_added_experiments_and_refuses_unknown_ones(capsys) -> None:
    assert [name for name, _ in EXPERIMENTS] == OWN and OWN[:1] == ["degradation"]
    added = experiment_names()[len(OWN) :]  # after the table's, in the order they were added
    assert experiment_names()[: len(OWN)] == OWN and tiny.NAME in added
    assert [e.name for e in list_experiments()] == experiment_names()
    with pytest.raises(ConfigError, match=r"unknown experiment 'degradaton'.*degradation"):
        get_experiment("degradaton")
    assert main(["experiment", "list"]) == 0
    out = capsys.readouterr().out
    assert all(name in out for name in OWN)
    assert main(["experiment", "run", "no-such-thing", "--tier", "smoke"]) == 2
    assert "unknown experiment" in capsys.readouterr().err


@pytest.mark.parametrize("name", OWN)
def test_every_experiment_has_three_tiers_within_budget(name: str) -> None:
    experiment = get_experiment(name)
    assert experiment.name == name and set(experiment.tiers) == {"smoke", "quick", "full"}
    for tier, settings in experiment.tiers.items():
        assert settings["expected_s"] > 0, (name, tier)
    assert experiment.jobs(experiment.tiers["smoke"]) >= 1
    # Issue #13: quick = at most 20 minutes on the 2-core machine; these aim far lower.
    assert experiment.tiers["quick"]["expected_s"] <= 10 * 60
    assert experiment.tiers["smoke"]["expected_s"] <= 30  # the test suite runs every smoke tier


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


def test_cifar_resnets_follow_the_papers_section_4_2_recipe() -> None:
    from cnnlab.run.config import TrainConfig
    from cnnlab.run.schedule import scheduled_lr
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


def _finished(folder: Path, name: str) -> None:
    """An experiment folder as a finished smoke tier leaves it, with made-up numbers."""
    results = {
        "experiment": name, "title": f"The {name} claim", "tier": "smoke", "data": "fashion-mnist",
        "seed": 0, "claim": "A claim.", "source": "a paper", "held": True, "verdict": "It held.",
        "findings": [], "departures": ["fewer epochs"], "figures": [], "seconds": 1.0,
    }  # fmt: skip
    files.write_json_atomic(folder / page.RESULTS_FILE, results)
    files.write_json_atomic(folder / page.REQUEST_FILE, {"experiment": name, "tier": "smoke"})


def test_docs_page_has_a_section_per_result_in_table_order(tmp_path: Path) -> None:
    for name in reversed(OWN):
        _finished(tmp_path / "results" / name, name)
    out = tmp_path / "docs/experiments.md"
    argv = ["experiment", "page", str(tmp_path / "results"), "-o", str(out)]
    assert main(argv) == 0
    text = out.read_text()
    assert f"`cnnlab {' '.join(argv)}`" in text  # the command that wrote it
    positions = [text.index(f"(`{name}`, smoke tier)") for name in OWN]
    assert positions == sorted(positions)
    assert main(["experiment", "page", str(tmp_path / "empty"), "-o", str(out)]) == 2


def test_write_page_without_results_says_so(tmp_path: Path) -> None:
    out = write_page([tmp_path], tmp_path / "experiments.md")
    assert "No experiment has results yet" in out.read_text()
