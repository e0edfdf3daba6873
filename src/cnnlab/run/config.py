"""One configuration dataclass for a training run; the ``cnnlab train`` flags are generated from it.

It lives with the run, not with training: ``config.json`` is part of a run's record, read by
everything that uses a run (``cnnlab report``, ``runs``, experiments, the studio) as much as it is
written by :mod:`cnnlab.train`.

Every setting lives in :class:`TrainConfig`, with its unit in the field's help text. Fields whose
default is ``None`` are *recipe* fields: :func:`cnnlab.run.recipes.resolve` fills them from the
chosen recipe (``paper`` or ``fast``) unless the user set them. The resolved config is what a run
writes to ``config.json`` and what ``--resume`` compares against.

The command line is derived from the fields (:func:`add_config_arguments`), so a new setting is one
field here and nothing else: its help text, type, choices and ``--no-`` form for booleans all come
from the field.
"""

from __future__ import annotations

import argparse
import dataclasses
import functools
import math
import types
import typing
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from cnnlab.data.datasets import DATASETS, DEFAULT_DATASET
from cnnlab.errors import ConfigError
from cnnlab.formats import printable


def _opt(help: str, default: Any = None, **extra: Any) -> Any:
    """A dataclass field whose metadata carries its command-line help (and choices)."""
    return field(default=default, metadata={"help": help, **extra})


@dataclass
class TrainConfig:
    """Everything that defines a training run. ``None`` means "from the recipe"."""

    # --- what to train on what ------------------------------------------------------------------
    model: str | None = _opt(
        "registered model name (see `cnnlab models`); default: the fast default model",
        positional=True,
    )
    data: str = _opt(
        f"dataset: {', '.join(DATASETS)}, or a path to an image folder",
        DEFAULT_DATASET,
        metavar="NAME|PATH",
    )
    data_dir: str | None = _opt(
        "where datasets are looked up first (default: $CNNLAB_DATA)", metavar="DIR"
    )
    recipe: str = _opt(
        "hyperparameter recipe: 'paper' follows the lectures per family, 'fast' is the tuned "
        "modern recipe, 'fast94' the fast recipe trained longer with crops (94 percent on "
        "Fashion-MNIST in three minutes)",
        "fast",
        choices=("paper", "fast", "fast94"),  # fast94: recipes.FAST_PRESETS
    )

    # --- optimisation (recipe fields) -----------------------------------------------------------
    epochs: int | None = _opt("passes over the training split")
    batch_size: int | None = _opt(
        "global batch in images per optimizer step (under torchrun each rank takes an equal slice)"
    )
    optimizer: str | None = _opt("optimizer", choices=("sgd", "adamw"))
    lr: float | None = _opt("initial (peak, for onecycle) learning rate")
    momentum: float | None = _opt("SGD momentum (beta1 for adamw)")
    nesterov: bool | None = _opt("use Nesterov momentum (SGD only)")
    weight_decay: float | None = _opt("L2 weight decay (decoupled for adamw)")
    schedule: str | None = _opt(
        "learning-rate schedule: plateau = divide by 10 when validation accuracy stops improving; "
        "onecycle = linear warm-up then linear decay to 0, per step; step = multiply by "
        "--lr-decay every --step-epochs; multistep = divide by 10 at 50%% and 75%% of the epochs",
        choices=("plateau", "onecycle", "step", "multistep", "constant"),
    )
    lr_decay: float | None = _opt("factor applied to the lr by plateau and step schedules")
    plateau_patience: int | None = _opt("epochs without validation improvement before a decay")
    step_epochs: int | None = _opt("epochs between decays of the step schedule")
    warmup: float | None = _opt("fraction of all steps spent warming up (onecycle)")
    label_smoothing: float | None = _opt("label smoothing of the cross-entropy, 0 to 1")
    grad_clip: float | None = _opt(
        "clip the global gradient norm to this before each update (0: no clipping)"
    )
    aux_loss_weight: float | None = _opt(
        "weight of auxiliary classifier losses (GoogLeNet: 0.3, Szegedy et al. 2014)"
    )
    dropout: float | None = _opt(
        "dropout probability passed to the model",
        shown_default="the model's own, the paper's",
    )
    augment: str | None = _opt(
        "training augmentation on whole batches",
        choices=("none", "crop", "flip", "crop+flip"),
    )
    crop_padding: int | None = _opt("pixels of zero padding before a random crop")
    precision: str | None = _opt(
        "compute precision: fp32, or bf16 autocast (weights stay fp32)", choices=("fp32", "bf16")
    )
    channels_last: bool | None = _opt("channels-last memory format (faster convolutions on CPU)")
    # perf (benchmarks/time_to_accuracy.py): flip test-time augmentation, a recipe field.
    tta: bool | None = _opt(
        "evaluate on each image and its horizontal mirror and average the logits (flip test-time "
        "augmentation; off for data where a mirror changes the class)"
    )
    image_size: int | None = _opt(
        "side in pixels the images are resized to (default: the data's own size, or the model's "
        "minimum/fixed input when that is larger)"
    )

    # --- data splits ----------------------------------------------------------------------------
    val_size: int = _opt(
        "training images held out (fixed by --seed) for validation and plateau decisions", 5000
    )
    val_fraction: float = _opt(
        "image folders without val/: fraction of each class held out for validation", 0.1
    )
    test_fraction: float = _opt(
        "image folders without test/: fraction of each class held out for testing", 0.1
    )
    classes: str = _opt(
        "named datasets: keep only these classes (indices or names, comma-separated), relabelled "
        "0.. in the order given",
        "",
        metavar="LIST",
        shown_default="all classes",
    )
    limit_per_class: int = _opt(
        "named datasets: train on the first N training images of each class (0: all)", 0
    )
    limit_train: int | None = _opt(
        "use only the first N training images (quick experiments)", shown_default="all"
    )
    limit_test: int | None = _opt("evaluate only the first N test images", shown_default="all")
    seed: int = _opt("seed of weights, data order, split and augmentation", 0)
    # perf: the time-to-accuracy curve. Reporting only: no decision ever reads the test set.
    test_every_epoch: bool = _opt(
        "also evaluate the test set after every epoch and log it as test_acc (for curves and "
        "benchmarks; the schedule and every other decision still use validation only)",
        False,
    )

    # --- when to stop early ---------------------------------------------------------------------
    early_stop: int = _opt(
        "stop after N epochs without a better validation accuracy (0: train every epoch); the "
        "best epoch's weights are in RUN_DIR/model_best.safetensors either way",
        0,
    )
    stall_patience: int = _opt(
        "epochs at chance (training and validation loss not below ln(classes), or validation "
        "accuracy at most 2 points above 1/classes) before training stops with an error; the "
        "first one warns (0: never stop, for experiments on slow starts)",
        2,
    )

    # --- starting from pretrained weights (cnnlab/weights.py) ---------------------------------
    weights: str = _opt(
        "start from weights: imagenet (torchvision's published file for this model), a "
        ".safetensors file or a cnnlab run directory; none: random initialisation",
        "none",
        metavar="imagenet|PATH",
    )
    finetune: str = _opt(
        "with --weights: train only the new head (a linear probe), or all layers",
        "all",
        choices=("head", "all"),
    )
    backbone_lr: float = _opt(
        "with --weights and --finetune all: learning rate of the pretrained layers, as a fraction "
        "of --lr",
        0.1,
    )

    # --- run directory and checkpoints ----------------------------------------------------------
    out: str | None = _opt("run directory (default: runs/MODEL-DATA)", metavar="RUN_DIR")
    resume: bool = _opt("continue the run in --out from its newest valid checkpoint", False)
    checkpoint_every: int = _opt(
        "also checkpoint every N optimizer steps (0: about every 5 minutes, measured)", 0
    )

    # --- machine --------------------------------------------------------------------------------
    device: str = _opt(
        "where to train: cpu, cuda, or auto (cuda when available)",
        "auto",
        choices=("auto", "cpu", "cuda"),
    )
    threads: int = _opt("CPU threads for torch (0: all cores this process may use)", 0)
    progress: bool = _opt("show a progress bar per epoch", True)
    log: str = _opt(
        "also log to TensorBoard event files in RUN_DIR/tb/ (needs the tensorboard package); "
        "nothing is sent anywhere",
        "none",
        choices=("none", "tensorboard"),
    )


# Fields a resumed run may change without changing the result: where it runs and how it reports.
RESUME_MAY_DIFFER = frozenset(
    {
        "out",
        "resume",
        "device",
        "threads",
        "progress",
        "checkpoint_every",
        "data_dir",
        "test_every_epoch",
        "log",
        "stall_patience",  # decides only whether a run goes on: relax it to resume a stalled run
    }
)


# Settings that change training only together with another: elsewhere their value is never read,
# so a command that reproduces a run leaves them out (a recipe sets them all, every family).
MATTERS_ONLY_WHEN: dict[str, Callable[[TrainConfig], bool]] = {
    "nesterov": lambda c: c.optimizer == "sgd",
    "lr_decay": lambda c: c.schedule in ("plateau", "step"),
    "plateau_patience": lambda c: c.schedule == "plateau",
    "step_epochs": lambda c: c.schedule == "step",
    "warmup": lambda c: c.schedule == "onecycle",
    "crop_padding": lambda c: c.augment is not None and "crop" in c.augment,
    # the auxiliary classifiers are GoogLeNet's and Inception v3's (cnnlab.models.googlenet)
    "aux_loss_weight": lambda c: (
        c.model is not None and (c.model.startswith("googlenet") or c.model.startswith("inception"))
    ),
}


def matters(config: TrainConfig, name: str) -> bool:
    """Whether training reads ``config``'s setting ``name`` (see :data:`MATTERS_ONLY_WHEN`)."""
    rule = MATTERS_ONLY_WHEN.get(name)
    return rule is None or rule(config)


@functools.cache
def _hints() -> dict[str, Any]:
    """TrainConfig's field types, resolved once: typing.get_type_hints compiles every string
    annotation again on each call (1.2 ms, 40% of reading a run for the studio's runs list)."""
    return typing.get_type_hints(TrainConfig)


def recipe_fields() -> list[str]:
    """Names of the fields a recipe fills (those whose default is ``None``, except the model)."""
    skip = {"model", "data_dir", "out", "limit_train", "limit_test"}
    return [
        f.name for f in dataclasses.fields(TrainConfig) if f.default is None and f.name not in skip
    ]


def to_dict(config: TrainConfig) -> dict[str, Any]:
    """The config as a JSON-ready dict (tuples become lists)."""
    return dataclasses.asdict(config)


def from_dict(data: Any) -> TrainConfig:
    """Rebuild a config from :func:`to_dict`'s output, checking every setting.

    Each value must have its field's type (an int where a float is expected is accepted; a bool
    is never a number), be finite, be one of the field's choices, and pass :func:`validate`; a
    missing setting takes its field default, as for a config written by an older version.

    Raises:
        ConfigError: not a JSON object, an unknown setting (written by another cnnlab version),
            or a value of the wrong type, out of its choices or out of range; one line that
            names the setting.
    """
    if not isinstance(data, dict):
        raise ConfigError(f"a config is a JSON object of settings, not {_kind(data)}")
    hints = _hints()
    fields = {f.name: f for f in dataclasses.fields(TrainConfig)}
    unknown = sorted(set(data) - set(fields))
    if unknown:
        names = ", ".join(_shown(name) for name in unknown[:5])
        raise ConfigError(
            f"config has unknown settings {names}: it was written by another cnnlab version; "
            "start a new run with --out"
        )
    values = {name: _checked(name, v, hints[name], fields[name]) for name, v in data.items()}
    config = TrainConfig(**values)
    validate(config)
    return config


def _checked(name: str, value: Any, annotation: Any, f: dataclasses.Field) -> Any:
    """``value`` as the setting ``name`` takes it, or a :class:`ConfigError` naming it."""
    kind = _base_type(annotation)
    optional = kind is not annotation  # ``X | None``
    if value is None:
        if optional:
            return None
        raise ConfigError(f"setting {name} must be {_NAMES[kind]}, not null")
    if kind is float and isinstance(value, int) and not isinstance(value, bool):
        value = float(value)
    if type(value) is not kind:
        raise ConfigError(f"setting {name} must be {_NAMES[kind]}, not {_kind(value)}")
    if kind is float and not math.isfinite(value):
        raise ConfigError(f"setting {name} must be a finite number, not {value}")
    choices = f.metadata.get("choices")
    if choices is not None and value not in choices:
        raise ConfigError(f"setting {name} is {_shown(value)}, not one of {', '.join(choices)}")
    return value


_NAMES = {str: "a string", int: "an integer", float: "a number", bool: "true or false"}


def _kind(value: Any) -> str:
    """What a JSON value is, for a message: ``a list``, ``null``, ``a string``."""
    if value is None:
        return "null"
    names = {bool: "true/false", int: "an integer", float: "a number", str: "a string"}
    return names.get(type(value), {list: "a list", dict: "an object"}.get(type(value), "a value"))


def _shown(value: Any, limit: int = 60) -> str:
    """A value from a file, quoted and safe to print on one line."""
    return printable(repr(value), limit)


def differences(old: TrainConfig, new: TrainConfig) -> list[str]:
    """Settings that differ between two resolved configs and would change the result."""
    out = []
    for f in dataclasses.fields(TrainConfig):
        if f.name in RESUME_MAY_DIFFER:
            continue
        a, b = getattr(old, f.name), getattr(new, f.name)
        if a != b:
            out.append(f"{f.name}: {a!r} in the run, {b!r} now")
    return out


# --- command line ---------------------------------------------------------------------------------


def _base_type(annotation: Any) -> type:
    """``int | None`` -> ``int``; ``bool`` -> ``bool``."""
    if isinstance(annotation, types.UnionType) or typing.get_origin(annotation) is typing.Union:
        args = [a for a in typing.get_args(annotation) if a is not type(None)]
        return args[0]
    return annotation


def add_config_arguments(parser: argparse.ArgumentParser) -> None:
    """Add one argument per :class:`TrainConfig` field, named ``--field-name``.

    Every argument defaults to ``argparse.SUPPRESS`` so :func:`config_from_args` can tell the
    settings the user gave from the ones left to the recipe or the field default.
    """
    hints = _hints()
    for f in dataclasses.fields(TrainConfig):
        meta = f.metadata
        kind = _base_type(hints[f.name])
        help_text = meta["help"]
        if "(default:" in help_text:  # the help states its own default
            pass
        elif "shown_default" in meta:
            help_text += f" (default: {meta['shown_default']})"
        elif isinstance(f.default, bool):
            help_text += f" (default: {'on' if f.default else 'off'})"
        elif f.default is not None:
            help_text += f" (default: {f.default})"
        elif f.name in recipe_fields():
            help_text += " (default: from the recipe)"
        kwargs: dict[str, Any] = {"help": help_text, "default": argparse.SUPPRESS}
        if meta.get("positional"):
            parser.add_argument(f.name, nargs="?", metavar=f.name.upper(), **kwargs)
            continue
        flag = "--" + f.name.replace("_", "-")
        if kind is bool:
            parser.add_argument(flag, action=argparse.BooleanOptionalAction, **kwargs)
            continue
        if "choices" in meta:
            kwargs["choices"] = meta["choices"]
        if "choices" not in meta:
            kwargs["metavar"] = meta.get("metavar", {int: "N", float: "X"}.get(kind, "S"))
        parser.add_argument(flag, type=kind, **kwargs)


def config_from_args(args: argparse.Namespace) -> tuple[TrainConfig, set[str]]:
    """The :class:`TrainConfig` the user asked for, and the names of the fields they set."""
    given = {
        f.name: getattr(args, f.name)
        for f in dataclasses.fields(TrainConfig)
        if hasattr(args, f.name)
    }
    config = TrainConfig(**given)
    validate(config)
    return config, set(given)


def validate(config: TrainConfig) -> None:
    """Reject values no recipe could make sense of, naming the setting and the fix."""
    # val_size >= 1: the validation split drives the plateau rule and the curves.
    positive = (
        "epochs",
        "batch_size",
        "step_epochs",
        "limit_train",
        "limit_test",
        "image_size",
        "val_size",
    )
    for name in positive:
        value = getattr(config, name)
        if value is not None and value < 1:
            raise ConfigError(f"--{name.replace('_', '-')} must be at least 1 (got {value})")
    nonneg = (
        "lr",
        "weight_decay",
        "momentum",
        "crop_padding",
        "checkpoint_every",
        "threads",
        "plateau_patience",
        "grad_clip",
        "early_stop",
        "stall_patience",
    )
    for name in nonneg:
        value = getattr(config, name)
        if value is not None and value < 0:
            raise ConfigError(f"--{name.replace('_', '-')} must not be negative (got {value})")
    unit = ("label_smoothing", "dropout", "warmup", "lr_decay", "backbone_lr")
    for name in unit:
        value = getattr(config, name)
        if value is not None and not 0 <= value <= 1:
            raise ConfigError(f"--{name.replace('_', '-')} must be between 0 and 1 (got {value})")
    if config.lr is not None and config.lr == 0:
        raise ConfigError("--lr must be positive (got 0): try the recipe's value by leaving it out")
    for name in ("val_fraction", "test_fraction"):
        value = getattr(config, name)
        if not 0 < value < 0.5:
            raise ConfigError(
                f"--{name.replace('_', '-')} must be above 0 and below 0.5 (got {value})"
            )
    if config.limit_per_class < 0:
        raise ConfigError(f"--limit-per-class must not be negative (got {config.limit_per_class})")
