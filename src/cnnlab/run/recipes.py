"""Training recipes: the lectures' hyperparameters per architecture family, and the fast recipe.

``--recipe paper`` follows what the lecture slides (the training slides of the CNN architecture
lectures, and the AlexNet slide) and the papers they cite say about training each family:

* AlexNet / ZFNet / VGG (Krizhevsky et al. 2012, Sec. 5; Simonyan & Zisserman 2014, Sec. 3.1):
  SGD, momentum 0.9, batch 128, learning rate 0.01 divided by 10 when the validation accuracy
  plateaus, L2 weight decay 5e-4, dropout 0.5 (built into the models), crop and flip augmentation.
* ResNet (He et al. 2015, Sec. 3.4): SGD, momentum 0.9, batch 256, learning rate 0.1 divided by
  10 when the validation error plateaus, weight decay 1e-4, no dropout, crop and flip.
* The CIFAR-10 ResNets and plain nets (He et al. 2015, Sec. 4.2): batch 128, learning rate 0.1
  divided by 10 at 50% and 75% of 164 epochs (32k and 48k of 64k iterations), weight decay
  1e-4, momentum 0.9, 4-pixel padded crops and flips.
* GoogLeNet (Szegedy et al. 2014, Sec. 6): SGD, momentum 0.9, learning rate decreased by 4% every
  8 epochs, auxiliary classifier losses weighted 0.3.
* DenseNet (Huang et al. 2017, Sec. 4.2): SGD, Nesterov momentum 0.9, batch 64, learning rate 0.1
  divided by 10 at 50% and 75% of the epochs, weight decay 1e-4.
* Network in Network (Lin et al. 2014, Sec. 4.1) says it follows AlexNet's protocol: same recipe.
* LeNet-5 and anything else: LeCun et al. 1998 trained with a stochastic diagonal Levenberg-
  Marquardt method that nobody uses any more, so cnnlab gives LeNet SGD with momentum 0.9,
  learning rate 0.01 divided by 10 on a plateau, weight decay 5e-4, batch 128, no augmentation
  (documented default, not the paper's).

Deviations, on purpose:

* The slides say ResNet used weight decay 1e-5; He et al. 2015 (Sec. 3.4) say 0.0001. The paper
  wins.
* "Divided by 10 when it plateaus" was done by hand in the papers; here it is
  ``ReduceLROnPlateau(mode="max", factor=0.1)`` on the held-out validation accuracy, with a
  patience of 2 epochs (our choice: the papers do not state one).
* The papers trained ImageNet for 74-90 epochs; the paper recipe defaults to 30 epochs, enough for
  the plateau rule to fire on Fashion-MNIST or CIFAR-10. Pass ``--epochs`` for more.
* GoogLeNet's weight decay is not in the paper; 2e-4 is our choice.
* AlexNet's PCA colour augmentation is not reproduced (the datasets here are small and mostly
  grayscale); random crops (zero padding, then a crop of the original size) and horizontal flips
  stand in for the 224-of-256 crops.
* Horizontal flips (augmentation and test-time) are dropped for data whose row in
  ``cnnlab/data/datasets.py`` says a mirror changes the class (``flip_preserves_label``): MNIST,
  where a mirrored digit is a different symbol or none.
"""

from __future__ import annotations

import dataclasses
from typing import Any

import torch

from cnnlab.errors import ConfigError, DataError
from cnnlab.models.googlenet import AUX_LOSS_WEIGHT
from cnnlab.run.config import TrainConfig, recipe_fields

# Lecture hyperparameters, named (the training slides of the AlexNet/VGG and ResNet lectures).
SGD_MOMENTUM = 0.9  # all families
LR_DIVISOR_ON_PLATEAU = 10  # "reduced by 10 manually when val accuracy plateaus"
GOOGLENET_LR_DECAY = 0.96  # "decreasing the learning rate by 4% every 8 epochs"
GOOGLENET_LR_DECAY_EPOCHS = 8

# What every recipe starts from; a family changes only what its paper says.
_BASE: dict[str, Any] = {
    "epochs": 30,
    "batch_size": 128,
    "optimizer": "sgd",
    "lr": 0.01,
    "momentum": SGD_MOMENTUM,
    "nesterov": False,
    "weight_decay": 5e-4,
    "schedule": "plateau",
    "lr_decay": 1 / LR_DIVISOR_ON_PLATEAU,
    "plateau_patience": 2,
    "step_epochs": GOOGLENET_LR_DECAY_EPOCHS,
    "warmup": 0.0,
    "label_smoothing": 0.0,
    "grad_clip": 0.0,  # none of the papers clips gradients
    "aux_loss_weight": AUX_LOSS_WEIGHT,  # Szegedy et al. 2014, Sec. 5: "weighted by 0.3"
    "dropout": None,  # the model's own (the papers' 0.5 where they use dropout)
    "augment": "crop+flip",
    "crop_padding": 4,
    "precision": "fp32",
    "channels_last": False,
    "tta": False,  # the lectures evaluate each image once
    "image_size": None,
}

# LeCun et al. 1998's optimiser is not reproducible with SGD: the documented default of the module
# docstring, for LeNet-5 and for fastnet (which has no paper recipe of its own).
_SGD_DEFAULT: dict[str, Any] = {"augment": "none"}

# Paper recipes by registry family: only the settings that differ from _BASE. Every family in the
# registry has a row (tests/test_train_config.py fails otherwise), so no model silently trains with
# another family's recipe.
PAPER_RECIPES: dict[str, dict[str, Any]] = {
    # Krizhevsky et al. 2012, Sec. 5 (and the lecture slide): exactly _BASE. ZFNet is in this
    # family and trains the same way (Zeiler & Fergus 2014, Sec. 3).
    "alexnet": {},
    # Simonyan & Zisserman 2014, Sec. 3.1: batch 256 in the paper, 128 on the slide; slide wins
    # here because it is the course's specification and the difference is only the batch.
    "vgg": {},
    # Lin et al. 2014, Sec. 4.1: "the same as Krizhevsky et al."
    "nin": {},
    # He et al. 2015, Sec. 3.4 (also ResNeXt and Wide ResNet).
    "resnet": {"batch_size": 256, "lr": 0.1, "weight_decay": 1e-4},
    # He et al. 2015, Sec. 4.2 (resnet20..110 and plain20..110 on CIFAR-10): batch 128, lr 0.1
    # divided by 10 at 32k and 48k of 64k iterations (50% and 75% of the run), 4-pixel padded
    # crops and flips (_BASE). 64k iterations of 128 are 164 epochs of the 50,000 training
    # images; cnnlab holds 5,000 out for validation (as the paper's 45k/5k split did when it
    # chose the schedule), so 164 epochs here are 57.6k iterations. Not reproduced: the 0.01
    # warm-up of ResNet-110 until the training error is below 80% (about 400 iterations).
    "resnet_cifar": {
        "epochs": 164,
        "lr": 0.1,
        "weight_decay": 1e-4,
        "schedule": "multistep",
    },
    # Szegedy et al. 2014, Sec. 6; the step schedule is per epoch (also Inception v3).
    "googlenet": {"schedule": "step", "lr_decay": GOOGLENET_LR_DECAY, "weight_decay": 2e-4},
    # Huang et al. 2017, Sec. 4.2 (CIFAR): 300 epochs there; 50%/75% milestones kept.
    "densenet": {
        "batch_size": 64,
        "lr": 0.1,
        "nesterov": True,
        "weight_decay": 1e-4,
        "schedule": "multistep",
    },
    "lenet": _SGD_DEFAULT,
    "fastnet": _SGD_DEFAULT,
    # The experiment networks (cnnlab/models/lab.py) are VGG-style stacks and small ResNets with
    # batch norm; they have no paper of their own to train them, so the base (VGG) recipe.
    "lab": {},
}


def add_paper_recipe(family: str, settings: dict[str, Any]) -> None:
    """Give a new model family its paper recipe (the settings that differ from the base)."""
    unknown = set(settings) - set(_BASE)
    if unknown:
        raise ConfigError(f"recipe for {family!r} sets unknown fields {sorted(unknown)}")
    PAPER_RECIPES[family] = dict(settings)


# ---------------------------------------------------------------------------------------------
# The fast recipe, tuned for fastnet by benchmarks/time_to_accuracy.py; every other family starts
# from it and changes what its models need (FAST_FAMILY_RECIPES below):
# one-cycle schedule, label smoothing, bf16 autocast and channels-last (both measured faster on
# this CPU: docs/performance.md), short run.
FAST_DEFAULT_MODEL = "fastnet"  # src/cnnlab/models/fast.py: 7.7 MMACs, sized for 2 CPU cores
FAST_RECIPE: dict[str, Any] = {
    # What fits the one-minute budget at fastnet's measured images/s; 7 beat 6 on validation
    # (docs/performance.md, "Time to 93% in a minute").
    "epochs": 7,
    "batch_size": 256,
    "optimizer": "sgd",
    "lr": 0.2,  # peak of the one-cycle schedule
    "momentum": SGD_MOMENTUM,
    "nesterov": True,
    "weight_decay": 5e-4,
    "schedule": "onecycle",
    "warmup": 0.2,
    "label_smoothing": 0.1,
    "augment": "flip",
    "crop_padding": 2,
    "precision": "bf16",
    "channels_last": True,
    "tta": True,  # flip test-time augmentation (the model is trained on mirrors too)
}
# Named presets of the fast recipe (``--recipe fast94``): the fast recipe of the model's family
# with these changes. fast94 aims at 94.0% Fashion-MNIST test accuracy within three minutes.
# Chosen on validation accuracy only (tuning seeds 20-31; benchmarks/results/fast94_tuning.json,
# docs/performance.md, "Time to 93% in a minute, 94% in three"):
# - 22 epochs: what fits 180 s at fastnet's ~7 s per epoch on 2 cores, with ~20 s to spare.
# - Flips alone overfit in 22 epochs (99% training accuracy). In a sweep on a GPU, random crops
#   after 1 pixel of padding beat flips alone on the same 8 seeds (mean validation 94.26%
#   against 94.07%) and crops after 2 pixels on 3 of them (94.13% against 93.75%).
# - With the crops regularising, label smoothing 0.05 beat 0.1 on 5 seeds (94.39% against
#   94.34%: within noise, kept as the sweep's best; 94.56% on 4 further seeds on this CPU).
FAST_PRESETS: dict[str, dict[str, Any]] = {
    "fast94": {
        "epochs": 22,
        "augment": "crop+flip",
        "crop_padding": 1,
        "label_smoothing": 0.05,
    },
}
# ---------------------------------------------------------------------------------------------

# Fast settings per family: what each family changes in FAST_RECIPE, for its models with batch
# norm ("bn") and for those without ("plain"). FAST_RECIPE's peak lr 0.2 is tuned for fastnet,
# which has batch norm; without it the same lr can blow a network up in the first epoch (LeNet-5
# died at chance on one seed in fourteen). Every entry was chosen on validation accuracy (the
# held-out 5,000 training images, never the test set): docs/training.md, "Fast settings per
# family", lists the runs and their numbers. Warm-up is FAST_RECIPE's (the first 20% of the steps).
#
# Deep nets without batch norm (VGG, NiN, AlexNet, GoogLeNet as in the paper) stayed at chance
# with SGD at lr 0.01-0.1 (clipped) on one epoch of 4,096 images and learned with AdamW; a batch
# of 64 gives a slow starter four times the steps of 256.
_FAST_PLAIN: dict[str, Any] = {
    "optimizer": "adamw",
    "lr": 1e-3,
    "weight_decay": 0.05,  # decoupled (AdamW)
    "batch_size": 64,
    "grad_clip": 1.0,
}
FAST_FAMILY_RECIPES: dict[str, dict[str, dict[str, Any]]] = {
    "fastnet": {"bn": {}},  # the tuned entry itself: `make demo` trains exactly FAST_RECIPE
    # lr 0.2 + clip at norm 1 beat lr 0.1 + clip and lr 0.05 on validation (docs/training.md).
    "lenet": {"plain": {"grad_clip": 1.0}},
    "resnet": {"bn": {}},  # batch norm everywhere, plain nets included
    "resnet_cifar": {"bn": {}},
    "densenet": {"bn": {}},
    "googlenet": {"bn": {}, "plain": _FAST_PLAIN},  # googlenet_paper has no batch norm
    "vgg": {"bn": {}, "plain": _FAST_PLAIN},
    "alexnet": {"plain": _FAST_PLAIN},
    "nin": {"plain": _FAST_PLAIN},
    "lab": {"bn": {}},  # batch norm after every convolution, as fastnet
}
# A family without a row (a new one) gets these: FAST_RECIPE with batch norm, else _FAST_PLAIN.
FAST_DEFAULTS: dict[str, dict[str, Any]] = {"bn": {}, "plain": _FAST_PLAIN}

# Precision and memory format of the fast recipe per family, chosen by measurement: cnnlab's
# training step in each of fp32/bf16 x NCHW/channels-last, one model per family at a training
# size (`python benchmarks/throughput.py --formats --threads 1`; AMD EPYC with avx512_bf16, no
# AMX, 2 cores, load average 5-12 from other jobs, so 1 thread; 2026-11-29;
# benchmarks/results/throughput_formats.json). Each row's comment: images/s as
# fp32 NCHW / fp32 CL / bf16 NCHW / bf16 CL, medians of 3 alternated rounds. bf16 channels-last
# was the fastest for every family measured, so every row says so; a row exists so that a family
# whose measurement says otherwise (on this CPU or another) changes one line. fastnet's choice is
# FAST_RECIPE's own (fastnet 28x28: 1,258 / 1,573 / 2,187 / 2,885). bf16 autocast keeps weights
# and optimizer state in fp32; the fast recipe has trained in it since fastnet was tuned
# (docs/training.md has the accuracies).
_BF16_CL: dict[str, Any] = {"precision": "bf16", "channels_last": True}
FAST_FAMILY_FORMATS: dict[str, dict[str, Any]] = {
    "lenet": _BF16_CL,  # lenet5 28x28, batch 256: 5,525 / 5,865 / 5,086 / 7,139
    "resnet": _BF16_CL,  # resnet18 32x32, batch 128: 411 / 407 / 480 / 512
    "resnet_cifar": _BF16_CL,  # resnet20 32x32, batch 128: 196 / 346 / 523 / 568
    "densenet": _BF16_CL,  # densenet_bc_100 32x32, batch 64: 3.9 / 5.6 / 8.8 / 16.2
    "googlenet": _BF16_CL,  # googlenet 32x32, batch 64: 56.1 / 69.9 / 68.1 / 103
    # vgg11 32x32, batch 64 (AdamW; its 120 M-weight classifier and optimizer dominate):
    # 15.4 / 16.0 / 16.6 / 18.1. vgg11_bn's rounds varied 2x with the load (bf16 ahead in the
    # quietest round, behind in the others): not enough to overturn the row.
    "vgg": _BF16_CL,
    # alexnet 64x64, batch 64 (AdamW, 54 M weights in the classifier): 11.6 / 9.8 / 11.3 / 13.8,
    # rounds varying 2.5x with the load: a weak lead.
    "alexnet": _BF16_CL,
    "nin": _BF16_CL,  # nin 67x67, batch 64: 59.5 / 65.3 / 85.3 / 91.2
}


def paper_recipe(family: str) -> dict[str, Any]:
    """The complete paper recipe for a registry family.

    Raises:
        ConfigError: the family has no recipe (a new family must add one).
    """
    if family not in PAPER_RECIPES:
        raise ConfigError(
            f"model family {family!r} has no paper recipe: add one with "
            "cnnlab.run.recipes.add_paper_recipe, or train with --recipe fast"
        )
    return {**_BASE, **PAPER_RECIPES[family]}


def fast_recipe(family: str, batch_norm: bool = True) -> dict[str, Any]:
    """The complete fast recipe for a family's models with (or without) batch norm."""
    kind = "bn" if batch_norm else "plain"
    row = FAST_FAMILY_RECIPES.get(family, {})
    formats = FAST_FAMILY_FORMATS.get(family, {})
    return {**_BASE, **FAST_RECIPE, **formats, **row.get(kind, FAST_DEFAULTS[kind])}


def recipe_settings(recipe: str, family: str, batch_norm: bool = True) -> dict[str, Any]:
    """Every recipe field's value for ``recipe`` ("paper", "fast" or a fast preset) and a family.

    ``batch_norm`` (whether the model normalises its activations) matters to the fast recipe
    only: the papers' recipes are per family whatever the variant.
    """
    if recipe == "paper":
        return paper_recipe(family)
    if recipe == "fast":
        return fast_recipe(family, batch_norm)
    if recipe in FAST_PRESETS:
        return {**fast_recipe(family, batch_norm), **FAST_PRESETS[recipe]}
    raise ConfigError(
        f"unknown recipe {recipe!r}: use --recipe paper, fast or one of {', '.join(FAST_PRESETS)}"
    )


def has_batch_norm(model: str) -> bool:
    """Whether the registered ``model`` has a batch-norm layer, from a build on the meta device.

    A meta build allocates no memory and draws no random numbers (the RNG is forked anyway), so
    this is cheap even for VGG-19.
    """
    from cnnlab.analysis.trace import on_meta
    from cnnlab.registry import create_model

    try:
        with torch.random.fork_rng(devices=[]), on_meta():
            net = create_model(model)
    except Exception:  # a builder that needs real tensors: the tuned entry, as before the table
        return True
    return any(isinstance(m, torch.nn.modules.batchnorm._BatchNorm) for m in net.modules())


def resolve(config: TrainConfig, given: set[str] | None = None) -> tuple[TrainConfig, list[str]]:
    """Fill the recipe fields the user left unset.

    Args:
        config: the config as parsed; ``None`` recipe fields are filled in.
        given: names of the fields the user set explicitly (default: every non-``None`` field).

    Returns:
        The resolved config and notes to print (settings the recipe changed for this data).
    """
    from cnnlab.registry import model_info

    model = config.model or FAST_DEFAULT_MODEL
    family = model_info(model).family
    batch_norm = config.recipe == "paper" or has_batch_norm(model)
    settings = recipe_settings(config.recipe, family, batch_norm)
    given = (
        {k for k in recipe_fields() if getattr(config, k) is not None} if given is None else given
    )
    values = {k: (getattr(config, k) if k in given else settings[k]) for k in recipe_fields()}
    notes = []
    if config.limit_train is not None:  # known before the data is read (a folder's is not)
        values, note = _fit_short_run(values, config.limit_train, given)
        notes += note
    if not _flips_preserve_labels(config.data):
        if "augment" not in given and "flip" in values["augment"]:
            values["augment"] = "crop" if "crop" in values["augment"] else "none"
            notes.append(
                f"note: no horizontal flips for {config.data} (a mirrored image is of another "
                "class or none); pass --augment to override"
            )
        if "tta" not in given:
            values["tta"] = False  # perf: the mirror test-time view is wrong for the same reason
    return dataclasses.replace(config, model=model, **values), notes


# A recipe's batch is cut for a run on few images (--limit-train) so that an epoch has at least
# this many steps: 1,000 images in batches of 256 are 3 steps, too few for any network to leave
# chance in one or two epochs (docs/training.md, "Short runs"). SGD's learning rate follows the
# batch (linear scaling, Goyal et al. 2017), as it does when cnnlab.run.data caps a batch.
MIN_EPOCH_STEPS = 32
MIN_SHORT_BATCH = 16


def fit_short_run(
    config: TrainConfig, n_train: int, given: set[str] | None
) -> tuple[TrainConfig, list[str]]:
    """:func:`resolve`'s batch for few images, for a training set whose size only the data
    tells (a small image folder, a small dataset): the trainer calls it once the data is read.

    Args:
        config: a resolved config.
        n_train: training images.
        given: the fields the user set (their values are kept); None: every recipe field
            counts as set unless the recipe's value is the config's.
    """
    values = {k: getattr(config, k) for k in recipe_fields()}
    values, notes = _fit_short_run(values, n_train, given or set())
    return dataclasses.replace(config, **values), notes


def _fit_short_run(
    values: dict[str, Any], n_train: int, given: set[str]
) -> tuple[dict[str, Any], list[str]]:
    """``values`` with the batch cut (and SGD's lr scaled) for ``n_train`` images, and a note."""
    short = _short_run_batch(n_train, values["batch_size"])
    if short is None or "batch_size" in given:
        return values, []
    # The linear scaling rule is SGD's (as fit_config_to_data's batch cap); AdamW's steps are
    # normalised: at batch 16, alexnet_paper stalled at 2.5e-4 and trained at its 1e-3.
    scaled = "lr" not in given and values["optimizer"] == "sgd"
    lr = values["lr"] * short / values["batch_size"] if scaled else values["lr"]
    note = (
        f"note: batch {short} instead of the recipe's {values['batch_size']}"
        + (f" and lr {lr:g} instead of {values['lr']:g}" if scaled else "")
        + f", so that {n_train} images make at least {MIN_EPOCH_STEPS} steps an "
        "epoch; pass --batch-size to override"
    )
    return {**values, "batch_size": short, "lr": lr}, [note]


def _short_run_batch(limit_train: int | None, batch: int) -> int | None:
    """The power-of-two batch that gives ``limit_train`` images :data:`MIN_EPOCH_STEPS` steps an
    epoch, when the recipe's ``batch`` gives fewer; ``None`` when it does not."""
    if limit_train is None or limit_train // batch >= MIN_EPOCH_STEPS:
        return None
    fits = max(limit_train // MIN_EPOCH_STEPS, MIN_SHORT_BATCH)
    return min(batch, 1 << (fits.bit_length() - 1))


def lr_advice(config: TrainConfig) -> str:
    """What to try instead of a resolved config's learning rate after its run blew up or stalled.

    The recipe's own value when the run used a larger one (a typo such as ``--lr 50`` is best
    answered with the value that is known to train), else a tenth of the current one: a
    divergence that the recipe's value itself causes is rarely cured by a third of it.
    """
    from cnnlab.registry import model_info

    model = config.model or FAST_DEFAULT_MODEL
    batch_norm = config.recipe == "paper" or has_batch_norm(model)
    recipe = recipe_settings(config.recipe, model_info(model).family, batch_norm)
    recipe_lr = recipe["lr"]
    lr = config.lr if config.lr is not None else recipe_lr
    if config.optimizer is not None and config.optimizer != recipe["optimizer"]:
        # another optimizer's learning rates are on another scale (adamw's 1e-3 vs sgd's 0.1)
        return f"now {lr:g}, try {lr / 10:.2g}, a tenth: {config.optimizer} did not train at it"
    if lr > recipe_lr:
        return f"now {lr:g}, try {recipe_lr:g}: the {config.recipe} recipe's value for {model}"
    why = (
        f"the {config.recipe} recipe's own value did not train here"
        if lr == recipe_lr
        else f"below the {config.recipe} recipe's {recipe_lr:g}, it still did not train"
    )
    return f"now {lr:g}, try {lr / 10:.2g}, a tenth: {why}"


def _flips_preserve_labels(data: str) -> bool:
    """Whether a mirrored image of ``data`` keeps its class: its dataset row says (folders: yes)."""
    from cnnlab.data import DatasetInfo
    from cnnlab.data import resolve as resolve_dataset

    try:
        target = resolve_dataset(data)
    except DataError:  # an unknown dataset: loading it says so, with the fix
        return True
    return not isinstance(target, DatasetInfo) or target.flip_preserves_label
