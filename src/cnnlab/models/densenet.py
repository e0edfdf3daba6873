"""Densely connected networks: the ImageNet DenseNet-BCs and the CIFAR DenseNet-BC-100.

Paper:
    Huang, Liu, van der Maaten, Weinberger. "Densely Connected Convolutional Networks",
    CVPR 2017 (arXiv:1608.06993): Table 1 (ImageNet architectures), Section 3 (dense block,
    bottleneck "B" layers with 4k channels, compression "C" with theta = 0.5, CIFAR set-up).

Models and where they depart from the paper:
    ``densenet121/161/169/201``: identical to torchvision's (same parameter names and outputs).
    They follow Table 1; torchvision's layer order (BN-ReLU-conv inside layers, a final
    BN-ReLU before global pooling) is the paper's. No departure we know of.
    ``densenet_bc_100``: the CIFAR DenseNet-BC with depth 100 and growth rate 12 (Table 2):
    a 3x3 stem with 2k filters, three dense blocks of 16 bottleneck layers on 32x32, 16x16 and
    8x8 maps, compression 0.5, global average pooling. Dropout is off by default (the paper
    uses 0.2 only when training without data augmentation; pass ``drop_rate=0.2``).
"""

from __future__ import annotations

import math
from collections import OrderedDict

import torch
import torch.nn.functional as F
from torch import nn

from cnnlab.errors import ConfigError
from cnnlab.registry import register_model

PAPER = "Huang et al. 2017, Densely Connected Convolutional Networks"

# Section 3, "Bottleneck layers": the 1x1 convolution produces 4k feature maps.
BN_SIZE = 4
# Section 3, "Compression": a transition keeps floor(theta * m) of its m feature maps.
COMPRESSION = 0.5


class DenseLayer(nn.Module):
    """BN-ReLU-Conv(1x1, bn_size*k)-BN-ReLU-Conv(3x3, k): one bottleneck ("B") layer.

    Shape:
        - Input: (N, in_channels, H, W), the concatenation of all earlier feature maps
        - Output: (N, growth_rate, H, W), the new maps this layer adds
    """

    def __init__(self, in_channels: int, growth_rate: int, bn_size: int, drop_rate: float) -> None:
        super().__init__()
        self.norm1 = nn.BatchNorm2d(in_channels)
        self.relu1 = nn.ReLU(inplace=True)
        self.conv1 = nn.Conv2d(in_channels, bn_size * growth_rate, 1, bias=False)
        self.norm2 = nn.BatchNorm2d(bn_size * growth_rate)
        self.relu2 = nn.ReLU(inplace=True)
        self.conv2 = nn.Conv2d(bn_size * growth_rate, growth_rate, 3, padding=1, bias=False)
        self.drop_rate = float(drop_rate)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        # In-place ReLU is safe: it acts on norm1's fresh output, never on the shared input x.
        out = self.conv1(self.relu1(self.norm1(x)))
        out = self.conv2(self.relu2(self.norm2(out)))
        if self.drop_rate > 0:
            out = F.dropout(out, p=self.drop_rate, training=self.training)
        return out


class DenseBlock(nn.ModuleDict):
    """``num_layers`` dense layers, each fed the concatenation of the block input and all
    earlier layers' outputs (Eq. 2).

    Shape:
        - Input: (N, in_channels, H, W)
        - Output: (N, in_channels + num_layers * growth_rate, H, W)
    """

    def __init__(
        self, num_layers: int, in_channels: int, growth_rate: int, bn_size: int, drop_rate: float
    ) -> None:
        super().__init__()
        for i in range(num_layers):
            layer = DenseLayer(in_channels + i * growth_rate, growth_rate, bn_size, drop_rate)
            self.add_module(f"denselayer{i + 1}", layer)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        for layer in self.values():
            x = torch.cat([x, layer(x)], 1)  # (N, C + k, H, W)
        return x


class Transition(nn.Sequential):
    """BN-ReLU-Conv(1x1)-AvgPool(2x2, stride 2) between dense blocks.

    Shape:
        - Input: (N, in_channels, H, W)
        - Output: (N, out_channels, H // 2, W // 2)
    """

    def __init__(self, in_channels: int, out_channels: int) -> None:
        super().__init__()
        self.norm = nn.BatchNorm2d(in_channels)
        self.relu = nn.ReLU(inplace=True)
        self.conv = nn.Conv2d(in_channels, out_channels, 1, bias=False)
        self.pool = nn.AvgPool2d(kernel_size=2, stride=2)


class DenseNet(nn.Module):
    """DenseNet-BC: a stem, dense blocks joined by compressing transitions, BN-ReLU, pool, FC.

    Args:
        growth_rate: k, the feature maps each dense layer adds.
        block_config: dense layers per block.
        num_init_features: stem output channels (2k in the paper; 96 for DenseNet-161).
        bn_size: bottleneck width as a multiple of k (4 in the paper).
        compression: theta, the fraction of feature maps a transition keeps.
        drop_rate: dropout after each dense layer's 3x3 convolution.
        cifar_stem: True for the CIFAR stem (one 3x3 convolution); False for the ImageNet stem
            (7x7 stride-2 convolution, BN, ReLU, 3x3 stride-2 max pool; Table 1).
        num_classes: output classes.
        in_channels: input image channels (changes only ``features.conv0``).

    Shape:
        - Input: (N, in_channels, H, W)
        - Output: (N, num_classes)
    """

    def __init__(
        self,
        *,
        growth_rate: int,
        block_config: tuple[int, ...],
        num_init_features: int,
        bn_size: int = BN_SIZE,
        compression: float = COMPRESSION,
        drop_rate: float = 0.0,
        cifar_stem: bool = False,
        num_classes: int = 1000,
        in_channels: int = 3,
    ) -> None:
        super().__init__()
        if not 0.0 < compression <= 1.0:
            raise ConfigError(f"compression must be in (0, 1], not {compression} (the paper: 0.5)")
        if cifar_stem:
            stem = [("conv0", nn.Conv2d(in_channels, num_init_features, 3, padding=1, bias=False))]
        else:
            stem = [
                ("conv0", nn.Conv2d(in_channels, num_init_features, 7, 2, padding=3, bias=False)),
                ("norm0", nn.BatchNorm2d(num_init_features)),
                ("relu0", nn.ReLU(inplace=True)),
                ("pool0", nn.MaxPool2d(kernel_size=3, stride=2, padding=1)),
            ]
        self.features = nn.Sequential(OrderedDict(stem))
        channels = num_init_features
        for i, num_layers in enumerate(block_config, start=1):
            block = DenseBlock(num_layers, channels, growth_rate, bn_size, drop_rate)
            self.features.add_module(f"denseblock{i}", block)
            channels += num_layers * growth_rate
            if i < len(block_config):
                kept = math.floor(compression * channels)
                self.features.add_module(f"transition{i}", Transition(channels, kept))
                channels = kept
        # torchvision's name for the final batch norm (after the fourth block in Table 1).
        self.features.add_module(f"norm{len(block_config) + 1}", nn.BatchNorm2d(channels))
        self.classifier = nn.Linear(channels, num_classes)

        for m in self.modules():
            if isinstance(m, nn.Conv2d):
                nn.init.kaiming_normal_(m.weight)  # He init, as the paper's Torch code
            elif isinstance(m, nn.BatchNorm2d):
                nn.init.ones_(m.weight)
                nn.init.zeros_(m.bias)
            elif isinstance(m, nn.Linear):
                nn.init.zeros_(m.bias)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = F.relu(self.features(x))  # (N, C, H', W')
        x = F.adaptive_avg_pool2d(x, (1, 1))  # (N, C, 1, 1)
        return self.classifier(torch.flatten(x, 1))


# --- ImageNet DenseNet-BCs (Table 1), identical to torchvision ------------------------------------

# Smallest input, derived by trying: the third transition's 2x2 pool needs a 2x2 map. 29x29 gives
# 8x8 after the stem, then 4, 2, 1; 28x28 gives 7x7, 3, 1 and the pool no longer fits.
_IMAGENET = {"family": "densenet", "paper": PAPER, "input_size": (3, 224, 224)}


@register_model(
    **_IMAGENET, min_input_size=(29, 29), num_params=7_978_856, torchvision="densenet121"
)
def densenet121(*, num_classes: int = 1000, in_channels: int = 3, **kwargs: object) -> DenseNet:
    """DenseNet-121 (Table 1), torchvision's: k=32, blocks 6-12-24-16."""
    return DenseNet(
        growth_rate=32,
        block_config=(6, 12, 24, 16),
        num_init_features=64,
        num_classes=num_classes,
        in_channels=in_channels,
        **kwargs,
    )


@register_model(
    **_IMAGENET, min_input_size=(29, 29), num_params=28_681_000, torchvision="densenet161"
)
def densenet161(*, num_classes: int = 1000, in_channels: int = 3, **kwargs: object) -> DenseNet:
    """DenseNet-161 (Table 1), torchvision's: k=48, blocks 6-12-36-24, 96-channel stem."""
    return DenseNet(
        growth_rate=48,
        block_config=(6, 12, 36, 24),
        num_init_features=96,
        num_classes=num_classes,
        in_channels=in_channels,
        **kwargs,
    )


@register_model(
    **_IMAGENET, min_input_size=(29, 29), num_params=14_149_480, torchvision="densenet169"
)
def densenet169(*, num_classes: int = 1000, in_channels: int = 3, **kwargs: object) -> DenseNet:
    """DenseNet-169 (Table 1), torchvision's: k=32, blocks 6-12-32-32."""
    return DenseNet(
        growth_rate=32,
        block_config=(6, 12, 32, 32),
        num_init_features=64,
        num_classes=num_classes,
        in_channels=in_channels,
        **kwargs,
    )


@register_model(
    **_IMAGENET, min_input_size=(29, 29), num_params=20_013_928, torchvision="densenet201"
)
def densenet201(*, num_classes: int = 1000, in_channels: int = 3, **kwargs: object) -> DenseNet:
    """DenseNet-201 (Table 1), torchvision's: k=32, blocks 6-12-48-32."""
    return DenseNet(
        growth_rate=32,
        block_config=(6, 12, 48, 32),
        num_init_features=64,
        num_classes=num_classes,
        in_channels=in_channels,
        **kwargs,
    )


# --- CIFAR DenseNet-BC (Section 3, Table 2) -------------------------------------------------------


def cifar_block_config(depth: int, blocks: int = 3) -> tuple[int, ...]:
    """Layers per block of a CIFAR DenseNet-BC of ``depth`` layers.

    Depth counts the stem, every dense layer's two convolutions, the transitions and the
    classifier: depth = 2 * blocks * n + blocks + 1, so depth 100 gives n = 16.
    """
    n, rest = divmod(depth - blocks - 1, 2 * blocks)
    if n < 1 or rest:
        raise ConfigError(
            f"a {blocks}-block DenseNet-BC has depth 6n+4 (40, 100, 190, 250), not {depth}"
        )
    return (n,) * blocks


# Smallest input, derived by trying: the two transitions' 2x2 pools need 4x4 at the stem.
@register_model(
    family="densenet",
    paper=PAPER + ", Table 2",
    input_size=(3, 32, 32),
    min_input_size=(4, 4),
    num_params=769_162,
    num_classes=10,
)
def densenet_bc_100(*, num_classes: int = 10, in_channels: int = 3, **kwargs: object) -> DenseNet:
    """DenseNet-BC-100 for CIFAR (Table 2): k=12, three blocks of 16 bottleneck layers."""
    growth_rate = 12
    return DenseNet(
        growth_rate=growth_rate,
        block_config=cifar_block_config(depth=100),
        num_init_features=2 * growth_rate,  # Section 3: "twice the growth rate for DenseNet-BC"
        cifar_stem=True,
        num_classes=num_classes,
        in_channels=in_channels,
        **kwargs,
    )
