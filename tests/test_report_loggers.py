"""``--log tensorboard``: event files under RUN_DIR/tb/ when asked, a one-line error without the
package, nothing by default."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

from cnnlab.cli import main
from cnnlab.report.loggers import TB_DIR, loggers_for
from helpers.datasets import needs_fashion_mnist
from helpers.optional import importable
from helpers.runs import SMALL


def test_off_by_default_and_unknown_names_refused() -> None:
    from cnnlab.errors import ConfigError
    from cnnlab.train import TrainConfig

    assert TrainConfig().log == "none" and loggers_for("none") == []
    with pytest.raises(ConfigError, match="unknown logger 'wandb'"):
        loggers_for("wandb")


def test_a_log_setting_without_its_logger_is_refused_not_ignored(tmp_path: Path) -> None:
    """The trainer imports no logger: `fit` takes them as callbacks, and a config whose `log`
    names one that was not passed fails before anything is written."""
    import dataclasses

    from cnnlab.errors import ConfigError
    from cnnlab.train import TrainConfig, fit

    config = dataclasses.replace(TrainConfig(), log="tensorboard", out=str(tmp_path / "run"))
    with pytest.raises(ConfigError, match="loggers_for"):
        fit(config, quiet=True)
    assert not (tmp_path / "run").exists()


def test_missing_package_is_a_one_line_error(tmp_path: Path, monkeypatch, capsys) -> None:
    import helpers.models  # noqa: F401  (registers tinynet)

    monkeypatch.setitem(sys.modules, "tensorboard", None)  # as if not installed
    out = tmp_path / "run"
    assert main(["train", "tinynet", *SMALL, "--out", str(out), "--log", "tensorboard"]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "pip install tensorboard" in err
    assert not out.exists()  # refused before anything was written


@needs_fashion_mnist
@pytest.mark.skipif(not importable("tensorboard"), reason="tensorboard not installed")
def test_tensorboard_events_under_the_run(tmp_path: Path, capsys) -> None:
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    import helpers.models  # noqa: F401

    out = tmp_path / "run"
    argv = ["train", "tinynet", *SMALL, "--epochs", "2", "--out", str(out), "--log", "tensorboard"]
    assert main(argv) == 0
    events = EventAccumulator(str(out / TB_DIR))
    events.Reload()
    tags = set(events.Tags()["scalars"])
    assert {"train/step_loss", "train/lr", "epoch/val_acc", "test/top1"} <= tags
    assert [e.step for e in events.Scalars("epoch/val_acc")] == [8, 16]  # 8 steps an epoch
    assert len(events.Scalars("train/step_loss")) == 16
