"""GoogLeNet, Inception v3, ResNet and DenseNet against published figures and torchvision.

The registry-generated tests (tests/test_zoo.py) already check every model's parameter count,
minimum input and torchvision parity at its defaults. This file checks what those cannot:
the figures in /work/shared/REFERENCE.md (cited per test), the paper-specific structure
(v1 vs v1.5 stride, option-A shortcuts, Table 1 of GoogLeNet), training-mode outputs and
the user errors. Counts run on the meta device; forwards use small inputs.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest
import torch
import torchvision
from torch import nn

import cnnlab
from cnnlab.errors import ConfigError, InputSizeError
from cnnlab.models.densenet import DenseNet, cifar_block_config
from cnnlab.models.googlenet import (
    AUX_LOSS_WEIGHT,
    GOOGLENET_TABLE,
    GoogLeNetOutputs,
    InceptionOutputs,
)
from cnnlab.models.resnet import CifarResNet, ResNet, ZeroPadShortcut

FAMILIES = ("googlenet", "resnet", "densenet")


@pytest.fixture(autouse=True)
def one_thread() -> Iterator[None]:
    """The forwards here are tiny: one thread avoids OpenMP thrashing on a busy 2-core box."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


def count(name: str, **kwargs: object) -> int:
    with torch.device("meta"):
        model = cnnlab.create_model(name, **kwargs)
    return sum(p.numel() for p in model.parameters())


def macs(model: nn.Module, size: int) -> int:
    """Multiply-adds of convolutions and linear layers, bias excluded (REFERENCE.md's GMACs)."""
    total = 0

    def hook(module: nn.Module, _: object, out: torch.Tensor) -> None:
        nonlocal total
        if isinstance(module, nn.Conv2d):
            kh, kw = module.kernel_size
            total += out[0].numel() * (module.in_channels // module.groups) * kh * kw
        else:
            total += module.in_features * module.out_features

    for m in model.modules():
        if isinstance(m, nn.Conv2d | nn.Linear):
            m.register_forward_hook(hook)
    with torch.device("meta"):
        model.to("meta").eval()(torch.empty(1, 3, size, size))
    return total


# REFERENCE.md, "torchvision 0.29 classification models": params with sum(p.numel()).
TORCHVISION_PARAMS = {
    ("googlenet", False): 6_624_904,  # aux_logits=False
    ("inception_v3", False): 23_834_568,  # aux_logits=False
    ("resnet18", None): 11_689_512,
    ("resnet34", None): 21_797_672,
    ("resnet50", None): 25_557_032,
    ("resnet101", None): 44_549_160,
    ("resnet152", None): 60_192_808,
    ("resnext50_32x4d", None): 25_028_904,
    ("resnext101_32x8d", None): 88_791_336,
    ("wide_resnet50_2", None): 68_883_240,
    ("densenet121", None): 7_978_856,
    ("densenet161", None): 28_681_000,
    ("densenet169", None): 14_149_480,
    ("densenet201", None): 20_013_928,
}


@pytest.mark.parametrize(("name", "aux"), list(TORCHVISION_PARAMS))
def test_torchvision_parameter_counts_match_reference(name: str, aux: bool | None) -> None:
    kwargs = {} if aux is None else {"aux_logits": aux}
    assert count(name, **kwargs) == TORCHVISION_PARAMS[name, aux]


# REFERENCE.md, torchvision table, GMACs column (conv + linear multiply-adds).
@pytest.mark.parametrize(
    ("name", "size", "gmacs"),
    [("resnet18", 224, 1.814), ("resnet50", 224, 4.089), ("googlenet", 224, 1.498),
     ("densenet121", 224, 2.834), ("inception_v3", 299, 5.713)],
)  # fmt: skip
def test_torchvision_macs_match_reference(name: str, size: int, gmacs: float) -> None:
    # In eval mode the auxiliary heads do not run, so they add no multiply-adds.
    with torch.device("meta"):
        model = cnnlab.create_model(name, check_input=False)
    assert round(macs(model, size) / 1e9, 3) == gmacs


# --- ResNet: paper v1 versus torchvision v1.5 -----------------------------------------------------


@pytest.mark.parametrize(
    ("depth", "paper_gmacs"), [(50, 3.8), (101, 7.6), (152, 11.3)]
)  # REFERENCE.md "ResNet (He et al. 2015, Table 1)": 3.8 / 7.6 / 11.3 x10^9 FLOPs (multiply-adds)
def test_resnet_v1_and_v15_differ_only_in_where_the_stride_sits(
    depth: int, paper_gmacs: float
) -> None:
    with torch.device("meta"):
        v1 = cnnlab.create_model(f"resnet{depth}_paper")
        v15 = cnnlab.create_model(f"resnet{depth}")
    assert sum(p.numel() for p in v1.parameters()) == sum(p.numel() for p in v15.parameters())
    assert [k for k, _ in v1.named_parameters()] == [k for k, _ in v15.named_parameters()]
    for stage in ("layer2", "layer3", "layer4"):
        first_v1, first_v15 = getattr(v1, stage)[0], getattr(v15, stage)[0]
        assert first_v1.conv1.stride == (2, 2) and first_v1.conv2.stride == (1, 1)  # v1: 1x1
        assert first_v15.conv1.stride == (1, 1) and first_v15.conv2.stride == (2, 2)  # v1.5: 3x3
        assert first_v1.downsample[0].stride == first_v15.downsample[0].stride == (2, 2)
    # The stride on the first 1x1 is cheaper: the paper's figure fits v1 better than v1.5.
    v1_macs, v15_macs = macs(v1, 224), macs(v15, 224)
    assert abs(v1_macs / 1e9 - paper_gmacs) / paper_gmacs < 0.02
    assert abs(v1_macs / 1e9 - paper_gmacs) < abs(v15_macs / 1e9 - paper_gmacs)
    # Derived exactly: in the first block of conv3_x .. conv5_x, v1.5 runs the first 1x1 on all
    # H x W positions instead of a quarter of them. At 224x224 each of these 1x1s costs
    # 56 * 56 * 256 * 128 = 28 * 28 * 512 * 256 = 14 * 14 * 1024 * 512 MACs at full resolution.
    full_resolution_1x1 = 56 * 56 * 256 * 128
    assert v15_macs - v1_macs == 3 * full_resolution_1x1 * 3 // 4


def test_resnet_v1_and_v15_compute_different_functions_with_the_same_weights() -> None:
    torch.manual_seed(0)
    v15 = cnnlab.create_model("resnet50").eval()
    with torch.device("meta"):  # no second initialisation: take v1.5's weights as they are
        v1 = cnnlab.create_model("resnet50_paper").eval()
    v1.load_state_dict(v15.state_dict(), strict=True, assign=True)
    x = torch.randn(1, 3, 32, 32)
    with torch.no_grad():
        assert v1(x).shape == v15(x).shape
        assert not torch.allclose(v1(x), v15(x))


# --- CIFAR ResNets and plain nets (Section 4.2) ---------------------------------------------------

# REFERENCE.md "CIFAR ResNets (Section 4.2)": 0.27M ResNet-20, 0.85M ResNet-56, 1.7M ResNet-110;
# 0.46M and 0.66M for ResNet-32/44 are the paper's Table 6.
CIFAR_PARAMS_M = {20: 0.27, 32: 0.46, 44: 0.66, 56: 0.85, 110: 1.7}


@pytest.mark.parametrize("depth", list(CIFAR_PARAMS_M))
def test_cifar_resnet_parameters_match_paper(depth: int) -> None:
    published = CIFAR_PARAMS_M[depth] * 1e6
    assert abs(count(f"resnet{depth}") - published) / published < 0.03
    # Plain nets (Fig. 6) are the same stacks: the same parameters, exactly.
    assert count(f"plain{depth}") == count(f"resnet{depth}")


def test_cifar_resnet_is_6n_plus_2_layers_with_16_32_64_filters() -> None:
    model = cnnlab.create_model("resnet56")
    convs = [m for m in model.modules() if isinstance(m, nn.Conv2d)]
    linears = [m for m in model.modules() if isinstance(m, nn.Linear)]
    assert len(convs) + len(linears) == 56  # no projection convs: option A everywhere
    assert sorted({c.out_channels for c in convs}) == [16, 32, 64]
    assert [len(getattr(model, f"layer{i}")) for i in (1, 2, 3)] == [9, 9, 9]  # n = 9
    assert model.fc.in_features == 64 and model.fc.out_features == 10


def test_option_a_shortcut_subsamples_and_zero_pads_without_parameters() -> None:
    shortcut = ZeroPadShortcut(16, 32, stride=2)
    assert not list(shortcut.parameters())
    x = torch.randn(2, 16, 8, 8)
    y = shortcut(x)
    assert y.shape == (2, 32, 4, 4)
    torch.testing.assert_close(y[:, :16], x[:, :, ::2, ::2])
    assert (y[:, 16:] == 0).all()
    resnet = cnnlab.create_model("resnet20")
    shortcuts = [m for m in resnet.modules() if isinstance(m, ZeroPadShortcut)]
    assert len(shortcuts) == 2  # at the two stage transitions 16->32 and 32->64
    assert not any(isinstance(m, ZeroPadShortcut) for m in cnnlab.create_model("plain20").modules())


def test_plain_net_differs_from_resnet_only_by_the_shortcuts() -> None:
    torch.manual_seed(0)
    resnet, plain = cnnlab.create_model("resnet20").eval(), cnnlab.create_model("plain20").eval()
    plain.load_state_dict(resnet.state_dict(), strict=True)  # same parameter names
    x = torch.randn(2, 3, 32, 32)
    with torch.no_grad():
        assert not torch.allclose(resnet(x), plain(x))
        # Zero every block's last batch norm (scale and shift): a residual block becomes the
        # identity (its shortcut carries the signal), a plain block outputs zeros.
        for model in (resnet, plain):
            for stage in (model.layer1, model.layer2, model.layer3):
                for block in stage:
                    nn.init.zeros_(block.bn2.weight)
                    nn.init.zeros_(block.bn2.bias)

        def features(model: CifarResNet) -> torch.Tensor:
            x_ = model.relu(model.bn1(model.conv1(x)))
            return model.layer3(model.layer2(model.layer1(x_)))

        stem = resnet.relu(resnet.bn1(resnet.conv1(x)))
        got = features(resnet)
        torch.testing.assert_close(got[:, :16], stem[:, :, ::4, ::4])  # identity + option A
        assert (got[:, 16:] == 0).all()  # the zero-padded channels
        assert (features(plain) == 0).all()


def test_resnet_rejects_inconsistent_configurations() -> None:
    with pytest.raises(ConfigError, match="6n\\+2"):
        CifarResNet(depth=21)
    with pytest.raises(ConfigError, match="stage depths"):
        ResNet(block=cnnlab.models.resnet.Bottleneck, layers=(3, 4, 6))
    with pytest.raises(ConfigError, match="Bottleneck"):
        cnnlab.create_model("resnet18", groups=32)


# --- DenseNet -------------------------------------------------------------------------------------


def test_densenet_bc_100_matches_the_paper() -> None:
    # REFERENCE.md "DenseNet": bottleneck width 4k, compression 0.5; Table 2: DenseNet-BC
    # (L=100, k=12) has 0.8M parameters.
    n = count("densenet_bc_100")
    assert round(n / 1e6, 1) == 0.8
    model = cnnlab.create_model("densenet_bc_100")
    blocks = [m for name, m in model.features.named_children() if name.startswith("denseblock")]
    assert [len(b) for b in blocks] == [16, 16, 16]
    layer = blocks[0].denselayer1
    assert layer.conv1.out_channels == 4 * 12 and layer.conv2.out_channels == 12
    # 24 stem maps + 16 * 12 = 216 -> compressed to 108; 108 + 192 = 300 -> 150; 150 + 192 = 342.
    assert model.features.transition1.conv.out_channels == 108
    assert model.features.transition2.conv.out_channels == 150
    assert model.classifier.in_features == 342
    assert model.features.conv0.kernel_size == (3, 3) and model.features.conv0.out_channels == 24


@pytest.mark.parametrize(
    ("name", "growth_rate", "blocks", "stem"),
    [("densenet121", 32, (6, 12, 24, 16), 64), ("densenet161", 48, (6, 12, 36, 24), 96),
     ("densenet169", 32, (6, 12, 32, 32), 64), ("densenet201", 32, (6, 12, 48, 32), 64)],
)  # fmt: skip
def test_densenet_table_1_configurations(
    name: str, growth_rate: int, blocks: tuple[int, ...], stem: int
) -> None:
    # REFERENCE.md "DenseNet (Huang et al. 2017)".
    with torch.device("meta"):
        model = cnnlab.create_model(name)
    found = [len(getattr(model.features, f"denseblock{i}")) for i in range(1, 5)]
    assert tuple(found) == blocks
    assert model.features.conv0.out_channels == stem
    assert model.features.denseblock1.denselayer1.conv2.out_channels == growth_rate
    assert model.features.denseblock1.denselayer1.conv1.out_channels == 4 * growth_rate


def test_densenet_rejects_impossible_configurations() -> None:
    assert cifar_block_config(40) == (6, 6, 6)
    with pytest.raises(ConfigError, match="6n\\+4"):
        cifar_block_config(99)
    with pytest.raises(ConfigError, match="compression"):
        DenseNet(growth_rate=12, block_config=(2, 2), num_init_features=24, compression=0.0)


# --- GoogLeNet and Inception v3 -------------------------------------------------------------------


def test_googlenet_training_outputs_equal_torchvision() -> None:
    """Named tuple (logits, aux_logits2, aux_logits1) in training mode, same values (dropout
    seeded identically: the heads and the final dropout draw in the same order)."""
    reference = torchvision.models.googlenet(weights=None, init_weights=False).train()
    with torch.device("meta"):
        ours = cnnlab.create_model("googlenet").train()
    ours.load_state_dict(reference.state_dict(), strict=True, assign=True)
    x = torch.randn(2, 3, 32, 32)
    torch.manual_seed(1)
    expected = reference(x)
    torch.manual_seed(1)
    got = ours(x)
    assert isinstance(got, GoogLeNetOutputs)
    assert got._fields == expected._fields == ("logits", "aux_logits2", "aux_logits1")
    for field in got._fields:
        torch.testing.assert_close(getattr(got, field), getattr(expected, field), atol=1e-5, rtol=0)
    assert not torch.allclose(got.aux_logits1, got.aux_logits2)
    ours.eval()
    with torch.no_grad():
        assert isinstance(ours(x), torch.Tensor)
    assert AUX_LOSS_WEIGHT == 0.3


MODERN_TORCHVISION = [
    n
    for n in cnnlab.list_models()
    if cnnlab.model_info(n).torchvision and cnnlab.model_info(n).family in FAMILIES
]


def test_every_torchvision_model_of_these_families_is_registered() -> None:
    assert len(MODERN_TORCHVISION) == 16


@pytest.mark.parametrize("name", MODERN_TORCHVISION)
def test_module_names_equal_torchvision(name: str) -> None:
    """Same module tree (names and order), not only the same parameter names."""
    kwargs = {"init_weights": False} if name in ("googlenet", "inception_v3") else {}
    with torch.device("meta"):
        reference = getattr(torchvision.models, name)(weights=None, **kwargs)
        ours = cnnlab.create_model(name)
    assert [k for k, _ in ours.named_modules()] == [k for k, _ in reference.named_modules()]


def test_inception_v3_training_outputs_and_minimum_training_input() -> None:
    with torch.device("meta"):
        model = cnnlab.create_model("inception_v3", num_classes=5).train()
        out = model(torch.empty(2, 3, 299, 299))
        assert isinstance(out, InceptionOutputs)
        assert out.logits.shape == out.aux_logits.shape == (2, 5)
        # The aux head's 5x5 conv needs a 17x17 Mixed_6e map: 298 is one pixel too few.
        with pytest.raises(InputSizeError, match=r"299x299.*aux_logits=False"):
            model(torch.empty(2, 3, 298, 298))
        model.eval()
        assert model(torch.empty(1, 3, 75, 75)).shape == (1, 5)  # eval: no aux head, 75 is enough
        no_aux = cnnlab.create_model("inception_v3", aux_logits=False).train()
        assert no_aux(torch.empty(2, 3, 75, 75)).shape == (2, 1000)


# Table 1, "depth" of each inception module's output: the sum of its four branches.
TABLE_1_OUTPUT_DEPTHS = [256, 480, 512, 512, 512, 528, 832, 832, 1024]


def test_googlenet_paper_follows_table_1() -> None:
    rows = [row for _, row in GOOGLENET_TABLE if row is not None]
    assert [row.out_channels for row in rows] == TABLE_1_OUTPUT_DEPTHS
    assert (rows[0].n1x1, rows[0].n3x3_reduce, rows[0].n3x3) == (64, 96, 128)  # (3a)
    assert (rows[-1].n5x5_reduce, rows[-1].n5x5, rows[-1].pool_proj) == (48, 128, 128)  # (5b)

    with torch.device("meta"):  # shapes and autograd only; test_zoo runs it on real data
        model = cnnlab.create_model("googlenet_paper").train()
    inceptions = [name for name, row in GOOGLENET_TABLE if row is not None]
    seen: dict[str, int] = {}
    for name in inceptions:
        getattr(model, name).register_forward_hook(
            lambda m, i, o, name=name: seen.__setitem__(name, o.shape[1])
        )
    # In-channels are derived: each module takes the previous module's output depth.
    depths = [192, *TABLE_1_OUTPUT_DEPTHS[:-1]]
    assert [getattr(model, n).branch1.conv.in_channels for n in inceptions] == depths
    for name in inceptions:
        assert getattr(model, name).branch3[1].conv.kernel_size == (5, 5)  # the true 5x5
    assert not any(isinstance(m, nn.BatchNorm2d) for m in model.modules())
    assert sum(isinstance(m, nn.LocalResponseNorm) for m in model.modules()) == 2
    assert model.maxpool4.kernel_size == 3
    assert model.dropout.p == 0.4 and AUX_LOSS_WEIGHT == 0.3
    for head, depth in (("aux1", 512), ("aux2", 528)):  # on (4a) and (4d)
        aux = getattr(model, head)
        assert aux.conv.conv.in_channels == depth and aux.conv.conv.out_channels == 128
        assert (aux.pool.kernel_size, aux.pool.stride) == (5, 3)
        assert aux.fc1.out_features == 1024 and aux.dropout.p == 0.7

    # Training mode: the three outputs, and the 0.3-weighted loss reaches the heads.
    out = model(torch.empty(2, 3, 224, 224, device="meta"))
    assert [seen[n] for n in inceptions] == TABLE_1_OUTPUT_DEPTHS
    assert isinstance(out, GoogLeNetOutputs) and all(o.shape == (2, 1000) for o in out)
    target = torch.tensor([1, 2], device="meta")
    loss = nn.functional.cross_entropy(out.logits, target) + AUX_LOSS_WEIGHT * sum(
        nn.functional.cross_entropy(a, target) for a in out[1:]
    )
    loss.backward()
    assert model.aux1.fc2.weight.grad is not None and model.aux2.fc2.weight.grad is not None
    assert model.conv1.conv.weight.grad is not None
    with pytest.raises(InputSizeError, match="exactly 3x224x224"):
        model(torch.empty(1, 3, 192, 192, device="meta"))


# --- All families: in_channels changes only the stem ----------------------------------------------


@pytest.mark.parametrize(
    ("name", "stem_weights_per_channel"),
    [("resnet18", 64 * 7 * 7), ("resnet20", 16 * 3 * 3), ("densenet121", 64 * 7 * 7),
     ("densenet_bc_100", 24 * 3 * 3), ("googlenet", 64 * 7 * 7), ("inception_v3", 32 * 3 * 3)],
)  # fmt: skip
def test_in_channels_changes_only_the_stem(name: str, stem_weights_per_channel: int) -> None:
    assert count(name) - count(name, in_channels=1) == 2 * stem_weights_per_channel


def test_cifar_resnet_learns_a_fixed_batch() -> None:
    """Fifteen SGD steps on one small batch cut the loss by more than half (it trains)."""
    torch.manual_seed(0)
    model = cnnlab.create_model("resnet20", in_channels=1).train()
    x, y = torch.randn(8, 1, 8, 8), torch.arange(8)
    optimizer = torch.optim.SGD(model.parameters(), lr=0.1, momentum=0.9)
    losses = []
    for _ in range(15):
        loss = nn.functional.cross_entropy(model(x), y)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        losses.append(loss.item())
    assert losses[-1] < 0.5 * losses[0]
