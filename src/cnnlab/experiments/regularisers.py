"""Batch norm, dropout and data augmentation, each switched on and off on LeNet-5.

Three experiments with one shape: train the lecture network twice with the lecture recipe
(``--recipe paper``: SGD, momentum 0.9, learning rate 0.01 divided by 10 on a plateau, weight
decay 5e-4, batch 128), once without the technique and once with it, and compare the training
and test curves and the final gap between training and test accuracy.

* ``batchnorm``: ``lenet5`` against ``lenet5_bn`` (batch norm before every ReLU, d2l Sec. 8.5's
  placement). Ioffe & Szegedy 2015 claim faster training ("the same accuracy with 14 times fewer
  training steps"); the measure here is the epoch at which the batch-norm net first reaches the
  plain net's final test accuracy.
* ``dropout``: ``lenet5`` with dropout 0 against 0.5 after its two hidden fully connected layers
  (where AlexNet and VGG put it; Srivastava et al. 2014). The claim: less overfitting, a smaller
  gap between training and test accuracy.
* ``augmentation``: no augmentation against random 4-pixel-padded crops and horizontal flips
  (Krizhevsky et al. 2012; He et al. 2015), the same claim.

Overfitting needs a network that can memorise its training set, so the dropout and augmentation
runs train on a subset of the training images for many epochs. The gap is measured on the final
weights in evaluation mode (training images without augmentation, dropout off): the per-epoch
training accuracy of the curves is a mean over the epoch in training mode, which dropout and
augmentation themselves lower, so it would flatter them.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

from cnnlab import table
from cnnlab.experiments.base import Context, Drawn, Experiment, Outcome
from cnnlab.formats import percent

if TYPE_CHECKING:
    from cnnlab.run.config import TrainConfig

MARGIN = 0.5  # percentage points: a smaller difference from one seed decides nothing
CURVES_DIR = "curves"  # OUT/curves/LABEL.json: eval-mode training accuracy after each epoch
MODEL = "lenet5"
LECTURE_RECIPE = "paper"  # SGD 0.01, momentum 0.9, plateau, weight decay 5e-4, batch 128

_SMOKE = {"epochs": 2, "limit_train": 256, "val_size": 128, "limit_test": 128, "expected_s": 10}


def _tiers(quick: Mapping[str, Any], full: Mapping[str, Any]) -> dict[str, dict[str, Any]]:
    return {"smoke": dict(_SMOKE), "quick": dict(quick), "full": dict(full)}


# --- running a pair -------------------------------------------------------------------------------


def _run_fields(settings: Mapping[str, Any]) -> dict[str, Any]:
    keys = ("epochs", "limit_train", "val_size", "limit_test", "batch_size", "schedule")
    return {k: settings[k] for k in keys if k in settings}


def _train(ctx: Context, label: str, **fields: Any) -> dict[str, Any]:
    """One run of the pair: its curves, final test accuracy and eval-mode training accuracy.

    Training accuracy has one definition everywhere (curves, table, verdict): the weights at
    the end of the epoch evaluated on the run's training images in evaluation mode (dropout off,
    no augmentation). The trainer's own ``train_acc`` (the mean over the epoch's batches in
    training mode) is lowered by dropout and augmentation themselves, so it would flatter them.
    """
    from cnnlab.experiments.runs import training_seconds

    curve = _train_accuracy_curve(ctx.out / CURVES_DIR / f"{label}.json")
    seen = _train_accuracy_callback()
    result = ctx.train(
        label,
        callbacks=[curve, seen],
        recipe=LECTURE_RECIPE,
        test_every_epoch=True,
        **_run_fields(ctx.settings),
        **fields,
    )
    train_eval = ctx.measure(f"{label}-train-accuracy", lambda: seen.value or _reload(result))
    history = result.history
    test_acc = 100 * result.test.top1
    train_acc = 100 * train_eval["top1"]
    # The last epoch's weights are the final ones: its point is the final measurement.
    kept = curve.read()
    train_curve = [kept.get(str(h["epoch"])) for h in history[:-1]] + [train_eval["top1"]]
    train_curve = [v if isinstance(v, (int, float)) else None for v in train_curve]
    return {
        "label": label,
        "train_acc_eval_epoch": [None if v is None else 100 * v for v in train_curve],
        "train_loss_epoch": [h["train_loss"] for h in history],
        "test_acc_epoch": [100 * h["test_acc"] for h in history],
        "final_test_acc": test_acc,
        "final_train_acc": train_acc,  # final weights, evaluation mode, no augmentation
        "gap": train_acc - test_acc,
        "train_images": train_eval["count"],
        "epochs": len(history),
        "seconds": training_seconds(history),
        "recipe": _recipe_text(result.config),
    }


def _recipe_text(config: TrainConfig) -> str:
    """The training settings both runs share, in words, from a run's resolved config."""
    schedule = {
        "plateau": f"divided by {1 / config.lr_decay:g} on a validation plateau",
        "constant": "constant",
    }.get(config.schedule, f"{config.schedule} schedule")
    return (
        f"{config.optimizer.upper()}, momentum {config.momentum:g}, lr {config.lr:g} "
        f"{schedule}, weight decay {config.weight_decay:g}, batch {config.batch_size}"
    )


def _train_accuracy_callback() -> Any:
    """A training callback: the final weights' accuracy on the run's own training images.

    Evaluated by the trainer at the end (evaluation mode, no augmentation) on the data it holds
    in memory; its ``value`` stays None when the run was reused instead of trained.
    """
    from cnnlab.train.callbacks import Callback

    class TrainAccuracy(Callback):
        value: dict[str, Any] | None = None

        def on_train_end(self, trainer: Any, result: Any) -> None:
            scores = trainer.evaluate(trainer.data.train_x, trainer.data.train_y)
            self.value = {"top1": scores.top1, "count": len(trainer.data.train_x)}

    return TrainAccuracy()


def _train_accuracy_curve(path: Path) -> Any:
    """A training callback: after each epoch, the weights' eval-mode accuracy on the training set.

    Kept in ``path`` (``OUT/curves/LABEL.json``) as ``{epoch: top1}``, written before the
    epoch's checkpoint, so a killed run resumes with its earlier epochs' points (a resumed run
    repeats its epochs bitwise, so they stay true); ``read()`` returns them. A run reused
    without training adds none.
    """
    from cnnlab import files
    from cnnlab.errors import CnnlabError
    from cnnlab.train.callbacks import Callback

    class Curve(Callback):
        def read(self) -> dict[str, float]:
            if not path.is_file():
                return {}
            try:
                kept = files.read_json(path)
            except CnnlabError:  # a damaged curve loses its points, not the experiment
                return {}
            return kept if isinstance(kept, dict) else {}

        def on_epoch_end(self, trainer: Any, record: dict[str, Any]) -> None:
            scores = trainer.evaluate(trainer.data.train_x, trainer.data.train_y)
            files.write_json_atomic(path, {**self.read(), str(record["epoch"]): scores.top1})

    return Curve()


def _reload(result: Any) -> dict[str, Any]:
    """The same measurement for a run finished earlier: its weights on its training images."""
    import cnnlab
    from cnnlab.train.trainer import run_data

    data = run_data(result.config)
    predictor = cnnlab.load(result.run_dir / "model.safetensors", device="cpu")
    scores = predictor.evaluate(data.train_x, data.train_y)
    return {"top1": scores.top1, "count": len(data.train_x)}


# --- figures and tables ---------------------------------------------------------------------------


COLOURS = ("tab:blue", "tab:red")  # without, with the technique


def _runs(measured: Mapping[str, Any]) -> list[dict[str, Any]]:
    """The pair's run records, in the order they trained (without, then with)."""
    return [v for v in measured.values() if isinstance(v, dict) and "label" in v]


def _nan(values: list[float | None]) -> list[float]:
    return [math.nan if v is None else v for v in values]


def _draw(results: Mapping[str, Any], what: str) -> list[Drawn]:
    """Accuracy curves (left) and the train-test gap or the training loss per epoch (right).

    Drawn from ``results.json`` alone; the right panel of a gap experiment ends at the gap the
    table and the verdict state (the same fields).
    """
    from matplotlib.lines import Line2D
    from matplotlib.ticker import MaxNLocator

    from cnnlab import plotting
    from cnnlab.experiments.figures import robust_limits

    name, runs = results["experiment"], _runs(results["measured"])
    fig = plotting.figure(figsize=(10, 4.2))
    left, right = fig.subplots(1, 2)
    losses: list[float | None] = []
    # Results kept before issue 22 lack the eval-mode curve: their training accuracy is shown
    # only where it was measured (the table's final figure), never the training-mode mean.
    has_curve = all("train_acc_eval_epoch" in run for run in runs)
    for run, colour in zip(runs, COLOURS, strict=False):
        epochs = list(range(1, run["epochs"] + 1))
        if has_curve:
            left.plot(epochs, _nan(run["train_acc_eval_epoch"]), "--", color=colour, lw=1,
                      marker=".")  # fmt: skip
        else:
            left.plot([run["epochs"]], [run["final_train_acc"]], "D", color=colour, ms=6)
        left.plot(epochs, run["test_acc_epoch"], "-", color=colour, lw=2, marker="o", ms=3,
                  label=run["label"])  # fmt: skip
        if what == "gap":
            gap = (
                [
                    math.nan if a is None else a - b
                    for a, b in zip(run["train_acc_eval_epoch"], run["test_acc_epoch"], strict=True)
                ]
                if has_curve
                else [math.nan] * (run["epochs"] - 1) + [run["gap"]]  # only the final gap known
            )
            right.plot(epochs, gap, ls="-" if has_curve else "", color=colour,
                       marker="o" if has_curve else "D", ms=3 if has_curve else 6,
                       label=f"{run['label']}: {run['gap']:.2f} at the end")  # fmt: skip
        else:
            right.plot(epochs, _nan(run["train_loss_epoch"]), "-", color=colour, marker="o", ms=3,
                       label=run["label"])  # fmt: skip
            losses += run["train_loss_epoch"]
    # Line styles in the legend as well as the colours: dashed training, bold test.
    handles, labels = left.get_legend_handles_labels()
    handles += [
        Line2D([], [], color="grey", ls="--", lw=1, marker=".")
        if has_curve
        else Line2D([], [], color="grey", ls="", marker="D"),
        Line2D([], [], color="grey", lw=2),
    ]
    labels += ["training (eval mode)" if has_curve else "final training (eval mode)", "test"]
    left.legend(handles, labels, fontsize=8)
    left.set_title("accuracy after each epoch", fontsize=10)
    left.set_ylabel("accuracy (%)")
    if what == "gap":
        right.set_title("training (eval mode) minus test accuracy", fontsize=10)
        right.set_ylabel("percentage points")
        right.axhline(0, color="grey", lw=0.8)
    else:
        right.set_title("training loss (mean over the epoch, training mode)", fontsize=10)
        right.set_ylabel("cross-entropy")
        robust_limits(right, losses)
    right.legend(fontsize=8)
    for ax in (left, right):
        ax.xaxis.set_major_locator(MaxNLocator(integer=True))
        ax.set_xlabel("epoch")
        ax.grid(alpha=0.3)
    images = runs[0]["train_images"]
    fig.suptitle(
        f"{name}: LeNet-5 on {images:,} {results['data']} training images, {results['tier']} tier",
        fontsize=10,
    )
    fig.tight_layout()
    right_text = (
        "the gap between them per epoch, ending at the gap the table states"
        if what == "gap"
        else "the training loss per epoch (how fast each net learns)"
    )
    training = (
        "dashed: the weights after each epoch on their training images in evaluation mode"
        if has_curve
        else "diamond: the final weights on their training images in evaluation mode"
    )
    caption = (
        f"{name}: training accuracy ({training}, the definition of the table) and test "
        f"accuracy (bold) without and with the technique (left), and {right_text} (right)."
    )
    return [Drawn(f"{name}_curves", fig, caption)]


def _table(runs: list[dict[str, Any]]) -> str:
    """Final training and test accuracy of each run, and the gap between them (Markdown)."""
    header = ["run", "final training accuracy (eval mode)", "final test accuracy",
              "gap (points)"]  # fmt: skip
    rows = [
        [
            r["label"],
            percent(r["final_train_acc"], scale=1),
            percent(r["final_test_acc"], scale=1),
            f"{r['gap']:.2f}",
        ]
        for r in runs
    ]
    return "\n".join(table.markdown(header, rows, (1, 2, 3)))


def _setup_text(ctx: Context, runs: list[dict[str, Any]]) -> str:
    r, limit = runs[0], ctx.settings.get("limit_test")
    tested = f"the first {limit:,}" if limit else "all"
    times = ", ".join(f"{x['label']} {x['seconds']:.0f} s" for x in runs)  # sum of its epochs
    return (
        f"Both runs: LeNet-5, the lecture recipe ({r['recipe']}), {r['epochs']} epoch(s) of "
        f"{r['train_images']:,} {ctx.data} training images, seed {ctx.seed}; test accuracy on "
        f"{tested} test images. Training time (the sum of each run's epochs): {times}."
    )


def _departures(ctx: Context, paper: str) -> list[str]:
    s = ctx.settings
    out = [paper]
    if "limit_train" in s:
        out.append(f"{s['limit_train']:,} training images, {s['epochs']} epoch(s).")
    if s.get("schedule") == "constant":
        out.append(
            "A constant learning rate instead of the lecture recipe's division by 10 on a "
            "validation plateau, which on a small validation split fires on noise and stops the "
            "network memorising its training set (the overfitting the technique is to prevent)."
        )
    out.append("One seed; differences under 0.5 percentage points are called inconclusive.")
    return out


def _gap_verdict(off: dict[str, Any], on: dict[str, Any], technique: str) -> tuple[Any, str]:
    """Held when the technique narrows the final train-test gap by more than the margin."""
    narrower = off["gap"] - on["gap"]
    held = None if abs(narrower) < MARGIN else narrower > 0
    effect = {True: "narrowed", False: "did not narrow", None: "barely changed"}[held]
    verdict = (
        f"{technique} {effect} the gap between training and test accuracy: "
        f"{on['gap']:.2f} points with it against {off['gap']:.2f} without "
        f"(training {on['final_train_acc']:.2f}% vs {off['final_train_acc']:.2f}%, test "
        f"{on['final_test_acc']:.2f}% vs {off['final_test_acc']:.2f}%)."
    )
    test_change = on["final_test_acc"] - off["final_test_acc"]
    if test_change <= -MARGIN:
        verdict += f" Test accuracy fell by {-test_change:.2f} points: it did not pay off here."
    return held, verdict


def _measured(runs: list[dict[str, Any]]) -> dict[str, Any]:
    return {r["label"]: r for r in runs}


# --- batch norm -----------------------------------------------------------------------------------


def _first_epoch_reaching(curve: list[float], target: float) -> int | None:
    return next((i + 1 for i, v in enumerate(curve) if v >= target), None)


def run_batchnorm(ctx: Context) -> Outcome:
    off = _train(ctx, "without-bn", model=MODEL)
    on = _train(ctx, "with-bn", model="lenet5_bn")
    runs = [off, on]
    target = off["test_acc_epoch"][-1]
    reached = _first_epoch_reaching(on["test_acc_epoch"], target)
    epochs = off["epochs"]
    held = reached is not None and reached < epochs
    when = f"after {reached} epoch(s)" if reached is not None else f"not within {epochs} epoch(s)"
    verdict = (
        f"The batch-norm LeNet reached the plain LeNet's final test accuracy "
        f"({target:.2f}% after {epochs} epoch(s)) {when}; after the first epoch it stood at "
        f"{on['test_acc_epoch'][0]:.2f}% against {off['test_acc_epoch'][0]:.2f}%. Final test "
        f"accuracy {on['final_test_acc']:.2f}% with batch norm, {off['final_test_acc']:.2f}% "
        "without."
    )
    return Outcome(
        measured={**_measured(runs), "epoch_reaching_plain_final": reached},
        held=held,
        verdict=verdict,
        findings=[_setup_text(ctx, runs), _table(runs)],
        departures=_departures(
            ctx,
            "d2l's LeNet with batch norm keeps sigmoids and average pooling and trains it with "
            "lr 0.1 and batch 256; here both nets have ReLU and max-pool and the lecture recipe.",
        ),
        paper={
            "claim": "Inception with batch norm matched its accuracy in 14x fewer steps",
            "source": "Ioffe & Szegedy 2015, Sec. 4.2.1",
        },
    )


# --- dropout -------------------------------------------------------------------------------------


def _gap_experiment(
    ctx: Context,
    name: str,
    technique: str,
    off: tuple[str, dict[str, Any]],
    on: tuple[str, dict[str, Any]],
    departure: str,
    source: str,
) -> Outcome:
    """Train LeNet-5 without and with a regulariser; compare the final training/test gaps.

    ``off`` and ``on`` are (run label, TrainConfig fields that differ) pairs.
    """
    runs = [_train(ctx, label, model=MODEL, **fields) for label, fields in (off, on)]
    held, verdict = _gap_verdict(*runs, technique)
    return Outcome(
        measured=_measured(runs),
        held=held,
        verdict=verdict,
        findings=[_setup_text(ctx, runs), _table(runs)],
        departures=_departures(ctx, departure),
        paper={"source": source},
    )


def run_dropout(ctx: Context) -> Outcome:
    return _gap_experiment(
        ctx,
        "dropout",
        "Dropout 0.5",
        off=("dropout-0", {"dropout": 0.0}),
        on=("dropout-0.5", {"dropout": 0.5}),
        departure="AlexNet and VGG drop half of their 4,096-unit layers; LeNet-5's hidden layers "
        "have 120 and 84 units, so dropout 0.5 removes a larger share of its capacity.",
        source="Srivastava et al. 2014; Krizhevsky et al. 2012, Sec. 4.2",
    )


# --- augmentation ---------------------------------------------------------------------------------


def run_augmentation(ctx: Context) -> Outcome:
    return _gap_experiment(
        ctx,
        "augmentation",
        "Crop and flip augmentation",
        off=("no-augmentation", {"augment": "none"}),
        on=("crop+flip", {"augment": "crop+flip"}),
        departure="Random crops of the 4-pixel-padded 28x28 image and horizontal flips (He et "
        "al.'s CIFAR augmentation); AlexNet took 224x224 crops of 256x256 images and added PCA "
        "colour noise.",
        source="Krizhevsky et al. 2012, Sec. 4.1; He et al. 2015, Sec. 4.2",
    )


BATCHNORM = Experiment(
    name="batchnorm",
    title="Batch norm trains faster",
    claim=(
        "Batch normalisation lets a network train faster and with higher learning rates "
        '("the same accuracy with 14 times fewer training steps").'
    ),
    source="Ioffe & Szegedy 2015; d2l Sec. 8.5 (LeNet with batch norm)",
    tiers=_tiers(
        # d2l's setting: 10 epochs of the full training split (55,000 here, 5,000 held out).
        {"epochs": 10, "val_size": 5_000},
        {"epochs": 30, "val_size": 5_000, "expected_s": 600},
    ),
    run=run_batchnorm,
    jobs=lambda settings: 4,
    draw=lambda results: _draw(results, "loss"),
)

# Overfitting needs a small training set (5,000 images at the quick tier give LeNet-5 room to
# memorise) and a learning rate that stays up: the plateau rule on a small validation split fires
# on noise and would stop the memorising (and the regularising) early, so the lr is constant.
_OVERFIT_QUICK = {
    "epochs": 40,
    "limit_train": 5_000,
    "val_size": 1_000,
    "schedule": "constant",
}
_OVERFIT_FULL = {
    "epochs": 100,
    "limit_train": 10_000,
    "val_size": 5_000,
    "schedule": "constant",
    "expected_s": 900,
}

DROPOUT = Experiment(
    name="dropout",
    title="Dropout 0.5 narrows the gap between training and test accuracy",
    claim=(
        "Dropout (0.5 in the fully connected layers, as in AlexNet and VGG) reduces "
        "overfitting: the network does worse on its training set and closer to it on the test set."
    ),
    source="Srivastava et al. 2014; Krizhevsky et al. 2012, Sec. 4.2; Simonyan & Zisserman 2014",
    tiers=_tiers(_OVERFIT_QUICK, _OVERFIT_FULL),
    run=run_dropout,
    jobs=lambda settings: 4,
    draw=lambda results: _draw(results, "gap"),
)

AUGMENTATION = Experiment(
    name="augmentation",
    title="Data augmentation narrows the gap between training and test accuracy",
    claim=(
        "Random crops and horizontal flips enlarge the training set and reduce overfitting "
        "(Krizhevsky et al. 2012: without it the network 'would have suffered from substantial "
        "overfitting')."
    ),
    source="Krizhevsky et al. 2012, Sec. 4.1; He et al. 2015, Sec. 4.2",
    tiers=_tiers(_OVERFIT_QUICK, _OVERFIT_FULL),
    run=run_augmentation,
    jobs=lambda settings: 4,
    draw=lambda results: _draw(results, "gap"),
)
