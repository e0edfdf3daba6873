"""Whole training runs of ``tinynet`` on a small Fashion-MNIST subset, through ``cnnlab.train.fit``.

What a run leaves on disk, the rules for an existing run directory, a non-finite loss, what
``fit`` tells its callbacks and in which order, and that ``fit(quiet=True)`` can run many times
in one process: silent, reproducible, and leaving the process as it found it. The command line
(``cnnlab train``/``eval``/``predict``) is tested in ``test_cli.py``; a run killed with SIGKILL
and resumed in ``test_train_resume.py``.
"""

from __future__ import annotations

import dataclasses
import json
import math
import random
import re
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch
from safetensors.torch import load_file

import helpers.models  # noqa: F401  (registers tinynet)
from cnnlab.cli.train import parse
from cnnlab.errors import ConfigError, TrainingError
from cnnlab.run.checkpoints import list_checkpoints
from cnnlab.run.load import load_trained
from cnnlab.run.recipes import lr_advice, resolve
from cnnlab.run.tensorfile import read_header
from cnnlab.train import Callback, fit
from cnnlab.train.callbacks import ConsoleLog
from helpers.datasets import needs_fashion_mnist
from helpers.runs import SMALL, SMALL_STEPS_PER_EPOCH, TIMINGS, bitwise_differences, weights

pytestmark = needs_fashion_mnist


def _small(out: Path, *extra: str) -> tuple[Any, set[str]]:
    """The config of ``cnnlab train tinynet SMALL... EXTRA... --out OUT``."""
    return parse(["tinynet", *SMALL, *extra, "--out", str(out)])


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
    meta = read_header(trained_run / "model.safetensors")
    assert meta["classes"][0] == "T-shirt/top" and meta["input_size"] == [1, 28, 28]
    assert len(list((trained_run / "checkpoints").glob("*.json"))) == 2


def test_existing_run_needs_resume_and_matching_config(trained_run: Path) -> None:
    config, given = _small(trained_run, "--epochs", "2")
    with pytest.raises(ConfigError, match="already holds a run: pass --resume"):
        fit(config, given=given, quiet=True)
    config, given = _small(trained_run, "--epochs", "2", "--resume", "--lr", "0.01", "--seed", "3")
    with pytest.raises(
        ConfigError,
        match=r"config differs \(lr: [0-9.]+ in the run, 0.01 now; seed: 0 in the run, 3 now\)",
    ):
        fit(config, given=given, quiet=True)


class NaNLogitsFrom(Callback):
    """Makes the model's logits NaN from the training step numbered ``step`` (1-based) on."""

    def __init__(self, step: int) -> None:
        self.step = step
        self.running = 0  # 1-based number of the step in progress

    def on_train_start(self, trainer: Any) -> None:
        trainer.model.register_forward_hook(self.poison)

    def on_step_start(self, trainer: Any) -> None:
        self.running = trainer.progress.step + 1

    def poison(self, module: torch.nn.Module, inputs: Any, output: torch.Tensor) -> Any:
        if module.training and self.running >= self.step:
            return output * float("nan")
        return None


def test_non_finite_loss_stops_with_the_step_and_keeps_checkpoints(tmp_path: Path) -> None:
    config, given = _small(tmp_path / "run", "--checkpoint-every", "2")
    with pytest.raises(TrainingError, match=r"at step 6 \(epoch 1\).*lower --lr"):
        fit(config, given=given, quiet=True, callbacks=[NaNLogitsFrom(6)])
    kept = [p.name for p in list_checkpoints(tmp_path / "run" / "checkpoints")]
    assert kept == ["step-00000002.json", "step-00000004.json"]
    assert not (tmp_path / "run" / "model.safetensors").exists()
    results = json.loads((tmp_path / "run" / "results.json").read_text())
    assert results["status"] == "failed" and "at step 6" in results["reason"]


class EventLog(Callback):
    """Every event as ``(name, steps done, epoch)`` plus what the event carries."""

    def __init__(self) -> None:
        self.events: list[tuple] = []

    def add(self, name: str, trainer: Any, *extra: Any) -> None:
        self.events.append((name, trainer.progress.step, trainer.progress.epoch, *extra))

    def on_setup(self, trainer: Any) -> None:
        self.events.append(("setup",))

    def on_train_start(self, trainer: Any) -> None:
        self.add("train_start", trainer)

    def on_epoch_start(self, trainer: Any) -> None:
        self.add("epoch_start", trainer)

    def on_step_start(self, trainer: Any) -> None:
        self.add("step_start", trainer)

    def on_step_end(self, trainer: Any, result: Any) -> None:
        self.add("step_end", trainer, result.count)

    def on_epoch_end(self, trainer: Any, record: dict[str, Any]) -> None:
        self.add("epoch_end", trainer, record["epoch"], record["step"])

    def on_checkpoint_phase(self, trainer: Any, phase: str, path: Path) -> None:
        self.add(phase, trainer)

    def on_checkpoint(self, trainer: Any, path: Path) -> None:
        self.add("checkpoint", trainer, path.name)

    def on_train_end(self, trainer: Any, result: Any) -> None:
        self.add("train_end", trainer, result.test.count)


def test_callbacks_hear_every_event_in_order_with_the_step_counts(tmp_path: Path) -> None:
    log = EventLog()
    config, given = _small(tmp_path / "run", "--checkpoint-every", "3")
    fit(config, given=given, quiet=True, callbacks=[log])
    n = SMALL_STEPS_PER_EPOCH  # 8: checkpoints after steps 3 and 6, and at the epoch's end

    def save(step: int, prune: bool) -> list[tuple]:
        phases = ["tensors-written", "record-written", "committed"]
        phases += ["pruned-tensors"] * prune
        return [(p, step, 0) for p in phases] + [("checkpoint", step, 0, f"step-{step:08d}.json")]

    expected: list[tuple] = [("setup",), ("train_start", 0, 0), ("epoch_start", 0, 0)]
    for i in range(n):
        # on_step_start: the 0-based index of the step about to run; on_step_end: steps done.
        expected += [("step_start", i, 0), ("step_end", i + 1, 0, 64)]
        if i + 1 in (3, 6):
            expected += save(i + 1, prune=False)
    expected += [("epoch_end", n, 0, 1, n), *save(n, prune=True), ("train_end", n, 1, 300)]
    assert log.events == expected


def _process_state() -> tuple:
    return (
        torch.get_num_threads(),
        torch.get_rng_state(),
        np.random.get_state(),
        random.getstate(),
    )


def test_quiet_fit_prints_nothing_and_restores_the_process_state(
    tmp_path: Path, capfd: pytest.CaptureFixture[str]
) -> None:
    threads = torch.get_num_threads()
    torch.set_num_threads(2)  # the run uses --threads 1
    try:
        torch.manual_seed(123), np.random.seed(123), random.seed(123)
        before = _process_state()
        config, given = _small(tmp_path / "run")
        result = fit(config, given=given, quiet=True)
        after = _process_state()
    finally:
        torch.set_num_threads(threads)
    out, err = capfd.readouterr()
    assert (out, err) == ("", "")
    assert result.test.count == 300 and (result.run_dir / "model.safetensors").exists()
    assert after[0] == before[0] == 2
    assert torch.equal(after[1], before[1])
    np_before, np_after = before[2], after[2]
    assert np_after[0] == np_before[0] and np.array_equal(np_after[1], np_before[1])
    assert np_after[2:] == np_before[2:]
    assert after[3] == before[3]


def test_two_fits_in_one_process_train_bitwise_identical_weights(tmp_path: Path) -> None:
    results = []
    for name in ("first", "second"):
        config, given = _small(tmp_path / name, "--epochs", "2")
        results.append(fit(config, given=given, quiet=True))
    first, second = (weights(r.run_dir) for r in results)
    assert bitwise_differences(first, second) == []
    history = [
        [{k: v for k, v in h.items() if k not in TIMINGS} for h in r.history] for r in results
    ]
    assert history[0] == history[1] and len(history[0]) == 2


# --- the stall guard, the best epoch and early stopping -----------------------------------------


class StuckOnClassZero(Callback):
    """Replaces the model's logits by a fixed guess of class 0: a dead network, deterministically.

    The loss (about 3.5 against ln 10 = 2.30) is far above chance and nothing can learn.
    """

    def __init__(self) -> None:
        self.warnings: list[str] = []

    def on_train_start(self, trainer: Any) -> None:
        trainer.model.register_forward_hook(self.stuck)

    def on_warning(self, trainer: Any, message: str) -> None:
        self.warnings.append(message)

    @staticmethod
    def stuck(module: torch.nn.Module, inputs: Any, output: torch.Tensor) -> torch.Tensor:
        guess = torch.zeros_like(output)
        guess[:, 0] = 4.0
        return output * 0 + guess


def _without_guard_off(args: list[str]) -> list[str]:
    """SMALL turns the stall guard off; these tests want the default."""
    i = args.index("--stall-patience")
    return args[:i] + args[i + 2 :]


def test_a_run_at_chance_warns_then_fails_with_the_reason_and_keeps_checkpoints(
    tmp_path: Path, capfd: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "run"
    stuck = StuckOnClassZero()
    config, given = parse(
        ["tinynet", *_without_guard_off(SMALL), "--epochs", "4", "--out", str(out)]
    )
    assert config.stall_patience == 2  # the documented default
    with pytest.raises(TrainingError, match=r"stalled at chance for 2 epoch\(s\).*lower --lr") as e:
        fit(config, given=given, callbacks=[stuck])
    assert "\n" not in str(e.value)
    # One loud warning, after the first epoch at chance, on stderr, naming the fix.
    assert len(stuck.warnings) == 1 and "epoch 1 is at chance" in stuck.warnings[0]
    assert "lower --lr" in stuck.warnings[0] and "--grad-clip" in stuck.warnings[0]
    assert "WARNING: epoch 1 is at chance" in capfd.readouterr().err
    results = json.loads((out / "results.json").read_text())
    assert results["status"] == "failed" and results["reason"] == str(e.value)
    assert results["epochs_done"] == 2 and "test" not in results
    assert not (out / "model.safetensors").exists()  # no chance-level model as a result
    kept = [p.name for p in list_checkpoints(out / "checkpoints")]
    assert kept[-1] == f"step-{2 * SMALL_STEPS_PER_EPOCH:08d}.json"
    # A relaxed guard lets the same run go on from its checkpoint (stall_patience may differ).
    config, given = parse(["tinynet", *SMALL, "--epochs", "4", "--out", str(out), "--resume"])
    result = fit(config, given=given, quiet=True, callbacks=[StuckOnClassZero()])
    assert len(result.history) == 4
    assert json.loads((out / "results.json").read_text())["status"] == "finished"


def test_a_one_epoch_run_at_chance_is_never_reported_as_a_result(tmp_path: Path) -> None:
    config, given = parse(["tinynet", *_without_guard_off(SMALL), "--out", str(tmp_path / "r")])
    with pytest.raises(TrainingError, match=r"stalled at chance for 1 epoch\(s\)"):
        fit(config, given=given, quiet=True, callbacks=[StuckOnClassZero()])
    assert json.loads((tmp_path / "r" / "results.json").read_text())["status"] == "failed"
    # --stall-patience 0 (as in SMALL): the warning stays, the run finishes.
    stuck = StuckOnClassZero()
    config, given = parse(["tinynet", *SMALL, "--out", str(tmp_path / "relaxed")])
    fit(config, given=given, quiet=True, callbacks=[stuck])
    assert len(stuck.warnings) == 1 and "training goes on (--stall-patience 0)" in stuck.warnings[0]
    assert json.loads((tmp_path / "relaxed" / "results.json").read_text())["status"] == "finished"


def test_the_stall_hint_suggests_the_recipes_learning_rate() -> None:
    """An absurd --lr is answered with the recipe's value (not a third of the absurd one), the
    recipe's own value with a tenth of it (the stall guard's messages end with this advice)."""
    config, given = parse(["lenet5", "--lr", "50"])
    config = resolve(config, given)[0]
    assert lr_advice(config) == "now 50, try 0.2: the fast recipe's value for lenet5"
    paper = resolve(*parse(["lenet5", "--recipe", "paper"]))[0]
    own = "now 0.01, try 0.001, a tenth: the paper recipe's own value did not train here"
    assert lr_advice(paper) == own
    below = dataclasses.replace(paper, lr=0.005)
    assert lr_advice(below).endswith("below the paper recipe's 0.01, it still did not train")
    adamw = resolve(*parse(["resnet18", "--optimizer", "adamw", "--lr", "0.001"]))[0]
    assert lr_advice(adamw) == "now 0.001, try 0.0001, a tenth: adamw did not train at it"


def test_without_a_terminal_progress_lines_replace_the_bar(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """Output to a file or a pipe gets a line at least every line_seconds (0 here: every
    step), so a long epoch is never silent; the bar would only fill a log with redraws."""
    config, given = parse(["tinynet", *SMALL, "--progress", "--out", str(tmp_path / "r")])
    fit(config, given=given, quiet=True, callbacks=[ConsoleLog(line_seconds=0)])
    out = capsys.readouterr().out  # captured: not a terminal
    steps = re.findall(r"epoch 1/1 step (\d+)/8  loss \d\.\d{4} acc [\d.]+% [\d,]+ img/s", out)
    assert [int(s) for s in steps] == list(range(1, SMALL_STEPS_PER_EPOCH + 1))
    assert "s to the epoch's end" in out


def test_finished_runs_say_so_with_their_best_epoch(trained_run: Path) -> None:
    results = json.loads((trained_run / "results.json").read_text())
    assert results["status"] == "finished" and results["stopped_early"] is False
    history = [json.loads(x) for x in (trained_run / "metrics.jsonl").read_text().splitlines()]
    best = max(history, key=lambda h: h["val_acc"])  # the first of equals
    assert results["best"] == {"epoch": best["epoch"], "val_acc": best["val_acc"]}
    best_file = trained_run / "model_best.safetensors"
    assert load_trained(best_file).meta.model == "tinynet"  # eval, predict and load read it


class BestWeights(Callback):
    """The model's weights at the end of each epoch."""

    def __init__(self) -> None:
        self.by_epoch: dict[int, dict[str, torch.Tensor]] = {}

    def on_epoch_end(self, trainer: Any, record: dict[str, Any]) -> None:
        state = trainer.model.state_dict()
        self.by_epoch[record["epoch"]] = {k: v.detach().clone() for k, v in state.items()}


def test_early_stop_ends_after_n_epochs_without_improvement_and_keeps_the_best(
    tmp_path: Path,
) -> None:
    # A learning rate of 1e-7 leaves the weights where they are, so the validation accuracy
    # soon stops improving (batch norm's statistics still move a little at first).
    epochs = SMALL.index("--epochs") + 1
    args = [*SMALL[:epochs], "8", *SMALL[epochs + 1 :]]
    seen = BestWeights()
    config, given = parse(
        ["tinynet", *args, "--lr", "1e-7", "--early-stop", "2", "--out", str(tmp_path / "r")]
    )
    result = fit(config, given=given, quiet=True, callbacks=[seen])
    accs = [h["val_acc"] for h in result.history]
    best = accs.index(max(accs)) + 1
    assert len(accs) < 8, accs  # stopped early ...
    assert len(accs) == best + 2, accs  # ... two epochs after the best one
    results = json.loads((result.run_dir / "results.json").read_text())
    assert results["stopped_early"] is True and results["epochs_done"] == len(accs)
    assert results["best"] == {"epoch": best, "val_acc": max(accs)}
    # model_best.safetensors holds the best epoch's weights, bit for bit.
    best_file = load_file(str(result.run_dir / "model_best.safetensors"))
    assert bitwise_differences(best_file, seen.by_epoch[best]) == []
    # --resume of a run that stopped early trains no further: the stop is in its checkpoint.
    flags = ["--lr", "1e-7", "--early-stop", "2", "--out", str(tmp_path / "r"), "--resume"]
    config, given = parse(["tinynet", *args, *flags])
    again = fit(config, given=given, quiet=True)
    assert again.history == result.history and again.test.top1 == result.test.top1
