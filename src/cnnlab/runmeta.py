"""What a trained model needs beside its weights: one typed record, :class:`RunMeta`.

The same record travels with the weights everywhere cnnlab writes them -- the ``cnnlab`` metadata
key of ``model.safetensors`` and of every checkpoint, and the metadata properties of an exported
ONNX file -- so any of those files alone is enough to rebuild the model, prepare an image the way
training did, and name the predicted class. Files store it as a JSON object
(:meth:`RunMeta.to_dict`); readers get it back with :meth:`RunMeta.from_dict`, which names the
missing fields instead of failing later with a ``KeyError``.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from typing import Any

from cnnlab.errors import CheckpointError


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
    def from_dict(cls, data: dict[str, Any], source: object = "file") -> RunMeta:
        """Read the record a file stored; unknown keys (from newer versions) are ignored.

        Raises:
            CheckpointError: a required field is missing or has the wrong shape.
        """
        missing = [k for k in cls.required() if k not in data]
        if missing:
            raise CheckpointError(
                f"{source}: cnnlab metadata lacks {', '.join(missing)}: not a complete cnnlab "
                "model; retrain with `cnnlab train`"
            )
        known = {f.name for f in dataclasses.fields(cls)}
        values = {k: v for k, v in data.items() if k in known}
        try:
            values["num_classes"] = int(values["num_classes"])
            values["in_channels"] = int(values["in_channels"])
            c, h, w = (int(v) for v in values["input_size"])
            values["input_size"] = (c, h, w)
            for key in ("classes", "mean", "std"):
                values[key] = tuple(values[key])
            values["model_kwargs"] = dict(values.get("model_kwargs") or {})
            values["tta"] = bool(values.get("tta", False))
        except (TypeError, ValueError) as err:
            raise CheckpointError(f"{source}: malformed cnnlab metadata ({err})") from None
        if len(values["classes"]) != values["num_classes"]:
            raise CheckpointError(
                f"{source}: cnnlab metadata names {len(values['classes'])} classes for "
                f"{values['num_classes']} outputs: the file is damaged"
            )
        return cls(**values)
