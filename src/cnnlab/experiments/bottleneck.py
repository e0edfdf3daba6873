"""Basic against bottleneck residual blocks: multiply-adds, measured time and accuracy.

Papers:
    He et al. (2015), "Deep Residual Learning for Image Recognition", Sec. 4.1 and Fig. 5: the
    bottleneck (1x1 256 -> 64, 3x3 64, 1x1 64 -> 256) "has similar time complexity" to a basic
    block of two 3x3 convolutions at 64 channels, so ResNet-50/101/152 cost about as much as
    the 34-layer net with basic blocks.
    Canziani, Paszke, Culurciello (2016), "An Analysis of Deep Neural Network Models for
    Practical Applications": operation count is a proxy for inference time.

What is measured:
    * three blocks at 56x56 (conv2_x of the ImageNet ResNets): ``basic-64`` (Fig. 5 left),
      ``bottleneck-256`` (Fig. 5 right) and ``basic-256`` (two 3x3 convolutions at the
      bottleneck's output width); the analyzer's multiply-adds and parameters, and the time of a
      forward pass and of a forward and backward pass (fp32 and bf16, one thread);
    * whole networks: resnet18 and resnet34 (basic) against resnet50 (bottleneck) at 224x224,
      and the lab pair ``blocks_basic`` / ``blocks_bottleneck`` (equal output width, 28x28);
      forward time at batch 1 and training time per image;
    * test accuracy of the lab pair after the same short training;
    * time per multiply-add of each: if operation count predicted time it would be constant.

Departures from the papers: blocks timed alone on random input; one thread on a shared CPU;
the lab nets are 4-block nets on 28x28 Fashion-MNIST trained for a few epochs, not ImageNet.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from cnnlab import table
from cnnlab.experiments.base import Context, Drawn, Experiment, Outcome
from cnnlab.formats import number, percent, shape

# He et al. Fig. 5 and the equal-output-width block: (kind, input width, planes).
BLOCKS: dict[str, tuple[str, int, int]] = {
    "basic-64": ("basic", 64, 64),
    "bottleneck-256": ("bottleneck", 256, 64),
    "basic-256": ("basic", 256, 256),
}
# Whole networks: the registry's basic-block and bottleneck ResNets, and the lab pair.
ZOO_NETS = ("resnet18", "resnet34", "resnet50")
LAB_NETS = ("blocks_basic", "blocks_bottleneck")
_TRAIN = {"lr": 0.05}  # as kernel-stacks: fastnet's peak 0.2 made the lab nets diverge
SIMILAR = (2 / 3, 3 / 2)  # a time ratio in this range counts as "similar time complexity"

TIERS: dict[str, dict[str, Any]] = {
    "smoke": {
        "block_size": 14, "zoo_nets": [], "net_batch": 2, "lab_batch": 8, "repeats": 1,
        "precisions": ["fp32"],
        "epochs": 1, "limit_train": 128, "limit_test": 128, "val_size": 64, "batch_size": 64,
        "expected_s": 12,
    },
    "quick": {
        "block_size": 56, "zoo_nets": list(ZOO_NETS), "net_batch": 4, "lab_batch": 64, "repeats": 5,
        "precisions": ["fp32", "bf16"], "epochs": 3, "limit_train": 16384, "limit_test": 10000,
        "val_size": 2000,
    },
    "full": {
        "block_size": 56, "zoo_nets": list(ZOO_NETS), "net_batch": 8, "lab_batch": 64,
        "repeats": 30,
        "precisions": ["fp32", "bf16"], "epochs": 15, "limit_train": None, "limit_test": None,
        "val_size": 5000, "expected_s": 5400,
    },
}  # fmt: skip


def _jobs(settings: Mapping[str, Any]) -> int:
    # one timing per block and per net, one training run per lab net
    return len(BLOCKS) + len(settings["zoo_nets"]) + 2 * len(LAB_NETS)


def make_block(name: str) -> Any:
    """The block ``name`` of :data:`BLOCKS`, built from :mod:`cnnlab.models.resnet`'s classes."""
    from cnnlab.models.resnet import BasicBlock, Bottleneck

    kind, width, planes = BLOCKS[name]
    return (BasicBlock if kind == "basic" else Bottleneck)(width, planes)


def _block_record(name: str, size: int, settings: Mapping[str, Any]) -> dict[str, Any]:
    """Analyzer counts and measured times of one block at ``size`` x ``size``."""
    import torch

    from cnnlab.analysis import analyze
    from cnnlab.experiments.latency import backward_latency, forward_latency, torch_threads

    torch.manual_seed(0)
    block = make_block(name)
    shape = (BLOCKS[name][1], size, size)
    report = analyze(block, shape, count="conv-linear")
    x = torch.randn(1, *shape)
    record: dict[str, Any] = {
        "params": report.totals["params"],
        "macs": report.totals["macs"],
        "input": list(shape),
    }
    with torch_threads(1):
        for precision in settings["precisions"]:
            fwd = forward_latency(block, x, repeats=settings["repeats"], precision=precision)
            bwd = backward_latency(block, x, repeats=settings["repeats"], precision=precision)
            record[precision] = {
                "forward_s": fwd["median_s"],
                "forward_backward_s": bwd["median_s"],
            }
        record["loadavg"] = fwd["loadavg_after"]
    return record


def _net_record(name: str, settings: Mapping[str, Any], batch: int) -> dict[str, Any]:
    """Analyzer counts and measured times of registered network ``name`` at its default input.

    Training time per image is measured on batches of ``batch`` images.
    """
    import torch

    from cnnlab.analysis import analyze
    from cnnlab.experiments.latency import time_model
    from cnnlab.registry import create_model, model_info

    torch.manual_seed(0)
    info = model_info(name)
    report = analyze(name, count="conv-linear")
    timing = time_model(
        create_model(name),
        info.input_size,
        batch=batch,
        repeats=settings["repeats"],
        precisions=("fp32",),
        num_classes=info.num_classes,
    )
    return {
        "params": report.totals["params"],
        "macs": report.totals["macs"],
        "input": list(info.input_size),
        "forward_s": timing["fp32"]["forward_batch1_s"],
        "train_per_image_s": timing["fp32"]["train_per_image_s"],
        "train_batch": batch,
        "loadavg": timing["machine"]["loadavg"],
    }


def run(ctx: Context) -> Outcome:
    """Time the blocks and the networks, train the lab pair, and compare time with MACs."""
    s = ctx.settings
    blocks = {
        n: ctx.measure(f"block-{n}", lambda n=n: _block_record(n, s["block_size"], s))
        for n in BLOCKS
    }
    # The lab nets train on batches as their runs do; ImageNet nets on the few a CPU holds.
    batches = {
        **{n: s["net_batch"] for n in s["zoo_nets"]},
        **{n: s["lab_batch"] for n in LAB_NETS},
    }
    nets = {n: ctx.measure(f"net-{n}", lambda n=n: _net_record(n, s, batches[n])) for n in batches}
    fields = {k: s[k] for k in ("epochs", "limit_train", "limit_test", "val_size") if s.get(k)}
    if s.get("batch_size"):
        fields["batch_size"] = s["batch_size"]
    accuracy = {n: ctx.train(n, model=n, **_TRAIN, **fields).test.top1 for n in LAB_NETS}
    measured = {
        "blocks": blocks,
        "nets": nets,
        "test_accuracy": accuracy,
        "ns_per_mac": {
            **{f"block {n}": r["fp32"]["forward_s"] / r["macs"] * 1e9 for n, r in blocks.items()},
            **{f"net {n}": r["forward_s"] / r["macs"] * 1e9 for n, r in nets.items()},
        },
    }
    return _outcome(ctx, measured)


COLOURS = {"basic": "tab:blue", "bottleneck": "tab:orange"}


def _points(m: Mapping[str, Any]) -> list[tuple[str, float, float, str]]:
    """(label, MACs, forward seconds, kind) of every block and net, as the tables state them."""
    points = [(f"block {n}", r["macs"], r["fp32"]["forward_s"]) for n, r in m["blocks"].items()]
    points += [(f"net {n}", r["macs"], r["forward_s"]) for n, r in m["nets"].items()]
    return [
        (label, macs, seconds, "bottleneck" if "bottleneck" in label or "resnet50" in label
         else "basic")
        for label, macs, seconds in points
    ]  # fmt: skip


def _draw(results: Mapping[str, Any]) -> list[Drawn]:
    """Forward time against MACs (log-log) and the time per MAC, from ``results.json``."""
    from matplotlib.patches import Patch

    from cnnlab import plotting
    from cnnlab.experiments.figures import place_labels, plain_ticks

    m, s = results["measured"], results["settings"]
    points = _points(m)
    fig = plotting.figure(figsize=(11, 4.6))
    left, right = fig.subplots(1, 2)
    colours = [COLOURS[kind] for *_, kind in points]
    xs = [macs / 1e6 for _, macs, _, _ in points]
    ys = [seconds * 1e3 for _, _, seconds, _ in points]
    left.scatter(xs, ys, color=colours)
    left.set_xscale("log")
    left.set_yscale("log")
    left.margins(0.25)  # room for the labels of the largest nets, clustered top right
    for axis in (left.xaxis, left.yaxis):
        plain_ticks(axis)
    left.set_xlabel("multiply-adds (millions, analyzer, conv + linear)")
    left.set_ylabel("forward time, batch 1, fp32 (ms)")
    left.set_title("Does operation count predict time?", fontsize=9)
    labels = [p[0] for p in points]
    right.barh(range(len(points)), [m["ns_per_mac"][label] for label in labels], color=colours)
    right.set_yticks(range(len(points)), labels, fontsize=7)
    right.invert_yaxis()
    right.set_xlabel("ns per multiply-add (forward, fp32, one thread)")
    right.set_title("Time per operation: constant if MACs predicted time", fontsize=9)
    fig.legend(
        [Patch(color=COLOURS["basic"]), Patch(color=COLOURS["bottleneck"])],
        ["basic blocks (two 3x3)", "bottleneck blocks (1x1, 3x3, 1x1)"],
        loc="lower center",
        ncol=2,
        fontsize=9,
    )
    fig.suptitle(
        f"Basic vs bottleneck blocks on this CPU, tier {results['tier']}; blocks at "
        f"{s['block_size']}x{s['block_size']}",
        fontsize=10,
    )
    fig.tight_layout(rect=(0, 0.07, 1, 1))
    place_labels(left, xs, ys, labels)
    caption = (
        "Measured forward time against the analyzer's multiply-adds for He et al.'s Fig. 5 "
        "blocks and whole networks (log-log), and the time per multiply-add of each."
    )
    return [Drawn("bottleneck_time_vs_macs", fig, caption)]


def _blocks_table(m: dict[str, Any], precisions: list[str]) -> str:
    """Each block alone: size, cost, and its times at every precision (Markdown)."""
    timed = [(p, key) for p in precisions for key in ("forward_s", "forward_backward_s")]
    header = ["block", "input", "params", "MACs"]
    header += [f"{'forward' if key == 'forward_s' else 'fwd+bwd'} ms ({p})" for p, key in timed]
    header.append("ns/MAC")
    rows = [
        [
            name,
            shape(r["input"]),
            number(r["params"]),
            number(r["macs"]),
            *(f"{r[p][key] * 1e3:.2f}" for p, key in timed),
            f"{m['ns_per_mac']['block ' + name]:.4f}",
        ]
        for name, r in m["blocks"].items()
    ]
    return "\n".join(table.markdown(header, rows, range(2, len(header))))


def _nets_table(m: dict[str, Any]) -> str:
    """The lab nets: size, cost, times and test accuracy (Markdown)."""
    header = ["network", "input", "params", "MACs", "forward ms (batch 1)",
              "train ms/image (batch)", "ns/MAC", "test acc"]  # fmt: skip
    rows = [
        [
            name,
            shape(r["input"]),
            number(r["params"]),
            number(r["macs"]),
            f"{r['forward_s'] * 1e3:.2f}",
            f"{r['train_per_image_s'] * 1e3:.2f} ({r['train_batch']})",
            f"{m['ns_per_mac']['net ' + name]:.4f}",
            percent(m["test_accuracy"].get(name), missing="-"),
        ]
        for name, r in m["nets"].items()
    ]
    return "\n".join(table.markdown(header, rows, range(2, len(header))))


def _outcome(ctx: Context, m: dict[str, Any]) -> Outcome:
    b, n, a = m["blocks"], m["nets"], m["test_accuracy"]
    wide, bott, base = b["basic-256"], b["bottleneck-256"], b["basic-64"]
    mac_ratio = bott["macs"] / wide["macs"]
    time_ratio = bott["fp32"]["forward_s"] / wide["fp32"]["forward_s"]
    fig5_mac = bott["macs"] / base["macs"]
    fig5_time = bott["fp32"]["forward_s"] / base["fp32"]["forward_s"]
    lab_b, lab_n = n["blocks_bottleneck"], n["blocks_basic"]
    lab_time = lab_b["train_per_image_s"] / lab_n["train_per_image_s"]
    cheaper = time_ratio < 1 and lab_time < 1
    similar = SIMILAR[0] <= fig5_time <= SIMILAR[1]
    verdict = (
        f"At equal output width (256) the bottleneck block has {mac_ratio:.3f} of the basic "
        f"block's multiply-adds and took {time_ratio:.2f} of its forward time; against Fig. 5's "
        f"64-wide basic block ({fig5_mac:.2f} of its MACs) it took {fig5_time:.2f}x the time, so "
        f"'similar complexity' in operations {'was' if similar else 'was not'} similar time on "
        "this CPU. The lab "
        f"bottleneck net trained at {lab_time:.2f} of the basic net's time per image with "
        f"{lab_b['macs'] / lab_n['macs']:.3f} of its MACs and reached {a['blocks_bottleneck']:.2%} "
        f"test accuracy against {a['blocks_basic']:.2%}. "
        + (
            "The bottleneck did not cut the measured cost at this tier."
            if not cheaper
            else "The bottleneck cut the measured cost, by less than its operation count says."
            if time_ratio > mac_ratio
            else "The bottleneck cut the measured cost as much as its operation count says."
        )
    )
    spread = sorted(m["ns_per_mac"].values())
    findings = [
        _blocks_table(m, ctx.settings["precisions"]),
        _nets_table(m),
        f"Time per multiply-add ranged from {spread[0]:.4f} to {spread[-1]:.4f} ns "
        f"({spread[-1] / spread[0]:.1f}x): "
        + (
            "operation count alone does not predict time on this CPU (small layers and 1x1 "
            "convolutions do little arithmetic per byte they move). "
            if spread[-1] / spread[0] > 2
            else "operation count predicted time within a factor of two on this CPU. "
        )
        + f"Load average while timing: {wide['loadavg']}.",
    ]
    departures = [
        "Blocks timed alone on random input, batch 1, one torch thread, on a shared 2-core CPU.",
        f"Lab nets: four blocks at 64 channels on 28x28 {ctx.data}, "
        f"{ctx.settings['epochs']} epoch(s) on {ctx.settings['limit_train'] or 'all'} images, "
        "one seed; the paper trains 50-152-layer nets on ImageNet.",
        "Multiply-adds are the analyzer's conv + linear count (torchvision's and Canziani's "
        "convention), without batch norm, ReLU and the additions.",
    ]
    if not ctx.settings["zoo_nets"]:
        departures.append("No ImageNet ResNets at this tier (resnet18/34/50 from the quick tier).")
    return Outcome(
        measured=m,
        held=cheaper,
        verdict=verdict,
        findings=findings,
        departures=departures,
        # Table 1, "FLOPs" (multiply-adds) at 224x224; torchvision's ResNet-50 (v1.5) has more.
        paper={"table1_gmacs": {"resnet18": 1.8, "resnet34": 3.6, "resnet50": 3.8}},
    )


EXPERIMENT = Experiment(
    name="bottleneck",
    title="Basic against bottleneck residual blocks",
    claim=(
        "A 1x1 bottleneck (1x1 reduce, 3x3, 1x1 restore) cuts the cost of a block: at 256 "
        "channels it has about the time complexity of a 64-channel basic block, and far fewer "
        "operations than two 3x3 convolutions at 256; operation count is a proxy for time."
    ),
    source="He et al. 2015, Sec. 4.1 and Fig. 5; Canziani et al. 2016",
    tiers=TIERS,
    run=run,
    jobs=_jobs,
    draw=_draw,
)
