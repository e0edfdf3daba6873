"""The training loop: one flat function, :func:`train`, that reads top to bottom.

What happens, in order: resolve the recipe; pick the device and thread count; load the dataset
into memory as uint8 tensors and hold out a validation split fixed by the seed; build the model,
the optimizer and the schedule; restore a checkpoint when resuming; then for each epoch draw a
seeded permutation, and for each global batch index it out, augment it, take this rank's slice,
prepare it (normalise, resize), step; validate at the end of each epoch (the plateau rule looks
at validation accuracy, never at the test set); checkpoint at epoch ends and every
``--checkpoint-every`` steps; after the last epoch evaluate once on the test set and write the
final model, metrics and figures.

Exactness of ``--resume``: every source of randomness is an explicit, checkpointed state -- the
global torch RNG (weight init, dropout), the data-order generator (its state at the start of the
epoch, so the epoch's permutation is redrawn identically), the augmentation generator, NumPy's and
Python's RNGs -- and the batch position inside the epoch is stored, so on the CPU a resumed run
produces bitwise the same weights as an uninterrupted one (tests/test_train_resume.py).
Learning-rate schedules other than ``plateau`` are pure functions of the step, so they have no
state to lose.

The last incomplete batch of each epoch is dropped (a fresh permutation next epoch uses those
images), so every step sees exactly ``--batch-size`` images and the global batch always divides
evenly across DDP ranks.
"""

from __future__ import annotations

import inspect
import json
import math
import os
import random
import sys
import time
from contextlib import nullcontext
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn
from torch.nn import functional as F

from cnnlab import __version__
from cnnlab.errors import ConfigError, TrainingError
from cnnlab.registry import create_model, model_info
from cnnlab.train import checkpoint as ckpt
from cnnlab.train import distributed as ddp
from cnnlab.train.config import TrainConfig, differences, from_dict, to_dict
from cnnlab.train.figures import plot_confusion, plot_curves
from cnnlab.train.inputs import Augmenter, input_size_for, make_prepare, split_train_val
from cnnlab.train.metrics import EvalResult, Tally, evaluate
from cnnlab.train.recipes import resolve

AUTO_CHECKPOINT_SECONDS = 300  # --checkpoint-every 0: a checkpoint about every 5 minutes
CALIBRATION_STEPS = 20  # steps timed to turn those seconds into a step count
EVAL_BATCH_SIZE = 500  # images per forward pass when evaluating (no gradients: can be large)
ORDER_SEED_OFFSET = 1  # data-order generator = seed + 1, augmentation = seed + 2
AUGMENT_SEED_OFFSET = 2
MULTISTEP_MILESTONES = (0.5, 0.75)  # DenseNet (Huang et al. 2017, Sec. 4.2): lr / 10 at 50%, 75%


@dataclass
class RunResult:
    """What :func:`train` returns: where the run is and how it did."""

    run_dir: Path
    config: TrainConfig
    test: EvalResult
    history: list[dict[str, Any]]
    seconds: float


def log(message: str, main: bool = True) -> None:
    """Print a line (rank 0 only) without breaking a progress bar."""
    if main:
        from tqdm import tqdm

        tqdm.write(message, file=sys.stdout)
        sys.stdout.flush()


def pick_device(name: str) -> torch.device:
    """``auto`` is CUDA when available, else the CPU; asking for CUDA without one is an error."""
    if name == "cuda" and not torch.cuda.is_available():
        raise ConfigError("--device cuda: no CUDA device is available; use --device cpu or auto")
    if name == "auto":
        name = "cuda" if torch.cuda.is_available() else "cpu"
    return torch.device(name)


def set_threads(requested: int) -> tuple[int, str | None]:
    """Intra-op threads: the cores this process may use, split between local DDP ranks.

    On a machine that is already busy (1-minute load average at least twice the core count) more
    than one thread makes PyTorch's OpenMP workers wait on each other: LeNet-5 trained at 270
    images/s with 2 threads and 2,800 with 1 on a loaded 2-core machine (measured here). Then
    one thread is used, with a note. Checkpoints record the thread count, and ``--resume``
    without ``--threads`` uses it again, since bitwise-exact resume needs the same count.

    Returns:
        The thread count set, and a note to print when the machine was busy.
    """
    note = None
    if requested:
        n = requested
    else:
        cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
        local_ranks = int(os.environ.get("LOCAL_WORLD_SIZE", "1"))
        n = max(1, (cores or 1) // local_ranks)
        load = os.getloadavg()[0] if hasattr(os, "getloadavg") else 0.0
        # Twice the core count: a run that just finished (or this process's own start-up)
        # still weighs on the 1-minute average, and must not halve the next run's threads.
        if n > 1 and load >= 2 * (cores or 1):
            note = (
                f"note: the machine is busy (load {load:.1f} on {cores} cores): training "
                f"with 1 thread instead of {n}; pass --threads {n} to override"
            )
            n = 1
    torch.set_num_threads(n)
    return n, note


def default_run_dir(config: TrainConfig) -> Path:
    return Path("runs") / f"{config.model}-{Path(str(config.data)).name}"


def model_kwargs_for(config: TrainConfig) -> dict[str, Any]:
    """Named model settings the config passes to the builder (only ``dropout`` for now)."""
    if config.dropout is None:
        return {}
    params = inspect.signature(model_info(config.model).builder).parameters
    takes_any = any(p.kind is inspect.Parameter.VAR_KEYWORD for p in params.values())
    if "dropout" not in params and not takes_any:
        raise ConfigError(f"{config.model} has no dropout setting: leave out --dropout")
    return {"dropout": config.dropout}


def make_optimizer(config: TrainConfig, model: nn.Module) -> torch.optim.Optimizer:
    """SGD (the lectures' optimizer) or AdamW, with the config's weight decay on every weight."""
    if config.optimizer == "sgd":
        return torch.optim.SGD(
            model.parameters(),
            lr=config.lr,
            momentum=config.momentum,
            nesterov=config.nesterov and config.momentum > 0,
            weight_decay=config.weight_decay,
        )
    return torch.optim.AdamW(
        model.parameters(),
        lr=config.lr,
        betas=(config.momentum, 0.999),
        weight_decay=config.weight_decay,
    )


def scheduled_lr(config: TrainConfig, epoch: int, step: int, total_steps: int) -> float:
    """The learning rate of a stateless schedule at ``step`` (in ``epoch``, 0-based).

    ``plateau`` is stateful (it watches validation accuracy) and is handled by
    ``ReduceLROnPlateau``; here it is a constant.
    """
    base = config.lr
    if config.schedule == "onecycle":
        # Linear warm-up from 0 to the peak over the first `warmup` fraction, then linear decay
        # to 0 at the end (the triangular one-cycle policy, Smith & Topin 2018).
        t = (step + 1) / total_steps
        w = config.warmup
        return base * (t / w if t < w else max(0.0, (1 - t) / (1 - w)))
    if config.schedule == "step":
        return base * config.lr_decay ** (epoch // config.step_epochs)
    if config.schedule == "multistep":
        passed = sum(epoch >= m * config.epochs for m in MULTISTEP_MILESTONES)
        return base * 0.1**passed
    return base


def loss_and_logits(
    output: torch.Tensor | tuple[torch.Tensor, ...],
    labels: torch.Tensor,
    config: TrainConfig,
) -> tuple[torch.Tensor, torch.Tensor]:
    """Cross-entropy of the main output plus weighted auxiliary losses (GoogLeNet in training).

    A model with auxiliary classifiers returns a tuple ``(logits, aux2, aux1)`` in train mode;
    Szegedy et al. 2014 (Sec. 5) add each auxiliary loss with weight 0.3.
    """
    smoothing = config.label_smoothing
    if isinstance(output, torch.Tensor):
        return F.cross_entropy(output, labels, label_smoothing=smoothing), output
    logits, *aux = output
    loss = F.cross_entropy(logits, labels, label_smoothing=smoothing)
    for a in aux:
        if a is not None:
            loss = loss + config.aux_loss_weight * F.cross_entropy(
                a, labels, label_smoothing=smoothing
            )
    return loss, logits


def _prepare_run_dir(config: TrainConfig, main: bool) -> tuple[Path, Path | None]:
    """Check the run directory; return it and the checkpoint to resume from (or None)."""
    run_dir = Path(config.out) if config.out else default_run_dir(config)
    written = run_dir / "config.json"
    if not config.resume:
        if written.exists() or any((run_dir / ckpt.CHECKPOINT_DIR).glob("step-*")):
            raise ConfigError(
                f"{run_dir} already holds a run: pass --resume to continue it, or --out NEW_DIR"
            )
        return run_dir, None
    if not written.exists():
        log(f"note: {run_dir} holds no run yet; --resume starts it from the beginning", main)
        return run_dir, None
    try:
        old = from_dict(json.loads(written.read_text()))
    except (json.JSONDecodeError, TypeError) as err:
        raise ConfigError(f"{written} is damaged ({err}): start a new run with --out") from None
    allowed = {"epochs"} if config.schedule in ("plateau", "step", "constant") else set()
    diffs = [d for d in differences(old, config) if d.split(":")[0] not in allowed]
    if diffs:
        raise ConfigError(
            f"cannot resume {run_dir}: its config differs ({'; '.join(diffs)}); "
            "resume with the same settings or start a new run with --out"
        )
    if main:  # files a killed run was writing when it died
        ckpt.remove_temporaries(run_dir)
        ckpt.remove_temporaries(run_dir / ckpt.CHECKPOINT_DIR)
    latest, rejected = ckpt.latest_valid_checkpoint(run_dir / ckpt.CHECKPOINT_DIR)
    for reason in rejected:
        log(f"note: skipping damaged checkpoint: {reason}", main)
    if latest is None:
        log(f"note: {run_dir} has no valid checkpoint; --resume starts from the beginning", main)
    return run_dir, latest


def train(config: TrainConfig, given: set[str] | None = None) -> RunResult:
    """Train a model as ``config`` says; the body of ``cnnlab train``.

    Args:
        config: the settings; recipe fields left ``None`` are filled by the recipe.
        given: names of the settings the user gave explicitly (recipe fields not in it are
            filled even when set); default: the non-``None`` ones.

    Returns:
        The run's directory, resolved config, test metrics and per-epoch history.

    Raises:
        ConfigError: inconsistent settings, or a resume whose config differs.
        TrainingError: a non-finite loss (the last good checkpoint is kept).
    """
    from cnnlab.data import dataset_info, load_dataset

    t_start = time.perf_counter()
    config, notes = resolve(config, given)
    device = pick_device(config.device)
    dist = ddp.from_env()
    device = ddp.device_for(device, dist)
    dist = ddp.setup(device)
    main = dist.is_main
    threads, threads_note = (
        set_threads(config.threads) if device.type == "cpu" else (torch.get_num_threads(), None)
    )
    try:
        if config.batch_size % dist.world_size:
            raise ConfigError(
                f"--batch-size {config.batch_size} does not split evenly over {dist.world_size} "
                f"ranks: use a multiple of {dist.world_size}"
            )
        run_dir, resume_from = _prepare_run_dir(config, main)
        ddp.barrier(dist)  # every rank has judged the run directory before rank 0 writes to it
        for n in [*notes, threads_note] if threads_note else notes:
            log(n, main)

        # --- data: everything in memory as uint8; the validation split is fixed by the seed ----
        info = dataset_info(config.data, root=config.data_dir)
        images, labels = load_dataset(config.data, "train", root=config.data_dir)
        train_x, train_y, val_x, val_y = split_train_val(
            images, labels, config.val_size, config.seed
        )
        if config.limit_train is not None:
            train_x, train_y = train_x[: config.limit_train], train_y[: config.limit_train]
        test_x, test_y = load_dataset(config.data, "test", root=config.data_dir)
        if config.limit_test is not None:
            test_x, test_y = test_x[: config.limit_test], test_y[: config.limit_test]
        steps_per_epoch = len(train_x) // config.batch_size
        if steps_per_epoch == 0:
            raise ConfigError(
                f"--batch-size {config.batch_size} is larger than the {len(train_x)} training "
                "images: use a smaller batch or more data"
            )
        total_steps = steps_per_epoch * config.epochs
        num_classes, in_channels = len(info.classes), int(train_x.shape[1])

        # --- model ------------------------------------------------------------------------------
        minfo = model_info(config.model)
        size, resize_note = input_size_for(minfo, tuple(train_x.shape[-2:]), config.image_size)
        if resize_note:
            log(resize_note, main)
        # Every global RNG is seeded (and checkpointed) even where cnnlab draws nothing from
        # NumPy or Python's `random`, so user code and libraries that do stay reproducible.
        torch.manual_seed(config.seed + dist.rank)  # weights are broadcast from rank 0 by DDP
        np.random.seed(config.seed + dist.rank)
        random.seed(config.seed + dist.rank)
        kwargs = model_kwargs_for(config)
        try:
            model = create_model(
                config.model, num_classes=num_classes, in_channels=in_channels, **kwargs
            )
        except TypeError as err:  # a **kwargs builder that has no such setting after all
            raise ConfigError(f"{config.model} does not take {sorted(kwargs)} ({err})") from None
        memory = torch.channels_last if config.channels_last else torch.contiguous_format
        model.to(device=device, memory_format=memory)
        meta = {
            "cnnlab_version": __version__,
            "model": config.model,
            "model_kwargs": kwargs,
            "num_classes": num_classes,
            "in_channels": in_channels,
            "input_size": [in_channels, *size],
            "dataset": str(config.data),
            "classes": list(info.classes),
            "mean": list(info.mean),
            "std": list(info.std),
            "seed": config.seed,
            "recipe": config.recipe,
            "tta": bool(config.tta),  # perf: how the reported accuracy was evaluated
        }
        optimizer = make_optimizer(config, model)
        plateau = torch.optim.lr_scheduler.ReduceLROnPlateau(
            optimizer, mode="max", factor=config.lr_decay, patience=config.plateau_patience
        )
        prepare = make_prepare(size, info.mean, info.std, device, config.channels_last)
        augmenter = Augmenter.from_setting(config.augment, config.crop_padding)
        order_gen = torch.Generator().manual_seed(config.seed + ORDER_SEED_OFFSET)
        augment_gen = torch.Generator().manual_seed(config.seed + AUGMENT_SEED_OFFSET)
        autocast = (
            torch.autocast(device.type, dtype=torch.bfloat16)
            if config.precision == "bf16"
            else nullcontext()
        )

        # --- state: fresh, or restored from the newest valid checkpoint ------------------------
        step, epoch, start_batch = 0, 0, 0
        history: list[dict[str, Any]] = []
        epoch_sums = torch.zeros(3, dtype=torch.float64)  # loss * n, correct, n (this rank)
        if resume_from is not None:
            tensors, record = ckpt.load_checkpoint(resume_from)
            if record["world_size"] != dist.world_size:
                raise ConfigError(
                    f"{run_dir} was trained with {record['world_size']} processes, now "
                    f"{dist.world_size}: resume with --nproc_per_node {record['world_size']}"
                )
            recorded_threads = record.get("threads")
            if (
                device.type == "cpu"
                and not config.threads
                and recorded_threads not in (None, threads)
            ):
                # CPU kernels split reductions by thread count, so the same count is what makes
                # the resumed run bitwise equal to an uninterrupted one.
                threads = recorded_threads
                torch.set_num_threads(threads)
                log(f"note: using {threads} thread(s), as the interrupted run did", main)
            model.load_state_dict({k[6:]: v for k, v in tensors.items() if k[:6] == "model."})
            optimizer.load_state_dict(
                ckpt.optimizer_state_from_files(
                    {k[6:]: v for k, v in tensors.items() if k[:6] == "optim."},
                    record["optimizer"],
                )
            )
            plateau.load_state_dict(record["plateau"])
            rng = {k[4:]: v for k, v in tensors.items() if k[:4] == "rng."}
            rank_rng = {
                k.split(".", 1)[1]: v for k, v in rng.items() if k.startswith(f"rank{dist.rank}.")
            }
            ckpt.restore_rng(rank_rng, record["rng"])
            order_gen.set_state(rng["order"])
            augment_gen.set_state(rng["augment"])
            step, epoch, start_batch = record["step"], record["epoch"], record["batch"]
            history = record["history"]
            if main:
                epoch_sums = torch.tensor(record["epoch_sums"], dtype=torch.float64)
            if epoch >= config.epochs:
                log(f"{run_dir} finished training at step {step}: evaluating it again", main)
            else:
                log(
                    f"resumed {run_dir} from {resume_from.name} (epoch {epoch + 1}, step {step})",
                    main,
                )
        if main:
            run_dir.mkdir(parents=True, exist_ok=True)
            ckpt.write_json_atomic(run_dir / "config.json", to_dict(config))
            # metrics.jsonl always equals the checkpoint's history: a killed run may have logged
            # an epoch its checkpoint does not hold.
            (run_dir / "metrics.jsonl").write_text("".join(json.dumps(h) + "\n" for h in history))
        net = ddp.wrap(model, dist, device)
        log(
            f"training {config.model} on {config.data} ({len(train_x)} train / {len(val_x)} val / "
            f"{len(test_x)} test images, {size[0]}x{size[1]}) with the {config.recipe} recipe: "
            f"{config.optimizer} lr {config.lr:g} {config.schedule}, batch {config.batch_size}, "
            f"{config.epochs} epoch{'s' * (config.epochs > 1)}, {config.precision}, {device}"
            + (
                f" x{dist.world_size} ranks"
                if dist.enabled
                else f", {threads} thread{'s' * (threads > 1)}"
            ),
            main,
        )

        def save_checkpoint(epoch_done: bool, order_state: torch.Tensor) -> None:
            """All ranks take part (RNG states are gathered); rank 0 writes."""
            rng_tensors, rng_scalars = ckpt.capture_rng()
            tensors: dict[str, torch.Tensor] = {}
            for name, value in rng_tensors.items():
                for r, state in enumerate(ddp.gather_uint8(_as_uint8(value), dist, device)):
                    tensors[f"rng.rank{r}.{name}"] = _from_uint8(state, value)
            sums = ddp.all_reduce_sum(epoch_sums.clone(), dist, device)
            if not main:
                return
            tensors["rng.order"] = order_state
            tensors["rng.augment"] = augment_gen.get_state()
            tensors |= {f"model.{k}": v for k, v in model.state_dict().items()}
            optim_tensors, optim_json = ckpt.optimizer_state_to_files(optimizer)
            tensors |= {f"optim.{k}": v for k, v in optim_tensors.items()}
            state = {
                "cnnlab_version": __version__,
                "epoch": epoch + 1 if epoch_done else epoch,
                "batch": 0 if epoch_done else batch + 1,
                "world_size": dist.world_size,
                "threads": threads,
                "config": to_dict(config),
                "optimizer": optim_json,
                "plateau": plateau.state_dict(),
                "rng": rng_scalars,
                "epoch_sums": [0.0, 0.0, 0.0] if epoch_done else sums.tolist(),
                "history": history,
            }
            ckpt.save_checkpoint(run_dir / ckpt.CHECKPOINT_DIR, step, tensors, state, meta)

        # --- the loop ---------------------------------------------------------------------------
        checkpoint_every = config.checkpoint_every
        calibration: tuple[int, float] | None = None
        while epoch < config.epochs:
            order_state = order_gen.get_state()  # the state this epoch's permutation comes from
            permutation = torch.randperm(len(train_x), generator=order_gen)
            t_epoch, images_seen = time.perf_counter(), 0
            bar = _progress(config, epoch, steps_per_epoch, start_batch, main)
            net.train()
            for batch in range(start_batch, steps_per_epoch):
                index = permutation[batch * config.batch_size : (batch + 1) * config.batch_size]
                x = augmenter(train_x[index], augment_gen)  # the whole global batch, every rank
                x, y = ddp.shard(x, dist), ddp.shard(train_y[index], dist).to(device)
                if config.schedule != "plateau":
                    lr = scheduled_lr(config, epoch, step, total_steps)
                    for group in optimizer.param_groups:
                        group["lr"] = lr
                with autocast:
                    loss, logits = loss_and_logits(net(prepare(x)), y, config)
                loss_value = loss.item()
                if not math.isfinite(loss_value):
                    raise TrainingError(
                        f"loss became {loss_value} at step {step + 1} (epoch {epoch + 1}); the "
                        f"last good checkpoint in {run_dir / ckpt.CHECKPOINT_DIR} is kept: lower "
                        f"--lr (now {optimizer.param_groups[0]['lr']:g}) and start a new run"
                    )
                optimizer.zero_grad(set_to_none=True)
                loss.backward()
                optimizer.step()
                step += 1
                epoch_sums += torch.tensor(
                    [loss_value * len(y), (logits.argmax(1) == y).sum().item(), len(y)],
                    dtype=torch.float64,
                )
                images_seen += config.batch_size
                if bar is not None:
                    bar.update()
                    if batch % 10 == 0 or batch == steps_per_epoch - 1:
                        rate = images_seen / (time.perf_counter() - t_epoch)
                        bar.set_postfix_str(
                            f"loss {epoch_sums[0] / epoch_sums[2]:.4f} "
                            f"acc {100 * epoch_sums[1] / epoch_sums[2]:.2f}% {rate:,.0f} img/s"
                        )
                # Turn "every 5 minutes" into a step count once, from rank 0's timing.
                if checkpoint_every == 0:
                    if calibration is None:
                        calibration = (step, time.perf_counter())
                    elif step - calibration[0] == CALIBRATION_STEPS:
                        per_step = (time.perf_counter() - calibration[1]) / CALIBRATION_STEPS
                        every = max(1, round(AUTO_CHECKPOINT_SECONDS / per_step))
                        checkpoint_every = ddp.broadcast_int(every, dist, device)
                if (
                    checkpoint_every
                    and step % checkpoint_every == 0
                    and batch < steps_per_epoch - 1
                ):
                    save_checkpoint(epoch_done=False, order_state=order_state)
            if bar is not None:
                bar.close()
            seconds = time.perf_counter() - t_epoch

            # --- end of epoch: global train metrics, validation, schedule, log, checkpoint ----
            sums = ddp.all_reduce_sum(epoch_sums.clone(), dist, device)
            ddp.broadcast_buffers(model, dist)
            val = _evaluate(model, val_x, val_y, prepare, num_classes, dist, device, config.tta)
            lr_used = optimizer.param_groups[0]["lr"]
            if config.schedule == "plateau":
                plateau.step(val.top1)
            record_epoch = {
                "epoch": epoch + 1,
                "step": step,
                "train_loss": float(sums[0] / sums[2]),
                "train_acc": float(sums[1] / sums[2]),
                "val_loss": val.loss,
                "val_acc": val.top1,
                "lr": lr_used,
                "seconds": round(seconds, 3),
                "images_per_s": round(images_seen / seconds, 1),
            }
            if config.test_every_epoch:  # perf: the time-to-accuracy curve; read by nothing here
                t_test = time.perf_counter()
                record_epoch["test_acc"] = _evaluate(
                    model, test_x, test_y, prepare, num_classes, dist, device, config.tta
                ).top1
                # What this extra evaluation cost, so a benchmark can take it out of the run time.
                record_epoch["test_seconds"] = round(time.perf_counter() - t_test, 3)
            history.append(record_epoch)
            if main:
                with open(run_dir / "metrics.jsonl", "a") as f:
                    f.write(json.dumps(record_epoch) + "\n")
            log(
                f"epoch {epoch + 1}/{config.epochs}  train loss {record_epoch['train_loss']:.4f} "
                f"acc {100 * record_epoch['train_acc']:.2f}%  val loss {val.loss:.4f} "
                f"acc {100 * val.top1:.2f}%  lr {lr_used:.4g}  {seconds:.1f} s  "
                f"{record_epoch['images_per_s']:,.0f} img/s",
                main,
            )
            epoch_sums.zero_()
            save_checkpoint(epoch_done=True, order_state=order_gen.get_state())
            epoch, start_batch = epoch + 1, 0

        # --- the end: test set once, final weights, results, figures ------------------------------
        test = _evaluate(model, test_x, test_y, prepare, num_classes, dist, device, config.tta)
        elapsed = time.perf_counter() - t_start
        if main:
            ckpt.save_model(run_dir / ckpt.MODEL_FILE, model, {**meta, "test_top1": test.top1})
            ckpt.write_json_atomic(
                run_dir / "results.json",
                {
                    "test": test.to_dict(info.classes),
                    "seconds": round(elapsed, 2),
                    "epochs": config.epochs,
                    "steps": step,
                },
            )
            title = f"{config.model} on {config.data}"
            figures = run_dir / "figures"
            if history:
                smoothing = config.label_smoothing
                train_label = "train (mean over the epoch" + (
                    f", label smoothing {smoothing:g})" if smoothing else ")"
                )
                plot_curves(history, figures, title, config.schedule != "onecycle", train_label)
            plot_confusion(
                test.confusion,
                info.classes,
                figures / "confusion.png",
                f"{title}: test top-1 {100 * test.top1:.2f}%",
            )
        log(
            f"test accuracy {100 * test.top1:.2f}% (top-5 {100 * test.top5:.2f}%, loss "
            f"{test.loss:.4f}) on {test.count} images; {elapsed:.1f} s in all; run in {run_dir}",
            main,
        )
        ddp.barrier(dist)
        return RunResult(run_dir, config, test, history, elapsed)
    finally:
        ddp.cleanup(dist)


def _evaluate(
    model: nn.Module,
    images: torch.Tensor,
    labels: torch.Tensor,
    prepare: Any,
    num_classes: int,
    dist: ddp.DistInfo,
    device: torch.device,
    tta: bool = False,
) -> EvalResult:
    """Evaluate on this rank's contiguous share of the images; tallies are summed over ranks."""
    part = torch.tensor_split(torch.arange(len(images)), dist.world_size)[dist.rank]
    lo, hi = (int(part[0]), int(part[-1]) + 1) if len(part) else (0, 0)

    def reduce(tally: Tally) -> None:
        ddp.all_reduce_sum(tally.confusion, dist, device)
        ddp.all_reduce_sum(tally.sums, dist, device)

    return evaluate(
        model, images[lo:hi], labels[lo:hi], prepare, num_classes, EVAL_BATCH_SIZE, reduce, tta
    )


def _as_uint8(t: torch.Tensor) -> torch.Tensor:
    """View any CPU tensor's bytes as uint8 (RNG states of NumPy/Python are int tensors)."""
    return t.contiguous().view(torch.uint8) if t.dtype != torch.uint8 else t


def _from_uint8(raw: torch.Tensor, like: torch.Tensor) -> torch.Tensor:
    return raw.view(like.dtype) if like.dtype != torch.uint8 else raw


def _progress(config: TrainConfig, epoch: int, total: int, initial: int, main: bool) -> Any:
    if not (config.progress and main):
        return None
    from tqdm import tqdm

    return tqdm(
        total=total,
        initial=initial,
        desc=f"epoch {epoch + 1}/{config.epochs}",
        unit="step",
        leave=False,
        dynamic_ncols=True,
        disable=None,  # no bar when stderr is not a terminal (logs, CI): the epoch lines remain
        file=sys.stderr,
    )
