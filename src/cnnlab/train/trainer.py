"""Training as stages: set-up, steps, epochs, checkpoints, finish; and :func:`fit`.

What happens, in order (:meth:`Trainer.run`): resolve the recipe; pick the device and thread
count; check the run directory; load the dataset into memory as uint8 tensors and hold out a
validation split fixed by the seed; build the model, the optimizer and the schedule; restore a
checkpoint when resuming; then for each epoch draw a seeded permutation, and for each global batch
index it out, augment it, take this rank's slice, prepare it (normalise, resize) and take one
:func:`~cnnlab.train.step.train_step`; validate at the end of each epoch (the plateau rule looks at
validation accuracy, never at the test set), keep the best epoch's weights and count epochs
towards ``--early-stop`` and the stall guard (:meth:`Trainer.watch_epoch`); checkpoint at epoch
ends and every ``--checkpoint-every`` steps; stop with an error if the run is stuck at chance
(:meth:`Trainer.check_stall`); after the last epoch evaluate once on the test set and write the
final model, results and figures.

Exactness of ``--resume``: every source of randomness is an explicit, checkpointed state -- the
global torch RNG (weight init, dropout), the data-order generator (its state at the start of the
epoch, so the epoch's permutation is redrawn identically), the augmentation generator, NumPy's and
Python's RNGs -- and the batch position inside the epoch is stored, so on the CPU a resumed run
produces bitwise the same weights as an uninterrupted one. Learning-rate schedules other than
``plateau`` are pure functions of the step, so they have no state to lose.

The last incomplete batch of each epoch is dropped (a fresh permutation next epoch uses those
images), so every step sees exactly ``--batch-size`` images and the global batch always divides
evenly across DDP ranks.
"""

from __future__ import annotations

import dataclasses
import inspect
import math
import random
import time
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch

from cnnlab import __version__
from cnnlab.errors import CheckpointError, ConfigError, TrainingError
from cnnlab.formats import printable
from cnnlab.registry import create_model, model_info
from cnnlab.run.checkpoints import checkpoint_step, latest_valid_checkpoint
from cnnlab.run.config import TrainConfig, recipe_fields, to_dict
from cnnlab.run.data import (
    Augmenter,
    RunData,
    data_generators,
    fit_config_to_data,
    input_size_for,
    load_run_data,
    write_splits,
)
from cnnlab.run.device import pick_device, preserved_process_state, set_threads
from cnnlab.run.figures import plot_confusion, plot_curves
from cnnlab.run.inputs import make_prepare
from cnnlab.run.metrics import EvalResult, Tally, evaluate
from cnnlab.run.recipes import fit_short_run, lr_advice, resolve
from cnnlab.run.schedule import scheduled_lr
from cnnlab.run.tensorfile import check_weights, file_digest, write_json_atomic
from cnnlab.runmeta import RunMeta
from cnnlab.train import checkpoint as ckpt
from cnnlab.train import distributed as ddp
from cnnlab.train.callbacks import Callback, CallbackList, ConsoleLog
from cnnlab.train.finetune import finetune_optimizer
from cnnlab.train.rundir import check_run_dir
from cnnlab.train.step import (
    NonFiniteLossError,
    StepResult,
    autocast_for,
    set_lr,
    train_step,
)
from cnnlab.weights import load_for_training, preprocessing_for

AUTO_CHECKPOINT_SECONDS = 300  # --checkpoint-every 0: a checkpoint about every 5 minutes
CALIBRATION_STEPS = 20  # steps timed to turn those seconds into a step count
EVAL_BATCH_SIZE = 500  # images per forward pass when evaluating (no gradients: can be large)
# The stall guard: an epoch is "at chance" when its training loss is not below that of a uniform
# guess (ln(classes), times the loss weights of auxiliary heads) and neither is its validation
# loss, or when its validation accuracy is at most this many points above 1/classes.
CHANCE_ACCURACY_MARGIN = 0.02


@dataclass
class RunResult:
    """What :func:`fit` returns: where the run is and how it did."""

    run_dir: Path
    config: TrainConfig
    test: EvalResult
    history: list[dict[str, Any]]
    seconds: float
    notes: list[str] = field(default_factory=list)


@dataclass
class Progress:
    """Where a run is. ``batch`` is the batch being (or next to be) trained in ``epoch``."""

    step: int = 0
    epoch: int = 0
    batch: int = 0
    history: list[dict[str, Any]] = field(default_factory=list)
    # loss * n, correct, n of this epoch so far on this rank (float64: exact for any run length)
    epoch_sums: torch.Tensor = field(default_factory=lambda: torch.zeros(3, dtype=torch.float64))


def fit(
    config: TrainConfig,
    *,
    given: set[str] | None = None,
    quiet: bool = False,
    callbacks: Iterable[Callback] = (),
) -> RunResult:
    """Train a model as ``config`` says; the body of ``cnnlab train``.

    The thread count and the torch, NumPy and Python RNG states are restored when it returns, so
    a program (an experiment, a notebook) can call it many times in one process.

    Args:
        config: the settings; recipe fields left ``None`` are filled by the recipe.
        given: names of the settings the user gave explicitly (recipe fields not in it are
            filled even when set); default: the non-``None`` ones.
        quiet: print nothing (no notes, progress bar, epoch lines).
        callbacks: observers of the run's events (:class:`~cnnlab.train.callbacks.Callback`),
            including the logger ``config.log`` names (:func:`cnnlab.report.loggers.loggers_for`).

    Returns:
        The run's directory, resolved config, test metrics and per-epoch history.

    Raises:
        ConfigError: inconsistent settings, or a resume whose config differs.
        TrainingError: a non-finite loss, or a run stalled at chance (the stall guard,
            ``stall_patience``); the last good checkpoint is kept and ``results.json`` says
            ``"status": "failed"`` with the reason.
    """
    callbacks = list(callbacks)
    if config.log not in ("", "none") and not any(c.log == config.log for c in callbacks):
        # The loggers are views of a run (cnnlab.report.loggers), handed in like any callback;
        # a setting that asks for one nobody passed must not be silently ignored.
        raise ConfigError(
            f"log={config.log!r}: pass its logger as a callback, "
            f"callbacks=cnnlab.report.loggers.loggers_for({config.log!r}) (as `cnnlab train "
            "--log` does), or set log='none'"
        )
    console = [] if quiet else [ConsoleLog(progress_bar=config.progress)]
    with preserved_process_state():
        return Trainer(config, given=given, callbacks=[*console, *callbacks]).run()


def run_data(config: TrainConfig) -> RunData:
    """The run's images, split as training splits them (what :meth:`Trainer.setup` loads).

    The pretrained weights' preprocessing (``--weights``) sets an image folder's input and resize
    sides, so it is asked for here, before the data is decoded at that size.
    """
    pre = preprocessing_for(config.weights, config.model)
    return load_run_data(config, (pre.crop, pre.resize) if pre else None)


def train(config: TrainConfig, given: set[str] | None = None) -> RunResult:
    """``fit`` with console output: what the ``cnnlab train`` command runs."""
    return fit(config, given=given)


class Trainer:
    """One training run. :meth:`run` calls the stages in order; each is public for callbacks.

    Attributes after :meth:`setup` (read them, do not replace them): ``config`` (resolved),
    ``device``, ``dist``, ``threads``, ``files`` (:class:`RunFiles`), ``data`` (:class:`RunData`),
    ``meta`` (:class:`RunMeta`), ``model`` (unwrapped), ``net`` (DDP-wrapped or the model),
    ``optimizer``, ``plateau``, ``prepare``, ``augmenter``, ``progress`` (:class:`Progress`),
    ``steps_per_epoch``, ``total_steps``.
    """

    def __init__(
        self,
        config: TrainConfig,
        *,
        given: set[str] | None = None,
        callbacks: Iterable[Callback] = (),
    ) -> None:
        self.config, self.recipe_notes = resolve(config, given)
        # What the user set, as resolve read it: the settings a later fit to the data keeps.
        self.given = (
            {k for k in recipe_fields() if getattr(config, k) is not None}
            if given is None
            else set(given)
        )
        self.events = CallbackList(callbacks)
        self.notes: list[str] = []
        self.progress = Progress()
        self.watch = ckpt.EpochWatch()  # best epoch, early stopping, stall guard
        self.aux_heads = 0  # auxiliary losses in the training loss (seen by the last step)
        self.epoch_images = 0

    # --- set-up ---------------------------------------------------------------------------------

    def note(self, message: str) -> None:
        """Tell the user something (printed by the console callback; kept in the result)."""
        self.notes.append(message)
        self.events.on_note(self, message)

    def warn(self, message: str) -> None:
        """Tell the user something is going wrong (``on_warning``; kept in the notes)."""
        self.notes.append(f"warning: {message}")
        self.events.on_warning(self, message)

    def setup(self) -> None:
        """Everything before the first step; ends with ``on_train_start``."""
        self.t_start = time.perf_counter()
        self.device, self.dist = self._setup_process()
        self.events.on_setup(self)
        if self.config.batch_size % self.dist.world_size:
            raise ConfigError(
                f"--batch-size {self.config.batch_size} does not split evenly over "
                f"{self.dist.world_size} ranks: use a multiple of {self.dist.world_size}"
            )
        # The data first: a batch larger than the data is capped, and the run directory's
        # config (compared on --resume) must be the capped one.
        self.data = run_data(self.config)
        short_notes = []
        if self.config.limit_train is None:  # a small folder's size is known only now
            self.config, short_notes = fit_short_run(
                self.config, len(self.data.train_x), self.given
            )
        self.config, data_notes = fit_config_to_data(self.config, self.data)
        data_notes = [*short_notes, *data_notes]
        start = check_run_dir(self.config, clean=self.dist.is_main)
        ddp.barrier(self.dist)  # every rank has judged the run directory before rank 0 writes
        self.files, resume_from = start.files, start.resume_from
        for message in [*self.recipe_notes, *self._thread_notes, *start.notes]:
            self.note(message)
        for message in [*self.data.notes, *data_notes]:
            self.note(message)
        if self.dist.is_main:
            write_splits(self.data, self.files.root)  # an image folder's file lists
        self.steps_per_epoch = len(self.data.train_x) // self.config.batch_size
        if self.steps_per_epoch == 0:
            raise ConfigError(
                f"--batch-size {self.config.batch_size} is larger than the "
                f"{len(self.data.train_x)} training images: use a smaller batch or more data"
            )
        self.total_steps = self.steps_per_epoch * self.config.epochs
        self._build_model()
        self._build_optimization()
        if resume_from is not None:
            self._resume(resume_from)
        if self.dist.is_main:
            self.files.root.mkdir(parents=True, exist_ok=True)
            write_json_atomic(self.files.config, to_dict(self.config))
            # metrics.jsonl always equals the checkpoint's history: a killed run may have logged
            # an epoch its checkpoint does not hold.
            self.files.write_history(self.progress.history)
        self.net = ddp.wrap(self.model, self.dist, self.device)
        self.events.on_train_start(self)

    def _setup_process(self) -> tuple[torch.device, ddp.DistInfo]:
        """Device, DDP process group and CPU threads."""
        device = ddp.device_for(pick_device(self.config.device), ddp.from_env())
        dist = ddp.setup(device)
        self._thread_notes: list[str] = []
        if device.type == "cpu":
            self.threads, note = set_threads(self.config.threads)
            self._thread_notes = [note] if note else []
        else:
            self.threads = torch.get_num_threads()
        return device, dist

    def _build_model(self) -> None:
        """Seed every global RNG, build the model, and describe it in :attr:`meta`."""
        config, data, rank = self.config, self.data, self.dist.rank
        if data.image_size is not None:  # an image folder, decoded for this model already
            size = data.image_size
        else:
            size, resize_note = input_size_for(
                model_info(config.model), tuple(data.train_x.shape[-2:]), config.image_size
            )
            if resize_note:
                self.note(resize_note)
        # Every global RNG is seeded (and checkpointed) even where cnnlab draws nothing from
        # NumPy or Python's `random`, so user code and libraries that do stay reproducible.
        torch.manual_seed(config.seed + rank)  # weights are broadcast from rank 0 by DDP
        np.random.seed(config.seed + rank)
        random.seed(config.seed + rank)
        kwargs = model_kwargs_for(config)
        try:
            self.model = create_model(
                config.model, num_classes=data.num_classes, in_channels=data.in_channels, **kwargs
            )
        except TypeError as err:  # a **kwargs builder that has no such setting after all
            raise ConfigError(f"{config.model} does not take {sorted(kwargs)} ({err})") from None
        classes = tuple(data.info.classes)
        pretrained = load_for_training(
            self.model,
            model=config.model,
            weights=config.weights,
            finetune=config.finetune,
            classes=classes,
            in_channels=data.in_channels,
        )
        mean, std = tuple(data.info.mean), tuple(data.info.std)
        if pretrained is not None:  # the weights' own normalisation
            pre = pretrained.preprocessing.for_channels(data.in_channels)
            mean, std = pre.mean, pre.std
        memory = torch.channels_last if config.channels_last else torch.contiguous_format
        self.model.to(device=self.device, memory_format=memory)
        self.meta = RunMeta(
            model=config.model,
            num_classes=data.num_classes,
            in_channels=data.in_channels,
            input_size=(data.in_channels, *size),
            classes=classes,
            mean=mean,
            std=std,
            dataset=str(config.data),
            model_kwargs=kwargs,
            precision=config.precision,
            tta=bool(config.tta),
            recipe=config.recipe,
            seed=config.seed,
            cnnlab_version=__version__,
            weights=pretrained.source if pretrained is not None else "",
            resize=data.resize,
        )

    def _build_optimization(self) -> None:
        """Optimizer, plateau rule, input preparation, augmentation and their generators."""
        config = self.config
        self.optimizer = finetune_optimizer(config, self.model)
        self.plateau = torch.optim.lr_scheduler.ReduceLROnPlateau(
            self.optimizer, mode="max", factor=config.lr_decay, patience=config.plateau_patience
        )
        self.prepare = make_prepare(
            self.meta.image_size, self.meta.mean, self.meta.std, self.device, config.channels_last
        )
        self.augmenter = Augmenter.for_run(config, self.data)
        self.order_gen, self.augment_gen = data_generators(config.seed)
        self.autocast = autocast_for(config, self.device)
        self.checkpoint_every = config.checkpoint_every
        self._calibration: tuple[int, float] | None = None

    def _resume(self, json_path: Path) -> None:
        """Restore ``json_path``, or else the next older checkpoint that can be, with a note.

        Validation has checked the pair and every field of its record; restoring can still find
        a state that does not fit this model or optimizer (an edited record with consistent
        digests). Such a checkpoint is skipped like a damaged one; when none is left, the run
        starts from the beginning, as when there was no valid checkpoint, with the model and
        generators built again from the seed.
        """
        candidate: Path | None = json_path
        while candidate is not None:
            try:
                self._restore(candidate)
                return
            except CheckpointError as err:
                older, rejected = latest_valid_checkpoint(
                    candidate.parent, before=checkpoint_step(candidate)
                )
                then = f"resuming from {older.name}" if older is not None else "none older left"
                self.note(f"note: cannot resume from {candidate.name} ({err}); {then}")
                for reason in rejected:
                    self.note(f"note: skipping damaged checkpoint: {reason}")
                candidate = older
        self.note(
            f"note: no checkpoint of {self.files.root} could be restored; --resume starts from "
            "the beginning"
        )
        self._build_model()
        self._build_optimization()

    def _restore(self, json_path: Path) -> None:
        """Continue from a checkpoint: weights, optimizer, schedule, every RNG, the position.

        Raises:
            CheckpointError: the checkpoint is damaged, or its state does not fit this run.
            ConfigError: it was trained with another number of processes.
        """
        state = ckpt.load_training_state(json_path)
        if state.world_size != self.dist.world_size:
            raise ConfigError(
                f"{self.files.root} was trained with {state.world_size} processes, now "
                f"{self.dist.world_size}: resume with --nproc_per_node {state.world_size}"
            )
        if (
            self.device.type == "cpu"
            and not self.config.threads
            and state.threads not in (None, self.threads)
        ):
            # CPU kernels split reductions by thread count, so the same count is what makes
            # the resumed run bitwise equal to an uninterrupted one.
            self.threads = state.threads
            torch.set_num_threads(self.threads)
            self.note(f"note: using {self.threads} thread(s), as the interrupted run did")
        weights = check_weights(
            state.model, self.model.state_dict(), json_path.name, model=self.config.model
        )
        try:
            self.model.load_state_dict(weights)
            self.optimizer.load_state_dict(state.optimizer)
            self.plateau.load_state_dict(state.plateau)
            ckpt.restore_rng(state.rank_rng[self.dist.rank], state.rng_scalars)
            self.order_gen.set_state(state.order_rng)
            self.augment_gen.set_state(state.augment_rng)
        except (RuntimeError, ValueError, TypeError, KeyError, IndexError, OverflowError) as err:
            first = (str(err).strip().splitlines() or [type(err).__name__])[0][:200]
            raise CheckpointError(
                f"{json_path.name}: its state does not fit this run ({printable(first)})"
            ) from None
        self.progress = Progress(state.step, state.epoch, state.batch, state.history)
        self.watch = state.watch
        if self.dist.is_main:
            self.progress.epoch_sums = torch.tensor(state.epoch_sums, dtype=torch.float64)
        if state.epoch >= self.config.epochs:
            self.note(
                f"{self.files.root} finished training at step {state.step}: evaluating it again"
            )
        else:
            self.note(
                f"resumed {self.files.root} from {json_path.name} (epoch {state.epoch + 1}, "
                f"step {state.step})"
            )

    # --- training -------------------------------------------------------------------------------

    def run(self) -> RunResult:
        """Set up, train the remaining epochs, finish; the process group is always cleaned up."""
        try:
            self.setup()
            while self.progress.epoch < self.config.epochs and not self.watch.stopped_early:
                self.run_epoch()
            return self.finish()
        finally:
            ddp.cleanup(getattr(self, "dist", ddp.DistInfo()))

    def run_epoch(self) -> dict[str, Any]:
        """Train the rest of the current epoch, validate, log and checkpoint it."""
        p, config = self.progress, self.config
        order_state = self.order_gen.get_state()  # the state this epoch's permutation comes from
        permutation = torch.randperm(len(self.data.train_x), generator=self.order_gen)
        t_epoch, self.epoch_images = time.perf_counter(), 0
        self.events.on_epoch_start(self)
        self.net.train()
        for batch in range(p.batch, self.steps_per_epoch):
            p.batch = batch
            index = permutation[batch * config.batch_size : (batch + 1) * config.batch_size]
            self.train_batch(index)
            self._calibrate_checkpoints()
            mid_epoch = batch < self.steps_per_epoch - 1  # the epoch's end checkpoints anyway
            if self.checkpoint_every and p.step % self.checkpoint_every == 0 and mid_epoch:
                self.save_checkpoint(epoch_done=False, order_state=order_state)
        record = self.end_epoch(time.perf_counter() - t_epoch)
        self.save_checkpoint(epoch_done=True, order_state=self.order_gen.get_state())
        p.epoch, p.batch = p.epoch + 1, 0
        self.check_stall()  # after the checkpoint: a stopped run keeps this epoch
        return record

    def train_batch(self, index: torch.Tensor) -> StepResult:
        """Augment, shard and prepare the global batch ``index``; one step on this rank's part."""
        p, config = self.progress, self.config
        self.events.on_step_start(self)
        x = self.augmenter(self.data.train_x[index], self.augment_gen)  # whole global batch
        x = ddp.shard(x, self.dist)
        y = ddp.shard(self.data.train_y[index], self.dist).to(self.device)
        if config.schedule != "plateau":
            set_lr(self.optimizer, scheduled_lr(config, p.epoch, p.step, self.total_steps))
        try:
            result = train_step(self.net, self.optimizer, self.prepare(x), y, config, self.autocast)
        except NonFiniteLossError as err:
            self.fail(
                f"loss became {err.value} at step {p.step + 1} (epoch {p.epoch + 1}); the "
                f"last good checkpoint in {self.files.checkpoints} is kept: lower "
                f"--lr (now {self.optimizer.param_groups[0]['lr']:g}) and start a new run"
            )
        p.step += 1
        self.aux_heads = result.aux_heads
        p.epoch_sums += torch.tensor(
            [result.loss * result.count, result.correct, result.count], dtype=torch.float64
        )
        self.epoch_images += config.batch_size
        self.events.on_step_end(self, result)
        return result

    def _calibrate_checkpoints(self) -> None:
        """Turn "every 5 minutes" into a step count once, from rank 0's timing."""
        if self.checkpoint_every != 0:
            return
        step = self.progress.step
        if self._calibration is None:
            self._calibration = (step, time.perf_counter())
        elif step - self._calibration[0] == CALIBRATION_STEPS:
            per_step = (time.perf_counter() - self._calibration[1]) / CALIBRATION_STEPS
            every = max(1, round(AUTO_CHECKPOINT_SECONDS / per_step))
            self.checkpoint_every = ddp.broadcast_int(every, self.dist, self.device)

    def end_epoch(self, seconds: float) -> dict[str, Any]:
        """Global train metrics, validation, the plateau rule, and the epoch's record."""
        p = self.progress
        sums = ddp.all_reduce_sum(p.epoch_sums.clone(), self.dist, self.device)
        ddp.broadcast_buffers(self.model, self.dist)
        val = self.evaluate(self.data.val_x, self.data.val_y)
        lr_used = self.optimizer.param_groups[0]["lr"]
        if self.config.schedule == "plateau":
            self.plateau.step(val.top1)
        record = {
            "epoch": p.epoch + 1,
            "step": p.step,
            "train_loss": float(sums[0] / sums[2]),
            "train_acc": float(sums[1] / sums[2]),
            "val_loss": val.loss,
            "val_acc": val.top1,
            "lr": lr_used,
            "seconds": round(seconds, 3),
            "images_per_s": round(self.epoch_images / seconds, 1),
        }
        if self.config.test_every_epoch:  # the time-to-accuracy curve of the benchmarks
            t_test = time.perf_counter()
            record["test_acc"] = self.evaluate(self.data.test_x, self.data.test_y).top1
            # What this extra evaluation cost, so a benchmark can take it out of the run time,
            # and when the epoch ended (Unix time), so it can time the epoch from process start.
            record["test_seconds"] = round(time.perf_counter() - t_test, 3)
            record["ended_at"] = round(time.time(), 3)
        p.history.append(record)
        if self.dist.is_main:
            self.files.append_history(record)
        self.watch_epoch(record)
        self.events.on_epoch_end(self, record)
        p.epoch_sums.zero_()
        return record

    def evaluate(self, images: torch.Tensor, labels: torch.Tensor) -> EvalResult:
        """Metrics of the model on uint8 images, each rank taking a contiguous share."""
        dist = self.dist
        part = torch.tensor_split(torch.arange(len(images)), dist.world_size)[dist.rank]
        lo, hi = (int(part[0]), int(part[-1]) + 1) if len(part) else (0, 0)

        def reduce(tally: Tally) -> None:
            ddp.all_reduce_sum(tally.confusion, dist, self.device)
            ddp.all_reduce_sum(tally.sums, dist, self.device)

        return evaluate(
            self.model,
            images[lo:hi],
            labels[lo:hi],
            self.prepare,
            self.meta.num_classes,
            EVAL_BATCH_SIZE,
            reduce,
            self.config.tta,
        )

    # --- the best epoch, early stopping and the stall guard --------------------------------------

    def watch_epoch(self, record: dict[str, Any]) -> None:
        """Keep the best epoch's weights, count epochs towards early stopping and at chance."""
        w, config = self.watch, self.config
        if w.best_val_acc is None or record["val_acc"] > w.best_val_acc:
            w.best_val_acc, w.best_epoch = record["val_acc"], record["epoch"]
            w.epochs_since_best = 0
            if self.dist.is_main:
                ckpt.save_model(self.files.model_best, self.model, self.meta)
        else:
            w.epochs_since_best += 1
        if config.early_stop and w.epochs_since_best >= config.early_stop:
            w.stopped_early = record["epoch"] < config.epochs
            if w.stopped_early:
                self.note(
                    f"stopping early: no better validation accuracy in {w.epochs_since_best} "
                    f"epochs (best {100 * w.best_val_acc:.2f}% at epoch {w.best_epoch}, in "
                    f"{self.files.model_best.name})"
                )
        chance = self.chance_diagnosis(record)
        w.stalled_epochs = w.stalled_epochs + 1 if chance else 0
        if chance and w.stalled_epochs == 1:
            patience = config.stall_patience
            then = (
                f"training stops if it still is after {patience} epoch(s) (--stall-patience)"
                if patience
                else "training goes on (--stall-patience 0)"
            )
            self.warn(
                f"epoch {record['epoch']} is at chance ({chance}); {then}. Likely fix: "
                f"{self.likely_fix(record)}"
            )

    def chance_diagnosis(self, record: dict[str, Any]) -> str | None:
        """Why an epoch's record is at chance level, or ``None`` when the model is learning."""
        classes = self.meta.num_classes
        # A uniform guess scores ln(classes) on every head whose loss is added in.
        chance_loss = math.log(classes) * (1 + self.config.aux_loss_weight * self.aux_heads)
        chance_acc = 1 / classes
        # The training loss is the epoch's mean, its first steps included: AlexNet can blow up
        # early and still end the epoch at 45% (loss 3.27 on average), so the end-of-epoch
        # model's validation loss must agree before the epoch counts as at chance.
        if record["train_loss"] >= chance_loss and record["val_loss"] >= math.log(classes):
            return (
                f"training loss {record['train_loss']:.3f} >= chance {chance_loss:.3f}, "
                f"validation loss {record['val_loss']:.3f}"
            )
        if record["val_acc"] <= chance_acc + CHANCE_ACCURACY_MARGIN:
            return (
                f"validation accuracy {100 * record['val_acc']:.2f}% with {classes} classes, "
                f"chance {100 * chance_acc:.2f}%"
            )
        return None

    def likely_fix(self, record: dict[str, Any]) -> str:
        """The setting most likely to get a stalled run learning."""
        lr, clip = lr_advice(self.config), self.config.grad_clip
        if record["train_loss"] > 1.1 * math.log(self.meta.num_classes):  # above a guess: blew up
            advice = f"lower --lr ({lr})"
            return advice + ("" if clip else " or clip gradients with --grad-clip 1")
        return (
            f"the network is not learning: lower --lr ({lr}; dead ReLUs after a too-large step "
            "are the usual cause), or a variant with batch norm"
        )

    def check_stall(self) -> None:
        """Stop a run at chance (the stall guard) after ``stall_patience`` epochs or at the end.

        A run whose last epoch is at chance is never finished (its model would be reported as a
        result): it fails with ``results.json`` saying why, and its checkpoints are kept.
        """
        w, config = self.watch, self.config
        over = self.progress.epoch >= config.epochs or w.stopped_early
        if not (config.stall_patience and w.stalled_epochs):
            return
        if w.stalled_epochs >= config.stall_patience or over:
            record = self.progress.history[-1]
            self.fail(
                f"training stalled at chance for {w.stalled_epochs} epoch(s) (epoch "
                f"{record['epoch']}: {self.chance_diagnosis(record)}): {self.likely_fix(record)}; "
                f"the checkpoints in {self.files.checkpoints} are kept (--resume with "
                "--stall-patience 0 to go on regardless)"
            )

    def fail(self, reason: str) -> None:
        """End the run with a one-line :class:`TrainingError`; ``results.json`` says why."""
        if self.dist.is_main:
            results = {
                "status": "failed",
                "reason": reason,
                "epochs": self.config.epochs,
                "epochs_done": self.progress.epoch,
                "steps": self.progress.step,
                "seconds": round(time.perf_counter() - self.t_start, 2),
            }
            write_json_atomic(self.files.results, results)
        raise TrainingError(reason) from None

    # --- checkpoints and the end ----------------------------------------------------------------

    def save_checkpoint(self, epoch_done: bool, order_state: torch.Tensor) -> None:
        """All ranks take part (RNG states are gathered); rank 0 writes."""
        p, dist = self.progress, self.dist
        rng_tensors, rng_scalars = ckpt.capture_rng()
        rank_rng: list[dict[str, torch.Tensor]] = [{} for _ in range(dist.world_size)]
        for name, value in rng_tensors.items():
            for r, state in enumerate(ddp.gather_uint8(_as_uint8(value), dist, self.device)):
                rank_rng[r][name] = _from_uint8(state, value)
        sums = ddp.all_reduce_sum(p.epoch_sums.clone(), dist, self.device)
        if not dist.is_main:
            return
        state = ckpt.TrainingState(
            step=p.step,
            epoch=p.epoch + 1 if epoch_done else p.epoch,
            batch=0 if epoch_done else p.batch + 1,
            history=p.history,
            epoch_sums=[0.0, 0.0, 0.0] if epoch_done else sums.tolist(),
            model=self.model.state_dict(),
            optimizer=self.optimizer.state_dict(),
            plateau=self.plateau.state_dict(),
            rank_rng=rank_rng,
            rng_scalars=rng_scalars,
            order_rng=order_state,
            augment_rng=self.augment_gen.get_state(),
            world_size=dist.world_size,
            threads=self.threads,
            config=to_dict(self.config),
            watch=dataclasses.replace(self.watch),
        )
        path = ckpt.save_training_state(
            self.files.checkpoints,
            state,
            self.meta,
            on_phase=lambda phase, path: self.events.on_checkpoint_phase(self, phase, path),
        )
        self.events.on_checkpoint(self, path)

    def finish(self) -> RunResult:
        """Evaluate on the test set once; write the final model, results and figures."""
        self.check_stall()  # a resumed run may be past its last epoch, and at chance
        test = self.evaluate(self.data.test_x, self.data.test_y)
        elapsed = time.perf_counter() - self.t_start
        if self.dist.is_main:
            self._write_outputs(test, elapsed)
        result = RunResult(
            self.files.root, self.config, test, self.progress.history, elapsed, self.notes
        )
        self.events.on_train_end(self, result)
        ddp.barrier(self.dist)
        return result

    def _write_outputs(self, test: EvalResult, elapsed: float) -> None:
        config, classes = self.config, self.meta.classes
        meta = dataclasses.replace(self.meta, test_top1=test.top1)
        digests = {self.files.model.name: ckpt.save_model(self.files.model, self.model, meta)}
        if self.files.model_best.is_file():  # written at the best epoch, maybe by an earlier run
            best = file_digest(self.files.model_best)
            if best is not None:
                digests[self.files.model_best.name] = best
        w = self.watch
        results = {
            "status": "finished",
            "test": test.to_dict(classes),
            "seconds": round(elapsed, 2),
            "epochs": config.epochs,
            "epochs_done": self.progress.epoch,
            "steps": self.progress.step,
            "best": {"epoch": w.best_epoch, "val_acc": w.best_val_acc},
            "stopped_early": w.stopped_early,
            "files": digests,
        }
        write_json_atomic(self.files.results, results)
        title = f"{config.model} on {config.data}"
        history = self.progress.history
        if history:
            smoothing = config.label_smoothing
            train_label = "train (mean over the epoch" + (
                f", label smoothing {smoothing:g})" if smoothing else ")"
            )
            plot_curves(
                history, self.files.figures, title, config.schedule != "onecycle", train_label
            )
        plot_confusion(
            test.confusion,
            list(classes),
            self.files.figures / "confusion.png",
            f"{title}: test top-1 {100 * test.top1:.2f}%",
        )


def model_kwargs_for(config: TrainConfig) -> dict[str, Any]:
    """Named model settings the config passes to the builder (only ``dropout`` for now)."""
    if config.dropout is None:
        return {}
    params = inspect.signature(model_info(config.model).builder).parameters
    takes_any = any(p.kind is inspect.Parameter.VAR_KEYWORD for p in params.values())
    if "dropout" not in params and not takes_any:
        raise ConfigError(f"{config.model} has no dropout setting: leave out --dropout")
    return {"dropout": config.dropout}


def _as_uint8(t: torch.Tensor) -> torch.Tensor:
    """View any CPU tensor's bytes as uint8 (RNG states of NumPy/Python are int tensors)."""
    return t.contiguous().view(torch.uint8) if t.dtype != torch.uint8 else t


def _from_uint8(raw: torch.Tensor, like: torch.Tensor) -> torch.Tensor:
    return raw.view(like.dtype) if like.dtype != torch.uint8 else raw
