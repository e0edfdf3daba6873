"""Paper figures and paper behaviour of the classic zoo: LeNet-5, AlexNet, ZFNet, VGG, NiN.

tests/test_zoo.py already checks every registered model generically (parameter count against the
registry, true minimum input, forward, torchvision parity). This file checks the registry's
numbers and the layers against independent sources: the papers' tables and text, REFERENCE.md,
and PyTorch's own layers.
"""

from __future__ import annotations

import math

import pytest
import torch
import torch.nn.functional as F
from torch import nn

import cnnlab
from cnnlab.errors import ConfigError, InputSizeError
from cnnlab.models.layers import CrossChannelLRN
from cnnlab.models.lenet import TABLE_I, EuclideanRBF, PartialConv2d, ScaledTanh, Subsampling
from cnnlab.models.vgg import TABLE_1, TABLE_2_MILLIONS


def count_params(name: str, **kwargs: object) -> int:
    model = meta_model(name, **kwargs)  # no memory, no init cost: VGG-19 in milliseconds
    return sum(p.numel() for p in model.parameters())


def meta_model(name: str, **kwargs: object) -> nn.Module:
    """The model's structure without memory or initialisation cost."""
    with torch.device("meta"):
        return cnnlab.create_model(name, **kwargs)


@pytest.fixture(scope="module")
def alexnet_paper() -> nn.Module:
    """One real (CPU) alexnet_paper, freshly initialised, shared by the tests that only read it."""
    return cnnlab.create_model("alexnet_paper").eval()


def output_shapes(name: str, input_size: tuple[int, ...], **kwargs: object) -> dict[str, tuple]:
    """(C, H, W) of every named submodule's output for one input of ``input_size``, on meta."""
    model = meta_model(name, **kwargs).eval()
    shapes: dict[str, tuple[int, ...]] = {}
    hooks = [
        module.register_forward_hook(
            lambda _m, _i, out, name=name: shapes.__setitem__(name, tuple(out.shape[1:]))
        )
        for name, module in model.named_modules()
        if name
    ]
    with torch.no_grad():
        model(torch.empty(1, *input_size, device="meta"))
    for hook in hooks:
        hook.remove()
    return shapes


# ---------------------------------------------------------------------------------------------
# Parameter counts: papers and REFERENCE.md


@pytest.mark.parametrize(
    ("name", "kwargs", "expected"),
    [
        # REFERENCE.md, "Papers", AlexNet: computed two-tower and one-tower counts.
        ("alexnet_paper", {}, 60_965_224),
        ("alexnet_paper", {"towers": 1}, 62_378_344),
        # REFERENCE.md, "Papers", LeNet-5: 60,840 with trainable subsampling and Table I.
        ("lenet5_paper", {}, 60_840),
        # REFERENCE.md, torchvision table.
        ("alexnet", {}, 61_100_840),
        ("vgg11", {}, 132_863_336),
        ("vgg11_bn", {}, 132_868_840),
        ("vgg13", {}, 133_047_848),
        ("vgg16", {}, 138_357_544),
        ("vgg19", {}, 143_667_240),
    ],
)
def test_published_parameter_counts(name: str, kwargs: dict, expected: int) -> None:
    assert count_params(name, **kwargs) == expected


VGG_COLUMNS = {"A": "vgg11", "A-LRN": "vgg11_lrn", "B": "vgg13", "C": "vgg16_c", "D": "vgg16"}
VGG_COLUMNS["E"] = "vgg19"


@pytest.mark.parametrize("column", sorted(VGG_COLUMNS))
def test_vgg_table_2_parameter_counts(column: str) -> None:
    """Simonyan & Zisserman 2014, Table 2: 133, 133, 133, 134, 138, 144 million."""
    expected = {"A": 133, "A-LRN": 133, "B": 133, "C": 134, "D": 138, "E": 144}[column]
    assert TABLE_2_MILLIONS[column] == expected
    assert round(count_params(VGG_COLUMNS[column]) / 1e6) == expected


def test_lenet5_paper_parameters_layer_by_layer() -> None:
    """Section II.B: C1 156, S2 12, C3 1,516, S4 32, C5 48,120, F6 10,164; 840 RBF weights."""
    model = meta_model("lenet5_paper")
    per_layer = {
        name: sum(p.numel() for p in module.parameters())
        for name, module in [*model.features.named_children(), *model.classifier.named_children()]
    }
    assert per_layer == {
        "c1": 156, "squash1": 0, "s2": 12, "squash2": 0, "c3": 1_516, "squash3": 0,
        "s4": 32, "squash4": 0, "c5": 48_120, "squash5": 0, "f6": 10_164, "squash6": 0,
        "output": 840,
    }  # fmt: skip


# ---------------------------------------------------------------------------------------------
# LeNet-5 (LeCun et al. 1998)


def test_table_i_has_60_connections_as_the_paper_describes() -> None:
    """Section II.B, in words: six contiguous triples, six contiguous quadruples, three
    discontinuous quadruples, one map fed by all six."""
    inputs = [{i for i in range(6) if TABLE_I[i][o] == "X"} for o in range(16)]
    assert sum(row.count("X") for row in TABLE_I) == 60
    assert all(len(row) == 16 and set(row) <= {"X", "."} for row in TABLE_I)
    assert inputs[:6] == [{(o + d) % 6 for d in range(3)} for o in range(6)]
    assert inputs[6:12] == [{(o + d) % 6 for d in range(4)} for o in range(6)]
    assert inputs[12:15] == [{0, 1, 3, 4}, {1, 2, 4, 5}, {0, 2, 3, 5}]
    assert inputs[15] == set(range(6))


def per_map_reference(conv: PartialConv2d, x: torch.Tensor) -> torch.Tensor:
    """C3 computed the slow, obvious way: each output map sums the 5x5 correlations of the
    S2 maps Table I connects it to (weights taken in the layer's connection order)."""
    weights = iter(conv.weight)
    maps = []
    for o in range(16):
        total = conv.bias[o] + torch.zeros(x.shape[0], 10, 10)
        for i in range(6):
            if TABLE_I[i][o] == "X":
                total = total + F.conv2d(x[:, i : i + 1], next(weights)[None, None])[:, 0]
        maps.append(total)
    return torch.stack(maps, 1)


def test_partial_conv_equals_per_map_reference_in_values_and_gradients() -> None:
    conv = PartialConv2d(TABLE_I, kernel_size=5)
    assert sum(p.numel() for p in conv.parameters()) == 60 * 25 + 16
    assert conv.num_connections == 60
    dense = conv.dense_weight()
    mask = torch.tensor([[c == "X" for c in row] for row in TABLE_I]).t()  # (16 out, 6 in)
    assert bool((dense[~mask] == 0).all())
    x = torch.randn(3, 6, 14, 14)
    with torch.no_grad():
        conv.bias.normal_()
    ours, reference = conv(x), per_map_reference(conv, x)
    assert torch.allclose(ours, reference, atol=1e-5)
    upstream = torch.randn_like(ours)
    grads = torch.autograd.grad((ours * upstream).sum(), [conv.weight, conv.bias])
    expected = torch.autograd.grad((reference * upstream).sum(), [conv.weight, conv.bias])
    for got, want in zip(grads, expected, strict=True):
        assert torch.allclose(got, want, rtol=1e-4, atol=1e-4)


def test_c3_map_ignores_s2_maps_it_is_not_connected_to() -> None:
    conv = PartialConv2d(TABLE_I, kernel_size=5).eval()
    x = torch.randn(1, 6, 14, 14)
    bumped = x.clone()
    bumped[:, 3] += 10.0  # S2 map 3 feeds C3 maps 1, 2, 3, 6, 7, 8, 9, 12, 14, 15
    changed = (conv(bumped) - conv(x)).abs().amax((0, 2, 3)) > 1e-5
    assert changed.tolist() == [c == "X" for c in TABLE_I[3]]


def test_subsampling_on_a_hand_made_example() -> None:
    """S2: "the four inputs to a unit are added, multiplied by a trainable coefficient, and
    added to a trainable bias. The result is passed through a sigmoidal function"."""
    layer = Subsampling(1)
    with torch.no_grad():
        layer.coefficient.fill_(0.5)
        layer.bias.fill_(-1.0)
    x = torch.tensor(
        [[1.0, 2.0, 0.0, 0.0], [3.0, 4.0, 0.0, -2.0], [1.0, 1.0, 5.0, 5.0], [1.0, 1.0, 5.0, 5.0]]
    ).view(1, 1, 4, 4)
    # sums of the 2x2 windows: 10, -2 / 4, 20; times 0.5, minus 1: 4, -2 / 1, 9
    assert layer(x).view(2, 2).tolist() == [[4.0, -2.0], [1.0, 9.0]]
    squashed = ScaledTanh()(layer(x)).view(2, 2)
    expected = [[1.7159 * math.tanh(2 * v / 3) for v in row] for row in [[4, -2], [1, 9]]]
    assert torch.allclose(squashed, torch.tensor(expected))
    # Appendix A chose A and S so that f(1) = 1 and f(-1) = -1.
    assert ScaledTanh()(torch.tensor([1.0, -1.0])).tolist() == pytest.approx([1.0, -1.0], abs=1e-4)
    assert sum(p.numel() for p in Subsampling(6).parameters()) == 12  # one coefficient + one bias


def test_rbf_output_is_negative_squared_euclidean_distance() -> None:
    layer = EuclideanRBF(84, 10)
    assert set(layer.weight.unique().tolist()) <= {-1.0, 1.0}  # +-1 prototypes, like the bitmaps
    x = torch.randn(5, 84) * 1.7
    expected = -torch.cdist(x, layer.weight).square()
    assert torch.allclose(layer(x), expected, rtol=1e-5, atol=1e-3)
    assert layer(layer.weight.detach()).diagonal().abs().max() <= 1e-4  # at a prototype: 0
    assert not hasattr(layer, "bias") or layer.bias is None


def test_lenet_volumes() -> None:
    paper = output_shapes("lenet5_paper", (1, 32, 32))
    assert [paper[f"features.{n}"] for n in ("c1", "s2", "c3", "s4", "c5")] == [
        (6, 28, 28), (6, 14, 14), (16, 10, 10), (16, 5, 5), (120, 1, 1),
    ]  # fmt: skip
    assert paper["classifier.f6"] == (84,) and paper["classifier.output"] == (10,)
    # The modern lenet5 pads 28x28 to the same geometry.
    modern = output_shapes("lenet5", (1, 28, 28))
    assert [modern[f"features.{n}"] for n in ("c1", "s2", "c3", "s4")] == [
        paper[f"features.{n}"] for n in ("c1", "s2", "c3", "s4")
    ]


def test_lenet5_paper_initialisation_follows_appendix_a() -> None:
    model = cnnlab.create_model("lenet5_paper")
    c1, f6 = model.features.c1, model.classifier.f6
    assert c1.weight.abs().max() <= 2.4 / 25 and c1.weight.abs().max() > 0.8 * 2.4 / 25
    assert f6.weight.abs().max() <= 2.4 / 120
    c3 = model.features.c3  # maps 0-5 have 3 inputs, 6-14 four, 15 all six (Table I)
    bound = torch.tensor(
        [2.4 / (25 * sum(r[o] == "X" for r in TABLE_I)) for o, _ in c3.connections]
    )
    largest = c3.weight.abs().amax((1, 2))
    assert bool((largest <= bound).all()) and bool((largest > 0.5 * bound).all())


# ---------------------------------------------------------------------------------------------
# Local response normalisation (Krizhevsky et al. 2012, Section 3.3)


def paper_lrn(
    a: torch.Tensor, n: int = 5, k: float = 2.0, alpha: float = 1e-4, beta: float = 0.75
) -> torch.Tensor:
    """Section 3.3 written out: sum over channels max(0, i - n/2) .. min(N - 1, i + n/2)."""
    channels = a.shape[1]
    out = torch.empty_like(a)
    for i in range(channels):
        lo, hi = max(0, i - n // 2), min(channels - 1, i + n // 2)
        out[:, i] = a[:, i] / (k + alpha * a[:, lo : hi + 1].square().sum(1)) ** beta
    return out


def test_lrn_is_the_papers_formula_and_pytorchs_layer() -> None:
    x = torch.randn(2, 12, 5, 5) * 30.0  # large activations, where the normalisation bites
    ours = CrossChannelLRN()(x)
    assert torch.allclose(ours, paper_lrn(x), rtol=1e-5, atol=1e-6)
    # PyTorch's layer divides alpha by n: with alpha = n * 1e-4 it is the same layer.
    torch_layer = nn.LocalResponseNorm(5, alpha=5 * 1e-4, beta=0.75, k=2.0)
    assert torch.allclose(ours, torch_layer(x), rtol=1e-5, atol=1e-6)
    assert isinstance(CrossChannelLRN(), nn.LocalResponseNorm)
    # The literal call with alpha=1e-4 is a different (five times weaker) normalisation.
    literal = nn.LocalResponseNorm(5, alpha=1e-4, beta=0.75, k=2.0)(x)
    assert not torch.allclose(ours, literal, rtol=1e-3)


# ---------------------------------------------------------------------------------------------
# AlexNet (Krizhevsky et al. 2012) and ZFNet (Zeiler & Fergus 2013)


def test_alexnet_paper_output_volumes() -> None:
    """Figure 2 and the lectures: 55x55x96, 27x27x96, 27x27x256, 13x13x256, 13x13x384, ... 6x6."""
    shapes = output_shapes("alexnet_paper", (3, 227, 227))
    f = {k.removeprefix("features."): v for k, v in shapes.items()}
    assert f["conv1"] == (96, 55, 55)
    assert f["norm1"] == f["relu1"] == (96, 55, 55)  # LRN after the ReLU, before the pool
    assert f["pool1"] == (96, 27, 27)
    assert f["conv2"] == (256, 27, 27)
    assert f["pool2"] == (256, 13, 13)
    assert f["conv3"] == (384, 13, 13)
    assert f["conv4"] == (384, 13, 13)
    assert f["conv5"] == (256, 13, 13)
    assert f["pool5"] == (256, 6, 6)
    assert shapes["avgpool"] == (256, 6, 6)  # an identity at the paper's size
    assert [shapes[f"classifier.fc{i}"] for i in (6, 7, 8)] == [(4096,), (4096,), (1000,)]
    assert "norm3" not in f and "norm2" in f


def test_alexnet_paper_layout() -> None:
    model = meta_model("alexnet_paper")
    groups = {n: m.groups for n, m in model.features.named_children() if isinstance(m, nn.Conv2d)}
    assert groups == {"conv1": 1, "conv2": 2, "conv3": 1, "conv4": 2, "conv5": 2}
    pools = [m for m in model.features if isinstance(m, nn.MaxPool2d)]
    assert all((p.kernel_size, p.stride) == (3, 2) for p in pools) and len(pools) == 3
    lrn = model.features.norm1
    assert (lrn.size, lrn.paper_alpha, lrn.beta, lrn.k) == (5, 1e-4, 0.75, 2.0)
    # Dropout acts on the outputs of fc6 and fc7 (Section 4.2).
    order = [type(m).__name__ for m in model.classifier]
    assert order == ["Linear", "ReLU", "Dropout"] * 2 + ["Linear"]
    assert all(m.p == 0.5 for m in model.classifier if isinstance(m, nn.Dropout))


def test_alexnet_paper_initialisation_follows_section_5(alexnet_paper: nn.Module) -> None:
    model = alexnet_paper
    layers = {**dict(model.features.named_children()), **dict(model.classifier.named_children())}
    for name in ("conv1", "conv2", "conv3", "conv4", "conv5", "fc6", "fc7", "fc8"):
        expected_bias = 1.0 if name in ("conv2", "conv4", "conv5", "fc6", "fc7") else 0.0
        assert bool((layers[name].bias == expected_bias).all()), name
    assert layers["fc6"].weight.std().item() == pytest.approx(0.01, rel=0.01)


@pytest.mark.parametrize("towers", [2, 1])
def test_conv2_towers_are_independent(towers: int) -> None:
    """With two towers, conv2's second half of filters sees only conv1's second half of maps."""
    conv2 = meta_model("alexnet_paper", towers=towers).features.conv2.to_empty(device="cpu")
    conv2.reset_parameters()
    x = torch.randn(1, 96, 27, 27)
    bumped = x.clone()
    bumped[:, :48] += torch.randn(1, 48, 27, 27)  # change only the maps of GPU 1
    delta = (conv2(bumped) - conv2(x)).abs().amax((0, 2, 3))  # (256,) per output map
    assert bool((delta[:128] > 0).all())
    if towers == 2:
        assert bool((delta[128:] == 0).all())
    else:
        assert bool((delta[128:] > 0).all())


def test_alexnet_paper_rejects_small_input_naming_the_minimum(alexnet_paper: nn.Module) -> None:
    model = alexnet_paper
    with pytest.raises(InputSizeError) as caught:
        model(torch.randn(1, 3, 64, 64))
    message = str(caught.value)
    assert "at least 3x67x67" in message and "64x64" in message and "\n" not in message
    with torch.no_grad():  # larger inputs run, thanks to the adaptive pool
        assert model(torch.randn(1, 3, 67, 67)).shape == (1, 1000)


def test_paper_hyperparameters_are_validated() -> None:
    with pytest.raises(ConfigError, match="towers=5"):
        cnnlab.create_model("alexnet_paper", towers=5)
    with pytest.raises(ConfigError, match="three positive widths"):
        cnnlab.create_model("zfnet", conv3_5_filters=(512, 1024))


def test_zfnet_follows_figure_3_geometry_and_the_slides_widths() -> None:
    shapes = output_shapes("zfnet", (3, 224, 224))
    f = {k.removeprefix("features."): v for k, v in shapes.items()}
    # Figure 3: 110x110x96 -> 55x55x96 -> 26x26x256 -> 13x13x256 -> 13 -> 13 -> 13 -> 6x6.
    assert f["conv1"] == (96, 110, 110) and f["pool1"] == (96, 55, 55)
    assert f["conv2"] == (256, 26, 26) and f["pool2"] == (256, 13, 13)
    # Slides (seeds/000 and 002): conv3, 4, 5 at 512, 1024, 512.
    assert [f["conv3"], f["conv4"], f["conv5"]] == [(512, 13, 13), (1024, 13, 13), (512, 13, 13)]
    assert f["pool5"] == (512, 6, 6)
    model = meta_model("zfnet")
    assert (model.features.conv1.kernel_size, model.features.conv1.stride) == ((7, 7), (2, 2))
    # Figure 3's own widths are one argument away: 9216 inputs to fc6, as in the figure.
    fig3 = meta_model("zfnet", conv3_5_filters=(384, 384, 256))
    assert fig3.classifier.fc6.in_features == 256 * 6 * 6


# ---------------------------------------------------------------------------------------------
# VGG (Simonyan & Zisserman 2014)


def conv_kernels(model: nn.Module) -> list[int]:
    return [m.kernel_size[0] for m in model.features if isinstance(m, nn.Conv2d)]


def test_vgg_weight_layer_counts_match_the_names() -> None:
    """Table 1: A has 11 weight layers, B 13, C and D 16, E 19 (convolutions + 3 FC)."""
    for name, depth in [("vgg11", 11), ("vgg13", 13), ("vgg16_c", 16), ("vgg16", 16)]:
        assert len(conv_kernels(meta_model(name))) + 3 == depth
    assert len([c for c in TABLE_1["E"] if c.startswith("conv")]) + 3 == 19


def test_vgg_c_has_1x1_convolutions_closing_blocks_3_to_5() -> None:
    model = meta_model("vgg16_c")
    blocks: list[list[int]] = [[]]
    for m in model.features:
        if isinstance(m, nn.Conv2d):
            blocks[-1].append(m.kernel_size[0])
        elif isinstance(m, nn.MaxPool2d):
            blocks.append([])
    assert blocks[:5] == [[3, 3], [3, 3], [3, 3, 1], [3, 3, 1], [3, 3, 1]]


def test_vgg_a_lrn_normalises_after_the_first_relu() -> None:
    model = meta_model("vgg11_lrn")
    kinds = [type(m).__name__ for m in model.features][:4]
    assert kinds == ["Conv2d", "ReLU", "CrossChannelLRN", "MaxPool2d"]
    assert sum(isinstance(m, nn.LocalResponseNorm) for m in model.features) == 1


def test_vgg11_cifar_follows_the_tutorial_table() -> None:
    """seeds/003: 32 -> 16 -> 8 -> 4 -> 2 -> 1 after the pools; FC 512-2048-2048-10."""
    model = meta_model("vgg11_cifar")
    shapes = output_shapes("vgg11_cifar", (3, 32, 32))
    pools = [i for i, m in enumerate(model.features) if isinstance(m, nn.MaxPool2d)]
    assert [shapes[f"features.{i}"][1] for i in pools] == [16, 8, 4, 2, 1]
    fcs = [m for m in model.classifier if isinstance(m, nn.Linear)]
    assert [(m.in_features, m.out_features) for m in fcs] == [(512, 2048), (2048, 2048), (2048, 10)]
    with pytest.raises(InputSizeError, match="exactly 3x32x32"):
        model(torch.randn(1, 3, 64, 64))


# ---------------------------------------------------------------------------------------------
# Network in Network (Lin et al. 2013; d2l 8.3 configuration)


def test_nin_volumes_and_global_average_pooling() -> None:
    model = cnnlab.create_model("nin", num_classes=10)
    shapes = output_shapes("nin", (3, 224, 224), num_classes=10)
    sizes = [shapes[f"features.{n}"] for n in ("mlpconv1", "pool1", "pool2", "pool3", "mlpconv4")]
    assert sizes == [(96, 54, 54), (96, 26, 26), (256, 12, 12), (384, 5, 5), (10, 5, 5)]
    # Each mlpconv is a conv and two 1x1 convs, each followed by a ReLU.
    kinds = [type(m).__name__ for m in model.features.mlpconv2]
    assert kinds == ["Conv2d", "ReLU"] * 3
    assert [m.kernel_size[0] for m in model.features.mlpconv2 if isinstance(m, nn.Conv2d)] == [
        5,
        1,
        1,
    ]
    # No fully connected layer: the scores are the class maps' spatial means.
    assert not any(isinstance(m, nn.Linear) for m in model.modules())
    model.eval()
    x = torch.randn(2, 3, 96, 96)
    with torch.no_grad():
        assert torch.allclose(model(x), model.features(x).mean((2, 3)), atol=1e-6)
