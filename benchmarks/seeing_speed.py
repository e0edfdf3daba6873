"""How long cnnlab.seeing takes: Grad-CAM of ResNet-18 at 224x224 per image, and batched occlusion.

Grad-CAM (the issue's target: at most 100 ms per 224x224 image on this CPU) is timed for
random-initialised ``resnet18`` at its default layer (``layer4``), per image at batch 1 and
batch 8, beside a plain forward pass of the same batch (the floor: Grad-CAM records no graph
before ``layer4`` and back-propagates only through the head, so it should cost about one
forward pass). Captum's ``LayerGradCam`` and torchcam's ``GradCAM`` are timed the same way when
installed. Occlusion is timed for FastNet at 28x28 (a 4x4 window at stride 2: 169 positions),
with all positions batched against one forward pass per position.

Each figure is the median of ``--repeats`` timed calls after two warm-up calls, in
milliseconds of wall time, with ``torch.set_num_threads(--threads)``. CPU time of the process is
recorded beside it: on a shared machine it is the steadier number. The load average before and
after goes into the JSON (``machine``).

Usage::

    .venv/bin/python benchmarks/seeing_speed.py [--threads 2] [--repeats 15]
        [--out benchmarks/results/seeing_speed.json]
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import torch
from machine import describe  # benchmarks/machine.py

from cnnlab import seeing
from cnnlab.registry import create_model


def timed(fn: Callable[[], Any], repeats: int) -> dict[str, float]:
    """Median wall and CPU milliseconds of ``fn`` over ``repeats`` calls (and the fastest
    call's wall time, the least disturbed by other processes), after two warm-ups."""
    for _ in range(2):
        fn()
    wall, cpu = [], []
    for _ in range(repeats):
        w0, c0 = time.perf_counter(), time.process_time()
        fn()
        wall.append(1000 * (time.perf_counter() - w0))
        cpu.append(1000 * (time.process_time() - c0))
    return {
        "wall_ms": statistics.median(wall),
        "cpu_ms": statistics.median(cpu),
        "min_wall_ms": min(wall),
    }


def per_image(t: dict[str, float], n: int) -> dict[str, float]:
    return {k: round(v / n, 2) for k, v in t.items()}


def gradcam_cases(repeats: int) -> dict[str, Any]:
    model = create_model("resnet18").eval()
    out: dict[str, Any] = {}
    for batch in (1, 8):
        x = torch.randn(batch, 3, 224, 224)
        seeing.gradcam(model, x)  # the analysis behind the default layer, computed once

        def forward(x: torch.Tensor = x) -> None:
            with torch.no_grad():
                model(x)

        out[f"batch{batch}"] = {
            "cnnlab_gradcam": per_image(
                timed(lambda x=x: seeing.gradcam(model, x), repeats), batch
            ),
            "forward_only": per_image(timed(forward, repeats), batch),
            **others(model, x, repeats),
        }
    return out


def others(model: torch.nn.Module, x: torch.Tensor, repeats: int) -> dict[str, Any]:
    """Captum's and torchcam's Grad-CAM on the same model and batch, where installed."""
    out: dict[str, Any] = {}
    n = len(x)
    try:
        from captum.attr import LayerGradCam

        cam = LayerGradCam(model, model.layer4)

        def captum() -> None:
            with torch.no_grad():
                target = model(x).argmax(1)
            cam.attribute(x, target=target, relu_attributions=True)

        out["captum_layergradcam"] = per_image(timed(captum, repeats), n)
    except ImportError:
        pass
    try:
        from torchcam.methods import GradCAM

        def torchcam() -> None:
            with GradCAM(model, target_layer="layer4") as extractor:
                scores = model(x)
                extractor(scores.argmax(1).tolist(), scores)

        out["torchcam_gradcam"] = per_image(timed(torchcam, repeats), n)
    except ImportError:
        pass
    return out


def occlusion_cases(repeats: int) -> dict[str, Any]:
    model = create_model("fastnet").eval()
    x = torch.randn(1, 1, 28, 28)
    batched = timed(lambda: seeing.occlusion(model, x, window=4, stride=2), repeats)
    one_by_one = timed(
        lambda: seeing.occlusion(model, x, window=4, stride=2, batch_size=1), repeats
    )
    return {
        "positions": 13 * 13,
        "batched_ms": round(batched["wall_ms"], 1),
        "one_per_forward_ms": round(one_by_one["wall_ms"], 1),
        "batched_cpu_ms": round(batched["cpu_ms"], 1),
        "one_per_forward_cpu_ms": round(one_by_one["cpu_ms"], 1),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--repeats", type=int, default=15)
    parser.add_argument("--out", default="benchmarks/results/seeing_speed.json")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    torch.manual_seed(0)
    result: dict[str, Any] = {"machine": describe()}
    result["machine"]["load_average_before"] = [round(v, 2) for v in os.getloadavg()]
    result["gradcam_resnet18_224"] = gradcam_cases(args.repeats)
    result["occlusion_fastnet_28"] = occlusion_cases(args.repeats)
    result["machine"]["load_average_after"] = [round(v, 2) for v in os.getloadavg()]
    target = result["gradcam_resnet18_224"]["batch1"]["cnnlab_gradcam"]["wall_ms"]
    result["target_100ms_met"] = target <= 100
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(json.dumps(result, indent=2) + "\n")
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
