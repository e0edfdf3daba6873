"""VGG: very deep stacks of 3x3 convolutions (Simonyan & Zisserman 2014).

Paper:
    Simonyan & Zisserman (2014), "Very Deep Convolutional Networks for Large-Scale Image
    Recognition", arXiv:1409.1556 (ICLR 2015). Table 1 gives the configurations A-E, Table 2
    their parameter counts (133, 133, 133, 134, 138, 144 million).

Table 1 is data here (:data:`TABLE_1`, the cells spelled as in the paper: ``conv3-64``,
``conv1-256``, ``LRN``, ``maxpool``); :func:`make_features` turns a column into layers.

Models:
    ``vgg11`` (A), ``vgg11_lrn`` (A-LRN), ``vgg13`` (B), ``vgg16_c`` (C), ``vgg16`` (D),
    ``vgg19`` (E) and ``vgg11_bn``/``vgg13_bn``/``vgg16_bn``/``vgg19_bn`` (batch norm after
    every convolution, Ioffe & Szegedy 2015, not in the VGG paper). The names torchvision has are
    identical to torchvision's (module names, outputs). ``vgg11_cifar`` is the lecture tutorial's
    32x32 VGG-11: column A's convolutions, then FC 512-2048-2048-classes.

Deviations, on purpose:
    * An ``AdaptiveAvgPool2d((7, 7))`` sits before the classifier (torchvision's choice). At 224x224
      it is an identity; the paper instead evaluates larger images "densely", turning the FC
      layers into convolutions. Inputs down to 32x32 run (five 2x2 pools need 32).
    * ``vgg11_cifar`` keeps the paper's ReLU and dropout 0.5 between its FC layers; the
      tutorial's table only lists the widths. It has no adaptive pool: its first FC layer takes
      the 1x1x512 map of a 32x32 input, so the input size is fixed.
    * Weights are initialised as torchvision does (Kaiming-normal convolutions, N(0, 0.01) linear
      layers), not with the paper's pre-training of deeper nets from net A.
"""

from __future__ import annotations

import re
from typing import Any

from torch import Tensor, nn

from cnnlab.models.layers import CrossChannelLRN
from cnnlab.registry import register_model

# fmt: off
# Simonyan & Zisserman 2014, Table 1: ConvNet configurations (columns), cells as printed.
_A = ("conv3-64", "maxpool", "conv3-128", "maxpool", "conv3-256", "conv3-256", "maxpool",
      "conv3-512", "conv3-512", "maxpool", "conv3-512", "conv3-512", "maxpool")
TABLE_1: dict[str, tuple[str, ...]] = {
    "A": _A,
    "A-LRN": ("conv3-64", "LRN", *_A[1:]),
    "B": ("conv3-64", "conv3-64", "maxpool", "conv3-128", "conv3-128", "maxpool",
          "conv3-256", "conv3-256", "maxpool", "conv3-512", "conv3-512", "maxpool",
          "conv3-512", "conv3-512", "maxpool"),
    "C": ("conv3-64", "conv3-64", "maxpool", "conv3-128", "conv3-128", "maxpool",
          "conv3-256", "conv3-256", "conv1-256", "maxpool",
          "conv3-512", "conv3-512", "conv1-512", "maxpool",
          "conv3-512", "conv3-512", "conv1-512", "maxpool"),
    "D": ("conv3-64", "conv3-64", "maxpool", "conv3-128", "conv3-128", "maxpool",
          "conv3-256", "conv3-256", "conv3-256", "maxpool",
          "conv3-512", "conv3-512", "conv3-512", "maxpool",
          "conv3-512", "conv3-512", "conv3-512", "maxpool"),
    "E": ("conv3-64", "conv3-64", "maxpool", "conv3-128", "conv3-128", "maxpool",
          "conv3-256", "conv3-256", "conv3-256", "conv3-256", "maxpool",
          "conv3-512", "conv3-512", "conv3-512", "conv3-512", "maxpool",
          "conv3-512", "conv3-512", "conv3-512", "conv3-512", "maxpool"),
}
# fmt: on

# Table 2, "Number of parameters (in millions)", for the tests to check against.
TABLE_2_MILLIONS = {"A": 133, "A-LRN": 133, "B": 133, "C": 134, "D": 138, "E": 144}

FC_WIDTH = 4096  # "the first two have 4096 channels each" (Section 2.1)
DROPOUT = 0.5  # "dropout regularisation for the first two fully-connected layers (ratio 0.5)"
POOLED_SIZE = 7  # 224 / 2^5: the 7x7x512 volume the first FC layer sees
_CONV = re.compile(r"conv(\d+)-(\d+)")


def make_features(column: tuple[str, ...], in_channels: int, batch_norm: bool) -> nn.Sequential:
    """Turn a Table 1 column into layers, numbered as torchvision numbers them.

    ``convK-N`` is a KxK convolution with N filters, stride 1 and "same" padding (K // 2)
    followed by ReLU (and batch norm before the ReLU when ``batch_norm``); ``maxpool`` is 2x2
    stride 2; ``LRN`` is Krizhevsky's local response normalisation.
    """
    layers: list[nn.Module] = []
    channels = in_channels
    for cell in column:
        if cell == "maxpool":
            layers.append(nn.MaxPool2d(kernel_size=2, stride=2))
        elif cell == "LRN":
            layers.append(CrossChannelLRN())
        elif match := _CONV.fullmatch(cell):
            kernel, filters = int(match[1]), int(match[2])
            layers.append(nn.Conv2d(channels, filters, kernel, padding=kernel // 2))
            if batch_norm:
                layers.append(nn.BatchNorm2d(filters))
            layers.append(nn.ReLU(inplace=True))
            channels = filters
        else:
            raise ValueError(
                f"unknown Table 1 cell {cell!r}"
            )  # a typo in the table, not user input
    return nn.Sequential(*layers)


def _out_channels(column: tuple[str, ...]) -> int:
    return [int(m[2]) for c in column if (m := _CONV.fullmatch(c))][-1]


class VGG(nn.Module):
    """``features`` -> ``avgpool`` -> ``classifier`` (FC-ReLU-dropout twice, then FC).

    Args:
        features: the convolutional part, from :func:`make_features`.
        out_channels: channels of the last feature map.
        num_classes: output units.
        fc_width: width of the two hidden FC layers.
        pooled_size: side of the map the classifier flattens.
        adaptive: pool any larger map to ``pooled_size`` (False: the input size is fixed).
        dropout: drop probability after the two hidden FC layers.

    Shape:
        - Input: ``(N, in_channels, H, W)``
        - Output: ``(N, num_classes)``
    """

    def __init__(
        self,
        features: nn.Sequential,
        *,
        out_channels: int,
        num_classes: int,
        fc_width: int = FC_WIDTH,
        pooled_size: int = POOLED_SIZE,
        adaptive: bool = True,
        dropout: float = DROPOUT,
    ) -> None:
        super().__init__()
        self.features = features
        self.avgpool = (
            nn.AdaptiveAvgPool2d((pooled_size, pooled_size)) if adaptive else nn.Identity()
        )
        self.classifier = nn.Sequential(
            nn.Linear(out_channels * pooled_size * pooled_size, fc_width),
            nn.ReLU(inplace=True),
            nn.Dropout(dropout),
            nn.Linear(fc_width, fc_width),
            nn.ReLU(inplace=True),
            nn.Dropout(dropout),
            nn.Linear(fc_width, num_classes),
        )
        for module in self.modules():
            if isinstance(module, nn.Conv2d):
                nn.init.kaiming_normal_(module.weight, mode="fan_out", nonlinearity="relu")
                nn.init.zeros_(module.bias)
            elif isinstance(module, nn.BatchNorm2d):
                nn.init.ones_(module.weight)
                nn.init.zeros_(module.bias)
            elif isinstance(module, nn.Linear):
                nn.init.normal_(module.weight, 0.0, 0.01)
                nn.init.zeros_(module.bias)

    def forward(self, x: Tensor) -> Tensor:
        x = self.features(x)  # (N, 512, H/32, W/32)
        x = self.avgpool(x)  # (N, 512, 7, 7) (or unchanged when not adaptive)
        return self.classifier(x.flatten(1))  # (N, num_classes)


def vgg_from_table(
    column: str, *, num_classes: int, in_channels: int, batch_norm: bool = False, **kwargs: Any
) -> VGG:
    """Build the network of one Table 1 column (``"A"``, ``"A-LRN"``, ``"B"``, ... ``"E"``)."""
    cells = TABLE_1[column]
    return VGG(
        make_features(cells, in_channels, batch_norm),
        out_channels=_out_channels(cells),
        num_classes=num_classes,
        **kwargs,
    )


_PAPER = "Simonyan & Zisserman 2014"
_PAPER_BN = "Simonyan & Zisserman 2014 + batch norm"
_ARGS = {"family": "vgg", "input_size": (3, 224, 224), "min_input_size": (32, 32)}


@register_model(paper=_PAPER, num_params=132_863_336, torchvision="vgg11", **_ARGS)
def vgg11(*, num_classes: int, in_channels: int, dropout: float = DROPOUT) -> nn.Module:
    """VGG-11, Table 1 column A: 8 convolutions + 3 FC layers."""
    return vgg_from_table("A", num_classes=num_classes, in_channels=in_channels, dropout=dropout)


@register_model(paper=_PAPER, num_params=132_863_336, **_ARGS)
def vgg11_lrn(*, num_classes: int, in_channels: int, dropout: float = DROPOUT) -> nn.Module:
    """VGG-11 with LRN, Table 1 column A-LRN: column A plus LRN after the first ReLU."""
    return vgg_from_table(
        "A-LRN", num_classes=num_classes, in_channels=in_channels, dropout=dropout
    )


@register_model(paper=_PAPER, num_params=133_047_848, torchvision="vgg13", **_ARGS)
def vgg13(*, num_classes: int, in_channels: int, dropout: float = DROPOUT) -> nn.Module:
    """VGG-13, Table 1 column B: 10 convolutions + 3 FC layers."""
    return vgg_from_table("B", num_classes=num_classes, in_channels=in_channels, dropout=dropout)


@register_model(paper=_PAPER, num_params=133_638_952, **_ARGS)
def vgg16_c(*, num_classes: int, in_channels: int, dropout: float = DROPOUT) -> nn.Module:
    """VGG-16 column C: column B plus a 1x1 convolution closing blocks 3, 4 and 5."""
    return vgg_from_table("C", num_classes=num_classes, in_channels=in_channels, dropout=dropout)


@register_model(paper=_PAPER, num_params=138_357_544, torchvision="vgg16", **_ARGS)
def vgg16(*, num_classes: int, in_channels: int, dropout: float = DROPOUT) -> nn.Module:
    """VGG-16, Table 1 column D: 13 3x3 convolutions + 3 FC layers."""
    return vgg_from_table("D", num_classes=num_classes, in_channels=in_channels, dropout=dropout)


@register_model(paper=_PAPER, num_params=143_667_240, torchvision="vgg19", **_ARGS)
def vgg19(*, num_classes: int, in_channels: int, dropout: float = DROPOUT) -> nn.Module:
    """VGG-19, Table 1 column E: 16 3x3 convolutions + 3 FC layers."""
    return vgg_from_table("E", num_classes=num_classes, in_channels=in_channels, dropout=dropout)


@register_model(paper=_PAPER_BN, num_params=132_868_840, torchvision="vgg11_bn", **_ARGS)
def vgg11_bn(*, num_classes: int, in_channels: int, dropout: float = DROPOUT) -> nn.Module:
    """VGG-11 (column A) with batch norm after every convolution."""
    return vgg_from_table(
        "A", num_classes=num_classes, in_channels=in_channels, batch_norm=True, dropout=dropout
    )


@register_model(paper=_PAPER_BN, num_params=133_053_736, torchvision="vgg13_bn", **_ARGS)
def vgg13_bn(*, num_classes: int, in_channels: int, dropout: float = DROPOUT) -> nn.Module:
    """VGG-13 (column B) with batch norm after every convolution."""
    return vgg_from_table(
        "B", num_classes=num_classes, in_channels=in_channels, batch_norm=True, dropout=dropout
    )


@register_model(paper=_PAPER_BN, num_params=138_365_992, torchvision="vgg16_bn", **_ARGS)
def vgg16_bn(*, num_classes: int, in_channels: int, dropout: float = DROPOUT) -> nn.Module:
    """VGG-16 (column D) with batch norm after every convolution."""
    return vgg_from_table(
        "D", num_classes=num_classes, in_channels=in_channels, batch_norm=True, dropout=dropout
    )


@register_model(paper=_PAPER_BN, num_params=143_678_248, torchvision="vgg19_bn", **_ARGS)
def vgg19_bn(*, num_classes: int, in_channels: int, dropout: float = DROPOUT) -> nn.Module:
    """VGG-19 (column E) with batch norm after every convolution."""
    return vgg_from_table(
        "E", num_classes=num_classes, in_channels=in_channels, batch_norm=True, dropout=dropout
    )


# The course tutorial's 32x32 VGG-11 (its table's sizes are checked in docs/errata.md): after
# five 2x2 pools a 32x32 input is 1x1x512.
CIFAR_FC_WIDTH = 2048


@register_model(
    family="vgg",
    paper="Simonyan & Zisserman 2014, tutorial 32x32 variant",
    input_size=(3, 32, 32),
    min_input_size=(32, 32),
    num_params=14_487_946,
    num_classes=10,
    fixed_input=True,
)
def vgg11_cifar(*, num_classes: int, in_channels: int, dropout: float = DROPOUT) -> nn.Module:
    """VGG-11 for 32x32 images (the tutorial's table): column A, FC 512-2048-2048-classes."""
    return vgg_from_table(
        "A",
        num_classes=num_classes,
        in_channels=in_channels,
        fc_width=CIFAR_FC_WIDTH,
        pooled_size=1,
        adaptive=False,
        dropout=dropout,
    )
