"""Every kind of figure cnnlab draws is legible: no text outside the canvas, no two texts on
top of each other, colours named by a legend, plain tick numbers (:mod:`helpers.legibility`).

The figures are drawn on tiny inputs, each by the function its command calls: a run's curves
and confusion matrix (``cnnlab train``, ``cnnlab report``), the report's learning-rate curve,
``cnnlab runs --plot`` (with a run that diverged and one that failed), the analyzer's two charts
(``cnnlab summary --plot``, ``cnnlab compare --plot``), the NumPy filter grid, every picture of
``cnnlab show`` (generated from :data:`cnnlab.seeing.views.VIEWS`) and every experiment's
figures, redrawn from the measurements kept in ``benchmarks/results/experiments``.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import torch
from PIL import Image

from cnnlab.analysis import analyze
from cnnlab.analysis.plots import Point, plot_comparison, plot_layers
from cnnlab.registry import create_model
from cnnlab.report.page import lr_figure
from cnnlab.report.runs import RunsTable, RunSummary
from cnnlab.run.config import TrainConfig
from cnnlab.run.figures import plot_confusion, plot_curves
from cnnlab.scratch.plots import filter_grid
from helpers.legibility import problems

ROOT = Path(__file__).resolve().parents[1]
FASHION = ("T-shirt/top", "Trouser", "Pullover", "Dress", "Coat", "Sandal", "Shirt", "Sneaker",
           "Bag", "Ankle boot")  # fmt: skip


def _history(losses: list[float], accs: list[float], steps: int = 40) -> list[dict[str, Any]]:
    """Epoch records as ``metrics.jsonl`` holds them."""
    return [
        {
            "epoch": e,
            "step": steps * e,
            "lr": 0.1 / e,
            "train_loss": loss,
            "val_loss": 1.1 * loss,
            "train_acc": acc,
            "val_acc": 0.95 * acc,
            "seconds": 1.0,
            "images_per_s": 1000.0,
        }
        for e, (loss, acc) in enumerate(zip(losses, accs, strict=True), start=1)
    ]


GOOD = _history([2.1, 0.9, 0.6, 0.5, 0.45], [0.3, 0.7, 0.8, 0.84, 0.86])
DIVERGED = _history([2.3, 410.0, 9.7, 2.4, 2.3], [0.1, 0.1, 0.1, 0.1, 0.1])
FAILED = _history([2.3, 35.0, float("nan")], [0.1, 0.1, 0.1])


def _runs(*histories: tuple[str, list[dict[str, Any]]]) -> RunsTable:
    return RunsTable(
        [
            RunSummary(Path(f"runs/{name}"), "finished", model="lenet5", history=h)
            for name, h in histories
        ]
    )


def _config(**fields: Any) -> TrainConfig:
    """A config as a run records it: the recipe's values filled in."""
    from cnnlab.run.recipes import resolve

    return resolve(TrainConfig(model="lenet5", epochs=5, **fields))[0]


# --- the figures this project's own code draws: name -> a function returning the figure -------

OWN: dict[str, Callable[[], Any]] = {
    "curves loss": lambda: plot_curves(GOOD, None, "lenet5 on fashion-mnist")[0],
    "curves accuracy": lambda: plot_curves(GOOD, None, "lenet5 on fashion-mnist")[1],
    "curves of a diverged run": lambda: plot_curves(DIVERGED, None, "fastnet on fashion-mnist")[0],
    "confusion, 10 classes": lambda: plot_confusion(
        [[90 if i == j else 1 for j in range(10)] for i in range(10)],
        FASHION,
        None,
        "lenet5 on fashion-mnist",
    ),
    "confusion, 3 classes": lambda: plot_confusion(
        [[5, 1, 0], [0, 6, 0], [2, 0, 4]], ("cat", "dog", "a very long class name"), None, "x"
    ),
    "report lr, onecycle": lambda: lr_figure(_config(schedule="onecycle"), GOOD),
    "report lr, plateau": lambda: lr_figure(_config(schedule="plateau"), GOOD),
    "runs plot": lambda: _runs(("good", GOOD), ("other", GOOD[:3])).plot(),
    "runs plot with a diverged and a failed run": lambda: _runs(
        ("good", GOOD), ("diverged", DIVERGED), ("failed", FAILED)
    ).plot(),
    "analyzer layers, lenet5": lambda: plot_layers(analyze("lenet5")),
    "analyzer layers, resnet18": lambda: plot_layers(analyze("resnet18")),
    "analyzer comparison": lambda: plot_comparison(
        [
            Point("lenet5", 61_706, 429_332, None),
            Point("alexnet", 61_100_840, 714_188_480, 56.5),
            Point("resnet18", 11_689_512, 1_814_073_856, 69.8),
            Point("resnet50", 25_557_032, 4_089_184_256, 76.1),
            Point("vgg16", 138_357_544, 15_470_264_320, 71.6),
            Point("googlenet", 6_624_904, 1_498_000_000, 69.8),
        ]
    ),
    "analyzer comparison, one decade": lambda: plot_comparison(
        [Point("a", 600_000, 600_000_000, 70.0), Point("b", 900_000, 900_000_000, 72.0)]
    ),
    "scratch filter grid": lambda: filter_grid(
        (torch.rand(24, 32, generator=torch.Generator().manual_seed(0)) * 255).byte().numpy()
    ),
}


@pytest.mark.parametrize("name", list(OWN))
def test_own_figures_are_legible(name: str) -> None:
    assert problems(OWN[name]()) == []


def test_a_failed_runs_loss_leaves_the_others_readable() -> None:
    """The loss axis is scaled to the runs that trained; the off-scale epoch is marked."""
    fig = _runs(("good", GOOD), ("diverged", DIVERGED), ("failed", FAILED)).plot()
    loss_ax = fig.axes[1]
    high = loss_ax.get_ylim()[1]
    assert high < 10, "a loss of 410 still sets the scale"
    marked = " ".join(t.get_text() for t in loss_ax.get_legend().get_texts())
    assert "410" in marked and "diverged" in marked
    assert "not a number" in marked and "failed" in marked


# --- figures other modules draw ------------------------------------------------------------------

CLASSES = ("stripes", "dots", "plain")


@pytest.fixture(scope="module")
def predictor(tmp_path_factory: pytest.TempPathFactory) -> Any:
    """A random fastnet over a three-class 28x28 grey image folder (no download)."""
    from cnnlab.predictor import Predictor
    from cnnlab.runmeta import RunMeta

    root = tmp_path_factory.mktemp("pictures")
    g = torch.Generator().manual_seed(0)
    for split in ("train", "test"):
        for k, name in enumerate(CLASSES):
            (root / split / name).mkdir(parents=True)
            for i in range(3):
                x = torch.rand(28, 28, generator=g) * 60
                x[:, :: 3 + k] += 150
                Image.fromarray(x.clamp(0, 255).byte().numpy()).save(
                    root / split / name / f"{i}.png"
                )
    torch.manual_seed(0)
    model = create_model("fastnet", num_classes=3, in_channels=1)
    meta = RunMeta(model="fastnet", num_classes=3, in_channels=1, input_size=(1, 28, 28),
                   classes=CLASSES, mean=(0.4,), std=(0.25,), dataset=str(root))  # fmt: skip
    return Predictor(model.eval(), meta, None)


def _views() -> list[Any]:
    from cnnlab.seeing import VIEWS

    return list(VIEWS)


# Pictures of `cnnlab show` that the seeing code still draws illegibly: view name -> defect.
SEEING_DEFECTS: dict[str, str] = {}


def _view_param(view: Any) -> Any:
    marks = []
    if view.name in SEEING_DEFECTS:
        marks = [pytest.mark.xfail(strict=True, reason=SEEING_DEFECTS[view.name])]
    return pytest.param(view, id=view.name, marks=marks)


@pytest.mark.parametrize("view", [_view_param(v) for v in _views()])
def test_show_pictures_are_legible(view: Any, predictor: Any) -> None:
    from cnnlab.seeing import show

    limit = 1 if view.images == "some" else None
    shown = show(predictor, (), view.name, limit=limit, samples=2, window=14, stride=14)
    assert problems(shown.figure) == []


# Experiment figures still drawn illegibly: "experiment/figure" -> defect.
EXPERIMENT_DEFECTS: dict[str, str] = {}
KEPT = sorted((ROOT / "benchmarks/results/experiments").glob("*.json"))


def _experiment_figures() -> list[Any]:
    params = []
    for path in KEPT:
        results = json.loads(path.read_text())
        for record in results["figures"]:
            key = f"{results['experiment']}/{Path(record['file']).stem}"
            marks = []
            if key in EXPERIMENT_DEFECTS:
                marks = [pytest.mark.xfail(strict=True, reason=EXPERIMENT_DEFECTS[key])]
            params.append(pytest.param(path, key, id=key, marks=marks))
    return params


@pytest.mark.parametrize(("path", "key"), _experiment_figures())
def test_experiment_figures_are_legible(path: Path, key: str) -> None:
    """Redrawn from the measurements kept for docs/experiments.md, as the runner draws them."""
    from cnnlab.experiments import get_experiment
    from cnnlab.experiments.runner import draw_figures

    results = json.loads(path.read_text())
    drawn = {d.name: d.figure for d in draw_figures(get_experiment(results["experiment"]), results)}
    figure = key.split("/", 1)[1]
    assert figure in drawn, f"the experiment no longer draws {figure}"
    assert problems(drawn[figure]) == []


def test_the_checker_finds_what_it_should() -> None:
    """The checker itself: a clipped title, overlapping ticks, colours without a legend and
    scientific tick labels are each reported; a tidy figure is not."""
    from cnnlab import plotting

    fig = plotting.figure(figsize=(4, 3))
    ax = fig.subplots()
    ax.plot([1, 2], [1, 2], label="a")
    ax.plot([1, 2], [2, 1], label="b")
    ax.legend()
    ax.set_title("tidy")
    fig.tight_layout()
    assert problems(fig) == []

    fig = plotting.figure(figsize=(4, 3))
    ax = fig.subplots()
    ax.plot([1, 2], [1, 2], label="a")
    ax.plot([1, 2], [2, 1], label="b")
    fig.suptitle("a suptitle far too long for a canvas only four inches wide, cut off both ends")
    ax.set_xticks([1, 1.04, 2], ["long label one", "long label two", "2"])
    ax.scatter([1.5], [1.5])
    ax.scatter([1.6], [1.6])
    ax.set_yscale("log")
    ax.set_ylim(500, 900)
    found = "\n".join(problems(fig))
    assert 'suptitle "a suptitle' in found and "left and right" in found
    assert 'x tick "long label one" overlaps x tick "long label two"' in found
    assert "['a', 'b'] are in no legend" in found
    assert "2 colours mean something" in found
    assert "scientific notation" in found
