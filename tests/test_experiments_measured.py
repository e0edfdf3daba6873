"""The measuring experiments: kernel-stacks, bottleneck, loss-landscape and cost.

The arithmetic they rest on is tested against independent computations: the 27C^2 / 49C^2
weights and equal receptive fields of VGG Sec. 2.3 against the analyzer, filter normalisation
(every direction filter has its weight filter's norm), the grid centre equal to the trained
network bit for bit, and Lanczos against the eigenvalues of an explicitly built Hessian. Their
smoke tiers, with their verdicts checked against their own numbers, run with every other
experiment's in ``test_experiments_smoke.py``.
"""

from __future__ import annotations

import pytest
import torch
from torch import nn

from cnnlab.analysis import analyze
from cnnlab.experiments import landscape_math as lm
from cnnlab.experiments.cost import correlations, published_top1
from cnnlab.experiments.kernel_stacks import stack_counts
from cnnlab.experiments.latency import torch_threads
from cnnlab.models.lab import STACK_WIDTH, kernel_stack

# --- VGG Sec. 2.3: weights, multiply-adds and receptive field of kernel stacks --------------------


@pytest.mark.parametrize(
    ("stack", "single", "weights_per_c2"), [((3, 3, 3), (7,), (27, 49)), ((3, 3), (5,), (18, 25))]
)
def test_stacked_3x3_have_the_big_kernels_field_with_fewer_weights(
    stack: tuple[int, ...], single: tuple[int, ...], weights_per_c2: tuple[int, int]
) -> None:
    c, h = 16, 10
    a = analyze(kernel_stack(c, stack), (c, h, h))
    b = analyze(kernel_stack(c, single), (c, h, h))
    convs = [[r for r in rep.rows if r.kind == "conv"] for rep in (a, b)]
    for rows, per_c2 in zip(convs, weights_per_c2, strict=True):
        assert sum(r.params for r in rows) == per_c2 * c * c  # no bias: exactly the formula
        assert sum(r.macs for r in rows) == per_c2 * c * c * h * h  # "same" padding keeps h x h
    assert a.rows[-1].receptive_field == b.rows[-1].receptive_field == 1 + sum(k - 1 for k in stack)
    assert a.rows[-1].output_shape == b.rows[-1].output_shape == [c, h, h]


def test_lab_nets_differ_only_in_their_stacks() -> None:
    big, small = stack_counts("kernel7x7"), stack_counts("kernel3x3x3")
    assert big["stack_weights"] == 2 * 49 * STACK_WIDTH**2
    assert small["stack_weights"] == 2 * 27 * STACK_WIDTH**2
    assert big["stack_rf"] == small["stack_rf"] == 7
    assert big["stage1_rf"] == small["stage1_rf"]
    assert (big["nonlinearities"], small["nonlinearities"]) == (1, 3)
    # Everything but the stacks (stem, head, batch norm of the stem) is shared.
    assert big["params"] - big["stack_weights"] - 2 * STACK_WIDTH * 2 == (
        small["params"] - small["stack_weights"] - 2 * STACK_WIDTH * 6
    )


# --- Li et al. 2018: filter-normalised directions, the grid, the Hessian -------------------------


def _tiny_net() -> nn.Module:
    """Conv (with bias), batch norm, tanh, linear: 18 + 36 weights, every parameter kind."""
    torch.manual_seed(0)
    net = nn.Sequential(
        nn.Conv2d(1, 2, 3, bias=True), nn.BatchNorm2d(2), nn.Tanh(), nn.Flatten(),
        nn.Linear(2 * 3 * 3, 2),
    )  # fmt: skip
    return net.eval()


def _tiny_data() -> tuple[torch.Tensor, torch.Tensor]:
    g = torch.Generator().manual_seed(1)
    return torch.randn(8, 1, 5, 5, generator=g), torch.randint(0, 2, (8,), generator=g)


def test_every_direction_filter_has_its_weight_filters_norm() -> None:
    net = _tiny_net()
    d = lm.filter_normalised_direction(net, torch.Generator().manual_seed(0))
    for name, p in net.named_parameters():
        if p.dim() > 1:
            torch.testing.assert_close(d[name].flatten(1).norm(dim=1), p.flatten(1).norm(dim=1))
            assert not torch.equal(d[name], p.detach())  # a random direction, not the weights
        else:  # biases and batch norm stay where training left them
            assert torch.count_nonzero(d[name]) == 0
    assert lm.perturbed_names(net) == ["0.weight", "4.weight"]


def test_grid_centre_is_the_trained_network_exactly() -> None:
    net, data = _tiny_net(), _tiny_data()
    coords = lm.grid_coordinates(5)
    assert coords == [-1.0, -0.5, 0.0, 0.5, 1.0] and coords[2] == 0.0
    trained_loss, _ = lm.evaluate(net, *data)
    base = lm.trained_state(net)
    gen = torch.Generator().manual_seed(0)
    dirs = (lm.filter_normalised_direction(net, gen), lm.filter_normalised_direction(net, gen))
    row = lm.surface_row(net, base, dirs, 0.0, coords, data)
    assert row["loss"][2] == trained_loss  # bit for bit, not approximately
    assert row["loss"][0] != trained_loss
    assert all(torch.equal(p, base[n]) for n, p in net.named_parameters())  # restored


def test_interpolation_ends_at_the_initial_and_trained_networks() -> None:
    net, data = _tiny_net(), _tiny_data()
    end = {k: v.clone() for k, v in net.state_dict().items()}
    start_net = _tiny_net()
    with torch.no_grad():
        for p in start_net.parameters():
            p.mul_(0.5)
    start = start_net.state_dict()
    line = lm.interpolate(net, start, end, [0.0, 1.0, 2.0], data)
    assert line["loss"][0] == lm.evaluate(start_net, *data)[0]
    assert line["loss"][1] == lm.evaluate(net, *data)[0]
    assert all(v == v for v in line["loss"])  # extrapolated variances clamped: no NaN


def test_lanczos_finds_the_extreme_eigenvalues_of_the_hessian() -> None:
    with torch_threads(1):  # tiny products: a second thread only waits at barriers
        _check_lanczos()


def _check_lanczos() -> None:
    net, data = _tiny_net(), _tiny_data()
    names = lm.perturbed_names(net)
    product = lm.hessian_vector_product(net, names, data)
    size = sum(p.numel() for n, p in net.named_parameters() if n in names)
    explicit = torch.stack([product(e) for e in torch.eye(size)])  # column by column
    torch.testing.assert_close(explicit, explicit.T, atol=1e-5, rtol=0)  # symmetric
    eigs = torch.linalg.eigvalsh(explicit.double())
    assert eigs[0] < 0 < eigs[-1]  # this point is not a minimum: both signs to find
    low, high = lm.lanczos_extremes(product, size, size, torch.Generator().manual_seed(0))
    assert low == pytest.approx(float(eigs[0]), rel=1e-4)
    assert high == pytest.approx(float(eigs[-1]), rel=1e-4)
    # Few steps: Ritz values lie inside the spectrum.
    low, high = lm.lanczos_extremes(product, size, 5, torch.Generator().manual_seed(0))
    assert float(eigs[0]) - 1e-6 <= low and high <= float(eigs[-1]) + 1e-6


# --- cost: published accuracy and correlations ----------------------------------------------------


def test_published_accuracy_is_torchvisions_and_none_for_cnnlabs_own() -> None:
    # torchvision's documentation table: ResNet18_Weights.IMAGENET1K_V1, acc@1 69.758.
    assert published_top1("resnet18") == {
        "top1": 69.758,
        "weights": "ResNet18_Weights.IMAGENET1K_V1",
    }
    assert published_top1("resnet20") is None


def test_correlations_of_monotone_and_reversed_series() -> None:
    up = correlations([1, 10, 100, 1000], [2, 3, 50, 60])
    assert up["spearman"] == pytest.approx(1.0) and up["pearson_log"] > 0.9
    down = correlations([1, 10, 100], [3, 2, 1])
    assert down["spearman"] == pytest.approx(-1.0)
    assert correlations([1, 2], [1, 2]) == {"pearson_log": None, "spearman": None}
