"""cnnlab.seeing checked by identities that hold exactly, not by looking at pictures.

* Grad-CAM equals CAM on a network that ends in global average pooling and one linear layer.
* The effective receptive field is exactly zero outside the analyzer's box, and fills it when
  nothing can cancel (positive weights, no nonlinearity).
* Occlusion by one window covering the whole image is the change of the class score.
* Saliency is ``torch.autograd.grad`` and the closed form on a hand-built two-layer network.
* A top patch is the input region the analyzer's arithmetic gives.
* Grad-CAM of a re-initialised network differs from the trained one (Adebayo et al. 2018).
* Captum, where installed, computes the same saliency, Grad-CAM and occlusion values.

All models are random-initialised at small inputs, so the file runs in seconds.
"""

from __future__ import annotations

import functools
import gc

import pytest
import torch
from torch import nn

import cnnlab
from cnnlab import seeing
from cnnlab.errors import ConfigError
from cnnlab.registry import create_model
from helpers.optional import importable

needs_captum = pytest.mark.skipif(not importable("captum"), reason="captum not installed")


@functools.cache
def _zoo(name: str, num_classes: int = 4, in_channels: int = 3) -> nn.Module:
    """A random-initialised zoo model, built once per test process (VGG's 100M-weight head
    takes seconds to initialise). Tests that change a model build their own."""
    return _randomise_norms(create_model(name, num_classes=num_classes, in_channels=in_channels))


def _randomise_norms(model: nn.Module, seed: int = 0) -> nn.Module:
    """Batch norm that is not the identity in eval mode, so identities are not trivial."""
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for m in model.modules():
            if isinstance(m, nn.BatchNorm2d):
                m.running_mean.copy_(torch.randn(m.num_features, generator=g) * 0.1)
                m.running_var.copy_(torch.rand(m.num_features, generator=g) + 0.5)
                m.weight.copy_(torch.rand(m.num_features, generator=g) + 0.5)
                m.bias.copy_(torch.randn(m.num_features, generator=g) * 0.1)
    return model.eval()


# --- Grad-CAM == CAM ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("name", "size", "last"),
    [("resnet20", (3, 32, 32), "layer3"), ("resnet18", (3, 64, 64), "layer4")],
)
def test_gradcam_equals_cam_on_gap_linear_head(name: str, size, last: str) -> None:
    model = _randomise_norms(create_model(name, num_classes=5, in_channels=3))
    x = torch.randn(3, *size)
    cam_grad = seeing.gradcam(model, x, last)  # the maps that global pooling averages
    maps = seeing.feature_maps(model, x, last)  # (N, C, h, w)
    with torch.no_grad():
        predicted = model(x).argmax(1)
    # CAM (Zhou et al. 2016): the class's weights times the last maps.
    cam = torch.relu(torch.einsum("nchw,nc->nhw", maps, model.fc.weight[predicted]))
    h, w = maps.shape[-2:]
    torch.testing.assert_close(cam_grad * h * w, cam, atol=1e-5, rtol=1e-5)
    peak = cam.flatten(1).amax(1).view(-1, 1, 1)
    assert (peak > 0).all()
    norm_grad = cam_grad / cam_grad.flatten(1).amax(1).view(-1, 1, 1)
    assert (norm_grad - cam / peak).abs().max() < 1e-5


# --- receptive fields --------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("name", "size", "layers"),
    [
        ("alexnet", (3, 67, 67), ["features.2", "features.5"]),
        ("vgg11", (3, 32, 32), ["features.4", "features.8"]),
        ("resnet18", (3, 64, 64), ["layer1", "layer2.0.add"]),
        ("googlenet", (3, 48, 48), ["maxpool1", "conv3"]),
    ],
)
def test_effective_rf_is_zero_outside_the_box(name: str, size, layers: list[str]) -> None:
    model = _zoo(name)
    inside_somewhere = False
    for layer in layers:
        h, w = seeing.feature_maps(model, torch.zeros(1, *size), layer).shape[-2:]
        for unit in [(0, 0), (h // 2, w // 2), (h - 1, w - 1)]:
            erf = seeing.effective_rf(model, size, layer, unit, samples=2)
            box = seeing.receptive_box(model, size, layer, unit).clip(*size[1:])
            outside = erf.clone()
            outside[box.top : box.bottom, box.left : box.right] = 0
            assert torch.count_nonzero(outside) == 0, (layer, unit, box)
            assert erf[box.top : box.bottom, box.left : box.right].sum() > 0
            inside_somewhere |= box.size != tuple(size[1:])
    assert inside_somewhere  # the check is not vacuous: some box is smaller than the image


class _PositiveStack(nn.Module):
    """Convolutions and average pooling with positive weights: no gradient can cancel."""

    def __init__(self) -> None:
        super().__init__()
        self.c1 = nn.Conv2d(1, 2, 3, padding=1)
        self.pool = nn.AvgPool2d(2)
        self.c2 = nn.Conv2d(2, 2, 3, stride=2)
        self.c3 = nn.Conv2d(2, 1, 3, padding=2, dilation=2)
        self.c4 = nn.Conv2d(1, 1, 4, stride=1, padding=1)  # an even kernel: a half-pixel start
        for c in (self.c1, self.c2, self.c3, self.c4):
            nn.init.uniform_(c.weight, 0.5, 1.0)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.c4(self.c3(self.c2(self.pool(self.c1(x)))))


@pytest.mark.parametrize("layer", ["c1", "pool", "c2", "c3", "c4"])
def test_effective_rf_fills_the_box_exactly_without_cancellation(layer: str) -> None:
    model = _PositiveStack().eval()
    # 42 = 2 * 21 and (21 - 3) / 2 is whole: every window tiles, so no border row is dropped
    # (where one is, the box is still a superset of the field, but no longer equal to it).
    size = (1, 42, 42)
    h, w = seeing.feature_maps(model, torch.zeros(1, *size), layer).shape[-2:]
    for unit in [(0, 0), (h // 2, w // 3), (h - 1, w - 1)]:
        erf = seeing.effective_rf(model, size, layer, unit, inputs=torch.ones(1, *size))
        box = seeing.receptive_box(model, size, layer, unit).clip(42, 42)
        expected = torch.zeros(42, 42, dtype=torch.bool)
        expected[box.top : box.bottom, box.left : box.right] = True
        assert torch.equal(erf > 0, expected), (layer, unit, box)


def test_analyzer_start_offsets() -> None:
    r = cnnlab.analyze("alexnet", (3, 227, 227))
    assert r.row("features.0").start == 3.0  # 11x11, stride 4, pad 2: first centre at pixel 3
    assert r.row("features.2").start == 7.0  # 3x3 max-pool at jump 4: 3 + 1 * 4
    assert "start" in r.row("features.0").to_dict()
    r = cnnlab.analyze("fastnet", (1, 28, 28))
    # 4x4 at stride 2, padding 1: the first window spans pixels -1..2, centred between 0 and 1
    assert r.row("stages.0.0").start == 0.5


# --- occlusion, saliency -----------------------------------------------------------------------


@pytest.mark.parametrize("score", ["logit", "probability"])
def test_occlusion_with_the_whole_image_as_window_is_the_score_change(score: str) -> None:
    model = _randomise_norms(create_model("fastnet", num_classes=6, in_channels=1))
    x = torch.randn(3, 1, 28, 28)
    fill = 0.3
    sens = seeing.occlusion(model, x, window=28, stride=1, target=2, fill=fill, score=score)
    with torch.no_grad():
        a, b = model(x), model(torch.full_like(x, fill))
        if score == "probability":
            a, b = a.softmax(1), b.softmax(1)
    change = (a[:, 2] - b[:, 2]).view(3, 1, 1).expand(3, 28, 28)
    torch.testing.assert_close(sens, change, atol=1e-6, rtol=1e-5)


def test_occlusion_batches_give_the_same_map() -> None:
    model = create_model("lenet5", num_classes=4, in_channels=1).eval()
    x = torch.randn(2, 1, 28, 28)
    a = seeing.occlusion(model, x, window=5, stride=3, batch_size=7)
    b = seeing.occlusion(model, x, window=5, stride=3, batch_size=1000)
    torch.testing.assert_close(a, b)


def test_saliency_on_a_two_layer_network_is_autograd_and_the_closed_form() -> None:
    torch.manual_seed(3)
    model = nn.Sequential(nn.Flatten(), nn.Linear(12, 7), nn.ReLU(), nn.Linear(7, 3)).eval()
    x = torch.randn(4, 1, 2, 6)
    target = torch.tensor([0, 2, 1, 2])
    got = seeing.saliency(model, x, target)
    xr = x.clone().requires_grad_(True)
    (expected,) = torch.autograd.grad(model(xr).gather(1, target[:, None]).sum(), xr)
    assert torch.equal(got, expected)
    w1, b1, w2 = model[1].weight, model[1].bias, model[3].weight
    active = (x.flatten(1) @ w1.T + b1 > 0).float()  # (N, 7)
    closed = torch.einsum("nh,hd->nd", active * w2[target], w1).view_as(x)
    torch.testing.assert_close(got, closed)


def test_smoothgrad_with_no_noise_is_the_gradient() -> None:
    model = create_model("lenet5", num_classes=4, in_channels=1).eval()
    x = torch.randn(2, 1, 28, 28)
    plain = seeing.saliency(model, x, 1)
    torch.testing.assert_close(seeing.smoothgrad(model, x, 1, samples=3, noise=0.0), plain)
    noisy = seeing.smoothgrad(model, x, 1, samples=8, noise=0.2, seed=1)
    assert torch.equal(noisy, seeing.smoothgrad(model, x, 1, samples=8, noise=0.2, seed=1))
    assert not torch.allclose(noisy, plain)


# --- top patches -------------------------------------------------------------------------------


def test_top_patch_crop_is_the_analyzers_region() -> None:
    model = _randomise_norms(create_model("fastnet", num_classes=3, in_channels=1))
    x = torch.randn(10, 1, 28, 28)
    layer = "stages.1.3"
    patches = seeing.top_patches(model, x, layer, channels=4, k=3)
    row = cnnlab.analyze(model, (1, 28, 28)).row(layer)
    rf, jump, start = row.receptive_field, row.jump, row.start
    maps = seeing.feature_maps(model, x, layer)
    for m in range(4):
        c = int(patches.channels[m])
        for r in range(3):
            n = int(patches.images[m, r])
            i, j = (int(v) for v in patches.units[m, r])
            assert patches.activations[m, r] == maps[n, c, i, j] == maps[n, c].max()
            top, left = int(start + i * jump - (rf - 1) / 2), int(start + j * jump - (rf - 1) / 2)
            expected = torch.full((1, rf, rf), float("nan"))
            for a in range(rf):
                for b in range(rf):
                    if 0 <= top + a < 28 and 0 <= left + b < 28:
                        expected[0, a, b] = x[n, 0, top + a, left + b]
            torch.testing.assert_close(patches.crops[m, r], expected, equal_nan=True)
        assert patches.activations[m].diff().le(0).all()  # strongest first
        assert len(set(patches.images[m].tolist())) == 3  # one patch per image


# --- the Adebayo et al. sanity check -----------------------------------------------------------


def _bars(n: int, g: torch.Generator) -> tuple[torch.Tensor, torch.Tensor]:
    """16x16 noise with one bright bar: horizontal (class 0) or vertical (class 1)."""
    x = torch.randn(n, 1, 16, 16, generator=g) * 0.3
    y = torch.randint(0, 2, (n,), generator=g)
    pos = torch.randint(0, 12, (n, 2), generator=g)
    for k in range(n):
        r, c = int(pos[k, 0]), int(pos[k, 1])
        if y[k] == 0:
            x[k, 0, r + 2, c : c + 5] += 2.0
        else:
            x[k, 0, r : r + 5, c + 2] += 2.0
    return x, y


def _small_cnn() -> nn.Module:
    return nn.Sequential(
        nn.Conv2d(1, 8, 3, padding=1), nn.ReLU(inplace=True), nn.MaxPool2d(2),
        nn.Conv2d(8, 16, 3, padding=1), nn.ReLU(inplace=True),
        nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(16, 2),
    )  # fmt: skip


def test_gradcam_of_a_reinitialised_network_differs() -> None:
    g = torch.Generator().manual_seed(0)
    x, y = _bars(512, g)
    torch.manual_seed(0)
    model = _small_cnn()
    opt = torch.optim.Adam(model.parameters(), lr=0.01)
    for step in range(120):
        s = slice((step * 64) % 512, (step * 64) % 512 + 64)
        loss = nn.functional.cross_entropy(model(x[s]), y[s])
        opt.zero_grad()
        loss.backward()
        opt.step()
    test_x, test_y = _bars(64, g)
    with torch.no_grad():
        assert (model(test_x).argmax(1) == test_y).float().mean() > 0.9
    trained = seeing.gradcam(model, test_x, "4", test_y)  # (64, 8, 8)
    # The trained map points at the bar: its peak cell's field covers the bar's brightest pixel.
    peaks = trained.flatten(1).argmax(1)
    hits = 0
    for k in range(64):
        i, j = divmod(int(peaks[k]), 8)
        box = seeing.receptive_box(model, (1, 16, 16), "4", (i, j)).clip(16, 16)
        bar = (test_x[k, 0] > 1.2).nonzero()
        hits += any(
            box.top <= r < box.bottom and box.left <= c < box.right for r, c in bar.tolist()
        )
    assert hits >= 48
    for m in model.modules():  # cascading randomisation of every layer
        if hasattr(m, "reset_parameters"):
            m.reset_parameters()
    random = seeing.gradcam(model, test_x, "4", test_y)
    rank = torch.stack(
        [_spearman(a.flatten(), b.flatten()) for a, b in zip(trained, random, strict=True)]
    )
    assert rank.nanmean() < 0.5, rank.nanmean()


def _spearman(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    ra, rb = a.argsort().argsort().float(), b.argsort().argsort().float()
    return torch.corrcoef(torch.stack([ra, rb]))[0, 1]


# --- captum as an independent oracle -----------------------------------------------------------


@needs_captum
@pytest.mark.filterwarnings("ignore:Input Tensor 0 did not already require gradients")
def test_matches_captum_saliency_gradcam_and_occlusion() -> None:
    from captum.attr import LayerGradCam, Occlusion, Saliency

    model = _randomise_norms(create_model("resnet20", num_classes=5, in_channels=3))
    x = torch.randn(2, 3, 32, 32)
    target = torch.tensor([1, 4])
    ours = seeing.saliency(model, x, target)
    theirs = Saliency(model).attribute(x, target=target, abs=False)
    torch.testing.assert_close(ours, theirs, atol=1e-6, rtol=1e-5)
    ours = seeing.gradcam(model, x, "layer3", target)
    theirs = LayerGradCam(model, model.layer3).attribute(x, target=target, relu_attributions=True)
    torch.testing.assert_close(ours, theirs[:, 0], atol=1e-6, rtol=1e-5)
    ours = seeing.occlusion(model, x, window=8, stride=8, target=target)
    theirs = Occlusion(model).attribute(
        x, sliding_window_shapes=(3, 8, 8), strides=(3, 8, 8), target=target, baselines=0.0
    )
    torch.testing.assert_close(ours, theirs[:, 0], atol=1e-5, rtol=1e-5)


# --- layers, hooks, precision ------------------------------------------------------------------


def test_functional_rows_and_containers_tap_the_same_tensor() -> None:
    model = _zoo("resnet18")
    x = torch.randn(2, 3, 64, 64)
    a = seeing.feature_maps(model, x, "layer4")
    assert torch.equal(a, seeing.feature_maps(model, x, "layer4.1.relu:2"))
    add = seeing.feature_maps(model, x, "layer4.1.add")
    assert torch.equal(a, torch.relu(add))  # the block's last ReLU follows its addition
    g = _zoo("googlenet")
    y = torch.randn(1, 3, 48, 48)
    assert torch.equal(
        seeing.feature_maps(g, y, "inception5b"), seeing.feature_maps(g, y, "inception5b.cat")
    )


def test_defaults_avoid_global_pooling_and_one_by_one_maps() -> None:
    # Measured defaults (benchmarks/faithfulness.py): FastNet's 7x7 stage, not the 3x3 one.
    assert seeing.default_layer(create_model("fastnet"), (1, 28, 28), "gradcam") == "stages.1"
    lenet = create_model("lenet5", num_classes=10, in_channels=1)
    assert seeing.default_layer(lenet, (1, 28, 28), "gradcam") == "features.c3"
    paper = create_model("lenet5_paper", num_classes=10, in_channels=1)
    assert seeing.default_layer(paper, (1, 32, 32), "gradcam") == "features.c3"  # the family's
    resnet = create_model("resnet18", num_classes=4, in_channels=3)
    assert seeing.default_layer(resnet, (3, 112, 112), "gradcam") == "layer3"  # 7x7, measured
    report = seeing.layers.analysis(paper, (1, 32, 32))
    assert seeing.layers.last_spatial_block(report) == "features.squash3"  # not c5's 1x1
    with torch.device("meta"):  # defaults come from the analyzer alone: no weights needed
        vgg = create_model("vgg11", num_classes=3, in_channels=3)
    assert seeing.default_layer(vgg, (3, 32, 32), "gradcam") == "features.19"
    assert seeing.default_layer(vgg, (3, 32, 32), "embeddings") == "classifier.5"


def test_unknown_layer_is_one_line_listing_the_valid_names() -> None:
    model = create_model("fastnet")
    with pytest.raises(ConfigError) as err:
        seeing.gradcam(model, torch.randn(1, 1, 28, 28), "stages.9")
    msg = str(err.value)
    assert "\n" not in msg and "stages.2.4.add" in msg and "did you mean" in msg
    with pytest.raises(ConfigError, match="needs a map"):
        seeing.gradcam(model, torch.randn(1, 1, 28, 28), "fc")


def test_inplace_relu_does_not_overwrite_the_tapped_convolution() -> None:
    model = nn.Sequential(
        nn.Conv2d(1, 4, 3), nn.ReLU(inplace=True), nn.Conv2d(4, 2, 3), nn.ReLU(inplace=True),
        nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(2, 3),
    ).eval()  # fmt: skip
    x = torch.randn(2, 1, 10, 10)
    conv = seeing.feature_maps(model, x, "0")
    with torch.no_grad():
        torch.testing.assert_close(conv, model[0](x))
    assert (conv < 0).any()  # the ReLU after it did not touch the tapped tensor
    with torch.no_grad():
        logits = model(x)  # and the network's own output is unchanged by the tap
    assert seeing.gradcam(model, x, "0").shape == (2, 8, 8)
    with torch.no_grad():
        torch.testing.assert_close(model(x), logits)


def test_fp32_eval_whatever_the_model_was_left_in() -> None:
    model = _randomise_norms(create_model("resnet20", num_classes=4, in_channels=3))
    model.fc = nn.Sequential(nn.Dropout(0.5), model.fc)
    x = torch.randn(2, 3, 32, 32)
    reference = seeing.gradcam(model.eval(), x)
    low = model.to(torch.bfloat16).train()
    got = seeing.gradcam(low, x)
    assert got.dtype == torch.float32
    assert low.training and all(m.training for m in low.modules())  # flags restored
    assert next(low.parameters()).dtype == torch.bfloat16  # the model itself is unchanged
    expect = seeing.gradcam(create_model_copy_in_fp32(low), x)
    torch.testing.assert_close(got, expect)
    assert reference.shape == got.shape


def create_model_copy_in_fp32(model: nn.Module) -> nn.Module:
    import copy

    return copy.deepcopy(model).float().eval()


class _Block(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.conv = nn.Conv2d(2, 2, 3, padding=1)
        self.relu = nn.ReLU(inplace=True)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.relu(self.conv(x) + x)  # a functional row: block.add


class _Tiny(nn.Module):
    def __init__(self, fail: bool = False) -> None:
        super().__init__()
        self.stem = nn.Conv2d(1, 2, 3, padding=1)
        self.block = _Block()
        self.fc = nn.Linear(2, 3)
        self.fail = fail

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.block(self.stem(x))
        if self.fail and x.device.type != "meta":  # the analyzer's trace runs on meta
            raise RuntimeError("boom after the layer")
        return self.fc(x.mean((2, 3)))


def _hooks(model: nn.Module) -> int:
    return sum(
        len(m._forward_hooks) + len(m._forward_pre_hooks) + len(m._backward_hooks)
        for m in model.modules()
    )


def _live_tensors() -> int:
    gc.collect()
    return sum(type(o) in (torch.Tensor, nn.Parameter) for o in gc.get_objects())


def test_hooks_are_removed_and_nothing_leaks_over_200_calls() -> None:
    model = _Tiny().eval()
    x = torch.randn(2, 1, 8, 8)
    seeing.feature_maps(model, x, "block.add")  # warm the analysis cache
    gc.collect()
    before = _live_tensors()
    for k in range(200):  # a tensor kept per call would leave 100 or more behind
        if k % 2:
            seeing.gradcam(model, x, "block")
        else:
            seeing.feature_maps(model, x, "block.add")
    gc.collect()
    after = _live_tensors()
    assert _hooks(model) == 0
    assert torch._C._len_torch_function_stack() == 0
    assert torch.is_grad_enabled()
    assert after - before < 10, (before, after)
    failing = _Tiny(fail=True).eval()
    for layer in ("block", "block.add", "stem"):
        with pytest.raises(RuntimeError, match="boom"):
            seeing.gradcam(failing, x, layer)
        assert _hooks(failing) == 0 and torch._C._len_torch_function_stack() == 0
        assert torch.is_grad_enabled()


def test_embeddings_pca_and_tsne() -> None:
    model = create_model("lenet5", num_classes=3, in_channels=1).eval()
    x = torch.randn(40, 1, 28, 28)
    pts = seeing.embeddings(model, x)
    assert pts.shape == (40, 2)
    feats = seeing.feature_maps(model, x, "classifier.relu6").double()
    centred = feats - feats.mean(0)
    var = centred.var(0).sum()
    assert pts.double().var(0).sum() <= var + 1e-6  # a projection keeps at most all the variance
    assert torch.allclose(pts[:, 0].double().var(), torch.linalg.svdvals(centred)[0] ** 2 / 39)
    if importable("sklearn"):
        t = seeing.embeddings(model, x, method="tsne")
        assert t.shape == (40, 2) and torch.isfinite(t).all()
    with pytest.raises(ConfigError, match="pca"):
        seeing.embeddings(model, x, method="umap")


def test_mistakes_are_the_most_confident_wrong_predictions() -> None:
    model = create_model("lenet5", num_classes=4, in_channels=1).eval()
    x = torch.randn(50, 1, 28, 28)
    with torch.no_grad():
        probs = model(x).softmax(1)
    labels = (probs.argmax(1) + torch.randint(0, 2, (50,))) % 4  # about half wrong
    found = seeing.mistakes(model, x, labels, k=5)
    wrong = (probs.argmax(1) != labels).nonzero().flatten()
    best = probs.max(1).values[wrong].sort(descending=True).values[: len(found.index)]
    torch.testing.assert_close(found.confidence, best)
    assert (found.predicted != found.true).all()
    assert found.confusion.sum() == 50 and found.pairs == sorted(found.pairs, key=lambda p: -p[2])
