"""Which layer should Grad-CAM look at? Deletion and insertion per candidate layer, measured.

For each measured zoo family a trained network is loaded (or trained, by the commands in
``TRAINED``), and Grad-CAM at every candidate layer
(:func:`cnnlab.seeing.layers.gradcam_candidates`) of ``--images`` held-out test images is
scored by :func:`cnnlab.seeing.faithfulness.explain`: deletion and insertion against random
orders, and class sensitivity. Among the layers with a useful resolution
(:func:`cnnlab.seeing.layers.useful`), the deepest whose mean deletion is within one standard
error of the lowest (:func:`choose`) is the family's measured default;
``cnnlab.seeing.layers.GRADCAM_LAYERS`` holds it, copied from here.

The same is done for each network with its weights re-initialised (``reset_parameters`` with a
fixed seed; batch-norm statistics reset): its maps at the default layer must be flagged "no
better than random" (Adebayo et al. 2018's model-randomisation check, read through deletion).
Saliency, SmoothGrad and occlusion are measured on the same images for comparison.

The ResNet-18 data is generated (:func:`make_photos`): a disc, square, triangle or cross whose
colour is the class, on a grey textured background (stripes or checks, plus noise), at a random
place and size, so there is an object to localise and a background that is not evidence.

    python benchmarks/faithfulness.py --models lenet5 fastnet   # 9 min measuring, 2 cores
    python benchmarks/faithfulness.py --runs /tmp/faith    # reuse runs trained there

Writes ``benchmarks/results/faithfulness.json``; ``--table`` prints docs/seeing.md's table from it.
"""

from __future__ import annotations

import argparse
import json
import math
import subprocess
import sys
import time
from pathlib import Path

import machine
import torch

RESULT = Path(__file__).parent / "results" / "faithfulness.json"
PHOTO_CLASSES = {  # class -> the object's RGB colour (before a random shade)
    "red": (0.9, 0.15, 0.1),
    "green": (0.1, 0.8, 0.2),
    "blue": (0.15, 0.25, 0.95),
    "yellow": (0.95, 0.85, 0.1),
}
PHOTO_SHAPES = ("disc", "square", "triangle", "cross")
PHOTO_SIZE = 112  # resnet18's maps: layer3 7x7, layer4 4x4
# name -> (the command that trains it, relative to RUNS, and the family it stands for).
TRAINED: dict[str, tuple[list[str], str]] = {
    "lenet5": (["train", "lenet5", "--epochs", "2"], "lenet"),
    "fastnet": (["train", "--data", "fashion-mnist", "--recipe", "fast"], "fastnet"),
    "resnet18": (
        [
            "train",
            "resnet18",
            "--data",
            "{photos}",
            "--epochs",
            "6",
            "--image-size",
            str(PHOTO_SIZE),
            "--batch-size",
            "32",
            "--optimizer",
            "adamw",
            "--lr",
            "0.001",
            "--stall-patience",
            "0",
        ],
        "resnet",
    ),
}


def make_photos(root: Path, per_class: int = 240, test_per_class: int = 60, seed: int = 0) -> Path:
    """A small RGB image folder, ``root/{train,test}/CLASS/*.png``, ``PHOTO_SIZE`` square.

    The class is the colour of one object (a disc, square, triangle or cross, at a random place
    and size) on a grey textured background (stripes or checks plus noise): the only evidence
    is the object, so a faithful map must point at it. (Classes by shape on coloured
    backgrounds were too hard for ResNet-18 from scratch on 1,000 images: 28-33% of 4 classes
    after 8-10 epochs.)
    """
    from PIL import Image

    if (root / "test").is_dir():
        return root
    g = torch.Generator().manual_seed(seed)
    n = PHOTO_SIZE
    yy, xx = torch.meshgrid(torch.arange(n), torch.arange(n), indexing="ij")
    for split, count in (("train", per_class), ("test", test_per_class)):
        for k, name in enumerate(PHOTO_CLASSES):
            folder = root / split / name
            folder.mkdir(parents=True, exist_ok=True)
            for i in range(count):
                a, b = (0.2 + 0.6 * torch.rand(1, generator=g)).repeat(2).unbind()
                b = (a + 0.3 * (torch.rand(1, generator=g)[0] - 0.5)).clamp(0, 1)
                period = int(torch.randint(6, 16, (1,), generator=g))
                if torch.rand(1, generator=g) < 0.5:
                    angle = float(torch.rand(1, generator=g)) * math.pi
                    phase = (xx * math.cos(angle) + yy * math.sin(angle)) // period % 2
                else:
                    phase = (xx // period + yy // period) % 2
                img = torch.where(phase > 0, a, b).expand(3, n, n)
                img = img + 0.06 * torch.randn(3, n, n, generator=g)
                r = float(torch.randint(n // 8, n // 4, (1,), generator=g))
                cy, cx = (float(v) for v in torch.randint(int(r), n - int(r), (2,), generator=g))
                dy, dx = (yy - cy) / r, (xx - cx) / r
                shape = PHOTO_SHAPES[int(torch.randint(len(PHOTO_SHAPES), (1,), generator=g))]
                inside = {
                    "disc": dy**2 + dx**2 <= 1,
                    "square": (dy.abs() <= 0.8) & (dx.abs() <= 0.8),
                    "triangle": (dy <= 0.8) & (dy >= 2 * dx.abs() - 1),
                    "cross": ((dy.abs() <= 0.3) | (dx.abs() <= 0.3))
                    & (dy.abs() <= 1)
                    & (dx.abs() <= 1),
                }[shape]  # fmt: skip
                shade = 0.75 + 0.25 * torch.rand(1, generator=g)  # the class's hue, varied
                colour = torch.tensor(PHOTO_CLASSES[name]) * shade
                img = torch.where(inside[None], colour.view(3, 1, 1), img)
                pixels = (img.clamp(0, 1) * 255).round().byte().permute(1, 2, 0).numpy()
                Image.fromarray(pixels).save(folder / f"{k}_{i:04d}.png")
    return root


def trained(name: str, runs: Path, threads: int) -> tuple[Path, float | None]:
    """The run directory of ``name`` under ``runs``, training it first when missing."""
    run = runs / name
    if (run / "results.json").exists():
        return run, None
    command, _ = TRAINED[name]
    photos = make_photos(runs / "photos")
    args = [a.replace("{photos}", str(photos)) for a in command]
    start = time.perf_counter()
    subprocess.run(
        [sys.executable, "-m", "cnnlab", *args, "--threads", str(threads), "--out", str(run),
         "--no-progress"],
        check=True,
    )  # fmt: skip
    return run, time.perf_counter() - start


def randomised(model: torch.nn.Module, seed: int = 0) -> torch.nn.Module:
    """A copy of ``model`` with every weight re-initialised (and batch-norm statistics reset)."""
    import copy

    net = copy.deepcopy(model)
    torch.manual_seed(seed)
    for m in net.modules():
        if hasattr(m, "reset_parameters"):
            m.reset_parameters()
        if hasattr(m, "reset_running_stats"):
            m.reset_running_stats()
    return net.eval()


def measure(name: str, run: Path, images: int, orders: int) -> dict:
    import cnnlab
    from cnnlab.seeing import faithfulness as F
    from cnnlab.seeing import layers as L
    from cnnlab.seeing import methods as M

    predictor = cnnlab.load(run, device="cpu")
    meta = predictor.meta
    x_all, y_all = cnnlab.load_dataset(meta.dataset, "test")
    # Every class equally: the first images of each class in the test split.
    per = max(1, images // meta.num_classes)
    pick = torch.cat([(y_all == c).nonzero().flatten()[:per] for c in range(meta.num_classes)])
    x = predictor.prepare(x_all[pick])
    net = predictor.model
    size = tuple(meta.input_size)
    report = L.analysis(net, size)
    candidates = L.gradcam_candidates(report)
    useful = L.useful(report, candidates)
    random = F.random_areas(net, x, _predicted(net, x), orders=orders)
    layers = {}
    for layer in candidates:
        start = time.perf_counter()
        e = F.explain(net, x, "gradcam", layer=layer, orders=orders, random=random)
        s = e.summary
        row = M.layer_row(net, layer, size)
        per_image = torch.tensor([f.deletion for f in e.scores], dtype=torch.float64)
        layers[layer] = {
            "map": "x".join(map(str, row.output_shape[1:])),
            "useful": layer in useful,
            **_numbers(s),
            "deletion_se": round(float(per_image.std() / math.sqrt(len(per_image))), 4),
            "seconds": round(time.perf_counter() - start, 1),
        }
        print(f"  {name} {layer:28s} {layers[layer]}", flush=True)
    best = choose(layers, useful)
    others = {}
    for method in ("saliency", "smoothgrad", "occlusion"):
        start = time.perf_counter()
        s = F.explain(net, x, method, orders=orders, random=random).summary
        others[method] = {**_numbers(s), "seconds": round(time.perf_counter() - start, 1)}
        print(f"  {name} {method:28s} {others[method]}", flush=True)
    noise = randomised(net)
    rnd = F.explain(noise, x, "gradcam", layer=best, orders=orders).summary
    print(f"  {name} randomised at {best}: {_numbers(rnd)}", flush=True)
    return {
        "run": str(run),
        "family": TRAINED[name][1],
        "model": meta.model,
        "dataset": meta.dataset if name != "resnet18" else "generated shapes (make_photos)",
        "test_accuracy": _accuracy(run),
        "images": len(x),
        "input": "x".join(map(str, size)),
        "previous_default": L.last_spatial_block(report),
        "chosen": best,
        "layers": layers,
        "other_methods": others,
        "randomised": {"layer": best, **_numbers(rnd)},
    }


def choose(layers: dict[str, dict], useful: list[str]) -> str:
    """The default layer: the deepest useful one whose mean deletion is within one standard
    error of the lowest (Breiman's one-standard-error rule): differences smaller than the
    spread over the images do not choose, and the deeper of near-equals carries more of the
    network's own features (ResNet-18: the shortcut `layer3.0.downsample.0` scored 0.493 and
    the stage end `layer3` 0.499, within 0.02 of each other over 24 images)."""
    lowest = min(useful, key=lambda lay: layers[lay]["deletion"])
    bound = layers[lowest]["deletion"] + layers[lowest]["deletion_se"]
    return [lay for lay in layers if lay in useful and layers[lay]["deletion"] <= bound][-1]


def _predicted(net: torch.nn.Module, x: torch.Tensor) -> torch.Tensor:
    with torch.no_grad():
        return net.eval()(x).argmax(1)


def _numbers(s) -> dict:
    return {
        "deletion": round(s.deletion, 4),
        "deletion_random": round(s.deletion_random, 4),
        "insertion": round(s.insertion, 4),
        "insertion_random": round(s.insertion_random, 4),
        "class_sensitivity": round(s.class_sensitivity, 4),
        "verdict": s.verdict,
    }


def _accuracy(run: Path) -> float | None:
    results = json.loads((run / "results.json").read_text())
    return (results.get("test") or {}).get("top1")


def table(result: dict) -> str:
    """docs/seeing.md's table: one row per model and candidate layer."""
    lines = [
        "| model (test acc.) | layer | map | deletion ± s.e. (random) | insertion (random) "
        "| class sens. | verdict |",
        "|---|---|---|---|---|---|---|",
    ]
    for name, m in result["models"].items():
        acc = m["test_accuracy"]
        label = f"{name} ({100 * acc:.1f}%)" if isinstance(acc, float) else name
        for layer, v in m["layers"].items():
            mark = "**" if layer == m["chosen"] else ""
            note = "" if v["useful"] else " (too coarse)"
            lines.append(
                f"| {label} | {mark}`{layer}`{mark}{note} | {v['map']} | {v['deletion']:.3f}"
                + (f" ± {v['deletion_se']:.3f}" if "deletion_se" in v else "")
                + f" ({v['deletion_random']:.3f}) | {v['insertion']:.3f} "
                f"({v['insertion_random']:.3f}) | {v['class_sensitivity']:.2f} | {v['verdict']} |"
            )
        for method, v in m["other_methods"].items():
            lines.append(
                f"| {label} | {method} | input | {v['deletion']:.3f} ({v['deletion_random']:.3f}) "
                f"| {v['insertion']:.3f} ({v['insertion_random']:.3f}) "
                f"| {v['class_sensitivity']:.2f} | {v['verdict']} |"
            )
        r = m["randomised"]
        lines.append(
            f"| {name}, weights re-initialised | `{r['layer']}` | | {r['deletion']:.3f} "
            f"({r['deletion_random']:.3f}) | {r['insertion']:.3f} ({r['insertion_random']:.3f}) "
            f"| {r['class_sensitivity']:.2f} | {r['verdict']} |"
        )
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--runs", type=Path, default=Path("/tmp/faith"), help="trained runs' folder")
    p.add_argument("--images", type=int, default=200, help="held-out images per model")
    p.add_argument("--images-resnet18", type=int, default=40, help="the same for resnet18")
    p.add_argument("--orders", type=int, default=3, help="random orders averaged")
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--models", nargs="*", default=list(TRAINED))
    p.add_argument("--table", action="store_true", help="print the docs' table of the result")
    args = p.parse_args(argv)
    if args.table:
        print(table(json.loads(RESULT.read_text())))
        return
    torch.set_num_threads(args.threads)
    result = machine.header("faithfulness")
    result["models"] = {}
    for name in args.models:
        run, seconds = trained(name, args.runs, args.threads)
        start = time.perf_counter()
        images = args.images_resnet18 if name == "resnet18" else args.images
        result["models"][name] = measure(name, run, images, args.orders)
        result["models"][name]["train_seconds"] = seconds
        result["models"][name]["measure_seconds"] = round(time.perf_counter() - start, 1)
        command, _ = TRAINED[name]
        result["models"][name]["train_command"] = "cnnlab " + " ".join(command)
    if RESULT.exists() and set(args.models) != set(TRAINED):  # a partial rerun keeps the rest
        result["models"] = {**json.loads(RESULT.read_text())["models"], **result["models"]}
    machine.write_result(RESULT, result)
    print(table(result))


if __name__ == "__main__":
    main()
