"""The analyzer against the slides' hand calculations, torchvision's published figures and real
forward passes (REFERENCE.md cites the figures used here)."""

from __future__ import annotations

import functools
import math
import subprocess
import sys
import time

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from torch import nn

import cnnlab
from cnnlab.analysis import Report, analyze, arith
from cnnlab.errors import GeometryError, InputSizeError, UnknownModelError

# REFERENCE.md, "torchvision 0.29 classification models": conv + linear GMACs at 3x224x224
# (inception_v3 at 299), rounded as published.
TORCHVISION_GMACS = {
    "alexnet": 0.714,
    "vgg11": 7.609,
    "vgg11_bn": 7.609,
    "vgg13": 11.308,
    "vgg16": 15.470,
    "vgg19": 19.632,
    "googlenet": 1.498,
    "inception_v3": 5.713,
    "resnet18": 1.814,
    "resnet34": 3.664,
    "resnet50": 4.089,
    "resnet101": 7.801,
    "resnet152": 11.514,
    "resnext50_32x4d": 4.230,
    "resnext101_32x8d": 16.414,
    "wide_resnet50_2": 11.398,
    "densenet121": 2.834,
    "densenet161": 7.728,
    "densenet169": 3.360,
    "densenet201": 4.291,
}


@functools.cache
def conv_linear(name: str) -> Report:
    """Each registered model analysed once at its default input (shared by the tests below)."""
    size = (3, 299, 299) if name == "inception_v3" else None
    return analyze(name, size, count="conv-linear")


@pytest.fixture(scope="module")
def alexnet() -> Report:
    return analyze("alexnet", (3, 227, 227))


# -- the slides' AlexNet table (seeds/002) -------------------------------------------------------


def test_alexnet_conv1_matches_the_slide(alexnet: Report) -> None:
    conv1 = alexnet.row("features.0")
    assert conv1.output_shape == [64, 56, 56]
    assert conv1.activation_bytes == 784 * 1024  # 200,704 elements * 4 B = 784 KB
    assert conv1.params == 23_296
    assert conv1.macs == 72_855_552
    assert (conv1.filters, conv1.kernel, conv1.stride, conv1.padding) == (64, 11, 4, 2)


def test_alexnet_rest_of_the_table(alexnet: Report) -> None:
    pool1 = alexnet.row("features.2")
    assert pool1.output_shape == [64, 27, 27]
    assert pool1.macs == 419_904
    assert pool1.activation_bytes / 1024 == 182.25
    assert alexnet.row("features.8").macs == 149_520_384  # conv4
    assert alexnet.row("classifier.1").params == 37_752_832  # fc6 = 9216*4096 + 4096
    assert alexnet.row("classifier.1").macs == 9216 * 4096
    assert alexnet.row("flatten").output_shape == [9216]
    last_pool = alexnet.row("features.12")
    assert (last_pool.receptive_field, last_pool.jump) == (195, 32)
    assert alexnet.totals["params"] == 61_100_840


def test_totals_are_consistent(alexnet: Report) -> None:
    t = alexnet.totals
    assert t["flops"] == 2 * t["macs"]
    assert t["macs"] == sum(r.macs for r in alexnet.rows)
    assert t["param_bytes"] == 4 * t["params"]
    new = sum(r.activation_bytes for r in alexnet.rows if not r.aliases)
    assert t["activation_bytes"] == new
    assert t["training_memory_bytes"] == 3 * t["param_bytes"] + t["activation_bytes"]
    assert alexnet.training_memory("adam") == 4 * t["param_bytes"] + t["activation_bytes"]
    # the in-place ReLUs and the flatten view share memory with their input
    assert alexnet.row("features.1").aliases and alexnet.row("flatten").aliases


def test_vgg16_last_pool_receptive_field() -> None:
    r = analyze("vgg16")
    pools = [row for row in r.rows if row.type == "MaxPool2d"]
    assert (pools[-1].receptive_field, pools[-1].jump) == (212, 32)
    assert r.totals["params"] == 138_357_544


# -- torchvision's published GFLOPS (REFERENCE.md), through the zoo -------------------------------


@pytest.mark.parametrize("name", sorted(TORCHVISION_GMACS))
def test_conv_linear_count_matches_torchvision(name: str) -> None:
    if name not in cnnlab.list_models():
        pytest.skip(f"{name} is not in the zoo yet")
    r = conv_linear(name)
    assert r.input_size == ((3, 299, 299) if name == "inception_v3" else (3, 224, 224))
    assert round(r.totals["macs"] / 1e9, 3) == TORCHVISION_GMACS[name]
    assert r.totals["params"] == cnnlab.model_info(name).num_params


@pytest.mark.parametrize("name", cnnlab.list_models())
def test_every_registered_model_is_analysed_consistently(name: str) -> None:
    """Generated from the registry: totals agree with the registry and with the rows."""
    info = cnnlab.model_info(name)
    r = conv_linear(name)
    assert r.rows[0].output_shape == list(r.input_size)
    assert r.rows[-1].output_shape == [info.num_classes]
    assert r.totals["params"] == info.num_params
    assert sum(row.params for row in r.rows) + sum(r.unused_params.values()) == info.num_params
    assert r.totals["macs"] == sum(row.macs for row in r.rows if row.kind in ("conv", "linear"))
    assert all(row.receptive_field is not None for row in r.rows)


def test_resnet50_paper_is_the_papers_3_8_gflops() -> None:
    r = analyze("resnet50_paper", count="conv-linear")
    assert round(r.totals["macs"] / 1e9, 2) == 3.86  # He et al. Table 1 rounds it to 3.8
    tv = analyze("resnet50", count="conv-linear")
    assert tv.totals["macs"] > r.totals["macs"]  # stride on the 3x3 (v1.5) costs more


# -- every operation is seen --------------------------------------------------------------------


def test_functional_ops_are_rows() -> None:
    r = analyze("resnet18")
    adds = [row for row in r.rows if row.type == "add"]
    assert len(adds) == 8  # `out += identity` in each of the 8 basic blocks
    assert all(len(a.input_shapes) == 2 for a in adds)
    assert [row.name for row in r.rows if row.type == "flatten"] == ["flatten"]
    # a module used twice (BasicBlock.relu) gives two rows, parameters counted once
    assert r.row("layer1.0.relu:2").type == "ReLU"


def test_concatenation_widths_and_branch_receptive_field() -> None:
    class Inception(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.b1 = nn.Conv2d(8, 4, 1)
            self.b5 = nn.Conv2d(8, 6, 5, padding=2)
            self.pool = nn.MaxPool2d(3, 1, 1)

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            return torch.cat([self.b1(x), self.b5(x), self.pool(x)], 1)

    net = nn.Sequential(nn.Conv2d(3, 8, 3, padding=1), Inception(), nn.AdaptiveAvgPool2d(1))
    r = analyze(net, (3, 16, 16))
    cat = r.row("1.cat")
    assert cat.output_shape == [4 + 6 + 8, 16, 16]
    assert cat.input_shapes == [[4, 16, 16], [6, 16, 16], [8, 16, 16]]
    assert cat.receptive_field == 3 + 4  # the widest branch (5x5 after a 3x3) wins
    assert r.row("2").receptive_field == 7 + 15  # global pooling over 16 positions


def test_densenet_concatenations_if_in_zoo() -> None:
    if "densenet121" not in cnnlab.list_models():
        pytest.skip("densenet121 is not in the zoo yet")
    r = analyze("densenet121")
    cats = [row for row in r.rows if row.type == "cat"]
    assert len(cats) >= 6 + 12 + 24 + 16  # at least one per dense layer
    block1 = [c for c in cats if ".denseblock1." in c.name]
    assert max(c.output_shape[0] for c in block1) == 64 + 6 * 32  # growth rate 32, 6 layers
    assert r.rows[-1].output_shape == [1000]


def test_parameters_of_modules_that_never_run_are_reported() -> None:
    r = analyze("googlenet")  # auxiliary heads run in training mode only
    assert set(r.unused_params) == {"aux1", "aux2"}
    in_rows = sum(row.params for row in r.rows)
    assert in_rows + sum(r.unused_params.values()) == r.totals["params"]
    assert r.totals["params"] == cnnlab.model_info("googlenet").num_params
    assert "aux1 (" in r.to_text()
    assert not analyze("resnet18").unused_params


def test_functional_call_with_own_parameter_gets_its_parameters() -> None:
    class Custom(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.weight = nn.Parameter(torch.randn(8, 3, 3, 3))
            self.bn = nn.BatchNorm2d(8)

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            return self.bn(nn.functional.conv2d(x, self.weight, padding=1))

    net = nn.Sequential(Custom(), nn.Flatten(), nn.Linear(8 * 16 * 16, 10))
    r = analyze(net, (3, 16, 16))
    conv = r.row("0.conv2d")
    assert (conv.params, conv.macs, conv.filters, conv.kernel) == (216, 16 * 16 * 8 * 27, 8, 3)
    assert not r.unused_params
    assert sum(row.params for row in r.rows) == r.totals["params"] == 216 + 16 + 20_490


def test_matches_a_real_forward_pass() -> None:
    """Output shapes and conv/linear MACs agree with hooks on a real CPU forward."""
    torch.manual_seed(0)
    net = cnnlab.create_model("resnet18")
    seen: dict[str, tuple[list[int], int]] = {}

    def hook(name: str):
        def record(m: nn.Module, inp: tuple[torch.Tensor], out: torch.Tensor) -> None:
            if isinstance(m, nn.Conv2d):
                macs = out.numel() * m.in_channels // m.groups * math.prod(m.kernel_size)
            elif isinstance(m, nn.Linear):
                macs = out.numel() * m.in_features
            else:
                macs = 0
            seen[name] = (list(out.shape[1:]), macs)

        return record

    for name, m in net.named_modules():
        if isinstance(m, (nn.Conv2d, nn.Linear, nn.MaxPool2d)):
            m.register_forward_hook(hook(name))
    with torch.no_grad():
        net(torch.randn(2, 3, 64, 64))
    net.train()
    r = analyze(net, (3, 64, 64), batch_size=2, count="conv-linear")
    assert net.training and net.layer1[0].bn1.training  # the model is left as it was
    assert all(p.device.type == "cpu" for p in net.parameters())
    for name, (shape, macs) in seen.items():
        assert r.row(name).output_shape == shape, name
        assert r.row(name).macs == macs, name
    assert r.totals["params"] == sum(p.numel() for p in net.parameters())


def test_empirical_receptive_field_matches() -> None:
    """The receptive field equals the support of d(centre output)/d(input) on a real net."""
    net = nn.Sequential(
        nn.Conv2d(1, 1, 3),
        nn.AvgPool2d(2, 2),
        nn.Conv2d(1, 1, 3, dilation=2),
        nn.Conv2d(1, 1, 5, stride=2),
    )
    for m in net:
        if isinstance(m, nn.Conv2d):
            nn.init.constant_(m.weight, 1.0)
    x = torch.ones(1, 1, 61, 61, requires_grad=True)
    y = net(x)
    c = y.shape[-1] // 2
    y[0, 0, c, c].backward()
    support = (x.grad[0, 0].abs().sum(0) > 0).sum().item()
    r = analyze(net, (1, 61, 61))
    # 3x3: 3; pool 2/2: +1 (jump 2); 3x3 dilated 2: +2*2*2; 5x5 stride 2: +4*2
    assert r.rows[-1].receptive_field == support == 1 + 2 + 1 + 2 * 2 * 2 + 4 * 2


def test_fold_depth_sums() -> None:
    full = analyze("resnet50")
    folded = analyze("resnet50", depth=1)
    names = [r.name for r in folded.rows]
    assert names[:5] == ["input", "conv1", "bn1", "relu", "maxpool"]
    assert "layer1" in names and "layer1.0" not in names
    assert sum(r.macs for r in folded.rows) == full.totals["macs"]
    assert sum(r.params for r in folded.rows) == full.totals["params"]
    layer1 = folded.rows[names.index("layer1")]
    assert (layer1.input_shape, layer1.output_shape) == ([64, 56, 56], [256, 56, 56])
    assert layer1.type == "Sequential"
    assert layer1.receptive_field == full.row("layer1.2.relu:3").receptive_field


def test_batch_scales_figures_not_time() -> None:
    one = analyze("vgg16")
    t = time.perf_counter()
    big = analyze("vgg16", batch_size=256)
    assert time.perf_counter() - t < 10  # meta device: nothing is computed or allocated
    assert big.totals["macs"] == 256 * one.totals["macs"]
    assert big.totals["activation_bytes"] == 256 * one.totals["activation_bytes"]
    assert big.totals["params"] == one.totals["params"]
    assert big.rows[1].output_shape == one.rows[1].output_shape  # per-sample shapes


def test_lecture_costs_of_other_ops() -> None:
    r = analyze("resnet18")
    bn = r.row("bn1")
    assert bn.macs == 64 * 112 * 112  # one multiply-add per element
    assert r.row("layer1.0.add").macs == 64 * 56 * 56
    conv_only = analyze("resnet18", count="conv-linear")
    assert conv_only.row("bn1").macs == 0 and conv_only.row("maxpool").macs == 0
    assert r.totals["macs"] > conv_only.totals["macs"]


# -- geometry and input errors ------------------------------------------------------------------


def test_non_tiling_filter_is_flagged_and_strict_raises() -> None:
    net = nn.Sequential(nn.Conv2d(1, 2, 3, stride=3))
    r = analyze(net, (1, 7, 7))
    assert r.rows[1].output_shape == [2, 2, 2]
    (note,) = r.rows[1].notes
    assert "3x3 filter at stride 3 does not fit a 7x7 input" in note and "2.33" in note
    assert "2.33" in r.to_text()
    with pytest.raises(GeometryError, match=r"2\.33"):
        analyze(net, (1, 7, 7), strict=True)
    assert not analyze(net, (1, 9, 9), strict=True).warnings


def test_input_too_small_is_a_clear_error() -> None:
    with pytest.raises(InputSizeError, match=r"cannot take a 3x8x8 input|at least"):
        analyze(nn.Sequential(nn.Conv2d(3, 4, 11, stride=4)), (3, 8, 8))
    with pytest.raises(InputSizeError):
        analyze("vgg16", (3, 16, 16))
    with pytest.raises(UnknownModelError, match="did you mean"):
        analyze("vgg-16")


# -- renderers ----------------------------------------------------------------------------------


def test_text_markdown_csv_state_the_convention(alexnet: Report) -> None:
    for text in (alexnet.to_text(), alexnet.to_markdown()):
        assert "1 MAC = one multiply-add" in text and "1 KB = 1024 B" in text
        assert "72,855,552" in text
    lines = alexnet.to_csv().splitlines()
    assert lines[0].startswith("name,type,input_shape,output_shape")
    assert "features.0,Conv2d,3x227x227,64x56x56,64,11,4,2,23296,72855552,802816,11,4" in lines
    md = alexnet.to_markdown().splitlines()
    assert md[2].startswith("| layer |") and md[3].startswith("|---|")


# -- the pure formulas against PyTorch ----------------------------------------------------------


@settings(max_examples=60, deadline=None)
@given(
    size=st.integers(1, 40),
    kernel=st.integers(1, 7),
    stride=st.integers(1, 4),
    padding=st.integers(0, 3),
    dilation=st.integers(1, 3),
    ceil_mode=st.booleans(),
)
def test_output_size_agrees_with_torch_pooling(
    size: int, kernel: int, stride: int, padding: int, dilation: int, ceil_mode: bool
) -> None:
    if padding > kernel // 2 or dilation * (kernel - 1) + 1 > size + 2 * padding:
        return  # PyTorch rejects these
    x = torch.empty(1, 1, size, size, device="meta")
    y = nn.functional.max_pool2d(x, kernel, stride, padding, dilation, ceil_mode)
    assert arith.output_size(size, kernel, stride, padding, dilation, ceil_mode).size == y.shape[-1]


def test_arith_examples_from_the_slides() -> None:
    assert arith.output_size(227, 11, 4).size == 55  # (227-11)/4+1
    assert arith.output_size(7, 3, 3).exact == pytest.approx(2.33, abs=0.01)
    assert not arith.output_size(7, 3, 3).fits
    assert arith.conv_params(3, 10, (5, 5)) == 760  # 10 5x5x3 filters + biases
    assert arith.linear_params(9216, 4096) == 37_752_832
    r, j = 1, 1
    for _ in range(3):
        r, j = arith.receptive_field(r, j, 3)
    assert r == 7  # three 3x3 = one 7x7
    assert arith.adaptive_window(7, 1) == (7, 7) and arith.adaptive_window(13, 6) == (3, 2)
    assert arith.adaptive_pool_macs(1, (13,), (6,)) == sum(
        math.ceil((i + 1) * 13 / 6) - math.floor(i * 13 / 6) for i in range(6)
    )
    with pytest.raises(ValueError, match="unknown optimizer"):
        arith.training_memory(1, 1, "rmsprop")


def test_partial_connection_table_counts_only_connected_maps() -> None:
    """LeNet-5's C3 (Table I: 60 of 96 map pairs) does 60 * 5 * 5 * 10 * 10 = 150,000 MACs.

    Its dense kernel holds zeros off the table; counting them would give 96 * 2,500 = 240,000.
    """
    rows = {r.name: r for r in analyze("lenet5_paper", input_size=(1, 32, 32)).rows}
    assert rows["features.c3"].params == 60 * 25 + 16
    assert rows["features.c3"].macs == 60 * 5 * 5 * 10 * 10


def test_tracing_a_zoo_model_does_not_import_the_compiler():
    """`cnnlab summary` skips meta-tensor initialisation and computes meta linear layers from
    shapes, so PyTorch's compiler (about a second to import) stays out of the process."""
    code = (
        "import sys, cnnlab; r = cnnlab.analyze('vgg16'); "
        "print(r.totals['macs'], 'torch._dynamo' in sys.modules)"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True
    ).stdout.split()
    assert out == [str(cnnlab.analyze("vgg16").totals["macs"]), "False"]
