"""The loss surface with and without skip connections (Li et al. 2018).

Paper: Li, Xu, Taylor, Studer, Goldstein (2018), "Visualizing the Loss Landscape of Neural
Nets", NeurIPS: 2-D surfaces along two filter-normalised random directions around a trained
network (Sec. 4, Fig. 5: ResNet-20/56/110 with and without shortcuts on CIFAR-10, a 51x51 grid
on [-1, 1]^2 over all 50,000 training images), 1-D linear interpolation (Sec. 3), and the
non-convexity |lambda_min / lambda_max| of the Hessian (Sec. 6, Fig. 7). Their claim: without
skip connections deep networks' landscapes turn chaotic and non-convex (from about 56 layers);
with them they stay smooth and nearly convex.

What this experiment does, for a ResNet and its plain twin (``resnet20``/``plain20`` at the
quick tier, ``resnet56``/``plain56`` at the full tier), each trained as an ordinary cnnlab run:

* the 1-D interpolation from the initial weights (rebuilt from the run's seed exactly as the
  trainer builds them) to the trained ones, parameters and batch-norm statistics together;
* the 2-D surface ``L(theta + a d1 + b d2)`` on a grid, directions filter-normalised and zero
  on biases and batch-norm parameters (:mod:`cnnlab.experiments.landscape_math`), batch norm in
  eval mode, on the first N images of the run's training split;
* the Hessian's extreme eigenvalues (Lanczos on Hessian-vector products) on a sub-grid, and
  from them the mean |lambda_min / lambda_max| and the fraction of points with significant
  negative curvature (|lambda_min / lambda_max| above :data:`SIGNIFICANT`).

Every grid row and every Hessian point is a ``ctx.measure`` job, so a killed run resumes.
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Mapping
from typing import Any

from cnnlab import table
from cnnlab.experiments.base import Context, Drawn, Experiment, Outcome
from cnnlab.formats import number, percent

CONTOUR_TOP_FACTOR = 20  # contour levels span the minimum loss to this multiple of it
SIGNIFICANT = 0.1  # |lambda_min / lambda_max| above this counts as significant non-convexity
# Goodfellow et al. (2015) also go below 0; with batch norm the extrapolated running statistics
# there are meaningless (losses of 1e28 measured at alpha = -0.5 on resnet20), so the line
# starts at the initial network.
INTERPOLATION_RANGE = (0.0, 1.5)
# Li et al. Table 1: CIFAR-10 test error (%) with and without skip connections.
PAPER_TEST_ERROR = {
    "resnet20": 7.37, "plain20": 8.18, "resnet56": 5.89, "plain56": 13.31,
    "resnet110": 5.79, "plain110": 16.44,
}  # fmt: skip  # alpha from before the initial point to past the trained one

TIERS: dict[str, dict[str, Any]] = {
    "smoke": {
        "depth": 20, "epochs": 1, "limit_train": 256, "limit_test": 128, "val_size": 64,
        "batch_size": 64, "grid": 3, "grid_images": 32, "hessian_points": 1,
        "hessian_images": 16, "lanczos_steps": 2, "interpolation": 3, "threads": 1,
        "expected_s": 15,
    },
    "quick": {
        "depth": 20, "epochs": 3, "limit_train": 8192, "limit_test": 2000, "val_size": 1000,
        "batch_size": 128, "grid": 11, "grid_images": 256, "hessian_points": 3,
        "hessian_images": 64, "lanczos_steps": 10, "interpolation": 13, "threads": 1,
    },
    "full": {
        "depth": 56, "epochs": 15, "limit_train": None, "limit_test": None, "val_size": 5000,
        "batch_size": 128, "grid": 25, "grid_images": 1000, "hessian_points": 5,
        "hessian_images": 256, "lanczos_steps": 20, "interpolation": 41, "threads": 0,
        "expected_s": 22000,
    },
}  # fmt: skip

# Li et al.'s CIFAR-10 training: SGD, batch 128, weight decay 5e-4, plain cross-entropy (the
# loss the surface shows, so no label smoothing). The peak learning rate is He et al.'s 0.1.
_TRAIN = {"lr": 0.1, "weight_decay": 5e-4, "label_smoothing": 0.0}


def nets(settings: Mapping[str, Any]) -> tuple[str, str]:
    """The (with skips, without skips) pair of this tier."""
    return f"resnet{settings['depth']}", f"plain{settings['depth']}"


def _jobs(settings: Mapping[str, Any]) -> int:
    per_net = 2 + settings["grid"] + settings["hessian_points"] ** 2  # train, interpolate, ...
    return 2 * per_net


def sub_grid(steps: int, points: int) -> list[int]:
    """``points`` evenly spaced indices of a ``steps`` grid, centred (1 point: the centre)."""
    if points == 1:
        return [(steps - 1) // 2]
    return [round(i * (steps - 1) / (points - 1)) for i in range(points)]


def landscape_data(ctx: Context, images: int, val_size: int) -> tuple[Any, Any]:
    """The first ``images`` images of the run's training split (uint8) and their labels."""
    from cnnlab.data import load_dataset
    from cnnlab.run.data import split_train_val

    x, y = load_dataset(ctx.data, "train")
    train_x, train_y, _, _ = split_train_val(x, y, val_size, ctx.seed)
    return train_x[:images], train_y[:images]


def _initial_state(meta: Any, seed: int) -> dict[str, Any]:
    """The run's initial weights: the trainer seeds torch with the run's seed, then builds."""
    import torch

    from cnnlab.registry import create_model

    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        model = create_model(meta.model, num_classes=meta.num_classes, in_channels=meta.in_channels)
    return model.state_dict()


def _study(ctx: Context, name: str, run_dir: Any, raw: tuple[Any, Any]) -> dict[str, Any]:
    """Interpolation, surface and curvature of one trained network (every piece cached)."""
    import torch

    from cnnlab.experiments import landscape_math as lm
    from cnnlab.experiments.latency import torch_threads
    from cnnlab.predictor import load

    s = ctx.settings
    predictor = load(run_dir, device="cpu")
    model = predictor.model.float().eval()
    raw_x, raw_y = raw
    x = predictor.inputs(raw_x).contiguous()
    data = (x[: s["grid_images"]], raw_y[: s["grid_images"]])
    hdata = (x[: s["hessian_images"]], raw_y[: s["hessian_images"]])
    base = lm.trained_state(model)
    gen = torch.Generator().manual_seed(ctx.seed)
    directions = (
        lm.filter_normalised_direction(model, gen),
        lm.filter_normalised_direction(model, gen),
    )
    coords = lm.grid_coordinates(s["grid"])
    alphas = [INTERPOLATION_RANGE[0] + (INTERPOLATION_RANGE[1] - INTERPOLATION_RANGE[0]) * i
              / (s["interpolation"] - 1) for i in range(s["interpolation"])]  # fmt: skip
    with torch_threads(s["threads"]):
        trained_loss, trained_acc = lm.evaluate(model, *data)
        initial = _initial_state(predictor.meta, ctx.seed)
        final = {k: v.clone() for k, v in model.state_dict().items()}
        line = ctx.measure(
            f"{name}-interpolation",
            lambda: {"alpha": alphas, **lm.interpolate(model, initial, final, alphas, data)},
        )
        rows = [
            ctx.measure(f"{name}-surface-row{i:03d}",
                        lambda a=a: lm.surface_row(model, base, directions, a, coords, data))
            for i, a in enumerate(coords)
        ]  # fmt: skip
        names = lm.perturbed_names(model)
        size = sum(p.numel() for n, p in model.named_parameters() if n in set(names))
        curvature = []
        for i in sub_grid(s["grid"], s["hessian_points"]):
            for j in sub_grid(s["grid"], s["hessian_points"]):
                curvature.append(
                    ctx.measure(
                        f"{name}-hessian-{i:03d}-{j:03d}",
                        lambda i=i, j=j: _hessian_point(model, base, directions, coords, i, j,
                                                        hdata, s["lanczos_steps"], size, ctx.seed),
                    )
                )  # fmt: skip
    centre = (s["grid"] - 1) // 2
    return {
        "net": name,
        "coords": coords,
        "loss": [r["loss"] for r in rows],
        "accuracy": [r["accuracy"] for r in rows],
        "trained_loss": trained_loss,
        "trained_accuracy": trained_acc,
        "centre_equals_trained": rows[centre]["loss"][centre] == trained_loss,
        "interpolation": line,
        "curvature": curvature,
        "perturbed_parameters": size,
        "total_parameters": sum(p.numel() for p in model.parameters()),
        **_nonconvexity(curvature),
    }


def _hessian_point(model, base, directions, coords, i, j, data, steps, size, seed) -> dict:
    import torch

    from cnnlab.experiments import landscape_math as lm

    lm.move_to(model, base, [(coords[i], directions[0]), (coords[j], directions[1])])
    try:
        product = lm.hessian_vector_product(model, lm.perturbed_names(model), data)
        low, high = lm.lanczos_extremes(product, size, steps, torch.Generator().manual_seed(seed))
    finally:
        lm.move_to(model, base, [])
    ratio = abs(low / high) if high > 0 else None
    return {"i": i, "j": j, "alpha": coords[i], "beta": coords[j], "lambda_min": low,
            "lambda_max": high, "ratio": ratio}  # fmt: skip


def _nonconvexity(points: list[dict[str, Any]]) -> dict[str, Any]:
    """Mean |lambda_min/lambda_max| and the fraction of points above :data:`SIGNIFICANT`."""
    ratios = [p["ratio"] if p["lambda_min"] < 0 else 0.0 for p in points if p["ratio"] is not None]
    if not ratios:
        return {"mean_ratio": None, "max_ratio": None, "significant_fraction": None}
    return {
        "mean_ratio": sum(ratios) / len(ratios),
        "max_ratio": max(ratios),
        "significant_fraction": sum(r > SIGNIFICANT for r in ratios) / len(ratios),
    }


def run(ctx: Context) -> Outcome:
    """Train the pair, then map each one's landscape."""
    s = ctx.settings
    fields = {
        k: s[k] for k in ("epochs", "limit_train", "limit_test", "val_size", "batch_size") if s[k]
    }
    studies = {}
    raw = landscape_data(ctx, max(s["grid_images"], s["hessian_images"]), s["val_size"])
    for name in nets(s):
        result = ctx.train(name, model=name, **_TRAIN, **fields)
        studies[name] = _study(ctx, name, result.run_dir, raw)
        studies[name]["test_accuracy"] = result.test.top1
    measured = {
        "nets": studies,
        "significant": SIGNIFICANT,
        "directions": "filter-normalised Gaussian, zero on biases and batch norm",
    }
    return _outcome(ctx, studies, measured)


# --- figures --------------------------------------------------------------------------------------


def _stamp(results: Mapping[str, Any]) -> str:
    s = results["settings"]
    return (
        f"{s['grid']}x{s['grid']} grid on [-1, 1]^2, loss on the first {s['grid_images']} "
        f"training images of {results['data']}; batch norm in eval mode; tier {results['tier']}"
    )


def _draw(results: Mapping[str, Any]) -> list[Drawn]:
    """Contours, surfaces, interpolation and curvature, from ``results.json`` alone."""
    import numpy as np

    from cnnlab import plotting

    studies = results["measured"]["nets"]
    names = list(studies)
    top = max(max(max(r) for r in st["loss"]) for st in studies.values())
    low = min(min(min(r) for r in st["loss"]) for st in studies.values())
    # Li et al. draw levels near the minimum (their code: 0.1 to 10); far from it the loss of an
    # eval-mode net with shifted weights explodes and would take every level.
    floor = max(low, 1e-3)
    levels = np.geomspace(floor, max(min(top, CONTOUR_TOP_FACTOR * floor), 1.01 * floor), 15)
    fig = plotting.figure(figsize=(10, 4.6))
    for k, name in enumerate(names):
        ax = fig.add_subplot(1, 2, k + 1)
        st = studies[name]
        c = np.array(st["coords"])
        # rows are alpha (direction 1), columns beta (direction 2): x = alpha, y = beta
        cs = ax.contour(c, c, np.array(st["loss"]).T, levels=levels, cmap="viridis")
        ax.clabel(cs, cs.levels[::3], fontsize=6, fmt="%.2g")  # every level would collide
        ax.plot([0], [0], "r+", markersize=10)
        ax.set_title(f"{name}: test acc {st['test_accuracy']:.1%}", fontsize=10)
        ax.set_xlabel("direction 1 (filter-normalised)")
        ax.set_ylabel("direction 2")
    fig.suptitle("Loss contours around the trained net (+). " + _stamp(results), fontsize=8)
    fig.tight_layout()
    contours = Drawn("landscape_contours", fig,
                     "Loss contours of the 2-D filter-normalised surface (Li et al. Fig. 5), with "
                     "and without skip connections, on the same levels.")  # fmt: skip
    return [
        contours,
        _surface_figure(results, min(top, 10 * max(low, 0.1))),
        _interpolation_figure(results),
        _curvature_figure(results),
    ]


def _surface_figure(results: Mapping[str, Any], clip: float) -> Drawn:
    import numpy as np

    from cnnlab import plotting

    fig = plotting.figure(figsize=(10, 4.8))
    for k, (name, st) in enumerate(results["measured"]["nets"].items()):
        ax = fig.add_subplot(1, 2, k + 1, projection="3d")
        c = np.array(st["coords"])
        a, b = np.meshgrid(c, c, indexing="ij")
        z = np.minimum(np.array(st["loss"]), clip)
        ax.plot_surface(a, b, z, cmap="viridis", linewidth=0, antialiased=True)
        ax.set_zlim(0, clip)
        ax.set_title(name, fontsize=10)
        ax.set_xlabel("dir. 1", fontsize=8)
        ax.set_ylabel("dir. 2", fontsize=8)
        ax.set_zlabel("loss", fontsize=8)
    fig.suptitle(f"Loss surface (clipped at {clip:.2g}). " + _stamp(results), fontsize=8)
    caption = "The same surfaces in 3-D (Li et al. Fig. 5 style), loss clipped for display."
    return Drawn("landscape_surfaces", fig, caption)


def _interpolation_figure(results: Mapping[str, Any]) -> Drawn:
    from cnnlab import plotting

    studies = results["measured"]["nets"]
    fig = plotting.figure(figsize=(6.5, 4))
    ax = fig.add_subplot(1, 1, 1)
    acc = ax.twinx()
    for (name, st), colour in zip(studies.items(), ("tab:blue", "tab:red"), strict=False):
        line = st["interpolation"]
        ax.plot(line["alpha"], line["loss"], "-o", color=colour, markersize=3, label=f"{name} loss")
        acc.plot(line["alpha"], [100 * v for v in line["accuracy"]], "--", color=colour,
                 label=f"{name} accuracy")  # fmt: skip
    ax.set_yscale("log")
    ax.set_xlabel("alpha: (1 - alpha) initial + alpha trained")
    ax.set_ylabel("loss (log)")
    acc.set_ylabel("accuracy (%)")
    ax.legend(loc="upper left", fontsize=7)
    acc.legend(loc="upper right", fontsize=7)
    ax.set_title(f"Linear interpolation, {len(line['alpha'])} points, first "
                 f"{results['settings']['grid_images']} training images; tier {results['tier']}",
                 fontsize=8)  # fmt: skip
    fig.tight_layout()
    caption = (
        "Loss and accuracy along the straight line from the initial to the trained weights "
        "(parameters and batch-norm statistics interpolated, eval mode)."
    )
    return Drawn("landscape_interpolation", fig, caption)


def _curvature_figure(results: Mapping[str, Any]) -> Drawn:
    import numpy as np

    from cnnlab import plotting

    s, studies = results["settings"], results["measured"]["nets"]
    idx = sub_grid(s["grid"], s["hessian_points"])
    fig = plotting.figure(figsize=(9, 4.2))
    for k, (name, st) in enumerate(studies.items()):
        ax = fig.add_subplot(1, 2, k + 1)
        grid = np.zeros((len(idx), len(idx)))
        for p in st["curvature"]:
            r = p["ratio"] if p["ratio"] is not None and p["lambda_min"] < 0 else 0.0
            grid[idx.index(p["i"]), idx.index(p["j"])] = r
        image = ax.imshow(grid.T, origin="lower", cmap="cividis", vmin=0, vmax=1)
        for a in range(len(idx)):
            for b in range(len(idx)):
                ax.text(a, b, f"{grid[a, b]:.2f}", ha="center", va="center", fontsize=7,
                        color="white" if grid[a, b] < 0.5 else "black")  # fmt: skip
        labels = [f"{st['coords'][i]:.2g}" for i in idx]
        ax.set_xticks(range(len(idx)), labels)
        ax.set_yticks(range(len(idx)), labels)
        ax.set_title(f"{name}: mean {st['mean_ratio'] or 0:.3f}", fontsize=9)
        fig.colorbar(image, ax=ax, shrink=0.8)
    fig.suptitle(
        f"|lambda_min / lambda_max| of the Hessian on a {len(idx)}x{len(idx)} sub-grid "
        f"({s['lanczos_steps']} Lanczos steps, {s['hessian_images']} images; 0 where "
        f"lambda_min >= 0); tier {results['tier']}",
        fontsize=8,
    )
    fig.tight_layout()
    return Drawn("landscape_curvature", fig,
                 "Non-convexity (Li et al. Fig. 7): the ratio of the Hessian's extreme "
                 "eigenvalues at points of the surface; near 0 is locally convex.")  # fmt: skip


# --- outcome --------------------------------------------------------------------------------------


def _interpolation_sentence(name: str, line: dict[str, list[float]]) -> str:
    """How the loss ran from the initial (alpha 0) to the trained network (alpha 1)."""
    # A non-finite loss is stored as None (JSON): it counts as infinite here.
    points = [
        (v if v is not None else math.inf, a)
        for v, a in zip(line["loss"], line["alpha"], strict=True)
    ]
    inside = [(v, a) for v, a in points if 0 <= a <= 1]
    losses = [v for v, _ in inside]
    monotone = all(later <= earlier for earlier, later in itertools.pairwise(losses))
    best = min(points)
    return (
        f"{name}: along the line the loss went from {losses[0]:.3f} (initial) to "
        f"{losses[-1]:.3f} at alpha = {inside[-1][1]:.2f}, "
        f"{'monotonically' if monotone else 'not monotonically'} "
        f"over {len(losses)} points, lowest at alpha = {best[1]:.2f}."
    )


def _volume(data: str) -> str:
    """``CxHxW`` of a named dataset's images (``data`` where cnnlab does not know it)."""
    from cnnlab.data import dataset_info

    try:
        info = dataset_info(data)
    except Exception:  # an image folder: its size is the model's, not known here
        return "image folder"
    return "x".join(map(str, (info.channels, *info.size)))


def _num(value: float | None, spec: str) -> str:
    return "n/a" if value is None else format(value, spec)


def _table(studies: dict[str, dict[str, Any]]) -> str:
    """Each net's accuracy, its loss surface's range and its curvature figures (Markdown)."""
    header = ["net", "test acc", "trained loss (subset)", "grid min / max loss", "mean ratio",
              "max ratio", "significant fraction", "centre = trained"]  # fmt: skip
    rows = []
    for name, st in studies.items():
        flat = [v for row in st["loss"] for v in row]
        rows.append(
            [
                name,
                percent(st["test_accuracy"]),
                number(st["trained_loss"], 4),
                f"{number(min(flat))} / {number(max(flat))}",
                number(st["mean_ratio"]),
                number(st["max_ratio"]),
                number(st["significant_fraction"], 2),
                str(st["centre_equals_trained"]),
            ]
        )
    return "\n".join(table.markdown(header, rows, range(1, len(header) - 1)))


def _outcome(ctx: Context, studies: dict[str, dict[str, Any]], measured: dict) -> Outcome:
    s = ctx.settings
    res, plain = nets(s)
    r, p = studies[res], studies[plain]
    known = None not in (r["mean_ratio"], p["mean_ratio"])
    held = (
        r["mean_ratio"] <= p["mean_ratio"]
        and r["significant_fraction"] <= p["significant_fraction"]
        if known
        else None
    )
    verdict = (
        f"Mean |lambda_min/lambda_max| over {len(r['curvature'])} points: {res} "
        f"{_num(r['mean_ratio'], '.3f')} (significant at "
        f"{_num(r['significant_fraction'], '.0%')} of them) against {plain} "
        f"{_num(p['mean_ratio'], '.3f')} ({_num(p['significant_fraction'], '.0%')}); test "
        f"accuracy {r['test_accuracy']:.2%} against {p['test_accuracy']:.2%}. "
        + {
            True: "The skip connections' surface was the more convex, as Li et al. report.",
            False: "The skip connections' surface was not the more convex at this tier.",
            None: "No point had a positive largest eigenvalue: inconclusive.",
        }[held]
        + (
            f" At {s['depth']} layers Li et al. found skip connections make little visible "
            "difference; their plain surfaces turn chaotic from 56 layers (the full tier)."
            if s["depth"] < 56
            else ""
        )
    )
    findings = [
        _table(studies),
        " ".join(
            _interpolation_sentence(name, st["interpolation"]) for name, st in studies.items()
        ),
        f"Directions: filter-normalised Gaussian (Li et al. Sec. 4), zero on biases and batch "
        f"norm, so {r['perturbed_parameters']:,} of {r['total_parameters']:,} parameters move. "
        f"Hessian: {s['lanczos_steps']} Lanczos steps on {s['hessian_images']} images with "
        "respect to those parameters; Ritz values understate |lambda_min| and lambda_max, so "
        "few steps understate non-convexity. 'Significant': |lambda_min/lambda_max| > "
        f"{SIGNIFICANT} with lambda_min < 0.",
    ]
    departures = [
        f"{ctx.data} ({_volume(ctx.data)})"
        + (", not CIFAR-10" if ctx.data != "cifar10" else "")
        + f"; depth {s['depth']} "
        + ("(Li et al.'s chaotic plain surfaces start at 56 layers)" if s["depth"] < 56 else ""),
        f"Trained {s['epochs']} epoch(s) on {s['limit_train'] or 'all'} images with cnnlab's "
        "fast recipe (one-cycle, bf16 autocast, lr 0.1, weight decay 5e-4, no label smoothing), "
        "not 300 epochs; surfaces evaluated in fp32.",
        f"{s['grid']}x{s['grid']} grid on {s['grid_images']} training images, not 51x51 on all "
        "50,000; Hessian on a "
        f"{s['hessian_points']}x{s['hessian_points']} sub-grid with {s['lanczos_steps']} Lanczos "
        "steps, not implicitly restarted Lanczos to convergence at every point.",
    ]
    return Outcome(
        measured=measured,
        held=held,
        verdict=verdict,
        findings=findings,
        departures=departures,
        paper={"test_error": PAPER_TEST_ERROR},
    )


EXPERIMENT = Experiment(
    name="loss-landscape",
    title="Loss landscapes with and without skip connections",
    claim=(
        "Skip connections keep the loss surface smooth and nearly convex around the minimum; "
        "without them deep networks' surfaces become chaotic, with large regions of negative "
        "curvature (|lambda_min / lambda_max| large)."
    ),
    source="Li et al. 2018, Visualizing the Loss Landscape of Neural Nets (Sec. 3-6, Fig. 5, 7)",
    tiers=TIERS,
    run=run,
    jobs=_jobs,
    data=("fashion-mnist", "cifar10", "mnist"),
    draw=_draw,
)
