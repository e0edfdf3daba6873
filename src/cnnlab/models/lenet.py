"""LeNet-5: the 1998 network, faithfully, and the modern version everyone trains.

Paper:
    LeCun, Bottou, Bengio & Haffner (1998), "Gradient-Based Learning Applied to Document
    Recognition", Proc. IEEE 86(11). Section II.B describes the layers, Table I the C3 connection
    scheme, Appendix A the squashing function and the initialisation, Section II.C the loss.

Models:
    ``lenet5_paper``: the network of Section II.B on 32x32 input. C1 6@28x28 (5x5), S2 6@14x14,
    C3 16@10x10 with the partial connections of Table I (60 of the 96 map pairs), S4 16@5x5,
    C5 120 (5x5, i.e. 1x1 maps), F6 84, then 10 Euclidean RBF units. Every layer up to F6 is
    followed by the scaled tanh ``f(a) = 1.7159 tanh(2a/3)``. S2 and S4 are *trainable*
    subsampling: the four inputs of a unit are added, multiplied by a trainable coefficient and
    offset by a trainable bias (one of each per map). 60,840 parameters.
    ``lenet5``: the version of the lectures and of most code today: ReLU, 2x2 max-pool, all
    C3 connections, plain linear output. Its conv1 pads 28x28 images by 2, which gives
    exactly the paper's 32x32 geometry (the paper itself padded the MNIST digits to 32x32).
    Its ``dropout`` setting (0 by default, as in the paper) puts dropout after the two hidden
    fully connected layers, where AlexNet and VGG put their 0.5 (the ``dropout`` experiment).
    ``lenet5_bn``: ``lenet5`` with batch norm (Ioffe & Szegedy 2015) after every convolution and
    hidden fully connected layer, before the nonlinearity, where d2l's LeNet with batch norm
    (Dive into Deep Learning, Sec. 8.5) puts it; d2l keeps sigmoids and average pooling, this
    keeps ``lenet5``'s ReLU and max-pool so the two differ only in batch norm.

Deviations of ``lenet5_paper``, on purpose:
    * Output: the RBF unit ``i`` computes ``y_i = sum_j (x_j - w_ij)^2`` (equation 7); the model
      returns ``-y_i`` as its logits, so that the largest logit is the nearest prototype and
      cross-entropy on these logits is the paper's discriminative criterion (equation 9) without
      its constant "rubbish class" term ``e^-j``.
    * The RBF prototypes were "chosen by hand and kept fixed (at least initially)" as 7x12 bitmaps
      of the digits. Those bitmaps are not published as data, so the prototypes here are random
      +-1 vectors (the same values the bitmaps take), and they are trainable parameters.
    * Initialisation follows Appendix A (uniform in ``+-2.4 / fan-in``) for weights and
      subsampling coefficients; the paper says nothing about biases, which start at 0.
"""

from __future__ import annotations

from collections import OrderedDict

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from cnnlab.registry import register_model

# LeCun et al. 1998, Table I: which S2 maps (rows) feed which C3 maps (columns). 60 X's.
# fmt: off
TABLE_I = (
    # C3 map: 0123456789012345
    "X...XXX..XXXX.XX",  # S2 map 0
    "XX...XXX..XXXX.X",  # S2 map 1
    "XXX...XXX..X.XXX",  # S2 map 2
    ".XXX..XXXX..X.XX",  # S2 map 3
    "..XXX..XXXX.XX.X",  # S2 map 4
    "...XXX..XXXX.XXX",  # S2 map 5
)
# fmt: on

# Appendix A: f(a) = A tanh(S a) with A = 1.7159 and S = 2/3, so that f(1) = 1 and f(-1) = -1.
SQUASH_AMPLITUDE = 1.7159
SQUASH_SLOPE = 2.0 / 3.0
INIT_SCALE = 2.4  # Appendix A: weights uniform in (-2.4 / F_i, 2.4 / F_i), F_i the fan-in


class ScaledTanh(nn.Module):
    """The paper's squashing function ``f(a) = A tanh(S a)`` (Appendix A).

    Args:
        amplitude: ``A``, the asymptotes are +-A.
        slope: ``S``, the slope at the origin is ``A * S``.

    Shape:
        - Input: any
        - Output: same as the input
    """

    def __init__(self, amplitude: float = SQUASH_AMPLITUDE, slope: float = SQUASH_SLOPE) -> None:
        super().__init__()
        self.amplitude = amplitude
        self.slope = slope

    def forward(self, x: Tensor) -> Tensor:
        return self.amplitude * torch.tanh(self.slope * x)

    def extra_repr(self) -> str:
        return f"amplitude={self.amplitude}, slope={self.slope:.4f}"


class Subsampling(nn.Module):
    """LeNet's trainable subsampling (layers S2 and S4).

    "The four inputs to a unit in S2 are added, then multiplied by a trainable coefficient, and
    added to a trainable bias" (Section II.B). One coefficient and one bias per map, so
    ``2 * channels`` parameters. The squashing function is a separate module that follows.

    Args:
        channels: number of feature maps.

    Shape:
        - Input: ``(N, channels, H, W)``
        - Output: ``(N, channels, H // 2, W // 2)``
    """

    def __init__(self, channels: int) -> None:
        super().__init__()
        self.coefficient = nn.Parameter(torch.ones(channels))
        self.bias = nn.Parameter(torch.zeros(channels))

    def forward(self, x: Tensor) -> Tensor:
        window_sum = 4.0 * F.avg_pool2d(x, kernel_size=2, stride=2)  # sum of each 2x2 window
        return window_sum * self.coefficient.view(1, -1, 1, 1) + self.bias.view(1, -1, 1, 1)


class PartialConv2d(nn.Module):
    """A convolution in which each output map sees only some input maps (LeNet's C3).

    The connection table is data (rows: input maps, columns: output maps, ``"X"`` = connected).
    Only the real connections are parameters: ``weight`` is ``(connections, k, k)``, 1,516
    parameters with the biases for Table I rather than 2,416 for a full 6-to-16 convolution.
    The forward pass scatters them into a dense ``(out, in, k, k)`` kernel that is zero where the
    table has no connection and runs one ordinary convolution. That computes 96 map pairs instead
    of 60, but one dense convolution is about three times faster on a CPU than the alternative
    with exact work (one grouped convolution per fan-in over gathered maps; measured on the
    whole LeNet-5 training step), and the zeros receive no gradient.

    Args:
        table: connection table, one string per input map, one character per output map.
        kernel_size: side of the square kernels.

    Shape:
        - Input: ``(N, len(table), H, W)``
        - Output: ``(N, len(table[0]), H - kernel_size + 1, W - kernel_size + 1)``
    """

    def __init__(self, table: tuple[str, ...], kernel_size: int) -> None:
        super().__init__()
        self.table = table
        self.in_channels, self.out_channels = len(table), len(table[0])
        self.kernel_size = (kernel_size, kernel_size)
        # Connections ordered by output map, then input map: (out_map, in_map) per weight slice.
        pairs = [
            (o, i)
            for o in range(self.out_channels)
            for i in range(self.in_channels)
            if table[i][o] == "X"
        ]
        self.connections = tuple(pairs)
        self.num_connections = len(pairs)
        self.register_buffer("out_index", torch.tensor([o for o, _ in pairs]), persistent=False)
        self.register_buffer("in_index", torch.tensor([i for _, i in pairs]), persistent=False)
        self.weight = nn.Parameter(torch.empty(self.num_connections, kernel_size, kernel_size))
        self.bias = nn.Parameter(torch.zeros(self.out_channels))
        nn.init.uniform_(self.weight, -0.1, 0.1)  # LeNet5Paper re-initialises per Appendix A

    def fan_in(self) -> Tensor:
        """Inputs of one unit of each connection's output map: ``(connections,)``."""
        area = self.kernel_size[0] * self.kernel_size[1]
        maps_in = [sum(row[o] == "X" for row in self.table) for o, _ in self.connections]
        return self.weight.new_tensor([m * area for m in maps_in])

    def dense_weight(self) -> Tensor:
        """The equivalent full ``(out, in, k, k)`` kernel, zero where the table has no X."""
        dense = self.weight.new_zeros(self.out_channels, self.in_channels, *self.kernel_size)
        return dense.index_put((self.out_index, self.in_index), self.weight)

    def forward(self, x: Tensor) -> Tensor:
        return F.conv2d(x, self.dense_weight(), self.bias)  # (N, out, H - k + 1, W - k + 1)

    def extra_repr(self) -> str:
        return (
            f"{self.in_channels}, {self.out_channels}, kernel_size={self.kernel_size}, "
            f"connections={self.num_connections} of {self.in_channels * self.out_channels}"
        )


class EuclideanRBF(nn.Module):
    """Output layer of Euclidean radial basis function units (equation 7), as logits.

    Unit ``i`` has a prototype ``w_i`` and computes ``y_i = ||x - w_i||^2``; the layer returns
    ``-y_i`` so that a larger value means a better match (see the module docstring).

    Args:
        in_features: length of the prototypes (84 for F6).
        num_classes: number of units, one prototype each; no bias.

    Shape:
        - Input: ``(N, in_features)``
        - Output: ``(N, num_classes)``
    """

    def __init__(self, in_features: int, num_classes: int) -> None:
        super().__init__()
        self.weight = nn.Parameter(torch.empty(num_classes, in_features))
        with torch.no_grad():  # +-1 prototypes, the values of the paper's bitmaps
            self.weight.uniform_(-1.0, 1.0).sign_()

    def forward(self, x: Tensor) -> Tensor:
        # ||x - w||^2 = ||x||^2 - 2 x.w + ||w||^2: a matrix product, no (N, C, F) tensor.
        squared = (
            x.pow(2).sum(1, keepdim=True) - 2.0 * x @ self.weight.t() + self.weight.pow(2).sum(1)
        )
        return -squared.clamp_min(0.0)  # clamp: rounding can make a zero distance slightly < 0


class LeNet5Paper(nn.Module):
    """LeNet-5 as LeCun et al. (1998) describe it (Section II.B).

    Args:
        in_channels: input channels (1 for the paper's grayscale digits).
        num_classes: RBF output units.

    Shape:
        - Input: ``(N, in_channels, 32, 32)``
        - Output: ``(N, num_classes)``, negative squared distances to the class prototypes
    """

    C1, C3, C5, F6 = 6, 16, 120, 84  # feature maps / units per layer (Section II.B)
    KERNEL = 5

    def __init__(self, *, in_channels: int, num_classes: int) -> None:
        super().__init__()
        k = self.KERNEL
        self.features = nn.Sequential(
            OrderedDict(
                c1=nn.Conv2d(in_channels, self.C1, k),  # (N, 6, 28, 28)
                squash1=ScaledTanh(),
                s2=Subsampling(self.C1),  # (N, 6, 14, 14)
                squash2=ScaledTanh(),
                c3=PartialConv2d(TABLE_I, k),  # (N, 16, 10, 10)
                squash3=ScaledTanh(),
                s4=Subsampling(self.C3),  # (N, 16, 5, 5)
                squash4=ScaledTanh(),
                c5=nn.Conv2d(self.C3, self.C5, k),  # (N, 120, 1, 1)
                squash5=ScaledTanh(),
            )
        )
        self.classifier = nn.Sequential(
            OrderedDict(
                f6=nn.Linear(self.C5, self.F6),
                squash6=ScaledTanh(),
                output=EuclideanRBF(self.F6, num_classes),
            )
        )
        self._init_appendix_a()

    def _init_appendix_a(self) -> None:
        """Uniform in +-2.4 / fan-in (Appendix A); biases 0."""
        with torch.no_grad():
            for module in self.modules():
                if isinstance(module, nn.Conv2d | nn.Linear):
                    bound = INIT_SCALE / module.weight[0].numel()  # fan-in: inputs of one unit
                    module.weight.uniform_(-bound, bound)
                    module.bias.zero_()
                elif isinstance(module, PartialConv2d):  # fan-in differs between C3 maps
                    bound = (INIT_SCALE / module.fan_in()).view(-1, 1, 1)
                    module.weight.uniform_(-1.0, 1.0).mul_(bound)
                    module.bias.zero_()
                elif isinstance(module, Subsampling):
                    bound = INIT_SCALE / 4  # a subsampling unit has four inputs
                    module.coefficient.uniform_(-bound, bound)
                    module.bias.zero_()

    def forward(self, x: Tensor) -> Tensor:
        x = self.features(x)  # (N, 120, 1, 1)
        return self.classifier(x.flatten(1))  # (N, 120) -> (N, num_classes)


class LeNet5(nn.Module):
    """LeNet-5 as it is taught and trained today: ReLU, max-pool, full C3, linear output.

    Args:
        in_channels: input channels.
        num_classes: output units.
        batch_norm: batch norm after each convolution and hidden linear layer, before the ReLU
            (d2l Sec. 8.5's placement).
        dropout: drop probability after each hidden linear layer's ReLU (AlexNet's and VGG's
            place); 0 adds no dropout layer at all.

    Shape:
        - Input: ``(N, in_channels, 28, 28)`` (padded by conv1 to the paper's 32x32 geometry)
        - Output: ``(N, num_classes)``
    """

    def __init__(
        self, *, in_channels: int, num_classes: int, batch_norm: bool = False, dropout: float = 0.0
    ) -> None:
        super().__init__()
        c1, c3, c5, f6 = LeNet5Paper.C1, LeNet5Paper.C3, LeNet5Paper.C5, LeNet5Paper.F6
        k = LeNet5Paper.KERNEL

        def norm(name: str, kind: type[nn.Module], width: int) -> dict[str, nn.Module]:
            return {name: kind(width)} if batch_norm else {}

        def drop(name: str) -> dict[str, nn.Module]:
            return {name: nn.Dropout(dropout)} if dropout else {}

        self.features = nn.Sequential(
            OrderedDict(
                c1=nn.Conv2d(in_channels, c1, k, padding=2),  # 28 + 2*2 = 32: (N, 6, 28, 28)
                **norm("bn1", nn.BatchNorm2d, c1),
                relu1=nn.ReLU(inplace=True),
                s2=nn.MaxPool2d(2),  # (N, 6, 14, 14)
                c3=nn.Conv2d(c1, c3, k),  # (N, 16, 10, 10)
                **norm("bn3", nn.BatchNorm2d, c3),
                relu3=nn.ReLU(inplace=True),
                s4=nn.MaxPool2d(2),  # (N, 16, 5, 5)
            )
        )
        self.classifier = nn.Sequential(
            OrderedDict(
                c5=nn.Linear(c3 * k * k, c5),  # a 5x5 convolution on a 5x5 map is this
                **norm("bn5", nn.BatchNorm1d, c5),
                relu5=nn.ReLU(inplace=True),
                **drop("drop5"),
                f6=nn.Linear(c5, f6),
                **norm("bn6", nn.BatchNorm1d, f6),
                relu6=nn.ReLU(inplace=True),
                **drop("drop6"),
                output=nn.Linear(f6, num_classes),
            )
        )

    def forward(self, x: Tensor) -> Tensor:
        x = self.features(x)  # (N, 16, 5, 5)
        return self.classifier(x.flatten(1))  # (N, 400) -> (N, num_classes)


@register_model(
    family="lenet",
    paper="LeCun et al. 1998, modernised (ReLU, max-pool)",
    input_size=(1, 28, 28),
    min_input_size=(28, 28),
    num_params=61_706,
    num_classes=10,
    fixed_input=True,
)
def lenet5(*, num_classes: int, in_channels: int, dropout: float = 0.0) -> nn.Module:
    """LeNet-5 as taught today: 6-16 5x5 convs, ReLU, max-pool, FC 120-84-classes, 28x28 input."""
    return LeNet5(in_channels=in_channels, num_classes=num_classes, dropout=dropout)


@register_model(
    family="lenet",
    paper="LeCun et al. 1998, modernised, + batch norm (Ioffe & Szegedy 2015; d2l 8.5)",
    input_size=(1, 28, 28),
    min_input_size=(28, 28),
    num_params=62_158,  # lenet5's 61,706 + a scale and a shift per normalised channel or unit
    num_classes=10,
    fixed_input=True,
)
def lenet5_bn(*, num_classes: int, in_channels: int, dropout: float = 0.0) -> nn.Module:
    """LeNet-5 with batch norm before each ReLU (d2l's placement), otherwise ``lenet5``."""
    return LeNet5(
        in_channels=in_channels, num_classes=num_classes, batch_norm=True, dropout=dropout
    )


@register_model(
    family="lenet",
    paper="LeCun et al. 1998",
    input_size=(1, 32, 32),
    min_input_size=(32, 32),
    num_params=60_840,
    num_classes=10,
    fixed_input=True,
)
def lenet5_paper(*, num_classes: int, in_channels: int) -> nn.Module:
    """LeNet-5 of the 1998 paper: scaled tanh, trainable subsampling, Table I C3, RBF output."""
    return LeNet5Paper(in_channels=in_channels, num_classes=num_classes)
