"""Network in Network: mlpconv blocks and global average pooling (Lin, Chen & Yan 2013).

Paper:
    Lin, Chen & Yan (2013), "Network In Network", arXiv:1312.4400 (ICLR 2014). Section 3.1
    replaces each linear convolution by an "mlpconv" layer, a small multilayer perceptron slid over
    the input (a convolution followed by 1x1 convolutions, each with ReLU); Section 3.2 replaces
    the fully connected classifier by global average pooling over one feature map per class.
Configuration:
    Zhang, Lipton, Li & Smola, "Dive into Deep Learning", Section 8.3 (Network in Network), which
    gives the ImageNet-sized net built here: mlpconv 96 (11x11/4), 256 (5x5, pad 2),
    384 (3x3, pad 1), each followed by a 3x3/2 max-pool, dropout 0.5, then mlpconv to
    ``num_classes`` maps (3x3, pad 1) and global average pooling; 224x224x3 input.

Deviations from the paper, on purpose:
    * The paper's experiments (Section 4) use three mlpconv layers on 32x32 CIFAR-10/100 and SVHN
      images (their exact widths are in the authors' released Caffe model, not in the text:
      192-160-96, 192-192-192, 192-192-10, with 5x5, 5x5 and 3x3 first convolutions, max-pools
      and an average pool, dropout between blocks). This module follows the ImageNet-sized
      configuration of the d2l chapter, whose first three blocks reuse AlexNet's filter sizes and
      widths; d2l's is four blocks, the paper's three.
    * As in the released model and in d2l, the last 1x1 convolution of the last block keeps its
      ReLU before the average pooling, so the class scores are non-negative.
"""

from __future__ import annotations

from collections import OrderedDict
from dataclasses import dataclass

from torch import Tensor, nn

from cnnlab.registry import register_model


@dataclass(frozen=True)
class MlpConv:
    """One mlpconv block: a ``kernel`` convolution, then two 1x1 ones, all ``filters`` wide."""

    filters: int | None  # None: as many maps as classes (the last block)
    kernel: int
    stride: int = 1
    padding: int = 0
    pool: bool = True  # a 3x3 stride-2 max-pool follows


# d2l Section 8.3: the ImageNet NiN.
D2L_IMAGENET = (
    MlpConv(96, 11, stride=4),
    MlpConv(256, 5, padding=2),
    MlpConv(384, 3, padding=1),
    MlpConv(None, 3, padding=1, pool=False),
)
POOL_KERNEL, POOL_STRIDE = 3, 2
DROPOUT = 0.5  # before the last block (d2l; the paper puts dropout "on the outputs of all but
# the last mlpconv layers")


def mlpconv(
    in_channels: int, filters: int, kernel: int, stride: int, padding: int
) -> nn.Sequential:
    """An mlpconv block (Section 3.1): conv - ReLU - 1x1 conv - ReLU - 1x1 conv - ReLU.

    Shape:
        - Input: ``(N, in_channels, H, W)``
        - Output: ``(N, filters, (H + 2 * padding - kernel) // stride + 1, ...)``
    """
    return nn.Sequential(
        nn.Conv2d(in_channels, filters, kernel, stride=stride, padding=padding),
        nn.ReLU(inplace=True),
        nn.Conv2d(filters, filters, 1),  # the micro network's hidden layers: 1x1 convolutions
        nn.ReLU(inplace=True),
        nn.Conv2d(filters, filters, 1),
        nn.ReLU(inplace=True),
    )


class NiN(nn.Module):
    """Network in Network: mlpconv blocks, max-pools, dropout, global average pooling.

    Args:
        table: the blocks, one :class:`MlpConv` per row; the last has ``filters=None``.
        in_channels: input channels.
        num_classes: maps of the last block, one per class.
        dropout: drop probability before the last block.

    Shape:
        - Input: ``(N, in_channels, H, W)``
        - Output: ``(N, num_classes)``
    """

    def __init__(
        self,
        table: tuple[MlpConv, ...],
        *,
        in_channels: int,
        num_classes: int,
        dropout: float = DROPOUT,
    ) -> None:
        super().__init__()
        layers: list[tuple[str, nn.Module]] = []
        channels = in_channels
        for i, row in enumerate(table, start=1):
            filters = num_classes if row.filters is None else row.filters
            if row.filters is None:
                layers.append(("dropout", nn.Dropout(dropout)))
            layers.append(
                (f"mlpconv{i}", mlpconv(channels, filters, row.kernel, row.stride, row.padding))
            )
            if row.pool:
                layers.append((f"pool{i}", nn.MaxPool2d(POOL_KERNEL, POOL_STRIDE)))
            channels = filters
        self.features = nn.Sequential(OrderedDict(layers))
        # Section 3.2: one map per class, averaged: no fully connected layer to overfit.
        self.gap = nn.AdaptiveAvgPool2d(1)

    def forward(self, x: Tensor) -> Tensor:
        x = self.features(x)  # (N, num_classes, H', W')
        return self.gap(x).flatten(1)  # (N, num_classes)


@register_model(
    family="nin",
    paper="Lin et al. 2013; ImageNet configuration of d2l 8.3",
    input_size=(3, 224, 224),
    min_input_size=(67, 67),
    num_params=7_439_608,
)
def nin(*, num_classes: int, in_channels: int, dropout: float = DROPOUT) -> nn.Module:
    """Network in Network: mlpconv 96-256-384-classes, max-pools, global average pooling."""
    return NiN(D2L_IMAGENET, in_channels=in_channels, num_classes=num_classes, dropout=dropout)
