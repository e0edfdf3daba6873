"""Accuracy, operations, parameters, latency and memory of every zoo model (Canziani et al.).

Paper: Canziani, Paszke, Culurciello (2016), "An Analysis of Deep Neural Network Models for
Practical Applications": top-1 accuracy against operations with the parameter count as bubble
size (their Fig. 2), inference time and memory measured on one device (a Jetson TX1), and the
finding that operation count is a reliable estimate of inference time.

What is measured here, for every registered model at its default input size:
    * parameters and multiply-adds from the analyzer (conv + linear, torchvision's convention);
    * CPU latency at batch 1, eval mode, fp32: the median of ``repeats`` forward passes after a
      warm-up, with ``threads`` torch threads, in a fresh Python process per model;
    * peak resident memory of that process during inference (``VmHWM`` after a reset through
      ``/proc/self/clear_refs``; :mod:`cnnlab.experiments.latency` explains the method) and its
      increment over the built model's resident memory;
    * beside them, torchvision's published ImageNet top-1 accuracy of the same architecture, read
      from the installed torchvision's weight enums (``DEFAULT`` weights), where it has one.

Departures: a shared 2-core x86 CPU, not a Jetson TX1 GPU; batch 1 only; random weights (time
does not depend on them); accuracies are torchvision's published figures, not measured here.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from cnnlab import table
from cnnlab.experiments.base import Context, Drawn, Experiment, Outcome
from cnnlab.formats import number, percent, shape, size

PREDICTS = 0.9  # Spearman rank correlation at which operations "predict" latency

TIERS: dict[str, dict[str, Any]] = {
    # smoke measures in-process (a fresh Python per model costs seconds); its memory figures
    # are then only indicative.
    "smoke": {"models": ["lenet5", "kernel3x3x2", "alexnet"], "repeats": 2, "threads": 1,
              "fresh_process": False, "expected_s": 5},
    "quick": {"models": "all", "repeats": 3, "threads": 1, "fresh_process": True},
    "full": {"models": "all", "repeats": 20, "threads": 1, "fresh_process": True,
             "expected_s": 3600},
}  # fmt: skip


def model_names(settings: Mapping[str, Any]) -> list[str]:
    """The models of a tier: a list, or ``"all"`` (every registered model)."""
    from cnnlab.registry import list_models

    return list_models() if settings["models"] == "all" else list(settings["models"])


def _jobs(settings: Mapping[str, Any]) -> int:
    return len(model_names(settings))


def published_top1(name: str) -> dict[str, Any] | None:
    """torchvision's published ImageNet top-1 (%) of registered model ``name``, or None.

    Read from the installed torchvision's ``DEFAULT`` weights enum, as :mod:`cnnlab.weights`
    reads the weights' address and preprocessing.
    """
    import torchvision

    from cnnlab.registry import model_info

    builder = model_info(name).torchvision
    if builder is None:
        return None
    weights = torchvision.models.get_model_weights(builder).DEFAULT
    return {"top1": weights.meta["_metrics"]["ImageNet-1K"]["acc@1"], "weights": str(weights)}


def _measure(name: str, settings: Mapping[str, Any]) -> dict[str, Any]:
    from cnnlab.analysis import analyze
    from cnnlab.experiments.latency import measure_in_this_process, peak_memory
    from cnnlab.registry import model_info

    info = model_info(name)
    report = analyze(name, count="conv-linear")
    if settings["fresh_process"]:
        timing = peak_memory(name, info.input_size, settings["repeats"], settings["threads"])
    else:
        timing = measure_in_this_process(
            name, info.input_size, settings["repeats"], settings["threads"]
        )
    return {
        "family": info.family,
        "input": list(info.input_size),
        "params": report.totals["params"],
        "macs": report.totals["macs"],
        "latency_s": timing["median_s"],
        "latency_min_s": timing["min_s"],
        "peak_rss_bytes": timing["peak_rss_bytes"],
        "inference_increment_bytes": timing["inference_increment_bytes"],
        "threads": timing["threads"],
        "loadavg": timing["loadavg_after"],
        "imagenet": published_top1(name),
    }


def _method(settings: Mapping[str, Any]) -> str:
    where = "a fresh process per model" if settings["fresh_process"] else "this process"
    return f"peak RSS (VmHWM after a reset through /proc/self/clear_refs) of {where}"


def correlations(xs: list[float], ys: list[float]) -> dict[str, float | None]:
    """Pearson correlation of log x with log y, and Spearman's rank correlation of x and y."""
    import numpy as np

    if len(xs) < 3:
        return {"pearson_log": None, "spearman": None}
    lx, ly = np.log(np.array(xs, dtype=float)), np.log(np.array(ys, dtype=float))
    rank_x = np.argsort(np.argsort(xs)).astype(float)
    rank_y = np.argsort(np.argsort(ys)).astype(float)
    return {
        "pearson_log": float(np.corrcoef(lx, ly)[0, 1]),
        "spearman": float(np.corrcoef(rank_x, rank_y)[0, 1]),
    }


def run(ctx: Context) -> Outcome:
    """Measure each model in its own process, then compare latency with operations."""
    models = {
        n: ctx.measure(f"model-{n}", lambda n=n: _measure(n, ctx.settings))
        for n in model_names(ctx.settings)
    }
    names = list(models)
    measured = {
        "models": models,
        "macs_vs_latency": correlations(
            [models[n]["macs"] for n in names], [models[n]["latency_s"] for n in names]
        ),
        "params_vs_peak_memory": correlations(
            [models[n]["params"] for n in names], [models[n]["peak_rss_bytes"] for n in names]
        ),
        "memory_method": _method(ctx.settings),
    }
    return _outcome(ctx, measured)


def _family_colours(models: Mapping[str, Mapping[str, Any]]) -> dict[str, Any]:
    """One colour per model family, the same in both figures (each has its legend)."""
    from matplotlib import colormaps

    families = sorted({m["family"] for m in models.values()})
    palette = colormaps["tab10" if len(families) <= 10 else "tab20"].colors
    return {family: palette[i % len(palette)] for i, family in enumerate(families)}


def _draw(results: Mapping[str, Any]) -> list[Drawn]:
    """Canziani's accuracy chart and latency/memory against cost, from ``results.json``."""
    from cnnlab import plotting
    from cnnlab.experiments.figures import place_labels, plain_ticks

    models, s = results["measured"]["models"], results["settings"]
    colours = _family_colours(models)
    stamp = (
        f"batch 1, fp32, {s['threads']} thread(s), median of {s['repeats']}; tier {results['tier']}"
    )
    with_acc = {n: m for n, m in models.items() if m["imagenet"]}
    fig = plotting.figure(figsize=(9, 6))
    ax = fig.add_subplot(1, 1, 1)
    if with_acc:
        biggest = max(m["params"] for m in with_acc.values())
        for family in sorted({m["family"] for m in with_acc.values()}):
            group = [m for m in with_acc.values() if m["family"] == family]
            ax.scatter([m["macs"] / 1e9 for m in group], [m["imagenet"]["top1"] for m in group],
                       s=[20 + 1500 * m["params"] / biggest for m in group], alpha=0.55,
                       color=colours[family], label=family)  # fmt: skip
        ax.legend(fontsize=7, loc="lower right", markerscale=0.4, title="family",
                  title_fontsize=7)  # fmt: skip
    else:
        ax.text(0.5, 0.5, "no model of this tier has a published accuracy", ha="center",
                transform=ax.transAxes)  # fmt: skip
    ax.margins(0.08)
    ax.set_xlabel("multiply-adds at the default input (billions, analyzer)")
    ax.set_ylabel("ImageNet top-1 (%), torchvision's published DEFAULT weights")
    ax.set_title("Accuracy against operations; bubble area ~ parameters (Canziani Fig. 2)",
                 fontsize=9)  # fmt: skip
    fig.tight_layout()
    names = list(with_acc)
    place_labels(ax, [with_acc[n]["macs"] / 1e9 for n in names],
                 [with_acc[n]["imagenet"]["top1"] for n in names], names, fontsize=6)  # fmt: skip
    drawn = [Drawn("cost_accuracy", fig,
                   "torchvision's published top-1 against the analyzer's multiply-adds, bubble "
                   "area proportional to parameters, colour the model family, for the zoo models "
                   "torchvision has.")]  # fmt: skip
    fig = plotting.figure(figsize=(12, 5.2))
    left, right = fig.subplots(1, 2)
    for family, colour in colours.items():
        group = [m for m in models.values() if m["family"] == family]
        left.scatter([m["macs"] / 1e6 for m in group], [m["latency_s"] * 1e3 for m in group],
                     color=colour, label=family, s=16)  # fmt: skip
        right.scatter([m["params"] / 1e6 for m in group],
                      [m["peak_rss_bytes"] / 2**20 for m in group], color=colour, label=family,
                      s=16)  # fmt: skip
    # Latency spans decades (log-log); the process's memory spans less than one, so its axis
    # is linear (a log axis there would carry a single labelled tick).
    for ax, xlabel, ylabel, log_y in (
        (left, "multiply-adds (millions)", "latency (ms)", True),
        (right, "parameters (millions)", "peak resident memory of the process (MiB)", False),
    ):
        ax.set_xscale("log")
        plain_ticks(ax.xaxis)
        if log_y:
            ax.set_yscale("log")
            plain_ticks(ax.yaxis)
        ax.set_xlabel(xlabel)
        ax.set_ylabel(ylabel, fontsize=9)
        ax.grid(alpha=0.3)
    left.set_title("Latency against operations on this CPU", fontsize=9)
    right.set_title("Peak memory against parameters", fontsize=9)
    handles, labels = left.get_legend_handles_labels()
    fig.legend(handles, labels, loc="center right", fontsize=7, title="family",
               title_fontsize=7)  # fmt: skip
    fig.suptitle(stamp, fontsize=9)
    fig.tight_layout(rect=(0, 0, 0.88, 1))
    drawn.append(Drawn("cost_latency_memory", fig,
                       "Measured CPU latency against multiply-adds (log-log), and the peak "
                       "resident "
                       "memory of the measuring process against parameters, every zoo model, "
                       "colour the model family."))  # fmt: skip
    return drawn


def _table(models: dict[str, dict[str, Any]]) -> str:
    """Every model measured, cheapest first: cost, latency, memory, published accuracy."""
    header = ["model", "input", "params", "MACs", "latency ms", "peak RSS", "+inference",
              "ImageNet top-1"]  # fmt: skip
    rows = [
        [
            name,
            shape(r["input"]),
            number(r["params"]),
            number(r["macs"]),
            f"{r['latency_s'] * 1e3:.2f}",
            size(r["peak_rss_bytes"]),
            size(r["inference_increment_bytes"]),
            percent(r["imagenet"]["top1"], scale=1) if r["imagenet"] else "-",
        ]
        for name, r in sorted(models.items(), key=lambda kv: kv[1]["macs"])
    ]
    return "\n".join(table.markdown(header, rows, range(2, len(header))))


def _outcome(ctx: Context, m: dict[str, Any]) -> Outcome:
    models = m["models"]
    lat, mem = m["macs_vs_latency"], m["params_vs_peak_memory"]
    spearman = lat["spearman"]
    held = None if spearman is None else spearman >= PREDICTS
    ns_per_mac = sorted(r["latency_s"] / r["macs"] * 1e9 for r in models.values() if r["macs"])
    verdict = (
        f"Over {len(models)} models, multiply-adds against measured batch-1 latency: Spearman "
        f"{_num(spearman)}, Pearson of the logs {_num(lat['pearson_log'])}; time per "
        f"multiply-add ranged from {ns_per_mac[0]:.3f} to {ns_per_mac[-1]:.3f} ns. "
        + {
            True: f"Operation count ranked latency well (Spearman >= {PREDICTS}), as Canziani "
            "et al. report"
            + (
                ", though not to a constant time per operation."
                if ns_per_mac[-1] > 2 * ns_per_mac[0]
                else ", at a nearly constant time per operation."
            ),
            False: f"Operation count did not rank latency well (Spearman < {PREDICTS}).",
            None: "Too few models to judge.",
        }[held]
    )
    findings = [
        _table(models),
        f"Parameters against peak memory: Spearman {_num(mem['spearman'])}, Pearson of the logs "
        f"{_num(mem['pearson_log'])}. Method: {m['memory_method']}. Peak memory is the whole "
        "measuring process (Python, torch "
        "and cnnlab take a few hundred MiB before any model); '+inference' is the rise over the "
        "built model's resident memory during the passes.",
        f"Machine load while measuring (1-minute load average, first and last model): "
        f"{next(iter(models.values()))['loadavg'][0]}, {list(models.values())[-1]['loadavg'][0]}.",
    ]
    departures = [
        f"A shared 2-core CPU with {ctx.settings['threads']} torch thread(s), not Canziani's "
        "Jetson TX1 GPU; batch 1 only, fp32, random weights.",
        "Accuracies are torchvision's published ImageNet figures for its DEFAULT weights (for "
        "some models, e.g. resnet50, torchvision's newer training recipe), not measured here; "
        "cnnlab's own variants (paper versions, CIFAR nets, lab nets) have none.",
        "Multiply-adds are the analyzer's conv + linear count at each model's default input.",
    ]
    return Outcome(measured=m, held=held, verdict=verdict, findings=findings,
                   departures=departures)  # fmt: skip


def _num(value: float | None) -> str:
    return "n/a" if value is None else f"{value:.3f}"


EXPERIMENT = Experiment(
    name="cost",
    title="Accuracy against operations, latency and memory (Canziani et al.)",
    claim=(
        "More accurate networks cost more operations, parameters and memory, with diminishing "
        "returns; the operation count is a reliable estimate of inference time."
    ),
    source="Canziani, Paszke, Culurciello 2016, An Analysis of Deep Neural Network Models for "
    "Practical Applications",
    tiers=TIERS,
    run=run,
    jobs=_jobs,
    draw=_draw,
)
