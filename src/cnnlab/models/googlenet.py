"""GoogLeNet (Inception v1) and Inception v3.

Papers:
    Szegedy et al. "Going Deeper with Convolutions", CVPR 2015 (arXiv:1409.4842): Table 1
    (the network), Fig. 2b (the inception module), Fig. 3 (LRN placement), Section 5
    (auxiliary classifiers).
    Szegedy, Vanhoucke, Ioffe, Shlens, Wojna. "Rethinking the Inception Architecture for
    Computer Vision", CVPR 2016 (arXiv:1512.00567): Inception v3.

Models and where they depart from the papers:
    ``googlenet``: identical to torchvision's (same parameter names, modules and outputs), which
    departs from Table 1 in these ways: every convolution is followed by batch norm (eps 1e-3)
    and has no bias, there is no local response normalisation, the "5x5" branch uses a 3x3
    kernel (a known torchvision discrepancy, kept so its pretrained weights load), the pool
    before inception (5a) is 2x2 instead of 3x3 (same output size), the auxiliary heads pool
    adaptively to 4x4 instead of 5x5 stride 3 (same at 224x224), and the final dropout is 0.2
    instead of 0.4.
    ``googlenet_paper``: Table 1 and Fig. 3 as published: convolutions with biases and ReLU,
    LRN after the first pool and after conv 3x3, true 5x5 branches, 3x3/2 max pools, 7x7
    average pool, dropout 0.4, auxiliary heads on (4a) and (4d) (5x5/3 average pool, 1x1 conv
    128, FC 1024, dropout 0.7) whose losses the paper weights by 0.3 (:data:`AUX_LOSS_WEIGHT`).
    The paper gives no LRN hyperparameters; we use size 5, alpha 1e-4, beta 0.75, k 1 (the BVLC
    Caffe reference GoogLeNet). Its heads have fixed-size FC layers, so it takes exactly 224x224.
    ``inception_v3``: identical to torchvision's (default input 3x299x299; 75x75 is enough in
    evaluation mode, but its auxiliary head needs 299x299 to train). Its auxiliary loss weight
    is not given in the paper; training uses GoogLeNet's 0.3.

In training mode a model with auxiliary heads returns a named tuple (logits first, as
torchvision does); in evaluation mode it returns the logits tensor. A training loop computes
``loss(out.logits) + w * sum(loss(a) for a in out[1:])``; the weight ``w`` is a training setting
(``TrainConfig.aux_loss_weight``, 0.3 in the paper recipe), not part of the model.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, NamedTuple

import torch
import torch.nn.functional as F
from torch import nn

from cnnlab.errors import InputSizeError
from cnnlab.registry import register_model

PAPER_V1 = "Szegedy et al. 2014, Going Deeper with Convolutions"
PAPER_V3 = "Szegedy et al. 2015, Rethinking the Inception Architecture (Inception v3)"

# Section 5: "their loss gets added to the total loss of the network with a discount weight
# (the losses of the auxiliary classifiers were weighted by 0.3)".
AUX_LOSS_WEIGHT = 0.3


class GoogLeNetOutputs(NamedTuple):
    """Training-mode outputs of GoogLeNet, in torchvision's field order."""

    logits: torch.Tensor
    aux_logits2: torch.Tensor | None
    aux_logits1: torch.Tensor | None


class InceptionOutputs(NamedTuple):
    """Training-mode outputs of Inception v3, in torchvision's field order."""

    logits: torch.Tensor
    aux_logits: torch.Tensor | None


class ConvBlock(nn.Module):
    """Convolution, optional batch norm, ReLU (torchvision's ``BasicConv2d`` when batch-normed).

    Args:
        in_channels: input channels.
        out_channels: filters.
        kernel_size, stride, padding: as :class:`torch.nn.Conv2d`.
        batch_norm: True for conv (no bias) + BN (eps 1e-3, as torchvision); False for the
            2014 paper's conv with bias.

    Shape:
        - Input: (N, in_channels, H, W)
        - Output: (N, out_channels, H', W') with H' = floor((H + 2P - K) / S) + 1
    """

    def __init__(
        self,
        in_channels: int,
        out_channels: int,
        kernel_size: int | tuple[int, int],
        stride: int = 1,
        padding: int | tuple[int, int] = 0,
        batch_norm: bool = True,
    ) -> None:
        super().__init__()
        self.conv = nn.Conv2d(
            in_channels, out_channels, kernel_size, stride, padding, bias=not batch_norm
        )
        if batch_norm:
            self.bn = nn.BatchNorm2d(out_channels, eps=0.001)
        self.batch_norm = batch_norm

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.conv(x)
        if self.batch_norm:
            x = self.bn(x)
        return F.relu(x, inplace=True)


# --- GoogLeNet (Inception v1) --------------------------------------------------------------------


@dataclass(frozen=True)
class InceptionV1Row:
    """One row of Table 1: the filters of each branch of an inception module (Fig. 2b)."""

    n1x1: int
    n3x3_reduce: int
    n3x3: int
    n5x5_reduce: int
    n5x5: int
    pool_proj: int

    @property
    def out_channels(self) -> int:
        """The module's output depth: its four branches concatenated."""
        return self.n1x1 + self.n3x3 + self.n5x5 + self.pool_proj


# Table 1 ("depth", "#1x1", "#3x3 reduce", "#3x3", "#5x5 reduce", "#5x5", "pool proj"), with the
# 3x3/2 max pools between the stages as "pool". In-channels are derived, never written down.
GOOGLENET_TABLE: tuple[tuple[str, InceptionV1Row | None], ...] = (
    ("inception3a", InceptionV1Row(64, 96, 128, 16, 32, 32)),
    ("inception3b", InceptionV1Row(128, 128, 192, 32, 96, 64)),
    ("maxpool3", None),
    ("inception4a", InceptionV1Row(192, 96, 208, 16, 48, 64)),
    ("inception4b", InceptionV1Row(160, 112, 224, 24, 64, 64)),
    ("inception4c", InceptionV1Row(128, 128, 256, 24, 64, 64)),
    ("inception4d", InceptionV1Row(112, 144, 288, 32, 64, 64)),
    ("inception4e", InceptionV1Row(256, 160, 320, 32, 128, 128)),
    ("maxpool4", None),
    ("inception5a", InceptionV1Row(256, 160, 320, 32, 128, 128)),
    ("inception5b", InceptionV1Row(384, 192, 384, 48, 128, 128)),
)
STEM_CHANNELS = (64, 64, 192)  # Table 1: conv 7x7/2 64, conv 1x1 64 ("reduce"), conv 3x3 192
AUX_TAPS = ("inception4a", "inception4d")  # Section 5: heads on (4a) and (4d)
FINAL_FEATURES = 1024  # (5b) output, the classifier's input


class Inception(nn.Module):
    """The inception module with dimension reductions (Fig. 2b).

    Four branches, concatenated along channels: 1x1; 1x1 then 3x3; 1x1 then 5x5 (3x3 in
    torchvision's version); 3x3 max pool then 1x1.

    Shape:
        - Input: (N, in_channels, H, W)
        - Output: (N, row.out_channels, H, W)
    """

    def __init__(
        self, in_channels: int, row: InceptionV1Row, *, batch_norm: bool, kernel_5x5: int
    ) -> None:
        super().__init__()
        conv = _conv_factory(batch_norm)
        self.branch1 = conv(in_channels, row.n1x1, 1)
        self.branch2 = nn.Sequential(
            conv(in_channels, row.n3x3_reduce, 1), conv(row.n3x3_reduce, row.n3x3, 3, padding=1)
        )
        self.branch3 = nn.Sequential(
            conv(in_channels, row.n5x5_reduce, 1),
            conv(row.n5x5_reduce, row.n5x5, kernel_5x5, padding=kernel_5x5 // 2),
        )
        self.branch4 = nn.Sequential(
            nn.MaxPool2d(kernel_size=3, stride=1, padding=1, ceil_mode=True),
            conv(in_channels, row.pool_proj, 1),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        branches = (self.branch1, self.branch2, self.branch3, self.branch4)
        return torch.cat([branch(x) for branch in branches], 1)


def _conv_factory(batch_norm: bool) -> Any:
    def conv(cin: int, cout: int, kernel: int, stride: int = 1, padding: int = 0) -> ConvBlock:
        return ConvBlock(cin, cout, kernel, stride, padding, batch_norm=batch_norm)

    return conv


class InceptionAux(nn.Module):
    """Auxiliary classifier (Section 5): pool, 1x1 conv 128, FC 1024 + ReLU, dropout, FC.

    Args:
        in_channels: depth of the tapped module's output (512 at 4a, 528 at 4d).
        num_classes: output classes.
        batch_norm: batch norm after the 1x1 conv (torchvision) or a biased conv (paper).
        paper_pool: True for the paper's 5x5 stride-3 average pool (4x4 only at a 14x14 map,
            i.e. 224x224 input); False for torchvision's adaptive 4x4 average pool.
        dropout: 0.7 in the paper.

    Shape:
        - Input: (N, in_channels, 14, 14) (any size when ``paper_pool`` is False)
        - Output: (N, num_classes)
    """

    conv_width = 128
    hidden = 1024
    pooled = 4  # 4x4 after pooling: 128 * 4 * 4 = 2048 inputs to fc1

    def __init__(
        self,
        in_channels: int,
        num_classes: int,
        *,
        batch_norm: bool,
        paper_pool: bool,
        dropout: float = 0.7,
    ) -> None:
        super().__init__()
        self.paper_pool = paper_pool
        if paper_pool:
            self.pool = nn.AvgPool2d(kernel_size=5, stride=3)
        self.conv = ConvBlock(in_channels, self.conv_width, 1, batch_norm=batch_norm)
        self.fc1 = nn.Linear(self.conv_width * self.pooled**2, self.hidden)
        self.fc2 = nn.Linear(self.hidden, num_classes)
        self.dropout = nn.Dropout(p=dropout)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.pool(x) if self.paper_pool else F.adaptive_avg_pool2d(x, self.pooled)
        x = torch.flatten(self.conv(x), 1)  # (N, 2048)
        x = self.dropout(F.relu(self.fc1(x), inplace=True))
        return self.fc2(x)


class GoogLeNet(nn.Module):
    """GoogLeNet: a stem, nine inception modules (Table 1), global pooling, dropout, FC.

    Args:
        num_classes: output classes.
        in_channels: input image channels (changes only ``conv1``).
        aux_logits: build the two auxiliary classifiers (used in training mode only).
        batch_norm: batch norm in every convolution (torchvision) or biased convs (paper).
        lrn: local response normalisation after the first pool and after conv3 (Fig. 3).
        kernel_5x5: kernel of the "5x5" branch: 5 in the paper, 3 in torchvision.
        pool4_kernel: kernel of the max pool before (5a): 3 in the paper, 2 in torchvision.
        paper_pooling: 7x7 average pool at the end and 5x5/3 pools in the auxiliary heads
            (fixed 224x224 input) instead of adaptive pools.
        dropout: before the final FC (0.4 in the paper, 0.2 in torchvision).
        dropout_aux: inside the auxiliary heads (0.7).

    Shape:
        - Input: (N, in_channels, H, W), 224x224 in the paper
        - Output: (N, num_classes) in eval mode; :class:`GoogLeNetOutputs` in training mode
          when ``aux_logits`` is set
    """

    def __init__(
        self,
        *,
        num_classes: int = 1000,
        in_channels: int = 3,
        aux_logits: bool = True,
        batch_norm: bool = True,
        lrn: bool = False,
        kernel_5x5: int = 3,
        pool4_kernel: int = 2,
        paper_pooling: bool = False,
        dropout: float = 0.2,
        dropout_aux: float = 0.7,
    ) -> None:
        super().__init__()
        conv = _conv_factory(batch_norm)
        c1, c2, c3 = STEM_CHANNELS
        # The stem, in forward order; the names are torchvision's, plus lrn1/lrn2 for the paper.
        self.conv1 = conv(in_channels, c1, 7, stride=2, padding=3)
        self.maxpool1 = nn.MaxPool2d(3, stride=2, ceil_mode=True)
        if lrn:
            self.lrn1 = _lrn()
        self.conv2 = conv(c1, c2, 1)
        self.conv3 = conv(c2, c3, 3, padding=1)
        if lrn:
            self.lrn2 = _lrn()
        self.maxpool2 = nn.MaxPool2d(3, stride=2, ceil_mode=True)
        self._order = ["conv1", "maxpool1", "lrn1", "conv2", "conv3", "lrn2", "maxpool2"]
        self._order = [name for name in self._order if hasattr(self, name)]

        channels = c3
        tapped: dict[str, int] = {}
        for name, row in GOOGLENET_TABLE:
            if row is None:  # a max pool between stages
                kernel = pool4_kernel if name == "maxpool4" else 3
                self.add_module(name, nn.MaxPool2d(kernel, stride=2, ceil_mode=True))
            else:
                self.add_module(
                    name, Inception(channels, row, batch_norm=batch_norm, kernel_5x5=kernel_5x5)
                )
                channels = row.out_channels
                if name in AUX_TAPS:
                    tapped[name] = channels
            self._order.append(name)

        self.aux_logits = aux_logits
        self._aux_taps: dict[str, str] = {}
        if aux_logits:
            for index, (tap, depth) in enumerate(tapped.items(), start=1):
                head = InceptionAux(
                    depth,
                    num_classes,
                    batch_norm=batch_norm,
                    paper_pool=paper_pooling,
                    dropout=dropout_aux,
                )
                self.add_module(f"aux{index}", head)
                self._aux_taps[tap] = f"aux{index}"

        if paper_pooling:  # Table 1: "avg pool 7x7/1" on the 7x7 map of (5b)
            self.avgpool: nn.Module = nn.AvgPool2d(kernel_size=7, stride=1)
        else:
            self.avgpool = nn.AdaptiveAvgPool2d((1, 1))
        self.dropout = nn.Dropout(p=dropout)
        self.fc = nn.Linear(channels, num_classes)
        _init_googlenet(self, batch_norm)

    def forward(self, x: torch.Tensor) -> torch.Tensor | GoogLeNetOutputs:
        aux: dict[str, torch.Tensor] = {}
        for name in self._order:
            x = getattr(self, name)(x)
            head = self._aux_taps.get(name)
            if head is not None and self.training:
                aux[head] = getattr(self, head)(x)
        x = torch.flatten(self.avgpool(x), 1)  # (N, 1024)
        logits = self.fc(self.dropout(x))
        if self.training and self.aux_logits:
            return GoogLeNetOutputs(logits, aux.get("aux2"), aux.get("aux1"))
        return logits


def _lrn() -> nn.LocalResponseNorm:
    # Not given in the paper; the BVLC Caffe reference GoogLeNet's values.
    return nn.LocalResponseNorm(size=5, alpha=1e-4, beta=0.75, k=1.0)


def _init_googlenet(model: nn.Module, batch_norm: bool) -> None:
    for m in model.modules():
        if isinstance(m, nn.Conv2d | nn.Linear):
            if batch_norm:  # torchvision's initialisation
                nn.init.trunc_normal_(m.weight, mean=0.0, std=0.01, a=-2, b=2)
            else:
                # Without batch norm a 0.01 Gaussian starves a 22-layer net of signal; Xavier
                # keeps the activation scale (the paper trained with DistBelief, unspecified).
                nn.init.xavier_uniform_(m.weight)
            if m.bias is not None:
                nn.init.zeros_(m.bias)
        elif isinstance(m, nn.BatchNorm2d):
            nn.init.ones_(m.weight)
            nn.init.zeros_(m.bias)


# Smallest input, derived by trying: 15x15 reaches (5b) as 1x1; 14x14 dies at maxpool4.
@register_model(
    family="googlenet",
    paper=PAPER_V1,
    input_size=(3, 224, 224),
    min_input_size=(15, 15),
    num_params=13_004_888,
    torchvision="googlenet",
)
def googlenet(*, num_classes: int = 1000, in_channels: int = 3, **kwargs: Any) -> GoogLeNet:
    """GoogLeNet, torchvision's: batch norm, 3x3 "5x5" branches, auxiliary heads included."""
    return GoogLeNet(num_classes=num_classes, in_channels=in_channels, **kwargs)


@register_model(
    family="googlenet",
    paper=PAPER_V1,
    input_size=(3, 224, 224),
    min_input_size=(224, 224),
    num_params=13_378_280,
    fixed_input=True,
)
def googlenet_paper(*, num_classes: int = 1000, in_channels: int = 3, **kwargs: Any) -> GoogLeNet:
    """GoogLeNet as in Table 1: LRN, true 5x5 branches, no batch norm, 0.3-weighted aux heads."""
    paper = {
        "batch_norm": False,
        "lrn": True,
        "kernel_5x5": 5,
        "pool4_kernel": 3,
        "paper_pooling": True,
        "dropout": 0.4,
        "dropout_aux": 0.7,
    }
    return GoogLeNet(num_classes=num_classes, in_channels=in_channels, **(paper | kwargs))


# --- Inception v3 --------------------------------------------------------------------------------


@dataclass(frozen=True)
class Conv:
    """One batch-normed convolution of an Inception v3 branch."""

    out: int
    kernel: int | tuple[int, int]
    stride: int = 1
    padding: int | tuple[int, int] = 0


@dataclass(frozen=True)
class Pool:
    """A parameter-free pooling step ("avg" or "max")."""

    kind: str
    kernel: int
    stride: int
    padding: int = 0


# A branch is a sequence of steps; a step is a Conv, a Pool, or a tuple of Convs applied side by
# side to the same input and concatenated (the "expanded filter bank" of Fig. 7 of the v3 paper).
Step = Conv | Pool | tuple[Conv, ...]
MixedSpec = dict[str, tuple[Step, ...]]

AVG_3x3 = Pool("avg", 3, 1, 1)
MAX_3x3_S2 = Pool("max", 3, 2)


def inception_a(pool_features: int) -> MixedSpec:
    """Fig. 5 of the v3 paper (35x35 grid); the 5x5 branch is kept as in the released model."""
    return {
        "branch1x1": (Conv(64, 1),),
        "branch5x5": (Conv(48, 1), Conv(64, 5, padding=2)),
        "branch3x3dbl": (Conv(64, 1), Conv(96, 3, padding=1), Conv(96, 3, padding=1)),
        "branch_pool": (AVG_3x3, Conv(pool_features, 1)),
    }


# Grid reduction 35 -> 17 (Fig. 10 of the v3 paper).
REDUCTION_A: MixedSpec = {
    "branch3x3": (Conv(384, 3, stride=2),),
    "branch3x3dbl": (Conv(64, 1), Conv(96, 3, padding=1), Conv(96, 3, stride=2)),
    "branch_pool": (MAX_3x3_S2,),
}


def inception_c(channels_7x7: int) -> MixedSpec:
    """Fig. 6 of the v3 paper (17x17 grid): n x n convolutions factorised into 1x7 and 7x1."""
    c = channels_7x7
    row, col = Conv(c, (1, 7), padding=(0, 3)), Conv(c, (7, 1), padding=(3, 0))
    return {
        "branch1x1": (Conv(192, 1),),
        "branch7x7": (Conv(c, 1), row, Conv(192, (7, 1), padding=(3, 0))),
        "branch7x7dbl": (Conv(c, 1), col, row, col, Conv(192, (1, 7), padding=(0, 3))),
        "branch_pool": (AVG_3x3, Conv(192, 1)),
    }


# Grid reduction 17 -> 8.
REDUCTION_B: MixedSpec = {
    "branch3x3": (Conv(192, 1), Conv(320, 3, stride=2)),
    "branch7x7x3": (
        Conv(192, 1),
        Conv(192, (1, 7), padding=(0, 3)),
        Conv(192, (7, 1), padding=(3, 0)),
        Conv(192, 3, stride=2),
    ),
    "branch_pool": (MAX_3x3_S2,),
}

_SPLIT_3x3 = (Conv(384, (1, 3), padding=(0, 1)), Conv(384, (3, 1), padding=(1, 0)))

# Fig. 7 of the v3 paper (8x8 grid): expanded filter banks.
INCEPTION_E: MixedSpec = {
    "branch1x1": (Conv(320, 1),),
    "branch3x3": (Conv(384, 1), _SPLIT_3x3),
    "branch3x3dbl": (Conv(448, 1), Conv(384, 3, padding=1), _SPLIT_3x3),
    "branch_pool": (AVG_3x3, Conv(192, 1)),
}

# The network (Table 1 of the v3 paper, as torchvision builds it), in forward order.
INCEPTION_V3_TABLE: tuple[tuple[str, Conv | Pool | MixedSpec], ...] = (
    ("Conv2d_1a_3x3", Conv(32, 3, stride=2)),
    ("Conv2d_2a_3x3", Conv(32, 3)),
    ("Conv2d_2b_3x3", Conv(64, 3, padding=1)),
    ("maxpool1", MAX_3x3_S2),
    ("Conv2d_3b_1x1", Conv(80, 1)),
    ("Conv2d_4a_3x3", Conv(192, 3)),
    ("maxpool2", MAX_3x3_S2),
    ("Mixed_5b", inception_a(pool_features=32)),
    ("Mixed_5c", inception_a(pool_features=64)),
    ("Mixed_5d", inception_a(pool_features=64)),
    ("Mixed_6a", REDUCTION_A),
    ("Mixed_6b", inception_c(channels_7x7=128)),
    ("Mixed_6c", inception_c(channels_7x7=160)),
    ("Mixed_6d", inception_c(channels_7x7=160)),
    ("Mixed_6e", inception_c(channels_7x7=192)),
    ("Mixed_7a", REDUCTION_B),
    ("Mixed_7b", INCEPTION_E),
    ("Mixed_7c", INCEPTION_E),
)
V3_AUX_TAP = "Mixed_6e"  # the auxiliary head sits on the last 17x17 module


def _pool(step: Pool, x: torch.Tensor) -> torch.Tensor:
    pool = F.avg_pool2d if step.kind == "avg" else F.max_pool2d
    return pool(x, step.kernel, step.stride, step.padding)


def _basic(cin: int, conv: Conv) -> ConvBlock:
    return ConvBlock(cin, conv.out, conv.kernel, conv.stride, conv.padding)


class Mixed(nn.Module):
    """An Inception v3 module built from a :data:`MixedSpec`: parallel branches, concatenated.

    Convolutions are named as torchvision names them: ``branch`` alone for a one-convolution
    branch, else ``branch_1``, ``branch_2``, ... and ``branch_3a``/``branch_3b`` for a split step.

    Shape:
        - Input: (N, in_channels, H, W)
        - Output: (N, self.out_channels, H', W') (H' = H, or (H - 3) // 2 + 1 for reductions)
    """

    def __init__(self, in_channels: int, spec: MixedSpec) -> None:
        super().__init__()
        self._branches: list[list[Pool | str | tuple[str, ...]]] = []
        self.out_channels = 0
        for branch, steps in spec.items():
            conv_steps = [s for s in steps if not isinstance(s, Pool)]
            single = len(conv_steps) == 1 and isinstance(conv_steps[0], Conv)
            channels, plan, index = in_channels, [], 0
            for step in steps:
                if isinstance(step, Pool):
                    plan.append(step)
                    continue
                index += 1
                stem = branch if single else f"{branch}_{index}"
                if isinstance(step, Conv):
                    self.add_module(stem, _basic(channels, step))
                    plan.append(stem)
                    channels = step.out
                else:  # a split: side by side on the same input
                    names = tuple(f"{stem}{chr(ord('a') + i)}" for i in range(len(step)))
                    for name, conv in zip(names, step, strict=True):
                        self.add_module(name, _basic(channels, conv))
                    plan.append(names)
                    channels = sum(conv.out for conv in step)
            self._branches.append(plan)
            self.out_channels += channels

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        outputs = []
        for plan in self._branches:
            y = x
            for step in plan:
                if isinstance(step, Pool):
                    y = _pool(step, y)
                elif isinstance(step, str):
                    y = getattr(self, step)(y)
                else:
                    y = torch.cat([getattr(self, name)(y) for name in step], 1)
            outputs.append(y)
        return torch.cat(outputs, 1)


class InceptionV3Aux(nn.Module):
    """Inception v3's auxiliary classifier: 5x5/3 avg pool, 1x1 conv 128, 5x5 conv 768, FC.

    Shape:
        - Input: (N, 768, 17, 17)
        - Output: (N, num_classes)
    """

    def __init__(self, in_channels: int, num_classes: int) -> None:
        super().__init__()
        self.conv0 = ConvBlock(in_channels, 128, 1)
        self.conv1 = ConvBlock(128, 768, 5)
        self.fc = nn.Linear(768, num_classes)

    # The 5x5 conv needs a 5x5 map after the 5x5/3 pool, i.e. a 17x17 Mixed_6e map; in
    # training mode the whole network therefore needs 299x299 input (checked in the tests).
    min_map = 17
    min_train_input = 299

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if min(x.shape[-2:]) < self.min_map:
            h, w = x.shape[-2:]
            raise InputSizeError(
                f"inception_v3's auxiliary classifier needs a {self.min_map}x{self.min_map} "
                f"Mixed_6e map (got {h}x{w}), i.e. input of at least {self.min_train_input}x"
                f"{self.min_train_input} in training mode: resize the images to "
                f"{self.min_train_input}x{self.min_train_input} or pass aux_logits=False"
            )
        x = F.avg_pool2d(x, kernel_size=5, stride=3)  # (N, C, 5, 5) at 17x17
        x = self.conv1(self.conv0(x))  # (N, 768, 1, 1)
        x = F.adaptive_avg_pool2d(x, (1, 1))
        return self.fc(torch.flatten(x, 1))


class Inception3(nn.Module):
    """Inception v3 from :data:`INCEPTION_V3_TABLE`, identical to torchvision's.

    Args:
        num_classes: output classes.
        in_channels: input image channels (changes only ``Conv2d_1a_3x3``).
        aux_logits: build the auxiliary classifier (used in training mode only).
        dropout: before the final FC (torchvision's 0.5).

    Shape:
        - Input: (N, in_channels, H, W), 299x299 by default, at least 75x75
        - Output: (N, num_classes) in eval mode; :class:`InceptionOutputs` in training mode
          when ``aux_logits`` is set
    """

    def __init__(
        self,
        *,
        num_classes: int = 1000,
        in_channels: int = 3,
        aux_logits: bool = True,
        dropout: float = 0.5,
    ) -> None:
        super().__init__()
        channels = in_channels
        self._order: list[str] = []
        for name, layer in INCEPTION_V3_TABLE:
            if isinstance(layer, Conv):
                self.add_module(name, _basic(channels, layer))
                channels = layer.out
            elif isinstance(layer, Pool):
                self.add_module(name, nn.MaxPool2d(layer.kernel, layer.stride, layer.padding))
            else:
                mixed = Mixed(channels, layer)
                self.add_module(name, mixed)
                channels = mixed.out_channels
            self._order.append(name)
            if name == V3_AUX_TAP:
                # Registered here, between Mixed_6e and Mixed_7a, as torchvision does.
                self.AuxLogits = InceptionV3Aux(channels, num_classes) if aux_logits else None
        self.aux_logits = aux_logits
        self.avgpool = nn.AdaptiveAvgPool2d((1, 1))
        self.dropout = nn.Dropout(p=dropout)
        self.fc = nn.Linear(channels, num_classes)
        _init_inception_v3(self)

    def forward(self, x: torch.Tensor) -> torch.Tensor | InceptionOutputs:
        aux = None
        for name in self._order:
            x = getattr(self, name)(x)
            if name == V3_AUX_TAP and self.AuxLogits is not None and self.training:
                aux = self.AuxLogits(x)
        x = torch.flatten(self.dropout(self.avgpool(x)), 1)  # (N, 2048)
        logits = self.fc(x)
        if self.training and self.aux_logits:
            return InceptionOutputs(logits, aux)
        return logits


def _init_inception_v3(model: Inception3) -> None:
    # torchvision's: truncated normal, std 0.1, except the aux head's 5x5 conv (0.01) and FC
    # (0.001), whose outputs would otherwise dominate at the start.
    special = {}
    if model.AuxLogits is not None:
        special = {model.AuxLogits.conv1.conv: 0.01, model.AuxLogits.fc: 0.001}
    for m in model.modules():
        if isinstance(m, nn.Conv2d | nn.Linear):
            nn.init.trunc_normal_(m.weight, mean=0.0, std=special.get(m, 0.1), a=-2, b=2)
        elif isinstance(m, nn.BatchNorm2d):
            nn.init.ones_(m.weight)
            nn.init.zeros_(m.bias)


# Smallest input, derived by trying: 75x75 leaves Mixed_7a's 3x3/2 reductions a 3x3 map.
@register_model(
    family="googlenet",
    paper=PAPER_V3,
    input_size=(3, 299, 299),
    min_input_size=(75, 75),
    num_params=27_161_264,
    torchvision="inception_v3",
)
def inception_v3(*, num_classes: int = 1000, in_channels: int = 3, **kwargs: Any) -> Inception3:
    """Inception v3, torchvision's (299x299 input; the auxiliary head needs 299 to train)."""
    return Inception3(num_classes=num_classes, in_channels=in_channels, **kwargs)
