"""The lectures' hand computations, in lecture order, each done by cnnlab instead of by hand.

1. Output volume: W' = (W - F + 2P) / S + 1, and what happens when it is not a whole number.
2. AlexNet's first layer: output volume, parameters, memory and multiply-adds (seeds/000, 002).
3. Why VGG stacks 3x3 filters: three 3x3 layers see 7x7 with 27C^2 weights instead of 49C^2.
4. The 1x1 "bottleneck" of the Inception module: the same output for a fraction of the cost.
5. ResNet's Table 1: multiply-adds of the five depths, paper (v1) against torchvision (v1.5).

    .venv/bin/python examples/lecture_tour.py
"""

from __future__ import annotations

from torch import nn

import cnnlab
from cnnlab.analysis import arith


def output_volume() -> None:
    print("1. Output size, floor((W - F + 2P) / S) + 1")
    for w, f, s, p in [(227, 11, 4, 0), (7, 3, 1, 0), (7, 3, 2, 0), (7, 3, 3, 0), (32, 5, 1, 2)]:
        out = arith.output_size(w, f, s, p)
        fits = "" if out.fits else f"  <- does not fit: exact value {float(out.exact):.2f}"
        print(f"   W={w:3d} F={f:2d} S={s} P={p}: {out.size}{fits}")


def alexnet_conv1() -> None:
    print(
        "\n2. AlexNet conv1 on a 227x227x3 image (the 2012 paper's 96 filters of 11x11, stride 4)"
    )
    conv1 = cnnlab.analyze("alexnet_paper").row("features.conv1")
    c, h, w = conv1.output_shape
    print(f"   output volume {h}x{w}x{c}, parameters {conv1.params:,} (weights and biases)")
    print(f"   activations {conv1.activation_bytes / 1024:,.0f} KB, multiply-adds {conv1.macs:,}")


def stacked_3x3() -> None:
    print("\n3. Three 3x3 convolutions against one 7x7 (C = 64 channels in and out, no bias)")
    c = 64
    stack = nn.Sequential(*[nn.Conv2d(c, c, 3, padding=1, bias=False) for _ in range(3)])
    single = nn.Sequential(nn.Conv2d(c, c, 7, padding=3, bias=False))
    for label, net in (("3 x 3x3", stack), ("1 x 7x7", single)):
        report = cnnlab.analyze(net, input_size=(c, 56, 56))
        rf = report.rows[-1].receptive_field
        params = report.totals["params"]
        print(f"   {label}: receptive field {rf}x{rf}, {params:,} weights = {params // c**2} C^2")


def inception_bottleneck() -> None:
    print("\n4. A 5x5 branch on a 28x28x192 input, 32 filters: direct, or after a 1x1 to 16")
    direct = nn.Sequential(nn.Conv2d(192, 32, 5, padding=2))
    reduced = nn.Sequential(nn.Conv2d(192, 16, 1), nn.Conv2d(16, 32, 5, padding=2))
    costs = {}
    for label, net in (("direct", direct), ("1x1 first", reduced)):
        costs[label] = cnnlab.analyze(net, input_size=(192, 28, 28), count="conv-linear")
        print(f"   {label:9s}: {costs[label].totals['macs'] / 1e6:6.1f} M multiply-adds")
    ratio = costs["direct"].totals["macs"] / costs["1x1 first"].totals["macs"]
    print(f"   the bottleneck is {ratio:.1f}x cheaper for the same output volume")


def resnet_table_1() -> None:
    print("\n5. ResNet Table 1, multiply-adds at 224x224 (the paper's 'FLOPs')")
    for depth in (18, 34, 50, 101, 152):
        v15 = cnnlab.analyze(f"resnet{depth}", count="conv-linear").totals["macs"] / 1e9
        paper = f"resnet{depth}_paper"
        v1 = (
            cnnlab.analyze(paper, count="conv-linear").totals["macs"] / 1e9
            if paper in cnnlab.list_models()
            else v15  # ResNet-18/34 have no bottleneck, so v1 and v1.5 are the same network
        )
        print(f"   ResNet-{depth:<3d} v1 {v1:6.3f} G   torchvision v1.5 {v15:6.3f} G")


def main() -> None:
    output_volume()
    alexnet_conv1()
    stacked_3x3()
    inception_bottleneck()
    resnet_table_1()


if __name__ == "__main__":
    main()
