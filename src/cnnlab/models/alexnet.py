"""AlexNet and ZFNet: five convolutions, three overlapping max-pools, three fully connected layers.

Papers:
    Krizhevsky, Sutskever & Hinton (2012), "ImageNet Classification with Deep Convolutional
    Neural Networks", NIPS (Section 3 and Figure 2).
    Krizhevsky (2014), "One weird trick for parallelizing convolutional neural networks",
    arXiv:1404.5997 (the single-tower 64-192-384-256-256 net torchvision calls ``alexnet``).
    Zeiler & Fergus (2013), "Visualizing and Understanding Convolutional Networks",
    arXiv:1311.2901 (Figure 3 and Table 2).

Models:
    ``alexnet``: torchvision's ``alexnet``, identical module names and outputs. It is the
    "One weird trick" net, not the 2012 one: 64/192 filters in conv1/2, no LRN, one tower,
    padding 2 in conv1 so that 224x224 works, dropout *before* fc6 and fc7.
    ``alexnet_paper``: the 2012 net. 227x227x3 input (the paper says 224, but (224 - 11)/4 + 1
    is not an integer; 227 gives the 55x55 of Figure 2), 96-256-384-384-256 filters, LRN after
    the ReLUs of conv1 and conv2, overlapping 3x3/2 max-pools, conv2/4/5 split into two towers
    (``groups=2``: each half of the filters sees only the half of the maps on its own GPU),
    dropout 0.5 on the outputs of fc6 and fc7, N(0, 0.01) weights, biases 1 in conv2/4/5 and the
    hidden fully connected layers (Section 5).
    ``zfnet``: AlexNet refined by Zeiler & Fergus: conv1 7x7 stride 2 (instead of 11x11 stride
    4), conv2 stride 2, dense (single-tower) connections, LRN after pool1 and pool2.

Deviations, on purpose:
    * ``alexnet_paper`` and ``zfnet`` put an ``AdaptiveAvgPool2d((6, 6))`` before the classifier,
      as torchvision does. At the papers' input sizes it is an identity (the last pool already
      gives 6x6), so the default network and its parameter count are the papers'; it lets larger
      inputs run, and inputs down to the true minimum (67x67 for ``alexnet_paper``), below which
      the convolutions themselves no longer fit and the registry refuses the input.
    * ``zfnet`` uses conv3/4/5 widths 512/1024/512 as the lecture slides state. Those are the
      widths of the larger model in the paper's Table 2 ("layers 3,4,5: 512,1024,512 maps");
      the net drawn in Figure 3 has 384/384/256 (pass ``conv3_5_filters=(384, 384, 256)``).
      The paper does not give its contrast-normalisation constants; AlexNet's are used.
      Figure 3's 110 -> 55 -> 26 -> 13 -> 6 sizes need pools that keep a partial window at the
      border (cuda-convnet's behaviour), so ``zfnet`` pools with ``ceil_mode=True`` and conv1
      pads by 1.
    * The 2012 net has 1000 output units; ``num_classes`` and ``in_channels`` change only the
      first and last layers.
"""

from __future__ import annotations

from collections import OrderedDict
from dataclasses import dataclass

from torch import Tensor, nn

from cnnlab.errors import ConfigError
from cnnlab.models.layers import CrossChannelLRN
from cnnlab.registry import register_model


@dataclass(frozen=True)
class ConvLayer:
    """One row of an AlexNet-style layer table."""

    filters: int
    kernel: int
    stride: int = 1
    padding: int = 0
    towers: bool = False  # split across the two GPUs: a grouped convolution
    norm: bool = False  # local response normalisation follows this layer
    pool: bool = False  # an overlapping 3x3 stride-2 max-pool follows this layer


# Krizhevsky 2014 ("One weird trick"), as torchvision builds it.
ONE_WEIRD_TRICK = (
    ConvLayer(64, 11, stride=4, padding=2, pool=True),
    ConvLayer(192, 5, padding=2, pool=True),
    ConvLayer(384, 3, padding=1),
    ConvLayer(256, 3, padding=1),
    ConvLayer(256, 3, padding=1, pool=True),
)

# Krizhevsky et al. 2012, Section 3.5 and Figure 2.
KRIZHEVSKY_2012 = (
    ConvLayer(96, 11, stride=4, norm=True, pool=True),
    ConvLayer(256, 5, padding=2, towers=True, norm=True, pool=True),
    ConvLayer(384, 3, padding=1),  # "connected to all kernel maps in the second layer"
    ConvLayer(384, 3, padding=1, towers=True),
    ConvLayer(256, 3, padding=1, towers=True, pool=True),
)


def zeiler_fergus_2013(conv3_5_filters: tuple[int, int, int]) -> tuple[ConvLayer, ...]:
    """Zeiler & Fergus 2013, Figure 3, with conv3/4/5 widths as a parameter (their Table 2)."""
    f3, f4, f5 = conv3_5_filters
    return (
        ConvLayer(96, 7, stride=2, padding=1, norm=True, pool=True),
        ConvLayer(256, 5, stride=2, norm=True, pool=True),
        ConvLayer(f3, 3, padding=1),
        ConvLayer(f4, 3, padding=1),
        ConvLayer(f5, 3, padding=1, pool=True),
    )


POOL_KERNEL, POOL_STRIDE = 3, 2  # "overlapping pooling", s = 2 < z = 3 (Section 3.4)
POOLED_SIZE = 6  # the 6x6 maps that fc6 flattens (Figure 2)
FC_WIDTH = 4096  # fc6 and fc7
DROPOUT = 0.5  # Section 4.2


class AlexNet(nn.Module):
    """AlexNet-style network: ``features`` -> ``avgpool`` (to 6x6) -> ``classifier``.

    Args:
        table: the convolutional layers, one :class:`ConvLayer` per row.
        in_channels: input channels (3 for RGB).
        num_classes: output units.
        towers: how many groups the ``towers=True`` rows are split into (2 GPUs in 2012).
        dropout: drop probability in the classifier.
        named: name the layers ``conv1, relu1, ...`` (paper nets) instead of torchvision's
            ``0, 1, 2, ...`` (needed for torchvision's state-dict keys).
        norm_after_pool: ZFNet normalises after pooling; AlexNet 2012 before.
        ceil_mode: pools keep a partial window at the border (ZFNet's Figure 3 sizes).
        dropout_after_relu: the paper drops the *outputs* of fc6 and fc7; torchvision drops
            their inputs.

    Shape:
        - Input: ``(N, in_channels, H, W)``
        - Output: ``(N, num_classes)``
    """

    def __init__(
        self,
        table: tuple[ConvLayer, ...],
        *,
        in_channels: int,
        num_classes: int,
        towers: int = 1,
        dropout: float = DROPOUT,
        named: bool = True,
        norm_after_pool: bool = False,
        ceil_mode: bool = False,
        dropout_after_relu: bool = True,
    ) -> None:
        super().__init__()
        layers: list[tuple[str, nn.Module]] = []
        channels = in_channels
        for i, row in enumerate(table, start=1):
            layers.append(
                (
                    f"conv{i}",
                    nn.Conv2d(
                        channels,
                        row.filters,
                        row.kernel,
                        stride=row.stride,
                        padding=row.padding,
                        groups=towers if row.towers else 1,
                    ),
                )
            )
            layers.append((f"relu{i}", nn.ReLU(inplace=True)))
            norm = [(f"norm{i}", CrossChannelLRN())] if row.norm else []
            pool = (
                [(f"pool{i}", nn.MaxPool2d(POOL_KERNEL, POOL_STRIDE, ceil_mode=ceil_mode))]
                if row.pool
                else []
            )
            layers += pool + norm if norm_after_pool else norm + pool
            channels = row.filters

        flat = channels * POOLED_SIZE * POOLED_SIZE
        if dropout_after_relu:  # Krizhevsky 2012: dropout on the hidden units of fc6 and fc7
            head = [
                ("fc6", nn.Linear(flat, FC_WIDTH)),
                ("relu6", nn.ReLU(inplace=True)),
                ("drop6", nn.Dropout(dropout)),
                ("fc7", nn.Linear(FC_WIDTH, FC_WIDTH)),
                ("relu7", nn.ReLU(inplace=True)),
                ("drop7", nn.Dropout(dropout)),
                ("fc8", nn.Linear(FC_WIDTH, num_classes)),
            ]
        else:  # torchvision: dropout on the inputs of fc6 and fc7
            head = [
                ("drop6", nn.Dropout(dropout)),
                ("fc6", nn.Linear(flat, FC_WIDTH)),
                ("relu6", nn.ReLU(inplace=True)),
                ("drop7", nn.Dropout(dropout)),
                ("fc7", nn.Linear(FC_WIDTH, FC_WIDTH)),
                ("relu7", nn.ReLU(inplace=True)),
                ("fc8", nn.Linear(FC_WIDTH, num_classes)),
            ]
        if named:
            self.features = nn.Sequential(OrderedDict(layers))
            self.classifier = nn.Sequential(OrderedDict(head))
        else:
            self.features = nn.Sequential(*(m for _, m in layers))
            self.classifier = nn.Sequential(*(m for _, m in head))
        self.avgpool = nn.AdaptiveAvgPool2d((POOLED_SIZE, POOLED_SIZE))

    def forward(self, x: Tensor) -> Tensor:
        x = self.features(x)  # (N, C5, 6, 6) at the papers' input sizes
        x = self.avgpool(x)  # identity there; (N, C5, 6, 6) for any larger input
        return self.classifier(x.flatten(1))  # (N, C5 * 36) -> (N, num_classes)


def _init_gaussian(model: AlexNet, std: float, bias_one: tuple[str, ...]) -> None:
    """Weights from N(0, std^2); biases 1 in the named layers, 0 elsewhere (Section 5)."""
    for name, module in [*model.features.named_children(), *model.classifier.named_children()]:
        if isinstance(module, nn.Conv2d | nn.Linear):
            nn.init.normal_(module.weight, mean=0.0, std=std)
            nn.init.constant_(module.bias, 1.0 if name in bias_one else 0.0)


@register_model(
    family="alexnet",
    paper="Krizhevsky 2014 (One weird trick), as torchvision",
    input_size=(3, 224, 224),
    min_input_size=(63, 63),
    num_params=61_100_840,
    torchvision="alexnet",
)
def alexnet(*, num_classes: int, in_channels: int, dropout: float = DROPOUT) -> nn.Module:
    """AlexNet as torchvision builds it: one tower, 64-192-384-256-256 filters, no LRN."""
    return AlexNet(
        ONE_WEIRD_TRICK,
        in_channels=in_channels,
        num_classes=num_classes,
        dropout=dropout,
        named=False,
        dropout_after_relu=False,
    )


@register_model(
    family="alexnet",
    paper="Krizhevsky et al. 2012",
    input_size=(3, 227, 227),
    min_input_size=(67, 67),
    num_params=60_965_224,
)
def alexnet_paper(
    *, num_classes: int, in_channels: int, towers: int = 2, dropout: float = DROPOUT
) -> nn.Module:
    """AlexNet of the 2012 paper: 96-256-384-384-256 filters, LRN, two grouped towers."""
    widths = [in_channels] + [row.filters for row in KRIZHEVSKY_2012]
    if towers < 1 or any(w % towers for w in widths[1:]):
        raise ConfigError(
            f"alexnet_paper: towers={towers} does not divide the layer widths {widths[1:]}: "
            "use towers=2 (the paper) or towers=1 (one GPU)"
        )
    model = AlexNet(
        KRIZHEVSKY_2012,
        in_channels=in_channels,
        num_classes=num_classes,
        towers=towers,
        dropout=dropout,
    )
    # Section 5: N(0, 0.01) weights; biases 1 in conv2, conv4, conv5 and fc6, fc7 "to accelerate
    # the early stages of learning by providing the ReLUs with positive inputs".
    _init_gaussian(model, std=0.01, bias_one=("conv2", "conv4", "conv5", "fc6", "fc7"))
    return model


@register_model(
    family="alexnet",
    paper="Zeiler & Fergus 2013",
    input_size=(3, 224, 224),
    min_input_size=(47, 47),
    num_params=107_627_624,
)
def zfnet(
    *,
    num_classes: int,
    in_channels: int,
    conv3_5_filters: tuple[int, int, int] = (512, 1024, 512),
    dropout: float = DROPOUT,
) -> nn.Module:
    """ZFNet: AlexNet with a 7x7/2 conv1, conv2 at stride 2, conv3-5 at 512/1024/512, one tower."""
    widths = tuple(conv3_5_filters)
    if len(widths) != 3 or not all(isinstance(w, int) and w > 0 for w in widths):
        raise ConfigError(
            f"zfnet: conv3_5_filters={conv3_5_filters!r} is not three positive widths: use "
            "(512, 1024, 512) as the slides (the default) or (384, 384, 256) as the paper's Fig. 3"
        )
    model = AlexNet(
        zeiler_fergus_2013(widths),
        in_channels=in_channels,
        num_classes=num_classes,
        dropout=dropout,
        norm_after_pool=True,
        ceil_mode=True,
    )
    # Section 3: "All weights are initialized to 10^-2 and biases are set to 0", read as
    # N(0, 0.01^2) like AlexNet's (a constant 0.01 would make every filter identical).
    _init_gaussian(model, std=0.01, bias_one=())
    return model
