"""Residual networks: ResNet, ResNeXt, Wide ResNet, the CIFAR ResNets and their plain twins.

Papers:
    He, Zhang, Ren, Sun. "Deep Residual Learning for Image Recognition", CVPR 2016
    (arXiv:1512.03385), Table 1 (ImageNet nets) and Section 4.2 (CIFAR-10 nets).
    Xie, Girshick, Dollar, Tu, He. "Aggregated Residual Transformations for Deep Neural
    Networks" (ResNeXt), CVPR 2017. Zagoruyko, Komodakis. "Wide Residual Networks", BMVC 2016.

Models and where they depart from the paper:
    ``resnet18`` ... ``resnet152``, ``resnext*``, ``wide_resnet*``: identical to torchvision's
    (same parameter names and outputs). Torchvision's bottleneck is "ResNet v1.5": the
    downsampling stride sits on the 3x3 convolution, not on the first 1x1 as in the paper; it
    costs more multiply-adds (ResNet-50: 4.09 vs 3.8 GMACs) and is a little more accurate. Its
    Wide ResNets are the bottleneck variant (inner width doubled), not Zagoruyko's basic-block
    WRN-d-k.
    ``resnet50_paper``, ``resnet101_paper``, ``resnet152_paper``: the paper's v1 bottleneck
    (stride on the first 1x1), projection shortcuts where the shape changes (option B). Same
    parameters as v1.5; only where the stride sits differs.
    ``resnet20`` ... ``resnet110`` (Section 4.2): 6n+2 layers on 32x32 input, 16/32/64 filters,
    identity shortcuts everywhere; where the shape changes the shortcut subsamples by 2 and pads
    the new channels with zeros (option A), so shortcuts add no parameters. The paper does not
    say on which side the zero channels go; we append them after the existing ones.
    ``plain20`` ... ``plain110``: the same stacks without shortcuts (Fig. 6, left).
"""

from __future__ import annotations

from typing import ClassVar

import torch
import torch.nn.functional as F
from torch import nn

from cnnlab.errors import ConfigError
from cnnlab.registry import register_model

PAPER = "He et al. 2015, Deep Residual Learning for Image Recognition"
PAPER_RESNEXT = "Xie et al. 2017, Aggregated Residual Transformations (ResNeXt)"
PAPER_WRN = "Zagoruyko & Komodakis 2016, Wide Residual Networks"

# Table 1: the four stages conv2_x .. conv5_x. Each stage's first block changes the resolution
# (except conv2_x, which follows the stem's max pool) and the width; "planes" is the width of the
# 3x3 convolutions, a bottleneck's output is `expansion` times wider.
IMAGENET_PLANES = (64, 128, 256, 512)
IMAGENET_STRIDES = (1, 2, 2, 2)
STEM_WIDTH = 64  # conv1: 7x7, 64, stride 2

# Section 4.2: three stages of 2n layers with 16, 32, 64 filters on 32x32, 16x16, 8x8 maps.
CIFAR_PLANES = (16, 32, 64)
CIFAR_STRIDES = (1, 2, 2)


def conv3x3(in_channels: int, out_channels: int, stride: int = 1, groups: int = 1) -> nn.Conv2d:
    """3x3 convolution with padding 1 and no bias (batch norm follows and has its own shift)."""
    return nn.Conv2d(
        in_channels, out_channels, 3, stride=stride, padding=1, groups=groups, bias=False
    )


def conv1x1(in_channels: int, out_channels: int, stride: int = 1) -> nn.Conv2d:
    """1x1 convolution without bias."""
    return nn.Conv2d(in_channels, out_channels, 1, stride=stride, bias=False)


class ZeroPadShortcut(nn.Module):
    """Option A shortcut (Section 3.3): subsample by ``stride`` and append zero channels.

    Parameter-free, so a ResNet has exactly the parameters of its plain twin.

    Shape:
        - Input: (N, C_in, H, W)
        - Output: (N, C_out, ceil(H / stride), ceil(W / stride))
    """

    def __init__(self, in_channels: int, out_channels: int, stride: int) -> None:
        super().__init__()
        if out_channels < in_channels:
            raise ConfigError(
                f"an option-A shortcut can only widen ({in_channels} -> {out_channels} channels): "
                "use a projection shortcut to narrow"
            )
        self.stride = stride
        self.extra_channels = out_channels - in_channels

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = x[:, :, :: self.stride, :: self.stride]
        # F.pad pads the last dimensions first: (W left, W right, H top, H bottom, C front, C back).
        return F.pad(x, (0, 0, 0, 0, 0, self.extra_channels))

    def extra_repr(self) -> str:
        return f"stride={self.stride}, extra_channels={self.extra_channels}"


class BasicBlock(nn.Module):
    """Two 3x3 convolutions and a shortcut (Fig. 2; the 18- and 34-layer nets and CIFAR nets).

    Args:
        in_channels: input channels.
        planes: width of both convolutions (= output channels, ``expansion`` is 1).
        stride: stride of the first convolution (2 where a stage halves the resolution).
        shortcut: module mapping the input to the output's shape where they differ (a 1x1
            projection or :class:`ZeroPadShortcut`); None means identity.
        residual: False builds the plain block (no addition at all, Fig. 6 left).

    Shape:
        - Input: (N, in_channels, H, W)
        - Output: (N, planes, ceil(H / stride), ceil(W / stride))
    """

    expansion: ClassVar[int] = 1

    def __init__(
        self,
        in_channels: int,
        planes: int,
        stride: int = 1,
        shortcut: nn.Module | None = None,
        residual: bool = True,
        groups: int = 1,
        width_per_group: int = 64,
        stride_in_1x1: bool = False,
    ) -> None:
        super().__init__()
        if groups != 1 or width_per_group != 64:
            raise ConfigError(
                "the basic block has no grouped or widened form: use block=Bottleneck for "
                "ResNeXt and Wide ResNet"
            )
        del stride_in_1x1  # only a bottleneck has a 1x1 to put the stride on
        self.conv1 = conv3x3(in_channels, planes, stride)
        self.bn1 = nn.BatchNorm2d(planes)
        self.relu = nn.ReLU(inplace=True)
        self.conv2 = conv3x3(planes, planes)
        self.bn2 = nn.BatchNorm2d(planes)
        # torchvision's name for the shortcut module; kept for state-dict compatibility.
        self.downsample = shortcut
        self.residual = residual

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = self.relu(self.bn1(self.conv1(x)))
        out = self.bn2(self.conv2(out))
        if self.residual:
            out = out + (x if self.downsample is None else self.downsample(x))
        return self.relu(out)


class Bottleneck(nn.Module):
    """1x1 reduce, 3x3, 1x1 expand (Fig. 5 right), grouped for ResNeXt (Fig. 3c there).

    Args:
        in_channels: input channels.
        planes: the stage's nominal width; the output has ``planes * expansion`` channels.
        stride: the block's downsampling stride.
        shortcut: projection for the input where shapes differ, or None for identity.
        residual: False drops the shortcut addition (a plain block).
        groups: ResNeXt cardinality C (number of groups of the 3x3 convolution).
        width_per_group: ResNeXt bottleneck width d per group at ``planes`` = 64; the inner
            width is ``int(planes * width_per_group / 64) * groups``. 64 with one group is the
            plain ResNet; 128 is torchvision's "wide" bottleneck.
        stride_in_1x1: True puts the stride on the first 1x1 (the paper, v1); False on the 3x3
            (torchvision, v1.5).

    Shape:
        - Input: (N, in_channels, H, W)
        - Output: (N, planes * 4, ceil(H / stride), ceil(W / stride))
    """

    expansion: ClassVar[int] = 4

    def __init__(
        self,
        in_channels: int,
        planes: int,
        stride: int = 1,
        shortcut: nn.Module | None = None,
        residual: bool = True,
        groups: int = 1,
        width_per_group: int = 64,
        stride_in_1x1: bool = False,
    ) -> None:
        super().__init__()
        width = int(planes * (width_per_group / 64.0)) * groups
        stride_1x1, stride_3x3 = (stride, 1) if stride_in_1x1 else (1, stride)
        self.conv1 = conv1x1(in_channels, width, stride_1x1)
        self.bn1 = nn.BatchNorm2d(width)
        self.conv2 = conv3x3(width, width, stride_3x3, groups)
        self.bn2 = nn.BatchNorm2d(width)
        self.conv3 = conv1x1(width, planes * self.expansion)
        self.bn3 = nn.BatchNorm2d(planes * self.expansion)
        self.relu = nn.ReLU(inplace=True)
        self.downsample = shortcut
        self.residual = residual

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = self.relu(self.bn1(self.conv1(x)))
        out = self.relu(self.bn2(self.conv2(out)))
        out = self.bn3(self.conv3(out))
        if self.residual:
            out = out + (x if self.downsample is None else self.downsample(x))
        return self.relu(out)


Block = type[BasicBlock] | type[Bottleneck]


def _init_weights(model: nn.Module, zero_init_residual: bool) -> None:
    # He et al. 2015 initialise "as in [13]" (He init); fan_out as torchvision does.
    for m in model.modules():
        if isinstance(m, nn.Conv2d):
            nn.init.kaiming_normal_(m.weight, mode="fan_out", nonlinearity="relu")
        elif isinstance(m, nn.BatchNorm2d):
            nn.init.ones_(m.weight)
            nn.init.zeros_(m.bias)
    if zero_init_residual:
        # Goyal et al. 2017: each residual branch starts as zero, so each block as identity.
        for m in model.modules():
            if isinstance(m, Bottleneck):
                nn.init.zeros_(m.bn3.weight)
            elif isinstance(m, BasicBlock):
                nn.init.zeros_(m.bn2.weight)


class ResNet(nn.Module):
    """The ImageNet ResNet of Table 1: 7x7 stem, max pool, four stages, global pool, FC.

    Args:
        block: :class:`BasicBlock` (18, 34 layers) or :class:`Bottleneck` (50 and deeper).
        layers: blocks per stage, conv2_x .. conv5_x (Table 1's "x N").
        num_classes: output classes.
        in_channels: input image channels (changes only ``conv1``).
        groups: ResNeXt cardinality.
        width_per_group: bottleneck width per group, see :class:`Bottleneck`.
        stride_in_1x1: the paper's v1 bottleneck (True) or torchvision's v1.5 (False).
        zero_init_residual: start every residual branch's last batch norm at zero.

    Shape:
        - Input: (N, in_channels, H, W), H and W at least 1 (224 in the paper)
        - Output: (N, num_classes)
    """

    def __init__(
        self,
        *,
        block: Block,
        layers: tuple[int, ...],
        num_classes: int = 1000,
        in_channels: int = 3,
        groups: int = 1,
        width_per_group: int = 64,
        stride_in_1x1: bool = False,
        zero_init_residual: bool = False,
    ) -> None:
        super().__init__()
        if len(layers) != len(IMAGENET_PLANES):
            raise ConfigError(
                f"layers={tuple(layers)} must give {len(IMAGENET_PLANES)} stage depths "
                "(conv2_x .. conv5_x), e.g. layers=(3, 4, 6, 3)"
            )
        self.conv1 = nn.Conv2d(in_channels, STEM_WIDTH, 7, stride=2, padding=3, bias=False)
        self.bn1 = nn.BatchNorm2d(STEM_WIDTH)
        self.relu = nn.ReLU(inplace=True)
        self.maxpool = nn.MaxPool2d(kernel_size=3, stride=2, padding=1)
        channels = STEM_WIDTH
        for index, (planes, stride, depth) in enumerate(
            zip(IMAGENET_PLANES, IMAGENET_STRIDES, layers, strict=True), start=1
        ):
            stage, channels = _stage(
                block,
                channels,
                planes,
                depth,
                stride,
                groups=groups,
                width_per_group=width_per_group,
                stride_in_1x1=stride_in_1x1,
            )
            self.add_module(f"layer{index}", stage)
        self.avgpool = nn.AdaptiveAvgPool2d((1, 1))
        self.fc = nn.Linear(channels, num_classes)
        _init_weights(self, zero_init_residual)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.maxpool(self.relu(self.bn1(self.conv1(x))))  # (N, 64, H/4, W/4)
        x = self.layer4(self.layer3(self.layer2(self.layer1(x))))  # (N, 512 * exp, H/32, W/32)
        return self.fc(torch.flatten(self.avgpool(x), 1))


def _stage(
    block: Block,
    in_channels: int,
    planes: int,
    depth: int,
    stride: int,
    *,
    option_a: bool = False,
    residual: bool = True,
    **block_kwargs: object,
) -> tuple[nn.Sequential, int]:
    """``depth`` blocks; the first adapts the stride and width. Returns (stage, out_channels)."""
    out_channels = planes * block.expansion
    shortcut: nn.Module | None = None
    if residual and (stride != 1 or in_channels != out_channels):
        if option_a:
            shortcut = ZeroPadShortcut(in_channels, out_channels, stride)
        else:  # option B: a strided 1x1 projection and batch norm
            shortcut = nn.Sequential(
                conv1x1(in_channels, out_channels, stride), nn.BatchNorm2d(out_channels)
            )
    blocks = [block(in_channels, planes, stride, shortcut, residual, **block_kwargs)]
    blocks += [
        block(out_channels, planes, 1, None, residual, **block_kwargs) for _ in range(depth - 1)
    ]
    return nn.Sequential(*blocks), out_channels


class CifarResNet(nn.Module):
    """The CIFAR-10 ResNet of Section 4.2 (or its plain twin): 6n+2 weighted layers.

    A 3x3 convolution with 16 filters, then three stages of n basic blocks (2n layers) with
    16, 32 and 64 filters on 32x32, 16x16 and 8x8 maps, global average pooling and a
    fully connected layer.

    Args:
        depth: 6n + 2 (20, 32, 44, 56, 110, ...).
        num_classes: output classes (10 for CIFAR-10).
        in_channels: input image channels (changes only ``conv1``).
        residual: True for the ResNet (option A shortcuts), False for the plain net.
        zero_init_residual: start every residual branch's last batch norm at zero.

    Shape:
        - Input: (N, in_channels, H, W), H and W at least 1 (32 in the paper)
        - Output: (N, num_classes)
    """

    def __init__(
        self,
        *,
        depth: int,
        num_classes: int = 10,
        in_channels: int = 3,
        residual: bool = True,
        zero_init_residual: bool = False,
    ) -> None:
        super().__init__()
        if depth < 8 or (depth - 2) % 6:
            raise ConfigError(
                f"CIFAR ResNet depth must be 6n+2 with n >= 1 (20, 32, 56...), not {depth}"
            )
        n = (depth - 2) // 6
        width = CIFAR_PLANES[0]
        self.conv1 = conv3x3(in_channels, width)
        self.bn1 = nn.BatchNorm2d(width)
        self.relu = nn.ReLU(inplace=True)
        for index, (planes, stride) in enumerate(zip(CIFAR_PLANES, CIFAR_STRIDES, strict=True), 1):
            stage, width = _stage(
                BasicBlock, width, planes, n, stride, option_a=True, residual=residual
            )
            self.add_module(f"layer{index}", stage)
        self.avgpool = nn.AdaptiveAvgPool2d((1, 1))
        self.fc = nn.Linear(width, num_classes)
        _init_weights(self, zero_init_residual and residual)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.relu(self.bn1(self.conv1(x)))  # (N, 16, H, W)
        x = self.layer3(self.layer2(self.layer1(x)))  # (N, 64, H/4, W/4)
        return self.fc(torch.flatten(self.avgpool(x), 1))


# --- ImageNet ResNets, identical to torchvision (v1.5) -------------------------------------------

# Any input of at least 1x1 goes through (derived by trying: at 0x0 the 7x7 stem no longer fits).
_IMAGENET = {"family": "resnet", "input_size": (3, 224, 224), "min_input_size": (1, 1)}


@register_model(**_IMAGENET, paper=PAPER, num_params=11_689_512, torchvision="resnet18")
def resnet18(*, num_classes: int = 1000, in_channels: int = 3, **kwargs: object) -> ResNet:
    """ResNet-18 (Table 1), torchvision's; basic blocks 2-2-2-2."""
    return ResNet(
        block=BasicBlock,
        layers=(2, 2, 2, 2),
        num_classes=num_classes,
        in_channels=in_channels,
        **kwargs,
    )


@register_model(**_IMAGENET, paper=PAPER, num_params=21_797_672, torchvision="resnet34")
def resnet34(*, num_classes: int = 1000, in_channels: int = 3, **kwargs: object) -> ResNet:
    """ResNet-34 (Table 1), torchvision's; basic blocks 3-4-6-3."""
    return ResNet(
        block=BasicBlock,
        layers=(3, 4, 6, 3),
        num_classes=num_classes,
        in_channels=in_channels,
        **kwargs,
    )


@register_model(**_IMAGENET, paper=PAPER, num_params=25_557_032, torchvision="resnet50")
def resnet50(*, num_classes: int = 1000, in_channels: int = 3, **kwargs: object) -> ResNet:
    """ResNet-50 (Table 1), torchvision's v1.5 (stride on the 3x3); bottlenecks 3-4-6-3."""
    return ResNet(
        block=Bottleneck,
        layers=(3, 4, 6, 3),
        num_classes=num_classes,
        in_channels=in_channels,
        **kwargs,
    )


@register_model(**_IMAGENET, paper=PAPER, num_params=44_549_160, torchvision="resnet101")
def resnet101(*, num_classes: int = 1000, in_channels: int = 3, **kwargs: object) -> ResNet:
    """ResNet-101 (Table 1), torchvision's v1.5; bottlenecks 3-4-23-3."""
    return ResNet(
        block=Bottleneck,
        layers=(3, 4, 23, 3),
        num_classes=num_classes,
        in_channels=in_channels,
        **kwargs,
    )


@register_model(**_IMAGENET, paper=PAPER, num_params=60_192_808, torchvision="resnet152")
def resnet152(*, num_classes: int = 1000, in_channels: int = 3, **kwargs: object) -> ResNet:
    """ResNet-152 (Table 1), torchvision's v1.5; bottlenecks 3-8-36-3."""
    return ResNet(
        block=Bottleneck,
        layers=(3, 8, 36, 3),
        num_classes=num_classes,
        in_channels=in_channels,
        **kwargs,
    )


# --- ResNeXt and torchvision's Wide ResNets: the same bottleneck, grouped or widened -------------


@register_model(
    **_IMAGENET, paper=PAPER_RESNEXT, num_params=25_028_904, torchvision="resnext50_32x4d"
)
def resnext50_32x4d(*, num_classes: int = 1000, in_channels: int = 3, **kwargs: object) -> ResNet:
    """ResNeXt-50 32x4d (Xie et al. Table 1), torchvision's; cardinality 32, width 4."""
    return ResNet(
        block=Bottleneck,
        layers=(3, 4, 6, 3),
        groups=32,
        width_per_group=4,
        num_classes=num_classes,
        in_channels=in_channels,
        **kwargs,
    )


@register_model(
    **_IMAGENET, paper=PAPER_RESNEXT, num_params=88_791_336, torchvision="resnext101_32x8d"
)
def resnext101_32x8d(*, num_classes: int = 1000, in_channels: int = 3, **kwargs: object) -> ResNet:
    """ResNeXt-101 32x8d, torchvision's; cardinality 32, width 8."""
    return ResNet(
        block=Bottleneck,
        layers=(3, 4, 23, 3),
        groups=32,
        width_per_group=8,
        num_classes=num_classes,
        in_channels=in_channels,
        **kwargs,
    )


@register_model(
    **_IMAGENET, paper=PAPER_RESNEXT, num_params=83_455_272, torchvision="resnext101_64x4d"
)
def resnext101_64x4d(*, num_classes: int = 1000, in_channels: int = 3, **kwargs: object) -> ResNet:
    """ResNeXt-101 64x4d, torchvision's; cardinality 64, width 4."""
    return ResNet(
        block=Bottleneck,
        layers=(3, 4, 23, 3),
        groups=64,
        width_per_group=4,
        num_classes=num_classes,
        in_channels=in_channels,
        **kwargs,
    )


@register_model(**_IMAGENET, paper=PAPER_WRN, num_params=68_883_240, torchvision="wide_resnet50_2")
def wide_resnet50_2(*, num_classes: int = 1000, in_channels: int = 3, **kwargs: object) -> ResNet:
    """Wide ResNet-50-2, torchvision's: ResNet-50 with bottlenecks twice as wide inside."""
    return ResNet(
        block=Bottleneck,
        layers=(3, 4, 6, 3),
        width_per_group=128,
        num_classes=num_classes,
        in_channels=in_channels,
        **kwargs,
    )


@register_model(
    **_IMAGENET, paper=PAPER_WRN, num_params=126_886_696, torchvision="wide_resnet101_2"
)
def wide_resnet101_2(*, num_classes: int = 1000, in_channels: int = 3, **kwargs: object) -> ResNet:
    """Wide ResNet-101-2, torchvision's: ResNet-101 with bottlenecks twice as wide inside."""
    return ResNet(
        block=Bottleneck,
        layers=(3, 4, 23, 3),
        width_per_group=128,
        num_classes=num_classes,
        in_channels=in_channels,
        **kwargs,
    )


# --- The paper's own bottleneck (v1): stride on the first 1x1 -------------------------------------


@register_model(**_IMAGENET, paper=PAPER, num_params=25_557_032)
def resnet50_paper(*, num_classes: int = 1000, in_channels: int = 3, **kwargs: object) -> ResNet:
    """ResNet-50 as in the paper (v1: the downsampling stride on the first 1x1)."""
    return ResNet(
        block=Bottleneck,
        layers=(3, 4, 6, 3),
        stride_in_1x1=True,
        num_classes=num_classes,
        in_channels=in_channels,
        **kwargs,
    )


@register_model(**_IMAGENET, paper=PAPER, num_params=44_549_160)
def resnet101_paper(*, num_classes: int = 1000, in_channels: int = 3, **kwargs: object) -> ResNet:
    """ResNet-101 as in the paper (v1: the downsampling stride on the first 1x1)."""
    return ResNet(
        block=Bottleneck,
        layers=(3, 4, 23, 3),
        stride_in_1x1=True,
        num_classes=num_classes,
        in_channels=in_channels,
        **kwargs,
    )


@register_model(**_IMAGENET, paper=PAPER, num_params=60_192_808)
def resnet152_paper(*, num_classes: int = 1000, in_channels: int = 3, **kwargs: object) -> ResNet:
    """ResNet-152 as in the paper (v1: the downsampling stride on the first 1x1)."""
    return ResNet(
        block=Bottleneck,
        layers=(3, 8, 36, 3),
        stride_in_1x1=True,
        num_classes=num_classes,
        in_channels=in_channels,
        **kwargs,
    )


# --- CIFAR-10 ResNets and plain nets (Section 4.2) ------------------------------------------------

# Any input of at least 1x1 goes through (derived by trying: at 0x0 the 3x3 stem no longer fits).
# A family of their own: Section 4.2 trains them with another recipe than the ImageNet nets
# (cnnlab.run.recipes.PAPER_RECIPES["resnet_cifar"]).
_CIFAR = {
    "family": "resnet_cifar",
    "paper": PAPER + ", Section 4.2",
    "input_size": (3, 32, 32),
    "min_input_size": (1, 1),
    "num_classes": 10,
}


@register_model(**_CIFAR, num_params=269_722)
def resnet20(*, num_classes: int = 10, in_channels: int = 3, **kwargs: object) -> CifarResNet:
    """ResNet-20 for CIFAR-10 (Section 4.2): n=3, option-A identity shortcuts."""
    return CifarResNet(
        depth=20, residual=True, num_classes=num_classes, in_channels=in_channels, **kwargs
    )


@register_model(**_CIFAR, num_params=464_154)
def resnet32(*, num_classes: int = 10, in_channels: int = 3, **kwargs: object) -> CifarResNet:
    """ResNet-32 for CIFAR-10 (Section 4.2): n=5, option-A identity shortcuts."""
    return CifarResNet(
        depth=32, residual=True, num_classes=num_classes, in_channels=in_channels, **kwargs
    )


@register_model(**_CIFAR, num_params=658_586)
def resnet44(*, num_classes: int = 10, in_channels: int = 3, **kwargs: object) -> CifarResNet:
    """ResNet-44 for CIFAR-10 (Section 4.2): n=7, option-A identity shortcuts."""
    return CifarResNet(
        depth=44, residual=True, num_classes=num_classes, in_channels=in_channels, **kwargs
    )


@register_model(**_CIFAR, num_params=853_018)
def resnet56(*, num_classes: int = 10, in_channels: int = 3, **kwargs: object) -> CifarResNet:
    """ResNet-56 for CIFAR-10 (Section 4.2): n=9, option-A identity shortcuts."""
    return CifarResNet(
        depth=56, residual=True, num_classes=num_classes, in_channels=in_channels, **kwargs
    )


@register_model(**_CIFAR, num_params=1_727_962)
def resnet110(*, num_classes: int = 10, in_channels: int = 3, **kwargs: object) -> CifarResNet:
    """ResNet-110 for CIFAR-10 (Section 4.2): n=18, option-A identity shortcuts."""
    return CifarResNet(
        depth=110, residual=True, num_classes=num_classes, in_channels=in_channels, **kwargs
    )


@register_model(**_CIFAR, num_params=269_722)
def plain20(*, num_classes: int = 10, in_channels: int = 3, **kwargs: object) -> CifarResNet:
    """Plain-20 for CIFAR-10 (Section 4.2): the ResNet-20 stack without shortcuts."""
    return CifarResNet(
        depth=20, residual=False, num_classes=num_classes, in_channels=in_channels, **kwargs
    )


@register_model(**_CIFAR, num_params=464_154)
def plain32(*, num_classes: int = 10, in_channels: int = 3, **kwargs: object) -> CifarResNet:
    """Plain-32 for CIFAR-10 (Section 4.2): the ResNet-32 stack without shortcuts."""
    return CifarResNet(
        depth=32, residual=False, num_classes=num_classes, in_channels=in_channels, **kwargs
    )


@register_model(**_CIFAR, num_params=658_586)
def plain44(*, num_classes: int = 10, in_channels: int = 3, **kwargs: object) -> CifarResNet:
    """Plain-44 for CIFAR-10 (Section 4.2): the ResNet-44 stack without shortcuts."""
    return CifarResNet(
        depth=44, residual=False, num_classes=num_classes, in_channels=in_channels, **kwargs
    )


@register_model(**_CIFAR, num_params=853_018)
def plain56(*, num_classes: int = 10, in_channels: int = 3, **kwargs: object) -> CifarResNet:
    """Plain-56 for CIFAR-10 (Section 4.2): the ResNet-56 stack without shortcuts."""
    return CifarResNet(
        depth=56, residual=False, num_classes=num_classes, in_channels=in_channels, **kwargs
    )


@register_model(**_CIFAR, num_params=1_727_962)
def plain110(*, num_classes: int = 10, in_channels: int = 3, **kwargs: object) -> CifarResNet:
    """Plain-110 for CIFAR-10 (Section 4.2): the ResNet-110 stack without shortcuts."""
    return CifarResNet(
        depth=110, residual=False, num_classes=num_classes, in_channels=in_channels, **kwargs
    )
