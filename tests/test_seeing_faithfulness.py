"""cnnlab.seeing.faithfulness checked where the right answer is known exactly.

* On a linear two-class model the map of the true per-pixel contributions is the best order
  there is: its deletion curve lies below every random order's at every step, its insertion
  curve above; the reversed map is worse than random.
* A constant map is a random order (ties are broken at random): in expectation it scores as
  random.
* Class sensitivity is 0 for identical maps, 2 for reversed ones, and as defined for constant
  maps; a network whose output ignores its input is flagged "no better than random".
"""

from __future__ import annotations

import json
import math

import pytest
import torch
from torch import nn

from cnnlab.registry import create_model
from cnnlab.seeing import faithfulness as F
from cnnlab.seeing import layers as L


class Linear2(nn.Module):
    """``logits = [w . x + b, 0]``: class 0's probability is ``sigmoid(w . x + b)``."""

    def __init__(self, side: int = 6, seed: int = 0) -> None:
        super().__init__()
        g = torch.Generator().manual_seed(seed)
        self.w = nn.Parameter(torch.randn(1, 1, side, side, generator=g))
        self.b = nn.Parameter(torch.zeros(()))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        s = (self.w * x).flatten(1).sum(1) + self.b
        return torch.stack([s, torch.zeros_like(s)], 1)


def _images(n: int, side: int = 6, seed: int = 1) -> torch.Tensor:
    return torch.randn(n, 1, side, side, generator=torch.Generator().manual_seed(seed))


@pytest.mark.parametrize("baseline", ["blur", 0.0])
def test_true_contributions_beat_every_random_order_on_a_linear_model(baseline) -> None:
    model, x = Linear2(), _images(16)
    t = torch.zeros(16, dtype=torch.int64)
    # Hiding pixel j changes the logit by w_j (x_j - hidden_j): the exact contribution.
    contribution = (model.w * (x - F.hidden_image(x, baseline)))[:, 0].detach()
    best = F.order_of(contribution)
    d_best, i_best = F.curves(model, x, best, t, steps=36, baseline=baseline)  # one pixel a step
    for order in F.random_orders(16, 36, 4):
        d_rand, i_rand = F.curves(model, x, order, t, steps=36, baseline=baseline)
        assert (d_best <= d_rand + 1e-6).all() and (i_best >= i_rand - 1e-6).all()
    e = F.explain(model, x, "saliency", 0, baseline=baseline)  # unused map: for the randoms
    random = (torch.tensor([s.deletion_random for s in e.scores]),
              torch.tensor([s.insertion_random for s in e.scores]))  # fmt: skip
    d, i = F.areas(model, x, contribution, t, baseline=baseline)
    assert (d <= random[0]).all() and (i >= random[1]).all()
    assert d.mean() < random[0].mean() - 0.02 and i.mean() > random[1].mean() + 0.02
    d_rev, i_rev = F.areas(model, x, -contribution, t, baseline=baseline)
    assert d_rev.mean() > random[0].mean() + 0.02 and i_rev.mean() < random[1].mean() - 0.02


def test_a_constant_map_scores_as_random_in_expectation() -> None:
    model, x = Linear2(), _images(200)
    t = torch.zeros(200, dtype=torch.int64)
    d_const, i_const = F.areas(model, x, torch.ones(200, 6, 6), t, steps=12, baseline=0.0)
    d_rand, i_rand = F.random_areas(model, x, t, steps=12, orders=1, baseline=0.0)
    for a, b in ((d_const, d_rand), (i_const, i_rand)):
        diff = a - b
        stderr = diff.std() / math.sqrt(len(diff))
        assert abs(float(diff.mean())) < 3 * float(stderr)  # same distribution of orders
        assert float(diff.abs().mean()) > 0  # ...but not the same orders
    # The constant map's order is the tie-breaking shuffle: a permutation of every pixel.
    order = F.order_of(torch.ones(3, 6, 6), seed=5)
    assert (order.sort(1).values == torch.arange(36)).all()
    assert not (order == F.random_orders(3, 36, 1, seed=5)[0]).all()


def test_class_sensitivity_by_definition() -> None:
    a = torch.rand(4, 5, 5, generator=torch.Generator().manual_seed(0))
    assert torch.equal(F.class_sensitivity(a, a), torch.zeros(4))
    assert torch.equal(F.class_sensitivity(a, 3 * a + 1), torch.zeros(4))  # only ranks count
    torch.testing.assert_close(F.class_sensitivity(a, -a), torch.full((4,), 2.0))
    flat = torch.zeros(4, 5, 5)
    assert torch.equal(F.class_sensitivity(flat, flat), torch.zeros(4))
    assert torch.equal(F.class_sensitivity(a, flat), torch.ones(4))
    # Ties share their mean rank: Spearman of [0, 0, 1] and [0, 1, 1] is 0.5.
    r = F.class_sensitivity(torch.tensor([[0.0, 0, 1]]), torch.tensor([[0.0, 1, 1]]))
    torch.testing.assert_close(r, torch.tensor([0.5]))
    torch.testing.assert_close(
        F.ranks(torch.tensor([[3.0, 1, 3, 2]])),
        torch.tensor([[2.5, 0, 2.5, 1]], dtype=torch.float64),
    )


class Deaf(nn.Module):
    """A network whose output ignores its input: no map can be evidence for anything."""

    def __init__(self) -> None:
        super().__init__()
        self.conv = nn.Conv2d(1, 2, 3, padding=1)
        self.fc = nn.Linear(2, 3)
        self.register_buffer("bias", torch.tensor([1.0, 0.5, 0.0]))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        a = self.conv(x)
        return self.fc(a.mean((2, 3)) * 0) + self.bias


@pytest.mark.parametrize("method", ["gradcam", "saliency", "occlusion"])
def test_a_network_that_ignores_its_input_is_flagged(method: str) -> None:
    x = _images(3, side=8)
    e = F.explain(Deaf(), x, method, layer="conv" if method == "gradcam" else None)
    for s in e.scores:
        assert s.deletion == pytest.approx(s.deletion_random, abs=1e-6)
        assert s.insertion == pytest.approx(s.insertion_random, abs=1e-6)
        assert not s.better_than_random and s.verdict.startswith("no better than random")
        assert any("no better than random" in c for c in s.caveats())
    assert "NO BETTER" not in e.summary.caption()  # the caption's words are lower case
    assert "no better than random" in e.summary.caption()


def test_curve_areas_and_the_blur() -> None:
    torch.testing.assert_close(F.area(torch.full((2, 5), 0.3)), torch.full((2,), 0.3))
    torch.testing.assert_close(F.area(torch.linspace(0, 1, 9)[None]), torch.tensor([0.5]))
    flat = torch.full((2, 3, 9, 7), 0.7)
    torch.testing.assert_close(F.hidden_image(flat), flat)  # a blur keeps a constant image
    x = _images(2, side=12)
    blurred = F.hidden_image(x)
    assert blurred.shape == x.shape and blurred.std() < 0.5 * x.std()
    torch.testing.assert_close(blurred.mean((2, 3)), x.mean((2, 3)), atol=0.15, rtol=0)


def test_explanation_record_and_mean() -> None:
    model = create_model("lenet5", num_classes=3, in_channels=1).eval()
    x = torch.randn(2, 1, 28, 28, generator=torch.Generator().manual_seed(0))
    with torch.inference_mode():  # as the report page calls it
        e = F.explain(model, x.clone(), "gradcam", steps=4, orders=1)
    assert e.layer == L.default_layer(model, (1, 28, 28), "gradcam")
    assert e.maps.shape == (2, 28, 28) and len(e.scores) == 2
    assert (e.runner_up != e.targets).all()
    body = json.loads(json.dumps(e.to_dict(["a", "b", "c"])))
    assert body["images"][0]["class"] in "abc" and body["mean"]["images"] == 2
    assert set(body["images"][0]) >= {
        "deletion",
        "insertion_random",
        "class_sensitivity",
        "verdict",
    }
    m = F.mean(e.scores)
    assert m.deletion == pytest.approx((e.scores[0].deletion + e.scores[1].deletion) / 2)
    good = F.Faithfulness(0.1, 0.5, 0.9, 0.5, 0.8)
    assert good.verdict == "faithful" and good.caveats() == []
    same = F.Faithfulness(0.1, 0.5, 0.9, 0.5, 0.05)
    assert same.verdict == "not class-specific" and "runner-up" in same.caveats()[0]
    with pytest.raises(Exception, match="unknown explanation"):
        F.explain(model, x, "lime")


def test_gradcam_default_is_measured_and_of_useful_resolution() -> None:
    """Families in GRADCAM_LAYERS get their measured layer; a 3x3 map is never a candidate
    when a 7x7 one exists; unmeasured families keep the last spatial block."""
    for name, size in (
        ("fastnet", (1, 28, 28)),
        ("resnet18", (3, 112, 112)),
        ("lenet5", (1, 28, 28)),
    ):
        net = create_model(name, num_classes=3, in_channels=size[0])
        report = L.analysis(net, size)
        useful = L.useful(report, L.gradcam_candidates(report))
        assert all(L._side(report, n) >= 7 for n in useful)
        family = net.cnnlab_info.family
        if family in L.GRADCAM_LAYERS:
            assert L.default_layer(net, size, "gradcam") == L.GRADCAM_LAYERS[family]
            assert L.GRADCAM_LAYERS[family] in useful
    assert "stages" not in useful_of("fastnet", (1, 28, 28))  # the 3x3 last stage
    cifar = create_model("resnet20", num_classes=3, in_channels=3)
    assert L.default_layer(cifar, (3, 32, 32), "gradcam") == "layer3"


def useful_of(name: str, size: tuple[int, ...]) -> list[str]:
    net = create_model(name, num_classes=3, in_channels=size[0])
    report = L.analysis(net, size)
    return L.useful(report, L.gradcam_candidates(report))
