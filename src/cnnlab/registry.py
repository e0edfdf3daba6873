"""The model registry: one strict table from names to builders and their published facts.

Every architecture registers itself with :func:`register_model`, stating what the paper (or
torchvision) says about it. Tests are generated from this table, so a registered model gets its
build, forward, parameter-count, minimum-input and torchvision-parity tests for free.

This module imports no model: the ``cnnlab`` package imports :mod:`cnnlab.models` (as
torchvision's package imports its models), and any import of this module imports the package
first, so the table is full whenever it can be read.
"""

from __future__ import annotations

import difflib
import fnmatch
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import torch
from torch import nn

from cnnlab.errors import DuplicateModelError, InputSizeError, UnknownModelError

Builder = Callable[..., nn.Module]


@dataclass(frozen=True)
class ModelInfo:
    """What cnnlab knows about a registered model before building it.

    Attributes:
        name: registry name (torchvision's name where the model is identical to torchvision's).
        family: architecture family ("alexnet", "vgg", "resnet", ...).
        paper: short citation of the paper that defines the architecture.
        input_size: default input volume (C, H, W) the paper uses.
        min_input_size: smallest (H, W) the network accepts; smaller inputs raise
            :class:`~cnnlab.errors.InputSizeError`.
        num_params: parameter count (biases included) at the default input channels and
            ``num_classes`` classes; tests check the built model against it exactly.
        num_classes: default number of output classes.
        fixed_input: True when the classifier has a fixed size (no adaptive pooling), so the
            input must be exactly ``input_size``; False when any input of at least
            ``min_input_size`` works.
        torchvision: name of the torchvision builder this model is identical to, or None.
        description: one line on what the model is and where it departs from the paper.
    """

    name: str
    family: str
    paper: str
    input_size: tuple[int, int, int]
    min_input_size: tuple[int, int]
    num_params: int
    num_classes: int = 1000
    fixed_input: bool = False
    torchvision: str | None = None
    description: str = ""
    builder: Builder = field(default=None, repr=False, compare=False)  # type: ignore[assignment]

    def _repr_html_(self) -> str:
        """The model's facts as a table in a Jupyter notebook."""
        from cnnlab.report.notebook import model_info_html

        return model_info_html(self)

    def _repr_markdown_(self) -> str:
        from cnnlab.report.notebook import model_info_markdown

        return model_info_markdown(self)


_REGISTRY: dict[str, ModelInfo] = {}


def register_model(
    *,
    family: str,
    paper: str,
    input_size: tuple[int, int, int],
    min_input_size: tuple[int, int],
    num_params: int,
    num_classes: int = 1000,
    fixed_input: bool = False,
    torchvision: str | None = None,
) -> Callable[[Builder], Builder]:
    """Decorator that registers a builder under its function name.

    The builder must accept keyword arguments ``num_classes`` and ``in_channels``; its docstring's
    first line becomes the model's description. Registering a name twice raises
    :class:`DuplicateModelError` (no silent overwrite).
    """

    def decorate(builder: Builder) -> Builder:
        name = builder.__name__
        if name in _REGISTRY:
            raise DuplicateModelError(
                f"model {name!r} is already registered (by {_REGISTRY[name].builder.__module__}); "
                "pick another name"
            )
        doc = (builder.__doc__ or "").strip().splitlines()
        _REGISTRY[name] = ModelInfo(
            name=name,
            family=family,
            paper=paper,
            input_size=tuple(input_size),
            min_input_size=tuple(min_input_size),
            num_params=num_params,
            num_classes=num_classes,
            fixed_input=fixed_input,
            torchvision=torchvision,
            description=doc[0] if doc else "",
            builder=builder,
        )
        return builder

    return decorate


def list_models(pattern: str = "*") -> list[str]:
    """Registered model names matching an fnmatch ``pattern`` (e.g. ``"resnet*"``), sorted."""
    return sorted(n for n in _REGISTRY if fnmatch.fnmatchcase(n, pattern))


def model_info(name: str) -> ModelInfo:
    """The :class:`ModelInfo` of a registered model; unknown names suggest close ones."""
    try:
        return _REGISTRY[name]
    except KeyError:
        close = difflib.get_close_matches(name, _REGISTRY, n=3, cutoff=0.5)
        hint = f"did you mean {', '.join(close)}?" if close else "see `cnnlab models`"
        raise UnknownModelError(f"unknown model {name!r}: {hint}") from None


def create_model(
    name: str,
    *,
    num_classes: int | None = None,
    in_channels: int | None = None,
    check_input: bool = True,
    **kwargs: Any,
) -> nn.Module:
    """Build a registered model.

    Args:
        name: registry name, see :func:`list_models`.
        num_classes: output classes (default: the paper's, usually 1000).
        in_channels: input channels (default: the paper's, usually 3; 1 for Fashion-MNIST).
        check_input: attach a forward pre-hook that rejects inputs smaller than the model's
            minimum or with the wrong channel count, with a message naming the fix.
        **kwargs: the family's named paper hyperparameters (e.g. ``towers=1`` for
            ``alexnet_paper``, ``aux_logits=False`` for ``googlenet``).

    Returns:
        The model, in training mode, with ``model.cnnlab_info`` set to its :class:`ModelInfo`.
    """
    info = model_info(name)
    num_classes = info.num_classes if num_classes is None else int(num_classes)
    in_channels = info.input_size[0] if in_channels is None else int(in_channels)
    if num_classes < 1 or in_channels < 1:
        raise InputSizeError(
            f"{name}: num_classes and in_channels must be positive "
            f"(got num_classes={num_classes}, in_channels={in_channels})"
        )
    model = info.builder(num_classes=num_classes, in_channels=in_channels, **kwargs)
    model.cnnlab_info = info
    if check_input:
        model.register_forward_pre_hook(_input_check(info, in_channels))
    return model


def _input_check(info: ModelInfo, in_channels: int) -> Callable[..., None]:
    min_h, min_w = info.min_input_size

    def check(module: nn.Module, args: tuple[Any, ...]) -> None:
        if not args or not isinstance(args[0], torch.Tensor) or args[0].dim() != 4:
            return
        _, c, h, w = args[0].shape
        if c != in_channels:
            raise InputSizeError(
                f"{info.name} was built for {in_channels}-channel input but got {c} channels: "
                f"pass in_channels={c} to create_model, or convert the images"
            )
        if info.fixed_input and (h, w) != tuple(info.input_size[1:]):
            _, need_h, need_w = info.input_size
            raise InputSizeError(
                f"{info.name} takes exactly {c}x{need_h}x{need_w} input (its classifier has a "
                f"fixed size) but got {c}x{h}x{w}: resize the images to {need_h}x{need_w}"
            )
        if h < min_h or w < min_w:
            raise InputSizeError(
                f"{info.name} needs input of at least {c}x{min_h}x{min_w} but got {c}x{h}x{w}: "
                f"resize the images (default size {'x'.join(map(str, info.input_size))})"
            )

    return check
