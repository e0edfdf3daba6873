"""Optional experiment loggers, as training callbacks: ``cnnlab train --log tensorboard``.

Off by default, and nothing is ever sent anywhere: a logger writes files into the run directory
and only when asked for. :func:`loggers_for` turns the ``--log`` setting into callbacks and fails
at once, before any training, with a one-line error when the package a logger needs is missing.

:class:`TensorBoardLog` writes TensorBoard event files under ``RUN_DIR/tb/`` (view them with
``tensorboard --logdir RUN_DIR/tb``): the training loss and learning rate of every step, the
epoch's train and validation loss and accuracy and its throughput, and the test accuracy at the
end. On ``--resume`` the writer purges the events logged after the checkpoint's step, so the
resumed run's curves continue without a doubled stretch.
"""

from __future__ import annotations

import importlib.util
from typing import TYPE_CHECKING, Any

from cnnlab.errors import ConfigError
from cnnlab.train.callbacks import Callback

if TYPE_CHECKING:
    from cnnlab.train.step import StepResult
    from cnnlab.train.trainer import RunResult, Trainer

LOGGERS = ("none", "tensorboard")
TB_DIR = "tb"  # under the run directory


def loggers_for(setting: str | None) -> list[Callback]:
    """The callbacks of a ``--log`` setting (``none`` or ``tensorboard``).

    Raises:
        ConfigError: an unknown logger, or one whose package is not installed.
    """
    if setting in (None, "", "none"):
        return []
    if setting == "tensorboard":
        return [TensorBoardLog()]
    raise ConfigError(f"unknown logger {setting!r}: use one of {', '.join(LOGGERS)}")


class TensorBoardLog(Callback):
    """TensorBoard event files in ``RUN_DIR/tb/`` (rank 0 only).

    Raises:
        ConfigError: when constructed without the ``tensorboard`` package installed.
    """

    log = "tensorboard"

    def __init__(self) -> None:
        if importlib.util.find_spec("tensorboard") is None:
            raise ConfigError(
                "--log tensorboard needs the tensorboard package: install it with "
                "`pip install tensorboard` (or `pip install 'cnnlab[tensorboard]'`), or leave "
                "out --log"
            )
        self.writer: Any = None

    def on_train_start(self, trainer: Trainer) -> None:
        if not trainer.dist.is_main:
            return
        from torch.utils.tensorboard import SummaryWriter

        step = trainer.progress.step
        # A resumed run re-trains the steps after its checkpoint: drop what was logged for them.
        self.writer = SummaryWriter(
            log_dir=str(trainer.files.root / TB_DIR), purge_step=step if step else None
        )
        c = trainer.config
        self.writer.add_text(
            "run", f"{c.model} on {c.data}, {c.recipe} recipe, {c.epochs} epochs", step
        )

    def on_step_end(self, trainer: Trainer, result: StepResult) -> None:
        if self.writer is None:
            return
        step = trainer.progress.step
        self.writer.add_scalar("train/step_loss", result.loss, step)
        self.writer.add_scalar("train/lr", trainer.optimizer.param_groups[0]["lr"], step)

    def on_epoch_end(self, trainer: Trainer, record: dict[str, Any]) -> None:
        if self.writer is None:
            return
        step = record["step"]
        for key, tag in (
            ("train_loss", "epoch/train_loss"),
            ("train_acc", "epoch/train_acc"),
            ("val_loss", "epoch/val_loss"),
            ("val_acc", "epoch/val_acc"),
            ("images_per_s", "epoch/images_per_s"),
            ("test_acc", "epoch/test_acc"),
        ):
            if key in record:
                self.writer.add_scalar(tag, record[key], step)
        self.writer.flush()

    def on_train_end(self, trainer: Trainer, result: RunResult) -> None:
        if self.writer is None:
            return
        step = trainer.progress.step
        self.writer.add_scalar("test/top1", result.test.top1, step)
        self.writer.add_scalar("test/top5", result.test.top5, step)
        self.writer.add_scalar("test/loss", result.test.loss, step)
        self.writer.close()
        self.writer = None
