"""What a training run is set up from: flags, the config, recipes, input size, validation split.

Flags are parsed as ``cnnlab train`` parses them (:func:`cnnlab.cli.train.parse`); ``tinynet``
(``helpers.models``) stands in for a registered model of a family of its own.
"""

from __future__ import annotations

import dataclasses
import itertools

import pytest
import torch

import helpers.models  # registers tinynet
from cnnlab.cli.train import parse
from cnnlab.data import DATASETS, DEFAULT_DATASET, DatasetInfo
from cnnlab.errors import ConfigError
from cnnlab.registry import ModelInfo, list_models, model_info
from cnnlab.run.config import TrainConfig, differences
from cnnlab.run.data import input_size_for, split_train_val
from cnnlab.run.recipes import MIN_EPOCH_STEPS, paper_recipe, recipe_settings, resolve
from cnnlab.run.schedule import WARMUP_MIN_STEPS, scheduled_lr


def test_flags_parse_into_config_and_record_what_was_given() -> None:
    config, given = parse(["resnet20", "--lr", "0.5", "--no-nesterov", "--epochs", "3"])
    assert (config.model, config.lr, config.nesterov, config.epochs) == ("resnet20", 0.5, False, 3)
    assert given == {"model", "lr", "nesterov", "epochs"}
    assert config.batch_size is None  # left to the recipe
    with pytest.raises(ConfigError, match="--epochs must be at least 1"):
        parse(["--epochs", "0"])
    with pytest.raises(ConfigError, match="label-smoothing"):
        parse(["--label-smoothing", "1.5"])


def test_paper_recipes_follow_the_lectures() -> None:
    alexnet, vgg, resnet = paper_recipe("alexnet"), paper_recipe("vgg"), paper_recipe("resnet")
    for r in (alexnet, vgg):  # the lectures' AlexNet/VGG recipe
        assert (r["optimizer"], r["momentum"], r["lr"], r["weight_decay"], r["batch_size"]) == (
            "sgd",
            0.9,
            0.01,
            5e-4,
            128,
        )
        assert r["schedule"] == "plateau" and r["lr_decay"] == pytest.approx(0.1)
    # the lectures' ResNet recipe, with the paper's weight decay (the slide's 1e-5 is a typo)
    assert (resnet["lr"], resnet["weight_decay"], resnet["batch_size"]) == (0.1, 1e-4, 256)
    # variants are registered in their family, so they train with its recipe
    assert paper_recipe(model_info("resnext50_32x4d").family) == resnet
    assert paper_recipe("googlenet")["aux_loss_weight"] == 0.3
    # A family without a recipe is an error naming the fix, not LeNet's recipe in disguise.
    with pytest.raises(ConfigError, match="no paper recipe: add one with"):
        paper_recipe("no-such-family")
    assert paper_recipe("test") == {**paper_recipe("lenet"), **helpers.models.PAPER_RECIPE}
    assert recipe_settings("fast", "vgg")["schedule"] == "onecycle"


def test_resolve_keeps_explicit_settings() -> None:
    config, given = parse(["tinynet", "--recipe", "paper", "--lr", "0.3"])
    resolved, _ = resolve(config, given)
    assert resolved.lr == 0.3 and resolved.weight_decay == 5e-4 and resolved.epochs == 30
    assert all(getattr(resolved, f) is not None for f in ("batch_size", "schedule", "augment"))


@pytest.mark.parametrize("info", [pytest.param(i, id=n) for n, i in DATASETS.items()])
@pytest.mark.parametrize("recipe", ["fast", "paper"])
def test_recipes_flip_only_where_the_dataset_row_says_a_mirror_keeps_the_class(
    info: DatasetInfo, recipe: str
) -> None:
    # resnet20: both of its recipes flip (fast: flips; paper: crops and flips, He et al. 2015)
    resolved, notes = resolve(*parse(["resnet20", "--recipe", recipe, "--data", info.name]))
    flips = "flip" in resolved.augment
    assert flips == info.flip_preserves_label == (not notes), (resolved.augment, notes)
    if not info.flip_preserves_label:
        assert not resolved.tta and f"no horizontal flips for {info.name}" in notes[0]
        assert resolved.augment == ("crop" if recipe == "paper" else "none")
        # What the user asks for still wins.
        given = ["--augment", "flip", "--tta"]
        resolved, notes = resolve(*parse(["resnet20", "--data", info.name, *given]))
        assert (resolved.augment, resolved.tta, notes) == ("flip", True, [])


def test_data_flag_lists_the_dataset_table_and_defaults_to_its_default() -> None:
    data = next(f for f in dataclasses.fields(TrainConfig) if f.name == "data")
    assert all(name in data.metadata["help"] for name in DATASETS)
    assert TrainConfig().data == DEFAULT_DATASET and parse([])[0].data == DEFAULT_DATASET


def test_resume_differences_ignore_where_and_how_it_runs() -> None:
    a = TrainConfig(model="tinynet", lr=0.1, out="x", threads=1)
    b = TrainConfig(model="tinynet", lr=0.2, out="y", threads=2, progress=False)
    assert differences(a, b) == ["lr: 0.1 in the run, 0.2 now"]


def test_input_size_for_small_and_fixed_models() -> None:
    free = ModelInfo("m", "f", "p", (3, 224, 224), (63, 63), 0)
    size, note = input_size_for(free, (28, 28), None)
    assert size == (63, 63) and "5.06x the pixels" in note
    assert input_size_for(free, (64, 64), None) == ((64, 64), None)
    fixed = ModelInfo("m", "f", "p", (1, 32, 32), (32, 32), 0, fixed_input=True)
    assert input_size_for(fixed, (28, 28), None)[0] == (32, 32)
    with pytest.raises(ConfigError, match="takes exactly 32x32"):
        input_size_for(fixed, (28, 28), 40)
    with pytest.raises(ConfigError, match="below m's minimum"):
        input_size_for(free, (28, 28), 32)


def test_validation_split_is_fixed_by_seed_and_disjoint() -> None:
    images = torch.arange(100, dtype=torch.uint8).view(100, 1, 1, 1)
    labels = torch.arange(100)
    tr, trl, va, val = split_train_val(images, labels, 20, seed=3)
    assert len(va) == 20 and len(tr) == 80
    assert set(trl.tolist()).isdisjoint(val.tolist())
    assert torch.equal(split_train_val(images, labels, 20, seed=3)[3], val)
    assert not torch.equal(split_train_val(images, labels, 20, seed=4)[3], val)
    with pytest.raises(ConfigError, match="--val-size"):
        split_train_val(images, labels, 100, seed=0)


def test_every_registered_family_has_a_paper_recipe() -> None:
    families = {model_info(name).family for name in list_models()}
    assert "test" in families  # tinynet's, registered by helpers.models with its recipe
    for family in sorted(families):
        assert paper_recipe(family)["optimizer"] in ("sgd", "adamw"), family


def test_fast_recipe_keeps_fastnet_tuned_and_adapts_to_each_family() -> None:
    from cnnlab.run.recipes import (
        _BASE,
        FAST_FAMILY_RECIPES,
        FAST_RECIPE,
        fast_recipe,
        has_batch_norm,
    )

    # fastnet (and so `make demo`) trains with the tuned entry, unchanged.
    assert resolve(TrainConfig())[0] == resolve(TrainConfig(model="fastnet"))[0]
    fastnet = resolve(TrainConfig(model="fastnet"))[0]
    assert {k: getattr(fastnet, k) for k in FAST_RECIPE} == FAST_RECIPE
    assert fastnet.grad_clip == 0.0 and fast_recipe("fastnet") == {**_BASE, **FAST_RECIPE}
    # Every family has a row; models without batch norm are clipped, whatever their family.
    families = {model_info(name).family for name in list_models()} - {helpers.models.FAMILY}
    assert families <= set(FAST_FAMILY_RECIPES)
    torch.manual_seed(0)
    state = torch.get_rng_state()
    assert has_batch_norm("vgg11_bn") and not has_batch_norm("vgg11")
    assert torch.equal(torch.get_rng_state(), state)  # a meta build draws nothing
    for name in ("lenet5", "vgg11", "googlenet_paper", "alexnet", "nin"):
        assert resolve(TrainConfig(model=name))[0].grad_clip > 0, name
    assert resolve(TrainConfig(model="vgg11_bn"))[0].grad_clip == 0.0
    # An explicit setting still wins, and the paper recipes never clip.
    assert resolve(TrainConfig(model="lenet5", grad_clip=0.0), {"grad_clip"})[0].grad_clip == 0
    assert resolve(TrainConfig(model="lenet5", recipe="paper"))[0].grad_clip == 0.0


def test_fast_precision_and_layout_come_from_the_measured_family_table(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from cnnlab.run import recipes

    # Every family of the zoo has a measured row (fastnet's is FAST_RECIPE's own).
    families = {model_info(name).family for name in list_models()} - {helpers.models.FAMILY}
    families -= {"fastnet", "lab"}
    assert families <= set(recipes.FAST_FAMILY_FORMATS)
    for row in recipes.FAST_FAMILY_FORMATS.values():
        assert set(row) == {"precision", "channels_last"} and row["precision"] in ("fp32", "bf16")
    # A row decides what `cnnlab train` runs in; a flag the user gives still wins.
    monkeypatch.setitem(
        recipes.FAST_FAMILY_FORMATS, "vgg", {"precision": "fp32", "channels_last": False}
    )
    config = resolve(TrainConfig(model="vgg11"))[0]
    assert (config.precision, config.channels_last) == ("fp32", False)
    config = resolve(TrainConfig(model="vgg11", precision="bf16"))[0]
    assert (config.precision, config.channels_last) == ("bf16", False)


def _onecycle(lr: float, warmup: float) -> TrainConfig:
    return TrainConfig(lr=lr, warmup=warmup, schedule="onecycle")


def test_a_short_one_cycle_run_warms_up_no_faster_than_the_floor() -> None:
    """20% of 19 steps reached lr 0.2 in 4 and blew fastnet up: the climb keeps the slope of a
    WARMUP_MIN_STEPS warm-up, meets the decay line and still ends at 0."""
    config, total = _onecycle(0.2, 0.2), 19
    lrs = [scheduled_lr(config, 0, s, total) for s in range(total)]
    assert lrs[0] == pytest.approx(0.2 / WARMUP_MIN_STEPS)
    assert max(b - a for a, b in itertools.pairwise(lrs)) <= 0.2 / WARMUP_MIN_STEPS + 1e-12
    assert 0 < max(lrs) < 0.2 and lrs[-1] == 0.0
    top = lrs.index(max(lrs))
    assert lrs[:top] == sorted(lrs[:top]) and lrs[top:] == sorted(lrs[top:], reverse=True)


def test_a_long_one_cycle_run_keeps_its_schedule_bit_for_bit() -> None:
    """The demo (20% of 1,498 steps = 299.6 >= the floor) sets exactly the lr it always did."""
    config, total = _onecycle(0.2, 0.2), 1498
    assert config.warmup * total >= WARMUP_MIN_STEPS
    for step in range(total):
        t = (step + 1) / total
        before = 0.2 * (t / 0.2 if t < 0.2 else max(0.0, (1 - t) / 0.8))  # the formula until now
        assert scheduled_lr(config, 0, step, total).hex() == before.hex()


def test_a_run_on_few_images_gets_a_batch_with_enough_steps() -> None:
    config, notes = resolve(*parse(["fastnet", "--limit-train", "1000"]))
    assert config.batch_size == 16 and MIN_EPOCH_STEPS <= 1000 // 16
    assert config.lr == pytest.approx(0.2 * 16 / 256)  # linear scaling, as the batch cap does
    assert "batch 16 instead of the recipe's 256 and lr 0.0125 instead of 0.2" in notes[0]
    assert resolve(*parse(["fastnet", "--limit-train", "5000"]))[0].batch_size == 128
    kept = resolve(*parse(["fastnet", "--limit-train", "1000", "--lr", "0.1"]))[0]
    assert (kept.batch_size, kept.lr) == (16, 0.1)  # an lr the user gave is kept
    adamw = resolve(*parse(["alexnet_paper", "--limit-train", "1000"]))[0]
    assert (adamw.optimizer, adamw.batch_size, adamw.lr) == ("adamw", 16, 1e-3)  # SGD's rule only
    assert resolve(*parse(["fastnet", "--limit-train", "9000"]))[0].batch_size == 256
    given = resolve(*parse(["fastnet", "--limit-train", "1000", "--batch-size", "256"]))
    assert given[0].batch_size == 256 and not given[1]  # a batch the user gave is kept


def test_a_small_image_folder_gets_a_batch_with_enough_steps_once_its_size_is_known() -> None:
    """A folder's size is known only when it is read: the trainer applies the same rule then."""
    from cnnlab.run.recipes import fit_short_run

    config, _ = resolve(*parse(["resnet18", "--data", "/photos"]))
    fitted, notes = fit_short_run(config, 864, set())
    assert fitted.batch_size == 16 and MIN_EPOCH_STEPS <= 864 // 16
    assert fitted.lr == pytest.approx(config.lr * 16 / config.batch_size)
    assert "so that 864 images make at least" in notes[0]
    assert fit_short_run(config, 864, {"batch_size"}) == (config, [])  # a batch the user gave
    assert fit_short_run(config, 55_000, set()) == (config, [])  # enough steps already
