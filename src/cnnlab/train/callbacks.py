"""Hooks into a training run: what happened, as it happens.

A :class:`Callback` overrides the events it cares about; :func:`cnnlab.train.fit` calls them in
order. The console output of ``cnnlab train`` is itself a callback (:class:`ConsoleLog`), which
``fit(quiet=True)`` leaves out, so a quiet run prints nothing. Tests, crash-injection harnesses,
experiments and reports observe or steer a run through these events, never by patching the
trainer.

Every event receives the :class:`~cnnlab.train.trainer.Trainer`, whose attributes (``config``,
``model``, ``optimizer``, ``progress``, ``run_dir``, ``dist``...) are public and read-only by
convention. Under DDP each rank calls its own callbacks; check ``trainer.dist.is_main`` before
writing files or printing.
"""

from __future__ import annotations

import sys
import time
from collections.abc import Iterable
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:  # only for annotations: the trainer imports this module
    from cnnlab.train.step import StepResult
    from cnnlab.train.trainer import RunResult, Trainer


class Callback:
    """Base class: every event does nothing. Override the ones you need."""

    log: str | None = None  # the ``--log`` setting a logger callback implements (e.g. tensorboard)

    def on_setup(self, trainer: Trainer) -> None:
        """Set-up begins: config resolved, device, threads and DDP process group ready; the run
        directory not yet checked, nothing read or written."""

    def on_note(self, trainer: Trainer, message: str) -> None:
        """A line worth telling the user (a resize, a busy machine, a resume)."""

    def on_warning(self, trainer: Trainer, message: str) -> None:
        """Something is going wrong and the user should act (a run stalled at chance)."""

    def on_train_start(self, trainer: Trainer) -> None:
        """Data, model, optimizer ready and any checkpoint restored; no step taken yet."""

    def on_epoch_start(self, trainer: Trainer) -> None:
        """``trainer.progress.epoch`` begins at batch ``trainer.progress.batch``."""

    def on_step_start(self, trainer: Trainer) -> None:
        """A step begins; ``trainer.progress.step`` steps are done."""

    def on_step_end(self, trainer: Trainer, result: StepResult) -> None:
        """A step ended; ``trainer.progress.step`` counts it."""

    def on_epoch_end(self, trainer: Trainer, record: dict[str, Any]) -> None:
        """An epoch was validated; ``record`` is its line of ``metrics.jsonl``."""

    def on_checkpoint_phase(self, trainer: Trainer, phase: str, path: Path) -> None:
        """A checkpoint write reached ``phase`` (see :func:`checkpoint.save_checkpoint`)."""

    def on_checkpoint(self, trainer: Trainer, path: Path) -> None:
        """A checkpoint pair was committed; ``path`` is its JSON half (rank 0 only)."""

    def on_train_end(self, trainer: Trainer, result: RunResult) -> None:
        """The test set was evaluated and the run's files are written."""


class CallbackList(Callback):
    """Several callbacks called in order, as one."""

    def __init__(self, callbacks: Iterable[Callback]) -> None:
        self.callbacks = list(callbacks)

    def __getattribute__(self, name: str) -> Any:
        if not name.startswith("on_"):
            return object.__getattribute__(self, name)
        callbacks = object.__getattribute__(self, "callbacks")

        def call_all(*args: Any) -> None:
            for callback in callbacks:
                getattr(callback, name)(*args)

        return call_all


PROGRESS_LINE_SECONDS = 10.0  # without a terminal: a progress line at least this often


class ConsoleLog(Callback):
    """What ``cnnlab train`` prints: notes, a progress bar per epoch, epoch and final lines.

    Lines go to stdout through ``tqdm.write`` (so they do not break a bar); the bar goes to
    stderr and only when stderr is a terminal. Without a terminal (a log file, CI, a notebook's
    captured output) a bar cannot redraw, so a progress line goes to stdout instead whenever
    ``line_seconds`` have passed since the last line: an epoch of a minute is never silent.
    Only DDP rank 0 prints.
    """

    def __init__(
        self, progress_bar: bool = True, line_seconds: float = PROGRESS_LINE_SECONDS
    ) -> None:
        self.progress_bar = progress_bar
        self.line_seconds = line_seconds
        self.bar: Any = None
        self.lines = False  # progress lines instead of a bar (no terminal)
        self.epoch_started = 0.0
        self.last_line = 0.0

    @staticmethod
    def write(trainer: Trainer, message: str, file: Any = None) -> None:
        if trainer.dist.is_main:
            from tqdm.auto import tqdm

            file = file or sys.stdout
            tqdm.write(message, file=file)
            file.flush()

    def on_note(self, trainer: Trainer, message: str) -> None:
        self.write(trainer, message)

    def on_warning(self, trainer: Trainer, message: str) -> None:
        # On stderr, in capitals, so it survives `> log.txt` and stands out in a terminal.
        self.write(trainer, f"WARNING: {message}", sys.stderr)

    def on_train_start(self, trainer: Trainer) -> None:
        c, d = trainer.config, trainer.data
        h, w = trainer.meta.image_size
        where = (
            f" x{trainer.dist.world_size} ranks"
            if trainer.dist.enabled
            else f", {trainer.threads} thread{'s' * (trainer.threads > 1)}"
        )
        self.write(
            trainer,
            f"training {c.model} on {c.data} ({len(d.train_x)} train / {len(d.val_x)} val / "
            f"{len(d.test_x)} test images, {h}x{w}) with the {c.recipe} recipe: "
            f"{c.optimizer} lr {c.lr:g} {c.schedule}, batch {c.batch_size}, "
            f"{c.epochs} epoch{'s' * (c.epochs > 1)}, {c.precision}, {trainer.device}" + where,
        )

    def on_epoch_start(self, trainer: Trainer) -> None:
        self.epoch_started = self.last_line = time.perf_counter()
        if not (self.progress_bar and trainer.dist.is_main):
            return
        from tqdm.auto import tqdm

        self.bar = tqdm(
            total=trainer.steps_per_epoch,
            initial=trainer.progress.batch,
            desc=f"epoch {trainer.progress.epoch + 1}/{trainer.config.epochs}",
            unit="step",
            leave=False,
            dynamic_ncols=True,
            disable=None,  # no bar when stderr is not a terminal: progress lines instead
            file=sys.stderr,
        )
        if self.bar.disable:
            self.bar, self.lines = None, True

    def _so_far(self, trainer: Trainer) -> str:
        """The epoch's running loss, accuracy and speed."""
        sums = trainer.progress.epoch_sums
        rate = trainer.epoch_images / max(time.perf_counter() - self.epoch_started, 1e-9)
        return f"loss {sums[0] / sums[2]:.4f} acc {100 * sums[1] / sums[2]:.2f}% {rate:,.0f} img/s"

    def on_step_end(self, trainer: Trainer, result: StepResult) -> None:
        batch = trainer.progress.batch
        if self.lines and time.perf_counter() - self.last_line >= self.line_seconds:
            self.last_line = time.perf_counter()
            left = trainer.steps_per_epoch - batch - 1
            per_step = (self.last_line - self.epoch_started) / max(trainer.epoch_images, 1)
            eta = left * trainer.config.batch_size * per_step
            self.write(
                trainer,
                f"  epoch {trainer.progress.epoch + 1}/{trainer.config.epochs} step "
                f"{batch + 1}/{trainer.steps_per_epoch}  {self._so_far(trainer)}  about "
                f"{eta:.0f} s to the epoch's end",
            )
        if self.bar is None:
            return
        self.bar.update()
        if batch % 10 == 0 or batch == trainer.steps_per_epoch - 1:
            self.bar.set_postfix_str(self._so_far(trainer))

    def on_epoch_end(self, trainer: Trainer, record: dict[str, Any]) -> None:
        if self.bar is not None:
            self.bar.close()
            self.bar = None
        self.write(
            trainer,
            f"epoch {record['epoch']}/{trainer.config.epochs}  train loss "
            f"{record['train_loss']:.4f} acc {100 * record['train_acc']:.2f}%  val loss "
            f"{record['val_loss']:.4f} acc {100 * record['val_acc']:.2f}%  lr "
            f"{record['lr']:.4g}  {record['seconds']:.1f} s  {record['images_per_s']:,.0f} img/s",
        )

    def on_train_end(self, trainer: Trainer, result: RunResult) -> None:
        test = result.test
        self.write(
            trainer,
            f"test accuracy {100 * test.top1:.2f}% (top-5 {100 * test.top5:.2f}%, loss "
            f"{test.loss:.4f}) on {test.count} images; {result.seconds:.1f} s in all; run in "
            f"{result.run_dir}",
        )
