"""See inside a trained network, in lecture order (docs/seeing.md shows the figures).

1. Learned first-layer filters (AlexNet's conv1 figure).
2. Feature maps of one image ("activation maps").
3. Receptive field: the box a unit sees, from the analyzer's arithmetic, and its effective field.
4. Top patches: the crops that most activate a channel (Zeiler & Fergus, Fig. 2).
5. Occlusion sensitivity (Zeiler & Fergus, Fig. 7).
6. Saliency: the gradient and SmoothGrad (Simonyan et al.; Smilkov et al.).
7. Grad-CAM (Selvaraju et al.), and on a GAP + linear head its identity with CAM.
8. The most confident mistakes and the most confused pairs.
9. The penultimate features in 2-D.

Train a model first (about a minute on a laptop CPU), then point this script at the run::

    .venv/bin/cnnlab train --out runs/demo --epochs 2
    .venv/bin/python examples/seeing.py runs/demo --out figures/
"""

from __future__ import annotations

import argparse
from pathlib import Path

import torch

import cnnlab
from cnnlab import seeing


def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("run", help="a run directory written by `cnnlab train`")
    p.add_argument("--out", default="seeing", help="folder for the figures")
    p.add_argument("--prefix", default="", help="prefix of the figure names")
    p.add_argument("--limit", type=int, default=2000, help="test images for the dataset views")
    args = p.parse_args(argv)
    out = Path(args.out)

    def path(name: str) -> Path:
        return out / f"{args.prefix}{name}.png"

    predictor = cnnlab.load(args.run, device="cpu")
    meta = predictor.meta
    size = meta.input_size
    images, labels = cnnlab.load_dataset(meta.dataset, "test")  # uint8 (N, C, H, W), (N,)
    images, labels = images[: args.limit], labels[: args.limit]
    four = images[:4]
    print(f"{meta.model} on {meta.dataset}, input {'x'.join(map(str, size))}")

    # 1. Filters: the first convolution's kernels.
    w = seeing.filters(predictor)
    first = seeing.default_layer(predictor.model, size, "filters")
    print(f"1. filters of {first}: {tuple(w.shape)}")
    seeing.plot_filters(predictor, path=path("filters"))

    # 2. Feature maps of one image at the first convolution's block.
    maps = seeing.feature_maps(predictor, four[:1])
    print(f"2. feature maps: {tuple(maps.shape[1:])}, {int((maps > 0).sum())} positive values")
    seeing.plot_feature_maps(predictor, four[:1], path=path("maps"))

    # 3. A unit's receptive field: the analyzer's box, and the gradient that stays inside it.
    layer = seeing.default_layer(predictor.model, size, "rf")
    box = seeing.receptive_box(predictor, size, layer)
    erf = seeing.effective_rf(predictor, size, layer)
    inside = erf[max(box.top, 0) : box.bottom, max(box.left, 0) : box.right].sum() / erf.sum()
    rows, cols = f"{box.top}..{box.bottom - 1}", f"{box.left}..{box.right - 1}"
    print(f"3. {layer}'s centre unit sees rows {rows}, cols {cols}; its gradient is")
    print(f"   {100 * float(inside):.1f}% inside that box")
    seeing.plot_receptive_field(predictor, four[:1], path=path("rf"))

    # 4. Top-9 patches per channel, cut by each unit's exact box.
    patches = seeing.top_patches(predictor, images)
    crop = "x".join(map(str, patches.crops.shape[-2:]))
    strongest = float(patches.activations.max())
    print(f"4. top patches at {patches.layer}: {crop} crops, strongest {strongest:.2f}")
    seeing.plot_top_patches(predictor, images, path=path("patches"))

    # 5. Occlusion: how much the predicted class's probability drops under a grey square.
    sens = seeing.occlusion(predictor, four, score="probability")
    print(f"5. occlusion: the largest drop is {float(sens.max()):.3f} in probability")
    seeing.plot_occlusion(predictor, four, path=path("occlusion"))

    # 6. Saliency and SmoothGrad.
    grad = seeing.saliency(predictor, four)
    print(f"6. saliency: gradient {tuple(grad.shape)}, mean |g| {float(grad.abs().mean()):.2e}")
    seeing.plot_saliency(predictor, four, path=path("saliency"))

    # 7. Grad-CAM at the last spatial block, cells placed at their fields' centres.
    cam = seeing.gradcam(predictor, four)
    last = seeing.default_layer(predictor.model, size, "gradcam")
    print(f"7. Grad-CAM at {last}: {tuple(cam.shape[1:])} per image")
    seeing.plot_gradcam(predictor, four, path=path("gradcam"))
    net = predictor.model
    if isinstance(getattr(net, "avgpool", None), torch.nn.AdaptiveAvgPool2d):
        # Global average pooling, then one linear layer: Grad-CAM is CAM / (H * W).
        a = seeing.feature_maps(predictor, four, last)
        with torch.no_grad():
            c = net(predictor.prepare(four)).argmax(1)  # the class Grad-CAM explained
        ref = torch.relu(torch.einsum("nchw,nc->nhw", a, net.fc.weight[c].detach()))
        gap = (cam * a.shape[-2] * a.shape[-1] - ref).abs().max()
        print(f"   Grad-CAM * H * W - CAM: largest difference {float(gap):.1e}")

    # 8. The most confident mistakes.
    found = seeing.mistakes(predictor, images, labels)
    t, q, n = found.pairs[0]
    print(f"8. accuracy {100 * found.accuracy:.2f}% on {len(labels)} images")
    print(f"   most confused: {meta.classes[t]} -> {meta.classes[q]} ({n} times)")
    seeing.plot_mistakes(predictor, images, labels, path=path("errors"))

    # 9. The penultimate features of the test images, by PCA.
    points = seeing.embeddings(predictor, images)
    print(f"9. embeddings: {tuple(points.shape)}")
    seeing.plot_embeddings(predictor, images, labels, path=path("embeddings"))


if __name__ == "__main__":
    main()
