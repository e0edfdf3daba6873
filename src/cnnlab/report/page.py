"""One page per run: ``cnnlab report RUN_DIR`` -> a self-contained ``report.html``.

What a reader wants after training, on one page that works offline (see
:mod:`cnnlab.report.html`): the model, data and recipe; the exact command that reproduces the run;
versions and machine; loss, accuracy and learning-rate curves; the test confusion matrix with
per-class precision, recall and F1 and the most confused pairs; the worst errors (the test images
with the highest loss, fastai's "top losses") with true and predicted classes; the first training
batch as the model saw it (after augmentation); the analyzer's per-layer table; timings; and
Grad-CAM of a few test images where cnnlab has its seeing-inside module (:func:`gradcam_pictures`).

The page is assembled from the run's own files (:class:`~cnnlab.run.layout.RunFiles`), its model
(:func:`cnnlab.load`) and its data (:func:`~cnnlab.run.data.load_run_data`, the same splits the
run used): the confusion matrix of a finished run is the one training reported in
``results.json``; the gallery comes from predicting the test set again. A section that cannot be
made (the dataset is not on this machine) says why, and the rest of the page is still written.
"""

from __future__ import annotations

import dataclasses
import datetime
import importlib
import importlib.util
import math
import os
import platform
import shlex
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import torch

from cnnlab import __version__, files
from cnnlab.errors import CheckpointError, CnnlabError, ConfigError
from cnnlab.formats import duration, number, percent, printable
from cnnlab.report import html
from cnnlab.report.runs import RunSummary, read_run
from cnnlab.report.scores import (
    ClassScore,
    ConfusedPair,
    class_scores,
    confused_pairs,
    macro_average,
)
from cnnlab.run.checkpoints import check_checkpoint, latest_valid_checkpoint
from cnnlab.run.config import TrainConfig
from cnnlab.run.device import describe_machine
from cnnlab.run.layout import RunFiles
from cnnlab.run.records import DamagedRunError, RunResults, TrainingRecord
from cnnlab.run.schedule import WARMUP_MIN_STEPS

if TYPE_CHECKING:
    from matplotlib.figure import Figure

    from cnnlab.predictor import Predictor
    from cnnlab.run.data import RunData
    from cnnlab.runmeta import RunMeta

DEFAULT_NAME = "report.html"  # written into the run directory unless -o says otherwise
WORST_ERRORS = 24  # images in the gallery of worst errors
AUGMENTED = 24  # images of the first training batch shown
CONFUSED_PAIRS = 10
LR_POINTS = 20_000  # steps drawn in the learning-rate curve, at most
GRADCAM_IMAGES = 8
# Settings the reproducing command leaves out: they do not change what is trained.
NOT_IN_COMMAND = frozenset({"model", "resume", "progress"})


@dataclass(frozen=True)
class Picture:
    """An embedded image: a data URI, its alternative text and a caption."""

    uri: str
    alt: str
    caption: str = ""
    wrong: bool = False  # a misclassified example (the caption is drawn in red)


@dataclass
class RunReport:
    """Everything on the page; :meth:`to_html` renders it (``report.html.j2``).

    Sections that could not be made hold nothing and a line in ``notes`` (or their own ``*_note``)
    says why.
    """

    run: RunSummary
    meta: RunMeta
    config: TrainConfig
    command: str
    pinned_command: str
    about: dict[str, list[tuple[str, str]]]  # "model", "data", "recipe" -> (label, value)
    environment: dict[str, list[tuple[str, str]]]  # "training", "this page" -> (label, value)
    headline: list[tuple[str, str]]
    curves: list[Picture] = field(default_factory=list)
    curves_note: str = ""  # why the training loss levels off above 0 (label smoothing)
    confusion: Picture | None = None
    confusion_source: str = ""
    scores: list[ClassScore] = field(default_factory=list)
    macro: ClassScore | None = None
    pairs: list[ConfusedPair] = field(default_factory=list)
    errors: list[Picture] = field(default_factory=list)
    errors_note: str = ""
    augmented: list[tuple[Picture, Picture]] = field(default_factory=list)
    augmented_note: str = ""
    gradcam: list[Picture] = field(default_factory=list)
    gradcam_note: str = ""
    gradcam_scale: Picture | None = None  # the overlay's colour bar, 0 to each map's maximum
    gradcam_layer: str = ""
    layers_html: str = ""
    epochs: list[dict[str, Any]] = field(default_factory=list)
    timings: list[tuple[str, str]] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    created: str = ""

    def to_html(self) -> str:
        """The page: one HTML document, styles inline, images as data URIs, no script."""
        tables = {
            "scores": self.scores_table(),
            "pairs": self.pairs_table(),
            "epochs": self.epochs_table(),
        }
        return html.render("report.html.j2", r=self, tables=tables, version=__version__)

    def scores_table(self) -> str:
        """Per-class precision, recall and F1, their macro average underneath (HTML)."""
        if not self.scores:
            return ""

        def cells(s: ClassScore) -> list[str]:
            return [s.name, number(s.support), *map(percent, (s.precision, s.recall, s.f1))]

        return html.table(
            ("class", "images", "precision", "recall", "F1"),
            map(cells, self.scores),
            range(1, 5),
            caption="Recall is the per-class accuracy; precision is the share of the images "
            "predicted as the class that are; F1 is their harmonic mean.",
            footer=cells(self.macro) if self.macro is not None else None,
        )

    def pairs_table(self) -> str:
        """The most confused pairs of classes (HTML)."""
        if not self.pairs:
            return ""
        return html.table(
            ("true class", "predicted as", "images", "share of the true class"),
            [[p.true, p.predicted, number(p.count), percent(p.share, 1)] for p in self.pairs],
            (2, 3),
        )

    def epochs_table(self) -> str:
        """Every epoch's record of ``metrics.jsonl`` (HTML)."""
        if not self.epochs:
            return ""
        header = ("epoch", "steps", "lr at the end", "train loss", "train acc", "val loss",
                  "val acc", "time", "images/s")  # fmt: skip
        rows = [
            [
                str(e["epoch"]),
                number(e["step"]),
                f"{e['lr']:.4g}",
                number(e["train_loss"], 4),
                percent(e["train_acc"]),
                number(e["val_loss"], 4),
                percent(e["val_acc"]),
                duration(e["seconds"]),
                number(e["images_per_s"], 0),
            ]
            for e in self.epochs
        ]
        caption = "Every epoch (metrics.jsonl); validation after each, on the held-out split."
        return html.table(header, rows, range(len(header)), caption=caption)

    def _repr_html_(self) -> str:  # a notebook shows the page itself
        return self.to_html()


def build_report(
    run_dir: str | os.PathLike[str], *, device: str = "cpu", limit: int | None = None
) -> RunReport:
    """Gather one run's page.

    Args:
        run_dir: a directory ``cnnlab train`` wrote (finished, interrupted or failed).
        device: where the model predicts the test set again (``cpu``, ``cuda``, ``auto``).
        limit: predict only the first N of the run's test images (the gallery and, for an
            unfinished run, the confusion matrix); default: all that the run evaluated.

    Raises:
        ConfigError: ``run_dir`` holds no run.
        CheckpointError: it holds neither a final model nor a valid checkpoint, or a run file is
            damaged (:class:`~cnnlab.run.records.DamagedRunError`: one line naming the file and
            the field; every file is checked before any is used).
    """
    import cnnlab

    run_files = RunFiles(Path(run_dir))
    if not os.path.lexists(run_files.config):
        raise ConfigError(
            f"{printable(str(run_dir))} holds no training run (no config.json): pass a directory "
            "written by `cnnlab train --out RUN_DIR`"
        )
    # Every file is checked before any of it is used: a damaged run is refused in one line.
    run = read_run(run_files.root)
    if run.status == "damaged":
        raise CheckpointError(f"damaged run {printable(str(run_dir))}: {run.reason}")
    config = run_files.read_config(resolved=True)
    results = run_files.read_outcome()
    predictor = cnnlab.load(run_files.root, device=device)
    _check_classes(run_files, results, predictor.meta)
    training = _latest_training(run_files)
    world_size = training.world_size if training else 1
    report = RunReport(
        run=run,
        meta=predictor.meta,
        config=config,
        command=train_command(config, world_size, baseline=recipe_baseline(config)),
        pinned_command=train_command(config, world_size),
        about=_about(config, predictor.meta, run),
        environment=_environment(predictor.meta, config, training),
        headline=_headline(run, results),
        created=datetime.datetime.now().astimezone().strftime("%Y-%m-%d %H:%M %Z"),
    )
    _add_curves(report, config, run.history)
    _add_test_results(report, results, predictor, limit)
    _add_layers(report, predictor)
    _add_timings(report, results)
    return report


def _check_classes(run_files: RunFiles, results: RunResults | None, meta: RunMeta) -> None:
    """The test results' classes are the model's: the page puts one beside the other."""
    if results is None or results.test is None:
        return
    if results.test.classes != tuple(meta.classes):
        raise DamagedRunError(
            run_files.root,
            run_files.results.name,
            f"test.per_class names {len(results.test.classes)} classes that are not the "
            f"{meta.num_classes} of the run's model",
        )


def write_report(
    run_dir: str | os.PathLike[str],
    out: str | os.PathLike[str] | None = None,
    **options: Any,
) -> Path:
    """Build the page of ``run_dir`` and write it (atomically) to ``out``
    (default ``RUN_DIR/report.html``); returns the path written. ``options`` go to
    :func:`build_report`."""
    page = build_report(run_dir, **options).to_html()
    path = Path(out) if out is not None else Path(run_dir) / DEFAULT_NAME
    try:
        files.write_atomic(path, lambda tmp: tmp.write_text(page, encoding="utf-8"))
    except OSError as err:
        raise ConfigError(f"cannot write {path} ({err}): give a writable path with -o") from None
    return path


# --- what was trained, how, where ----------------------------------------------------------------


def train_command(
    config: TrainConfig, world_size: int = 1, *, baseline: TrainConfig | None = None
) -> str:
    """The ``cnnlab train`` command line that trains ``config`` again.

    Without ``baseline`` every setting that differs from its field default is spelled out,
    recipe values included, so the command pins the run even if a recipe's defaults change
    later. Given ``baseline`` (what ``cnnlab train`` resolves for the same model and data with
    no recipe field set: :func:`recipe_baseline`), a recipe field is named only where the run
    chose another value, so a reader sees what was chosen. Either way a setting that training
    never reads for this run (``--nesterov`` with adamw:
    :data:`cnnlab.run.config.MATTERS_ONLY_WHEN`) is left out. Under DDP the command is the
    ``torchrun`` launch with the same number of processes (the global batch splits by it).
    """
    from cnnlab.run.config import matters, recipe_fields

    args = ["cnnlab", "train"] if world_size == 1 else [
        "torchrun", "--standalone", "--nproc_per_node", str(world_size), "-m", "cnnlab", "train"
    ]  # fmt: skip
    if config.model:
        args.append(config.model)
    from_recipe = set(recipe_fields()) if baseline is not None else set()
    for f in dataclasses.fields(TrainConfig):
        value = getattr(config, f.name)
        # a recipe field is compared with the recipe's value, any other with its default
        default = getattr(baseline, f.name) if f.name in from_recipe else f.default
        if f.name in NOT_IN_COMMAND or value is None or value == default:
            continue
        if not matters(config, f.name):  # e.g. --nesterov for adamw: never read
            continue
        flag = "--" + f.name.replace("_", "-")
        if isinstance(value, bool):
            args.append(flag if value else f"--no-{flag[2:]}")
        else:
            args += [flag, str(value)]
    return shlex.join(args)


def recipe_baseline(config: TrainConfig) -> TrainConfig | None:
    """What ``cnnlab train`` resolves for ``config``'s model, data and recipe with no recipe
    field given (None when the recipe cannot be resolved, e.g. an unregistered model: the short
    command then spells everything out)."""
    from cnnlab.run.config import recipe_fields
    from cnnlab.run.recipes import resolve

    bare = dataclasses.replace(config, **dict.fromkeys(recipe_fields()))
    try:
        return resolve(bare, given=set())[0]
    except CnnlabError:
        return None


def _latest_training(run_files: RunFiles) -> TrainingRecord | None:
    """The training state of the newest valid checkpoint (threads, world size), if any."""
    latest, _ = latest_valid_checkpoint(run_files.checkpoints)
    return check_checkpoint(latest).training if latest is not None else None


def _about(config: TrainConfig, meta: RunMeta, run: RunSummary) -> dict[str, list[tuple[str, str]]]:
    from cnnlab.registry import model_info

    info = model_info(meta.model)
    c, h, w = meta.input_size
    params = f"{info.num_params:,} at {info.num_classes} classes" if info.num_params else ""
    model = [
        ("model", meta.model),
        ("family", info.family),
        ("paper", info.paper),
        ("description", info.description),
        ("input", f"{c}x{h}x{w}"),
        ("registry parameters", params),
    ]
    if meta.model_kwargs:
        model.append(("settings", ", ".join(f"{k}={v}" for k, v in meta.model_kwargs.items())))
    data = [
        ("dataset", meta.dataset or str(config.data)),
        ("classes", f"{meta.num_classes}: {', '.join(meta.classes)}"),
        ("normalisation", f"mean {_floats(meta.mean)}, std {_floats(meta.std)}"),
        ("validation images", f"{config.val_size:,} held out of the training split"),
        ("training images", _first(config.limit_train, "the rest of the training split")),
        ("test images", _first(config.limit_test, "the whole test split")),
    ]
    recipe = [
        ("recipe", config.recipe),
        ("epochs", f"{run.epochs_done} of {config.epochs} done"),
        ("batch", f"{config.batch_size} images per step"),
        ("optimizer", _optimizer(config)),
        ("schedule", _schedule(config)),
        ("loss", f"cross-entropy, label smoothing {config.label_smoothing:g}"),
        ("augmentation", _augmentation(config)),
        ("precision", str(config.precision)),
        ("memory format", "channels-last" if config.channels_last else "contiguous"),
        ("test-time flip", "yes" if config.tta else "no"),
        ("seed", str(config.seed)),
    ]
    return {"model": model, "data": data, "recipe": recipe}


def _augmentation(c: TrainConfig) -> str:
    if c.augment and "crop" in c.augment:
        return f"{c.augment} (random crop after {c.crop_padding} px of zero padding)"
    return str(c.augment)


def _first(limit: int | None, everything: str) -> str:
    return everything if limit is None else f"the first {limit:,}"


def _floats(values: tuple[float, ...]) -> str:
    return ", ".join(f"{v:.4f}" for v in values)


def _optimizer(c: TrainConfig) -> str:
    text = f"{c.optimizer}, lr {c.lr:g}, weight decay {c.weight_decay:g}"
    if c.optimizer == "sgd":
        text += f", momentum {c.momentum:g}" + (" (Nesterov)" if c.nesterov else "")
    return text


def _schedule(c: TrainConfig) -> str:
    if c.schedule == "onecycle":
        return (
            f"one-cycle: linear warm-up over {100 * c.warmup:g}% of the steps (never steeper "
            f"than 0 to the peak in {WARMUP_MIN_STEPS} steps: a short run peaks lower and later), "
            "then down to 0"
        )
    if c.schedule == "plateau":
        factor = f"divide by {1 / c.lr_decay:g}" if c.lr_decay else "set to 0"
        return f"{factor} after {c.plateau_patience} epochs without validation improvement"
    if c.schedule == "step":
        return f"multiply by {c.lr_decay:g} every {c.step_epochs} epochs"
    if c.schedule == "multistep":
        return "divide by 10 at 50% and 75% of the epochs"
    return str(c.schedule)


def _environment(
    meta: RunMeta, config: TrainConfig, record: TrainingRecord | None
) -> dict[str, list[tuple[str, str]]]:
    """What the run's files record about where it trained, and where this page was made."""
    training = [
        ("cnnlab", meta.cnnlab_version or "not recorded"),
        ("device setting", config.device),
        ("processes", str(record.world_size if record else 1)),
    ]
    if record is not None and record.threads:
        same = "a CPU run repeats bitwise with the same count"
        training.append(("CPU threads", f"{record.threads} ({same})"))
    machine = describe_machine()
    here = [
        ("cnnlab", machine["cnnlab"]),
        ("Python", machine["python"]),
        ("PyTorch", machine["torch"]),
        ("torchvision", machine["torchvision"]),
        ("NumPy", machine["numpy"]),
        ("system", platform.platform(terse=True)),
        ("processor", machine["cpu"]),
        ("CPU cores", str(machine["cores"])),
    ]
    if machine["gpu"]:
        here.append(("GPU", machine["gpu"]))
    return {"training": training, "this page": here}


def _headline(run: RunSummary, results: RunResults | None) -> list[tuple[str, str]]:
    test = results.test if results is not None else None
    out = []
    if test is not None:
        out += [("test top-1", percent(test.top1)), ("top-5", percent(test.top5))]
        out.append(("test loss", number(test.loss, 4)))
    if run.best_val_acc is not None:
        out.append(("best validation", percent(run.best_val_acc)))
    out.append(("epochs", f"{run.epochs_done}/{run.epochs}"))
    if run.seconds is not None:
        out.append(("time", duration(run.seconds)))
    return out


# --- curves -------------------------------------------------------------------------------------


def _add_curves(report: RunReport, config: TrainConfig, history: list[dict[str, Any]]) -> None:
    from cnnlab.run.figures import plot_curves

    if not history:
        report.notes.append("no epoch has finished yet: there are no curves")
        return
    title = f"{config.model} on {config.data}"
    smoothing = config.label_smoothing or 0.0
    train_label = "train (mean over the epoch" + (
        f", label smoothing {smoothing:g})" if smoothing else ")"
    )
    loss, acc = plot_curves(history, None, title, config.schedule != "onecycle", train_label)
    report.curves_note = smoothing_note(smoothing, report.meta.num_classes)
    report.curves = [
        Picture(html.figure_uri(loss), "loss per epoch", "Cross-entropy loss, train (mean over "
                "each epoch) and validation (after it)."),
        Picture(html.figure_uri(acc), "accuracy per epoch", "Accuracy, train and validation."),
        Picture(html.figure_uri(lr_figure(config, history)), "learning rate per step",
                "Learning rate of every optimizer step."),
    ]  # fmt: skip


def smoothing_floor(smoothing: float, classes: int) -> float:
    """The least training loss label smoothing allows: the entropy of the smoothed target.

    PyTorch's ``label_smoothing`` (Szegedy et al. 2016, Sec. 7) trains against ``1 - e + e/K``
    on the true class and ``e/K`` on each other; cross-entropy against a target is at least the
    target's entropy, reached when the prediction equals it.
    """
    if smoothing <= 0:
        return 0.0
    true, other = 1 - smoothing + smoothing / classes, smoothing / classes
    return -(true * math.log(true) + (classes - 1) * other * math.log(other))


def smoothing_note(smoothing: float, classes: int) -> str:
    """Why a run trained with label smoothing has a training loss that levels off; empty
    without smoothing."""
    if smoothing <= 0:
        return ""
    true, other = 1 - smoothing + smoothing / classes, smoothing / classes
    return (
        f"This run trained with label smoothing {smoothing:g}: its training loss is the "
        f"cross-entropy against targets of {true:.3g} on the true class and {other:.3g} on each "
        f"of the other {classes - 1}, which cannot reach 0 -- its least value is "
        f"{smoothing_floor(smoothing, classes):.2f} (the targets' own entropy), reached only by "
        "predicting exactly those targets. The validation loss is the plain cross-entropy, "
        "so it can be lower than the training loss."
    )


def lr_figure(config: TrainConfig, history: list[dict[str, Any]]) -> Figure:
    """The learning rate of every step: the schedule's formula where it is stateless
    (:func:`~cnnlab.run.schedule.scheduled_lr`), the logged per-epoch value for ``plateau``."""
    from cnnlab import plotting
    from cnnlab.run.schedule import scheduled_lr

    per_epoch = history[0]["step"]  # steps in one epoch (the first record counts them)
    total = per_epoch * int(config.epochs)
    done = history[-1]["step"]
    # Every step up to LR_POINTS of them, evenly spaced beyond: the curve looks the same, and a
    # record claiming 10^12 steps costs no more than a real run.
    steps = range(0, done, max(1, done // LR_POINTS))
    if config.schedule == "plateau":
        lrs = [history[min(s // per_epoch, len(history) - 1)]["lr"] for s in steps]
    else:
        lrs = [scheduled_lr(config, s // per_epoch, s, total) for s in steps]
    fig = plotting.figure(figsize=(6, 4))
    ax = fig.subplots()
    ax.plot([(s + 1) / per_epoch for s in steps], lrs, "-")
    ax.set_xlabel("epoch")
    ax.set_ylabel("learning rate")
    ax.set_title(f"{config.schedule} schedule, {done} steps")
    ax.grid(alpha=0.3)
    fig.tight_layout()
    return fig


# --- the test set -------------------------------------------------------------------------------


def _add_test_results(
    report: RunReport, results: RunResults | None, predictor: Predictor, limit: int | None
) -> None:
    """Confusion, per-class scores and pairs; the gallery, first batch and Grad-CAM need data."""
    from cnnlab.run.data import load_run_data, record_sides
    from cnnlab.run.figures import plot_confusion

    classes = list(report.meta.classes)
    try:
        data = load_run_data(report.config, record_sides(report.meta))
    except CnnlabError as err:
        data = None
        why = f"the run's data is not on this machine ({err})"
        report.errors_note = report.augmented_note = report.gradcam_note = why
    if data is not None:
        test_x, test_y = data.test_x[:limit], data.test_y[:limit]
        t0 = time.perf_counter()
        logits = predictor.logits(test_x)
        took = duration(time.perf_counter() - t0)
        report.timings.append((f"predicting {len(test_x):,} test images for this page", took))
        report.errors = worst_errors(test_x, test_y, logits, classes)
        report.augmented = first_batch(report.config, data)
        report.gradcam, report.gradcam_note = gradcam_pictures(predictor, test_x, test_y)
        report.gradcam_scale = colour_scale() if report.gradcam else None
        report.gradcam_layer = _gradcam_layer(predictor) if report.gradcam else ""
    tested = results.test if results is not None else None
    confusion = [list(row) for row in tested.confusion] if tested is not None else None
    if confusion is not None:
        report.confusion_source = "the test evaluation at the end of training (results.json)"
    elif data is not None:
        from cnnlab.run.metrics import Tally

        tally = Tally.zeros(len(classes))
        tally.add(logits, test_y)
        confusion = tally.result().confusion
        report.confusion_source = (
            f"the newest checkpoint, predicted again for this page on {len(test_y):,} test images"
        )
    if confusion is None:
        return
    title = f"{report.meta.model} on {report.meta.dataset}"
    report.confusion = Picture(
        html.figure_uri(plot_confusion(confusion, classes, None, title)),
        "confusion matrix of the test set",
        "Rows: true class; columns: predicted. Colour: share of the true class; numbers: images.",
    )
    report.scores = class_scores(confusion, classes)
    report.macro = macro_average(report.scores)
    report.pairs = confused_pairs(confusion, classes, CONFUSED_PAIRS)


def worst_errors(
    images: torch.Tensor, labels: torch.Tensor, logits: torch.Tensor, classes: list[str]
) -> list[Picture]:
    """The misclassified test images with the highest loss (the most confidently wrong) first.

    Shape:
        images uint8 ``(N, C, H, W)``, labels ``(N,)``, logits ``(N, K)``.
    """
    probs = torch.softmax(logits.float(), dim=1)
    predicted = probs.argmax(dim=1)
    loss = -torch.log(probs[torch.arange(len(labels)), labels].clamp_min(1e-12))
    wrong = (predicted != labels).nonzero().flatten()
    order = wrong[loss[wrong].argsort(descending=True)][:WORST_ERRORS]
    out = []
    for i in order.tolist():
        t, p = int(labels[i]), int(predicted[i])
        out.append(
            Picture(
                html.image_uri(images[i]),
                f"test image {i}: a {classes[t]} predicted as {classes[p]}",
                f"#{i}: {classes[t]} → {classes[p]} ({100 * probs[i, p]:.0f}%; "
                f"{classes[t]} {100 * probs[i, t]:.0f}%)",
                wrong=True,
            )
        )
    return out


def first_batch(config: TrainConfig, data: RunData) -> list[tuple[Picture, Picture]]:
    """The first training batch as stored and as the model saw it at step 1 (augmented).

    The batch is the one training drew (:func:`cnnlab.run.data.first_batch`: the same
    seeded generators, permutation and augmentation).
    """
    from cnnlab.run.data import first_batch as training_batch

    index, seen = training_batch(config, data)
    classes = data.info.classes
    out = []
    for k in range(min(AUGMENTED, len(index))):
        name = classes[int(data.train_y[index[k]])]
        out.append(
            (
                Picture(html.image_uri(data.train_x[index[k]]), f"training image: {name}", name),
                Picture(html.image_uri(seen[k]), f"{name}, augmented as at step 1", name),
            )
        )
    return out


def gradcam_pictures(
    predictor: Predictor, images: torch.Tensor, labels: torch.Tensor
) -> tuple[list[Picture], str]:
    """Grad-CAM of the first few test images, or why there is none.

    The hook for the seeing-inside module: when ``cnnlab.seeing`` exists, its
    ``gradcam(model, images)`` is called with the model and a prepared float batch
    ``(N, C, H, W)`` (default layer, the predicted class) and must return heat maps ``(N, h, w)``
    or ``(N, 1, h, w)``; they are scaled to the image, normalised per image and laid over it.
    Without that module the section says so; if the call fails, the section says how, and the
    rest of the page is unaffected.
    """
    if importlib.util.find_spec("cnnlab.seeing") is None:
        return [], (
            "Grad-CAM appears here once cnnlab has its seeing-inside module (cnnlab.seeing); "
            "this installation has none."
        )
    images, labels = images[:GRADCAM_IMAGES], labels[:GRADCAM_IMAGES]
    scores: list[str] = [""] * len(images)
    try:
        seeing = importlib.import_module("cnnlab.seeing")
        x = predictor.prepare(images)
        if hasattr(seeing, "explain"):  # each map with its deletion/insertion measurement
            found = seeing.explain(predictor.model, x, "gradcam")
            maps, scores = found.maps, [s.caption() for s in found.scores]
        else:
            maps = seeing.gradcam(predictor.model, x)
        overlays = _overlay(images, torch.as_tensor(maps).detach().float().cpu())
        predicted = predictor.logits(images).argmax(dim=1)
    except Exception as err:  # an optional section must never cost the rest of the page
        return [], f"Grad-CAM failed: {type(err).__name__}: {err}"
    classes = predictor.classes
    return [
        Picture(
            html.image_uri(overlay),
            f"Grad-CAM of test image {i}",
            f"#{i}: {classes[int(labels[i])]} → {classes[int(predicted[i])]}"
            + (f"; {scores[i]}" if scores[i] else ""),
            wrong=bool(labels[i] != predicted[i]),
        )
        for i, overlay in enumerate(overlays)
    ], ""


def _gradcam_layer(predictor: Predictor) -> str:
    """The layer :func:`gradcam_pictures` looked at (cnnlab.seeing's default), or ""."""
    try:
        seeing = importlib.import_module("cnnlab.seeing")
        return seeing.default_layer(predictor.model, tuple(predictor.meta.input_size), "gradcam")
    except Exception:  # a stand-in module, or none: the text says "the default layer"
        return ""


def colour_scale() -> Picture:
    """The overlay's colour bar (inferno, as :func:`_overlay`), low on the left."""
    import matplotlib

    ramp = torch.linspace(0, 1, 256).expand(16, -1).numpy()
    rgb = torch.from_numpy(matplotlib.colormaps["inferno"](ramp)[..., :3]).permute(2, 0, 1)
    pixels = (rgb * 255).round().to(torch.uint8)
    return Picture(html.image_uri(pixels), "colour scale: 0 (black) to the map's maximum (yellow)")


def _overlay(images: torch.Tensor, maps: torch.Tensor) -> torch.Tensor:
    """Heat maps laid over images.

    Shape:
        images uint8 ``(N, C, H, W)``, maps ``(N, h, w)`` or ``(N, 1, h, w)`` -> uint8
        ``(N, 3, H, W)``.
    """
    import matplotlib

    if maps.dim() == 3:
        maps = maps[:, None]
    maps = torch.nn.functional.interpolate(maps, size=images.shape[-2:], mode="bilinear")[:, 0]
    lo = maps.amin(dim=(1, 2), keepdim=True)
    hi = maps.amax(dim=(1, 2), keepdim=True)
    maps = (maps - lo) / (hi - lo).clamp_min(1e-12)  # (N, H, W) in [0, 1]
    heat = torch.from_numpy(matplotlib.colormaps["inferno"](maps.numpy())[..., :3])  # (N,H,W,3)
    grey = images.float().mean(dim=1, keepdim=True) / 255  # (N, 1, H, W)
    mixed = 0.5 * grey + 0.5 * heat.permute(0, 3, 1, 2).float()
    return (mixed * 255).round().clamp(0, 255).to(torch.uint8)


# --- layers and timings -------------------------------------------------------------------------


def _add_layers(report: RunReport, predictor: Predictor) -> None:
    from markupsafe import Markup

    from cnnlab.analysis import analyze

    try:
        analysis = analyze(predictor.model, input_size=report.meta.input_size)
        report.layers_html = Markup(analysis.to_html())
    except CnnlabError as err:
        report.notes.append(f"the analyzer could not trace {report.meta.model}: {err}")


def _add_timings(report: RunReport, results: RunResults | None) -> None:
    history = report.run.history
    report.epochs = history
    train = sum(h.get("seconds", 0.0) for h in history)
    rows = [("training epochs (sum)", duration(train))]
    if history:
        rates = [h["images_per_s"] for h in history if "images_per_s" in h]
        if rates:
            mean = sum(rates) / len(rates)
            rows.append(("throughput", f"{mean:,.0f} images/s (mean of the epochs)"))
    if results is not None and results.seconds is not None:
        rows.insert(0, ("whole run", duration(results.seconds)))
        rows.append(("set-up, validation and test", duration(max(results.seconds - train, 0.0))))
    report.timings[:0] = rows
