"""FastNet: the default model of ``cnnlab train``, sized to train on a 2-core CPU in a minute.

Design sources:
    Page (2018), "How to train your ResNet" (myrtle.ai blog series, the DAWNBench ResNet-9):
    a residual network of three stages, each a 3x3 convolution followed by max-pooling, with
    residual pairs of 3x3 convolutions at the pooled resolution, global max-pooling and one linear
    layer. Jordan (2024), "airbench": convolution *then* pooling *then* batch norm, so that batch
    norm and the activation run on a quarter of the pixels. Liu et al. (2022), "A ConvNet for
    the 2020s" (ConvNeXt), Sec. 2.2: a "patchify" stem, a strided convolution that downsamples
    at once, here overlapping (4x4 at stride 2).

Models:
    ``fastnet``: the network below at widths 24-48-96 for 1x28x28 Fashion-MNIST images.

    =====  ==========================================  ========  =========  =======
    stage  layers                                      output    MACs       params
    =====  ==========================================  ========  =========  =======
    1      conv4x4 stride 2 1->24, BN, ReLU            24x14x14     75,264      432
    2      conv3x3 24->48 at 14x14, maxpool, BN, ReLU  48x7x7    2,032,128   10,464
           residual pair: 2x (conv3x3 48->48, BN,      48x7x7    2,032,128   41,664
           ReLU), added to its input
    3      conv3x3 48->96 at 7x7, maxpool, BN, ReLU    96x3x3    2,032,128   41,664
           residual pair at 3x3, 96 wide               96x3x3    1,492,992  166,272
    head   global max-pool, linear 96->10              10              960      970
    total                                                        7,665,600  261,466
    =====  ==========================================  ========  =========  =======

    MACs are multiply-adds of convolutions and linear layers per 28x28 image (the zoo's
    convention, no bias/BN/pooling); parameters include batch-norm scales and shifts.
    ``cnnlab summary fastnet`` prints the per-layer table. The 7x7 -> 3x3 pooling drops the last
    row and column of stage 3's map (floor, as PyTorch does); keeping them (ceil mode) would make
    the last residual pair cost 16/9 as much (a cost choice; its accuracy effect was not measured).

Why this size: a training step costs about three forward passes, so 7.7 MMACs is ~46 MFLOP of
training work per image. The widths double as the resolution halves (the VGG rule), so the stages
cost about the same; pooling right after each convolution puts batch norm, ReLU and the residual
pairs on a quarter of the pixels. Measured figures (images/s, the share of a step in
convolutions, time to accuracy) are in docs/performance.md, with the commands that made them
(benchmarks/step_profile.py, benchmarks/time_to_accuracy.py).

Why the strided first stage: the earlier stage 1 (conv3x3 1->24 at 28x28, then max-pool) did 2%
of the multiply-adds but, with its 28x28 max-pool, the zero-fill of that pool's gradient and a
one-input-channel convolution, took about a quarter of a training step (benchmarks/
step_profile.py); the 4x4 stride-2 convolution makes the 14x14 map directly.

Deviations from ResNet-9, on purpose:
    * Three stages instead of four (28x28 input has room for three 2x reductions: 28, 14, 7, 3).
    * Stage 1 is one strided convolution (above) and has no residual pair: at 14x14 a pair
      would cost 4.1 MMACs more, half as much again as the whole network (a budget choice).
    * Widths 24-48-96 instead of 64-128-256-512 (budget above).
    * Max-pooling sits between the convolution and the batch norm (airbench order).
    * No output scaling (ResNet-9 multiplies the logits by 0.125); label smoothing in the fast
      recipe plays the same calming role.
"""

from __future__ import annotations

from torch import Tensor, nn

from cnnlab.registry import register_model

PAPER = "Page 2018, How to train your ResNet (DAWNBench ResNet-9); Jordan 2024, airbench"

# Widths of the three stages and whether each has a residual pair (module docstring).
FASTNET_WIDTHS = (24, 48, 96)
FASTNET_RESIDUAL = (False, True, True)


def conv_bn_relu(in_channels: int, out_channels: int) -> nn.Sequential:
    """3x3 convolution (padding 1, no bias: batch norm has one), batch norm, ReLU.

    Shape:
        - Input: ``(N, in_channels, H, W)``
        - Output: ``(N, out_channels, H, W)``
    """
    return nn.Sequential(
        nn.Conv2d(in_channels, out_channels, 3, padding=1, bias=False),
        nn.BatchNorm2d(out_channels),
        nn.ReLU(inplace=True),
    )


class Residual(nn.Module):
    """``x + f(x)`` with ``f`` two conv-BN-ReLU layers of the same width (ResNet-9's pair).

    Args:
        channels: width of the input, the output and both convolutions.

    Shape:
        - Input: ``(N, channels, H, W)``
        - Output: ``(N, channels, H, W)``
    """

    def __init__(self, channels: int) -> None:
        super().__init__()
        self.conv1 = conv_bn_relu(channels, channels)
        self.conv2 = conv_bn_relu(channels, channels)

    def forward(self, x: Tensor) -> Tensor:
        return x + self.conv2(self.conv1(x))


class Stage(nn.Sequential):
    """A 2x downsampling, batch norm, ReLU, then an optional residual pair.

    The downsampling is a 3x3 convolution and a 2x2 max-pool, or (``strided``) one 4x4
    convolution at stride 2, padding 1: the same output size without the full-resolution map,
    which for fastnet's first stage (one input channel) cost a quarter of the training step in
    memory-bound work for 2% of its multiply-adds (module docstring).

    Args:
        in_channels: input width.
        out_channels: width of the convolution and the stage's output.
        residual: append a :class:`Residual` pair at the pooled resolution.
        strided: downsample with the 4x4 stride-2 convolution instead of conv + max-pool.

    Shape:
        - Input: ``(N, in_channels, H, W)``
        - Output: ``(N, out_channels, H // 2, W // 2)``
    """

    def __init__(
        self, in_channels: int, out_channels: int, residual: bool, strided: bool = False
    ) -> None:
        layers: list[nn.Module] = (
            [nn.Conv2d(in_channels, out_channels, 4, stride=2, padding=1, bias=False)]
            if strided
            else [
                nn.Conv2d(in_channels, out_channels, 3, padding=1, bias=False),
                nn.MaxPool2d(2),
            ]
        )
        layers += [nn.BatchNorm2d(out_channels), nn.ReLU(inplace=True)]
        if residual:
            layers.append(Residual(out_channels))
        super().__init__(*layers)


class FastNet(nn.Module):
    """Stages of :class:`Stage` (the first one strided), global max-pool, one linear classifier.

    Args:
        widths: output width of each stage; each stage halves the resolution.
        residual: per stage, whether it has a residual pair.
        num_classes: outputs of the classifier.
        in_channels: input image channels.

    Shape:
        - Input: ``(N, in_channels, H, W)`` with ``H, W >= 2 ** len(widths)``
        - Output: ``(N, num_classes)``
    """

    def __init__(
        self,
        widths: tuple[int, ...] = FASTNET_WIDTHS,
        residual: tuple[bool, ...] = FASTNET_RESIDUAL,
        num_classes: int = 10,
        in_channels: int = 1,
    ) -> None:
        super().__init__()
        if len(widths) != len(residual):
            raise ValueError(f"one residual flag per stage: {len(widths)} widths, {residual}")
        ins = (in_channels, *widths[:-1])
        self.stages = nn.Sequential(
            *(
                Stage(i, o, r, strided=k == 0)
                for k, (i, o, r) in enumerate(zip(ins, widths, residual, strict=True))
            )
        )
        self.pool = nn.AdaptiveMaxPool2d(1)
        self.fc = nn.Linear(widths[-1], num_classes)

    def forward(self, x: Tensor) -> Tensor:
        x = self.stages(x)  # (N, widths[-1], H / 2^S, W / 2^S)
        return self.fc(self.pool(x).flatten(1))  # (N, num_classes)


@register_model(
    family="fastnet",
    paper=PAPER,
    input_size=(1, 28, 28),
    min_input_size=(8, 8),  # three 2x poolings: 8 -> 4 -> 2 -> 1
    num_params=261_466,
    num_classes=10,
)
def fastnet(*, num_classes: int = 10, in_channels: int = 1) -> FastNet:
    """Compact ResNet-9-style CNN (24-48-96, 7.7 MMACs at 28x28): cnnlab train's default."""
    return FastNet(FASTNET_WIDTHS, FASTNET_RESIDUAL, num_classes, in_channels)
