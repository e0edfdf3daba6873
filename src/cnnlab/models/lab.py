"""Experiment networks: small nets that differ in exactly one design choice.

The experiments of :mod:`cnnlab.experiments` train these on 28x28 Fashion-MNIST to test a
lecture claim with everything else held fixed.

Papers:
    Simonyan & Zisserman (2014), "Very Deep Convolutional Networks for Large-Scale Image
    Recognition", Sec. 2.3: "a stack of three 3x3 conv. layers (without spatial pooling in
    between) has an effective receptive field of 7x7", with 3(3^2 C^2) = 27C^2 weights against
    7^2 C^2 = 49C^2, and three non-linearities instead of one.
    He, Zhang, Ren, Sun (2015), "Deep Residual Learning for Image Recognition", Sec. 4.1 and
    Fig. 5: the bottleneck block (1x1 reduce, 3x3, 1x1 restore) against two 3x3 convolutions.

Models (default input 1x28x28, 10 classes):
    ``kernel7x7``, ``kernel3x3x3``, ``kernel5x5``, ``kernel3x3x2``: a 3x3 stem (1 -> 32, batch
    norm, ReLU) at 28x28 and a 2x2 max pool, then the *kernel stack* at 14x14, a 2x2 max pool,
    the same stack again at 7x7, global average pooling and a linear layer. Every convolution of
    a stack is ``C -> C`` (C = 32, no bias) with "same" padding, batch norm and ReLU, so the nets
    differ only in the stacks (:data:`KERNEL_STACKS`): equal width, equal spatial sizes, and
    receptive fields that the analyzer shows to be equal.
    ``blocks_basic``, ``blocks_bottleneck``: a 3x3 stem (1 -> 64) at 28x28 and a 2x2 max pool,
    two residual blocks at 14x14, a 2x2 max pool, two more at 7x7, global average pooling and a
    linear layer. Every block maps 64 channels to 64 with an identity shortcut; the basic block
    is two 3x3 convolutions 64 wide, the bottleneck 1x1 64 -> 16, 3x3 16, 1x1 16 -> 64 (the
    paper's 4x reduction). The blocks are :mod:`cnnlab.models.resnet`'s own.

Deviations, on purpose:
    * Batch norm after every convolution (VGG had none, Ioffe & Szegedy 2015 came later): it
      lets a few epochs train every variant with one recipe. It adds 2C parameters per
      convolution, so the 3x3 stacks carry 4C (two layers) or 6C (three) beside the 1-layer
      stacks' 2C; the convolution weights alone are exactly 27C^2 against 49C^2.
    * Convolutions have no bias (batch norm's shift replaces it), which makes the weight counts
      the paper's formulas exactly.
"""

from __future__ import annotations

from torch import Tensor, nn

from cnnlab.models.resnet import BasicBlock, Bottleneck
from cnnlab.registry import register_model

PAPER_VGG = "Simonyan & Zisserman 2014, Very Deep Convolutional Networks, Sec. 2.3"
PAPER_RESNET = "He et al. 2015, Deep Residual Learning, Sec. 4.1 and Fig. 5"

# Kernel sizes of each stack, first to last; the pairs compared share the receptive field
# (7 = 1 + 3 * (3 - 1), 5 = 1 + 2 * (3 - 1)).
KERNEL_STACKS: dict[str, tuple[int, ...]] = {
    "kernel7x7": (7,),
    "kernel3x3x3": (3, 3, 3),
    "kernel5x5": (5,),
    "kernel3x3x2": (3, 3),
}
STACK_WIDTH = 32  # C: the width of every stack convolution
STEM_KERNEL = 3

BLOCK_WIDTH = 64  # input and output width of every residual block
BOTTLENECK_REDUCTION = 4  # He et al. Fig. 5: 256-d -> 64-d inside the bottleneck
BLOCKS_PER_STAGE = 2

_LAB = {
    "family": "lab",
    "input_size": (1, 28, 28),
    # Two 2x2 max pools: at 3x3 the second pool gets a 1x1 map and fails (derived by trying).
    "min_input_size": (4, 4),
    "num_classes": 10,
}


def conv_bn_relu(in_channels: int, out_channels: int, kernel: int) -> nn.Sequential:
    """KxK convolution with "same" padding (K // 2, K odd) and no bias, batch norm, ReLU.

    Shape:
        - Input: ``(N, in_channels, H, W)``
        - Output: ``(N, out_channels, H, W)``
    """
    return nn.Sequential(
        nn.Conv2d(in_channels, out_channels, kernel, padding=kernel // 2, bias=False),
        nn.BatchNorm2d(out_channels),
        nn.ReLU(inplace=True),
    )


def kernel_stack(channels: int, kernels: tuple[int, ...]) -> nn.Sequential:
    """Convolutions of the given kernel sizes, each ``channels -> channels`` with BN and ReLU.

    The receptive field of the stack is ``1 + sum(k - 1)`` (stride 1), so (7,) and (3, 3, 3)
    see the same 7x7 window (Simonyan & Zisserman Sec. 2.3).

    Shape:
        - Input: ``(N, channels, H, W)``
        - Output: ``(N, channels, H, W)``
    """
    return nn.Sequential(*(conv_bn_relu(channels, channels, k) for k in kernels))


class StemPoolNet(nn.Module):
    """Stem, pool, stage 1, pool, stage 2, global average pool, linear: the lab nets' frame.

    Args:
        stem: convolution from the image to ``width`` channels, at full resolution.
        stage1: ``width -> width`` module at half resolution.
        stage2: ``width -> width`` module at quarter resolution.
        width: channels of both stages.
        num_classes: output classes.

    Shape:
        - Input: ``(N, C, H, W)`` with H, W at least 4
        - Output: ``(N, num_classes)``
    """

    def __init__(
        self, stem: nn.Module, stage1: nn.Module, stage2: nn.Module, width: int, num_classes: int
    ) -> None:
        super().__init__()
        self.stem = stem
        self.pool1 = nn.MaxPool2d(2)
        self.stage1 = stage1
        self.pool2 = nn.MaxPool2d(2)
        self.stage2 = stage2
        self.avgpool = nn.AdaptiveAvgPool2d(1)
        self.fc = nn.Linear(width, num_classes)
        for m in self.modules():
            if isinstance(m, nn.Conv2d):  # He init, as cnnlab's ResNets
                nn.init.kaiming_normal_(m.weight, mode="fan_out", nonlinearity="relu")

    def forward(self, x: Tensor) -> Tensor:
        x = self.stage1(self.pool1(self.stem(x)))  # (N, width, H/2, W/2)
        x = self.stage2(self.pool2(x))  # (N, width, H/4, W/4)
        return self.fc(self.avgpool(x).flatten(1))


def _kernel_net(name: str, num_classes: int, in_channels: int) -> StemPoolNet:
    kernels = KERNEL_STACKS[name]
    return StemPoolNet(
        conv_bn_relu(in_channels, STACK_WIDTH, STEM_KERNEL),
        kernel_stack(STACK_WIDTH, kernels),
        kernel_stack(STACK_WIDTH, kernels),
        STACK_WIDTH,
        num_classes,
    )


def block_stage(block: type[BasicBlock] | type[Bottleneck]) -> nn.Sequential:
    """:data:`BLOCKS_PER_STAGE` residual blocks, each ``BLOCK_WIDTH -> BLOCK_WIDTH``.

    Shape:
        - Input: ``(N, BLOCK_WIDTH, H, W)``
        - Output: ``(N, BLOCK_WIDTH, H, W)``
    """
    planes = BLOCK_WIDTH // block.expansion  # 64 for the basic block, 16 inside a bottleneck
    return nn.Sequential(*(block(BLOCK_WIDTH, planes) for _ in range(BLOCKS_PER_STAGE)))


def _block_net(block: type[BasicBlock] | type[Bottleneck], num_classes: int, in_channels: int):
    return StemPoolNet(
        conv_bn_relu(in_channels, BLOCK_WIDTH, STEM_KERNEL),
        block_stage(block),
        block_stage(block),
        BLOCK_WIDTH,
        num_classes,
    )


@register_model(**_LAB, paper=PAPER_VGG, num_params=101_162)
def kernel7x7(*, num_classes: int = 10, in_channels: int = 1) -> StemPoolNet:
    """Lab net: one 7x7 convolution per stage (32 wide), against kernel3x3x3."""
    return _kernel_net("kernel7x7", num_classes, in_channels)


@register_model(**_LAB, paper=PAPER_VGG, num_params=56_362)
def kernel3x3x3(*, num_classes: int = 10, in_channels: int = 1) -> StemPoolNet:
    """Lab net: three stacked 3x3 convolutions per stage (32 wide), the 7x7's receptive field."""
    return _kernel_net("kernel3x3x3", num_classes, in_channels)


@register_model(**_LAB, paper=PAPER_VGG, num_params=52_010)
def kernel5x5(*, num_classes: int = 10, in_channels: int = 1) -> StemPoolNet:
    """Lab net: one 5x5 convolution per stage (32 wide), against kernel3x3x2."""
    return _kernel_net("kernel5x5", num_classes, in_channels)


@register_model(**_LAB, paper=PAPER_VGG, num_params=37_802)
def kernel3x3x2(*, num_classes: int = 10, in_channels: int = 1) -> StemPoolNet:
    """Lab net: two stacked 3x3 convolutions per stage (32 wide), the 5x5's receptive field."""
    return _kernel_net("kernel3x3x2", num_classes, in_channels)


@register_model(**_LAB, paper=PAPER_RESNET, num_params=297_290)
def blocks_basic(*, num_classes: int = 10, in_channels: int = 1) -> StemPoolNet:
    """Lab net: four basic residual blocks (two 3x3, 64 wide), against blocks_bottleneck."""
    return _block_net(BasicBlock, num_classes, in_channels)


@register_model(**_LAB, paper=PAPER_RESNET, num_params=19_530)
def blocks_bottleneck(*, num_classes: int = 10, in_channels: int = 1) -> StemPoolNet:
    """Lab net: four bottleneck blocks (1x1 64->16, 3x3 16, 1x1 16->64), against blocks_basic."""
    return _block_net(Bottleneck, num_classes, in_channels)
