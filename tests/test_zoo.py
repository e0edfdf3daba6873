"""Tests generated from the registry: every model builds, runs, counts and matches torchvision.

A model added to the registry gets all of these without new test code (STYLE.md, principle 8).
"""

from __future__ import annotations

import pytest
import torch
import torchvision

import cnnlab
from cnnlab.errors import DuplicateModelError, InputSizeError, UnknownModelError
from cnnlab.registry import register_model

# The package's own models (a test module may register a throwaway model of its own).
ALL = [
    n for n in cnnlab.list_models() if cnnlab.model_info(n).builder.__module__.startswith("cnnlab.")
]
TORCHVISION = [n for n in ALL if cnnlab.model_info(n).torchvision]

# torchvision builders whose defaults differ from the plain call: same architecture, random init.
TV_KWARGS = {"googlenet": {"init_weights": True}, "inception_v3": {"init_weights": True}}


def small_input(name: str, channels: int | None = None, batch: int = 2) -> torch.Tensor:
    """The cheapest input the model accepts: its minimum (or fixed) size, at least 32 pixels."""
    info = cnnlab.model_info(name)
    c = info.input_size[0] if channels is None else channels
    if info.fixed_input:
        h, w = info.input_size[1:]
    else:
        h, w = (max(s, 32) for s in info.min_input_size)
    return torch.randn(batch, c, h, w)


def test_registry_lists_the_lecture_models() -> None:
    assert len(ALL) >= 40
    assert cnnlab.list_models("resnet1*") == [
        "resnet101",
        "resnet101_paper",
        "resnet110",
        "resnet152",
        "resnet152_paper",
        "resnet18",
    ]


def test_unknown_name_suggests_close_names() -> None:
    with pytest.raises(UnknownModelError, match=r"did you mean.*resnet18"):
        cnnlab.model_info("resnet-18")


def test_duplicate_registration_raises() -> None:
    with pytest.raises(DuplicateModelError, match="already registered"):

        @register_model(
            family="resnet", paper="x", input_size=(3, 8, 8), min_input_size=(8, 8), num_params=0
        )
        def resnet18(**kwargs):
            raise AssertionError("never built")


@pytest.mark.parametrize("name", ALL)
def test_parameter_count_matches_model_info(name: str) -> None:
    info = cnnlab.model_info(name)
    with torch.device("meta"):
        model = cnnlab.create_model(name)
    assert sum(p.numel() for p in model.parameters()) == info.num_params


@pytest.mark.parametrize("name", ALL)
def test_minimum_input_is_the_true_minimum(name: str) -> None:
    """At the declared minimum the raw network runs; one pixel less, it fails or is refused."""
    info = cnnlab.model_info(name)
    c = info.input_size[0]
    h, w = info.input_size[1:] if info.fixed_input else info.min_input_size
    with torch.device("meta"):
        raw = cnnlab.create_model(name, check_input=False).eval()
        checked = cnnlab.create_model(name).eval()
        raw(torch.empty(1, c, h, w))
        if info.fixed_input:
            with pytest.raises(InputSizeError, match=f"exactly {c}x{h}x{w}"):
                checked(torch.empty(1, c, h + 8, w + 8))
        else:
            # Derived, not transcribed: the raw model itself cannot take one pixel less.
            with pytest.raises(Exception):  # noqa: B017  (torch's own shape error)
                raw(torch.empty(1, c, h - 1, w - 1))
            with pytest.raises(InputSizeError, match=f"at least {c}x{h}x{w}"):
                checked(torch.empty(1, c, h - 1, w - 1))


@pytest.mark.parametrize("name", ALL)
def test_builds_and_runs_with_custom_channels_and_classes(name: str) -> None:
    model = cnnlab.create_model(name, num_classes=10, in_channels=1).eval()
    x = small_input(name, channels=1)
    with torch.no_grad():
        y = model(x)
    assert y.shape == (2, 10)
    assert torch.isfinite(y).all()
    with pytest.raises(InputSizeError, match="in_channels=3"):
        model(torch.randn(1, 3, *x.shape[-2:]))


@pytest.mark.parametrize("name", TORCHVISION)
def test_identical_to_torchvision(name: str) -> None:
    """Same parameter names (strict load) and the same outputs, given torchvision's random init."""
    info = cnnlab.model_info(name)
    reference = getattr(torchvision.models, info.torchvision)(
        weights=None, **TV_KWARGS.get(info.torchvision, {})
    ).eval()
    ours = cnnlab.create_model(name).eval()
    ours.load_state_dict(reference.state_dict(), strict=True)
    x = small_input(name, batch=2)
    with torch.no_grad():
        expected, got = reference(x), ours(x)
    assert (got - expected).abs().max().item() <= 1e-5
    assert sum(p.numel() for p in reference.parameters()) == info.num_params
