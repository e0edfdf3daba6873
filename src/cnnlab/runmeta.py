"""What a trained model needs beside its weights: one typed record, :class:`RunMeta`.

The same record travels with the weights everywhere cnnlab writes them -- the ``cnnlab`` metadata
key of ``model.safetensors`` and of every checkpoint, and the metadata properties of an exported
ONNX file -- so any of those files alone is enough to rebuild the model, prepare an image the way
training did, and name the predicted class. Files store it as a JSON object
(:meth:`RunMeta.to_dict`); readers get it back with :meth:`RunMeta.from_dict`.

Any of those files may be hostile, and the record decides what gets built and allocated, so
:meth:`RunMeta.from_dict` checks every field's type and range before anything uses it (through
:class:`Fields`, which the pretrained-weights metadata uses too): the model must be registered
and its settings ones its builder takes; sizes, class counts and normalisation must lie within
the bounds below, far outside anything cnnlab trains and far inside what a command could
allocate (an input of 1x60000x60000 in a 250 kB file would make ``cnnlab eval`` ask for 900 GB).
A refusal names the file, the field, the value found and what was expected, on one line.
"""

from __future__ import annotations

import dataclasses
import json
import math
from dataclasses import dataclass, field
from typing import Any

from cnnlab.errors import CheckpointError, UnknownModelError

MAX_CHANNELS = 4  # image channels: grey, grey + alpha, RGB, RGBA
MAX_SIDE = 4096  # pixels, for H, W and the resize side: 18x ImageNet's 224
MAX_CLASSES = 100_000  # ImageNet-21k, the largest common label set, has 21,841
MIN_STD = 1e-4  # the floor data/folder.py gives a constant channel's standard deviation
MAX_SEED = 2**63 - 1  # NumPy's and PyTorch's generators take seeds in [0, 2**63)
# The model settings a run records (cnnlab.train.trainer.model_kwargs_for writes them), each
# with the values its builders accept: a setting is one row here.
SETTINGS: dict[str, tuple[float, float]] = {"dropout": (0.0, 1.0)}
FIX = "the file is damaged or was not written by cnnlab: retrain with `cnnlab train`"
_MISSING = object()


def _shown(value: object, width: int = 60) -> str:
    """A value as the file holds it (JSON), cut to ``width`` characters."""
    try:
        text = json.dumps(value)
    except (TypeError, ValueError):
        text = repr(value)
    return text if len(text) <= width else text[: width - 3] + "..."


class Fields:
    """Typed reads of one JSON object from a file, each refusing what cnnlab never writes.

    Args:
        data: the object as decoded (anything: a file may hold a list where an object belongs).
        source: the file, for messages.
        what: what the object is ("cnnlab metadata", "weights metadata").
        fix: what the user can do, the end of every message.

    Raises:
        CheckpointError: ``data`` is not a JSON object.
    """

    def __init__(self, data: object, source: object, what: str, fix: str = FIX) -> None:
        if not isinstance(data, dict):
            raise CheckpointError(f"{source}: its {what} is {_shown(data)}, not an object: {fix}")
        self.data, self.source, self.what, self.fix = data, source, what, fix

    def error(self, key: str, expected: str) -> CheckpointError:
        """The refusal of field ``key``: what it holds, and what it should."""
        return CheckpointError(
            f"{self.source}: {self.what} field {key!r} is {_shown(self.data.get(key))}, not "
            f"{expected}: {self.fix}"
        )

    def _get(self, key: str, default: Any) -> Any:
        if key not in self.data:
            if default is _MISSING:
                raise CheckpointError(f"{self.source}: {self.what} lacks {key!r}: {self.fix}")
            return default
        return self.data[key]

    def integer(
        self, key: str, lo: int, hi: int, default: Any = _MISSING, optional: bool = False
    ) -> int | None:
        """An int (never a bool or a float) in ``[lo, hi]``; None too when ``optional``."""
        value = self._get(key, default)
        if optional and value is None:
            return None
        if not _is_int(value) or not lo <= value <= hi:
            raise self.error(key, f"a whole number from {lo:,} to {hi:,}")
        return value

    def real(
        self, key: str, lo: float, hi: float, default: Any = _MISSING, optional: bool = False
    ) -> float | None:
        """A finite number in ``[lo, hi]``; None too when ``optional``."""
        value = self._get(key, default)
        if optional and value is None:
            return None
        if not _is_real(value, lo, hi):
            raise self.error(key, f"a number from {lo:g} to {hi:g}")
        return float(value)

    def text(self, key: str, default: Any = _MISSING) -> str:
        value = self._get(key, default)
        if not isinstance(value, str):
            raise self.error(key, "a string")
        return value

    def boolean(self, key: str, default: Any = _MISSING) -> bool:
        value = self._get(key, default)
        if not isinstance(value, bool):
            raise self.error(key, "true or false")
        return value

    def texts(self, key: str) -> tuple[str, ...]:
        """A list of strings (at most :data:`MAX_CLASSES`)."""
        value = self._get(key, _MISSING)
        if not isinstance(value, (list, tuple)) or len(value) > MAX_CLASSES:
            raise self.error(key, f"a list of at most {MAX_CLASSES:,} strings")
        if not all(isinstance(v, str) for v in value):
            raise self.error(key, "a list of strings")
        return tuple(value)

    def reals(self, key: str, count: int, lo: float, hi: float) -> tuple[float, ...]:
        """A list of ``count`` finite numbers in ``[lo, hi]``."""
        value = self._get(key, _MISSING)
        ok = isinstance(value, (list, tuple)) and len(value) == count
        if not ok or not all(_is_real(v, lo, hi) for v in value):
            numbers = "number" if count == 1 else "numbers"
            raise self.error(key, f"a list of {count} {numbers} from {lo:g} to {hi:g}")
        return tuple(float(v) for v in value)


def _is_int(value: object) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _is_real(value: object, lo: float, hi: float) -> bool:
    if _is_int(value):  # compared as ints: a 400-digit int has no float
        return lo <= value <= hi  # type: ignore[operator]
    return isinstance(value, float) and math.isfinite(value) and lo <= value <= hi


@dataclass(frozen=True)
class RunMeta:
    """A trained model's identity and its input contract.

    Attributes:
        model: registry name (``cnnlab.create_model`` rebuilds the architecture from it).
        num_classes: K, the width of the output layer.
        in_channels: C of the input images (1 grey, 3 RGB).
        input_size: ``(C, H, W)`` the network was trained at; images are resized to ``(H, W)``.
        classes: K class names, in label order.
        mean: per-channel mean in [0, 1] subtracted before the network.
        std: per-channel standard deviation in [0, 1] divided by.
        dataset: the training data's name or folder.
        model_kwargs: extra builder settings (``dropout``) needed to rebuild the same network.
        precision: ``fp32`` or ``bf16``: the autocast the model was trained and evaluated in.
        tta: whether the reported accuracy averaged each image with its mirror.
        recipe: ``paper`` or ``fast``.
        seed: the run's ``--seed``.
        cnnlab_version: the version that wrote the file.
        test_top1: final test accuracy, on ``model.safetensors`` only.
        weights: the pretrained weights training started from (``""``: none).
        resize: shorter side images are resized to before the centre ``input_size`` crop
            (image folders, pretrained weights); None: resized straight to ``input_size``.
    """

    model: str
    num_classes: int
    in_channels: int
    input_size: tuple[int, int, int]
    classes: tuple[str, ...]
    mean: tuple[float, ...]
    std: tuple[float, ...]
    dataset: str = ""
    model_kwargs: dict[str, Any] = field(default_factory=dict)
    precision: str = "fp32"
    tta: bool = False
    recipe: str = ""
    seed: int | None = None
    cnnlab_version: str = ""
    test_top1: float | None = None
    weights: str = ""
    resize: int | None = None

    @property
    def image_size(self) -> tuple[int, int]:
        """``(H, W)`` the network takes."""
        return (int(self.input_size[1]), int(self.input_size[2]))

    def to_dict(self) -> dict[str, Any]:
        """The JSON object files store (lists for tuples; ``test_top1`` only when known)."""
        out = dataclasses.asdict(self)
        for key in ("input_size", "classes", "mean", "std"):
            out[key] = list(out[key])
        if out["test_top1"] is None:
            del out["test_top1"]
        return out

    @classmethod
    def required(cls) -> tuple[str, ...]:
        """The fields a file must carry: the ones without a default."""
        return tuple(
            f.name
            for f in dataclasses.fields(cls)
            if f.default is dataclasses.MISSING and f.default_factory is dataclasses.MISSING
        )

    @classmethod
    def from_dict(cls, data: object, source: object = "file") -> RunMeta:
        """Read the record a file stored, checking every field; unknown keys (from newer
        versions) are ignored.

        Raises:
            CheckpointError: not an object, a required field missing, or a field of the wrong
                type or outside its bounds (see the module docstring), named with its value.
        """
        f = Fields(data, source, "cnnlab metadata")
        missing = [k for k in cls.required() if k not in f.data]
        if missing:
            raise CheckpointError(
                f"{source}: cnnlab metadata lacks {', '.join(missing)}: not a complete cnnlab "
                "model; retrain with `cnnlab train`"
            )
        model = _model_name(f)
        num_classes = f.integer("num_classes", 1, MAX_CLASSES)
        in_channels = f.integer("in_channels", 1, MAX_CHANNELS)
        assert num_classes is not None and in_channels is not None
        classes = f.texts("classes")
        if len(classes) != num_classes:
            raise CheckpointError(
                f"{source}: cnnlab metadata names {len(classes)} classes for "
                f"{num_classes} outputs: the file is damaged"
            )
        return cls(
            model=model,
            num_classes=num_classes,
            in_channels=in_channels,
            input_size=_input_size(f, model, in_channels),
            classes=classes,
            mean=f.reals("mean", in_channels, 0.0, 1.0),
            std=f.reals("std", in_channels, MIN_STD, 1.0),
            dataset=f.text("dataset", ""),
            model_kwargs=_settings(f, model),
            precision=f.text("precision", "fp32"),
            tta=f.boolean("tta", False),
            recipe=f.text("recipe", ""),
            seed=f.integer("seed", 0, MAX_SEED, None, optional=True),
            cnnlab_version=f.text("cnnlab_version", ""),
            test_top1=f.real("test_top1", 0.0, 1.0, None, optional=True),
            weights=f.text("weights", ""),
            resize=f.integer("resize", 1, MAX_SIDE, None, optional=True),
        )


def _model_name(f: Fields) -> str:
    """The ``model`` field: the name of a registered model."""
    from cnnlab.registry import model_info

    name = f.text("model")
    try:
        model_info(name)
    except UnknownModelError as err:
        raise CheckpointError(
            f"{f.source}: {err}; the file was written for a model this cnnlab does not have "
            "(register it before loading) or is damaged"
        ) from None
    return name


def _input_size(f: Fields, model: str, channels: int) -> tuple[int, int, int]:
    """``[C, H, W]`` with C the channels, H and W within the model's sizes and :data:`MAX_SIDE`."""
    from cnnlab.registry import model_info

    info = model_info(model)
    value = f.data["input_size"]
    (min_h, min_w), (_, def_h, def_w) = info.min_input_size, info.input_size
    ok = isinstance(value, (list, tuple)) and len(value) == 3 and all(map(_is_int, value))
    if not ok or value[0] != channels or not all(1 <= s <= MAX_SIDE for s in value[1:]):
        raise f.error(
            "input_size", f"[C, H, W] with C = in_channels ({channels}) and H, W 1 to {MAX_SIDE}"
        )
    c, h, w = value
    if info.fixed_input and (h, w) != (def_h, def_w):
        raise f.error("input_size", f"[{c}, {def_h}, {def_w}], the only size {model} takes")
    if h < min_h or w < min_w:
        raise f.error("input_size", f"at least [{c}, {min_h}, {min_w}], the smallest {model} takes")
    return (c, h, w)


def _settings(f: Fields, model: str) -> dict[str, Any]:
    """``model_kwargs``: settings of :data:`SETTINGS` that the model's builder takes."""
    value = f.data.get("model_kwargs", {})
    if value is None:  # what to_dict never writes, but means no settings
        value = {}
    if not isinstance(value, dict):
        raise f.error("model_kwargs", "an object of model settings")
    if not value:
        return {}
    from cnnlab.registry import builder_settings

    takes = builder_settings(model)  # None: any (a **kwargs builder)
    for key, setting in value.items():
        if key not in SETTINGS or (takes is not None and key not in takes):
            known = sorted(SETTINGS if takes is None else set(SETTINGS) & takes)
            raise f.error("model_kwargs", f"settings {model} takes ({', '.join(known) or 'none'})")
        lo, hi = SETTINGS[key]
        if not _is_real(setting, lo, hi):
            raise f.error("model_kwargs", f"{key} from {lo:g} to {hi:g}")
    return dict(value)
