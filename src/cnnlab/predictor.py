"""One way to load a trained model and run it on images: :func:`load` -> :class:`Predictor`.

A trained model reaches users as a run directory, a ``.safetensors`` file (the final model or a
checkpoint) or an ``.onnx`` file from ``cnnlab export``. Each carries a
:class:`~cnnlab.runmeta.RunMeta`, so each is enough to rebuild the network, prepare an image the
way training did (:func:`cnnlab.run.inputs.make_prepare`: scale to [0, 1], normalise with the
training split's mean and std, resize to the input size) and name the predicted class.
``cnnlab eval``, ``cnnlab predict`` and library code all go through :func:`load`, so a number the
command prints and a number a notebook computes come from the same code, on the same path: the
first call with at least :data:`PROBE_MIN_IMAGES` images picks the fastest way to run the model
whose logits agree with float32 within the export tolerance (:mod:`cnnlab.fastpath`)::

    import cnnlab
    predictor = cnnlab.load("runs/lenet5")
    probs = predictor.predict(["shoe.png", "shirt.jpg"])  # (2, K) softmax probabilities
    for row in predictor.top_k(probs, 3):
        print(row)  # [Prediction(name='Sneaker', index=7, probability=0.91), ...]

Loading changes no process state (threads, RNG): the caller decides those, as the CLI does with
:mod:`cnnlab.run.device`.

Memory is bounded before anything is allocated: the record's input size is checked against what
one image needs in a forward pass (:func:`bytes_per_image`: the analyzer's activation memory for
inputs larger than the model's default), a model whose single image would take more than
:data:`MEMORY_SHARE` of the machine's memory is refused with one line, and batches are made
smaller where the asked-for size would not fit.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, NamedTuple, cast

import torch
from torch import nn

from cnnlab.errors import DataError
from cnnlab.fastpath import Choice, choose
from cnnlab.run.metrics import EvalResult, batches, eval_mode, evaluate, logits_of
from cnnlab.runmeta import RunMeta

BATCH_SIZE = 256  # images per forward pass: bounded memory for any N, still fast on a CPU
# Fewer images than this run as loaded: choosing a path costs five forward passes of
# fastpath.PROBE_IMAGES images, which a handful of images would not pay back (at 1,024 images
# and a probe twice this one's size, VGG-11's eval ran at a third of its speed).
PROBE_MIN_IMAGES = 2048
CPU = torch.device("cpu")
# The share of the machine's memory (the GPU's, on CUDA) one batch may take: the rest is for the
# model, the data set and everything else. Batches are made smaller to fit it; a model whose
# single image does not fit is refused before anything is allocated.
MEMORY_SHARE = 0.5

# What predict() takes: image files, (C, H, W) uint8 images, or one (N, C, H, W) uint8 batch.
ImageLike = str | os.PathLike[str] | torch.Tensor
Images = ImageLike | Sequence[ImageLike]


class Prediction(NamedTuple):
    """One of an image's top classes."""

    name: str  # class name, from the run's dataset
    index: int  # class index, the model's output column
    probability: float  # softmax probability in [0, 1]


@dataclass
class Predictor:
    """A trained model with its record and its preprocessing, ready to classify uint8 images.

    Attributes:
        model: the ``nn.Module`` (eval mode, on ``device``) or an
            :class:`~cnnlab.export.OnnxClassifier`; either maps a prepared float batch to logits.
        meta: the run's record: classes, input size, normalisation, ...
        source: the file the weights were read from.
        device: where the model runs and ``prepare`` puts its output (the CPU for ONNX).
        tta: average each image's logits with its mirror's (default: ``meta.tta``, as the run's
            reported accuracy was measured).
        batch_size: images per forward pass in :meth:`logits` and :meth:`predict`.
        prepare: uint8 ``(N, C, H, W)`` on the CPU -> the model's float input on ``device``.
        fast: choose the fastest path that agrees with float32 (:mod:`cnnlab.fastpath`) on the
            first call with at least :data:`PROBE_MIN_IMAGES` images; False: always as loaded.
        choice: what that choice measured and picked (None until it ran).
    """

    model: Callable[[torch.Tensor], Any]
    meta: RunMeta
    source: Path
    device: torch.device = CPU
    tta: bool | None = None
    batch_size: int = BATCH_SIZE
    prepare: Callable[[torch.Tensor], torch.Tensor] = field(init=False, repr=False)
    fast: bool = True
    choice: Choice | None = field(default=None, init=False)
    _runner: Callable[[torch.Tensor], Any] | None = field(default=None, init=False, repr=False)
    _most_images: int = field(default=0, init=False, repr=False)

    def __post_init__(self) -> None:
        from cnnlab.run.inputs import make_prepare

        if self.tta is None:
            self.tta = self.meta.tta
        self._most_images = images_that_fit(self.meta, self.device, self.source, bool(self.tta))
        self.prepare = make_prepare(
            self.meta.image_size, self.meta.mean, self.meta.std, self.device
        )

    def _batch(self, batch_size: int | None = None) -> int:
        """Images per forward pass: the one asked for, made smaller where memory needs it."""
        return max(1, min(batch_size or self.batch_size, self._most_images))

    @property
    def classes(self) -> tuple[str, ...]:
        return self.meta.classes

    def logits(self, batch: torch.Tensor) -> torch.Tensor:
        """The model's logits for a uint8 batch of any height and width, without gradients.

        Shape:
            uint8 ``(N, C, H, W)`` -> float32 ``(N, K)`` on the CPU.

        Raises:
            DataError: not a uint8 ``(N, C, H, W)`` tensor with the model's channel count.
        """
        batch = self._check(batch, 4)
        chunks = (self.prepare(batch[s]) for s in batches(len(batch), self._batch()))
        return self._run(chunks, len(batch))

    def predict(self, images: Images) -> torch.Tensor:
        """Softmax probabilities of each image's classes.

        Args:
            images: image file paths (read with :func:`cnnlab.data.images.read_image`, converted
                to the model's channels), uint8 ``(C, H, W)`` tensors of any size, a mix of
                both, or one uint8 ``(N, C, H, W)`` batch. Each image is resized on its own, so
                sizes may differ.

        Returns:
            float32 ``(N, K)`` on the CPU, rows in the order given.

        Raises:
            DataError: an unreadable file, or a tensor of another dtype or channel count.
        """
        return torch.softmax(self._run(*self._prepared_count(images)), dim=1)

    def inputs(self, images: Images) -> torch.Tensor:
        """The model's input for ``images``, read and prepared exactly as :meth:`predict` does.

        For code that needs the prepared tensor itself (gradients, hooks: ``cnnlab.seeing``).

        Shape:
            as :meth:`predict` takes them -> float32 ``(N, C, H, W)`` on :attr:`device`, with
            ``(H, W)`` the model's input size.
        """
        return torch.cat(list(self._prepared(images)))

    def top_k(self, probs: torch.Tensor, k: int) -> list[list[Prediction]]:
        """The ``k`` most probable classes of each row of ``probs`` (all of them if fewer)."""
        top = probs.topk(min(k, probs.shape[1]), dim=1)
        return [
            [Prediction(self.classes[i], int(i), float(p)) for p, i in zip(ps, ix, strict=True)]
            for ps, ix in zip(top.values.tolist(), top.indices.tolist(), strict=True)
        ]

    def evaluate(
        self, images: torch.Tensor, labels: torch.Tensor, batch_size: int | None = None
    ) -> EvalResult:
        """Top-1, top-5, loss, per-class accuracy and confusion on uint8 images with labels."""
        images = self._check(images, 4)
        size = self._batch(batch_size)
        with eval_mode(self.model):
            run = self._forward(lambda: self.prepare(images[:size]), len(images))
            return evaluate(
                run,
                images,
                labels,
                self.prepare,
                self.meta.num_classes,
                size,
                tta=bool(self.tta),
            )

    # --- internals ------------------------------------------------------------------------------

    def _forward(
        self, first: Callable[[], torch.Tensor], count: int
    ) -> Callable[[torch.Tensor], Any]:
        """The model as a function of a prepared batch, on the path chosen for it.

        The choice is made once, when ``count`` (the images of this call) reaches
        :data:`PROBE_MIN_IMAGES`, on ``first()`` (the call's first prepared batch); before that,
        and for ONNX Runtime, the model runs as loaded. Call in eval mode.
        """
        if self._runner is not None:
            return self._runner
        if not (self.fast and isinstance(self.model, nn.Module) and count >= PROBE_MIN_IMAGES):
            return self.model
        self.choice, self._runner = choose(self.model, first())
        return self._runner

    @torch.inference_mode()
    def _run(self, prepared: Iterator[torch.Tensor], count: int) -> torch.Tensor:
        """Logits of ``count`` images in prepared float batches: float32 ``(N, K)`` on the CPU."""
        out = [torch.empty(0, self.meta.num_classes)]
        with eval_mode(self.model):
            # The generator prepares (and reads) each chunk only when it is run: bounded memory.
            for x in prepared:
                run = self._forward(lambda x=x: x, count)
                out.append(logits_of(run, x, bool(self.tta)).float().cpu())
        return torch.cat(out)

    def _prepared_count(self, images: Images) -> tuple[Iterator[torch.Tensor], int]:
        """:meth:`_prepared` and how many images it will yield."""
        if isinstance(images, torch.Tensor):
            count = len(images) if images.dim() == 4 else 1
        else:
            count = 1 if isinstance(images, (str, os.PathLike)) else len(images)
        return self._prepared(images), count

    def _prepared(self, images: Images) -> Iterator[torch.Tensor]:
        """Prepared chunks of ``images`` (a uint8 batch, or files and tensors one by one)."""
        if isinstance(images, torch.Tensor) and images.dim() == 4:
            batch = self._check(images, 4)
            return (self.prepare(batch[s]) for s in batches(len(batch), self._batch()))
        items = [images] if isinstance(images, (str, os.PathLike, torch.Tensor)) else images
        return self._one_by_one(list(items))

    def _one_by_one(self, items: list[ImageLike]) -> Iterator[torch.Tensor]:
        """Prepared chunks of images that may differ in size: each is read and resized alone."""
        for s in batches(len(items), self._batch()):
            yield torch.cat([self.prepare(self._image(item)[None]) for item in items[s]])

    def _image(self, item: ImageLike) -> torch.Tensor:
        """One image as uint8 ``(C, H, W)``: a file read in the model's channels, or a tensor."""
        from cnnlab.data.images import read_image

        resize = self.meta.resize  # photos: the shorter side to ``resize``, the centre crop
        if isinstance(item, torch.Tensor):
            image = self._check(item, 3)
            if resize is None:
                return image
            from cnnlab.data.augment import resize as resize_batch
            from cnnlab.data.crops import center_crop

            h, w = image.shape[-2:]
            scale = resize / min(h, w)
            shape = (
                max(self.meta.image_size[0], round(h * scale)),
                max(self.meta.image_size[1], round(w * scale)),
            )
            return center_crop(resize_batch(image[None], shape), self.meta.image_size)[0]
        if not isinstance(item, (str, os.PathLike)):
            raise DataError(
                f"cannot read a {type(item).__name__} as an image: pass image file paths or "
                "uint8 tensors"
            )
        if resize is None:
            return read_image(item, channels=self.meta.in_channels)
        return read_image(item, self.meta.in_channels, self.meta.image_size, shorter_side=resize)

    def _check(self, images: torch.Tensor, dims: int) -> torch.Tensor:
        """Refuse what preprocessing would silently get wrong: float pixels, other channels."""
        shape = "(N, C, H, W) batch" if dims == 4 else "(C, H, W) image"
        c = self.meta.in_channels
        if not isinstance(images, torch.Tensor) or images.dim() != dims:
            got = tuple(images.shape) if isinstance(images, torch.Tensor) else type(images).__name__
            raise DataError(f"expected a uint8 {shape}, got {got}: pass pixels as a uint8 tensor")
        if images.dtype != torch.uint8:
            raise DataError(
                f"{self.meta.model} takes uint8 pixels (0-255), got {images.dtype}: convert with "
                "(x * 255).round().to(torch.uint8) if they are floats in [0, 1]"
            )
        if images.shape[-3] != c:
            raise DataError(
                f"{self.meta.model} takes {c}-channel images, got {images.shape[-3]} channels: "
                f"read files with read_image(path, channels={c})"
            )
        return images


def memory_budget(device: torch.device) -> int:
    """Bytes one batch may take on ``device``: :data:`MEMORY_SHARE` of its memory."""
    if device.type == "cuda":
        total = torch.cuda.get_device_properties(device).total_memory
    else:
        try:
            total = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
        except (ValueError, OSError, AttributeError):  # no sysconf: assume a small machine
            total = 8 * 2**30
    return int(total * MEMORY_SHARE)


def bytes_per_image(meta: RunMeta, tta: bool = False) -> int:
    """About how many bytes one image takes in a forward pass at ``meta.input_size``.

    Its float input (twice with flip TTA), plus, for an input larger than the model's default
    (where the paper's own size no longer vouches for it), the output of every layer as the
    analyzer counts it (:func:`cnnlab.analyze`, traced without compute; an upper bound on what
    inference keeps alive). At the default size or below, the input alone: the model's own
    memory there is what the zoo is built and tested at.
    """
    from cnnlab.errors import CnnlabError, UnknownModelError
    from cnnlab.registry import model_info

    c, h, w = meta.input_size
    total = (1 + tta) * c * h * w * 4  # float32 input
    try:
        _, def_h, def_w = model_info(meta.model).input_size
    except UnknownModelError:  # a model built in code (a benchmark's): the input is all we know
        return total
    if h * w <= def_h * def_w:
        return total
    from cnnlab.analysis.report import analyze

    try:
        activations = analyze(meta.model, meta.input_size).totals["activation_bytes"]
    except CnnlabError:  # the model cannot take this input: its forward pass will say so
        return total
    return total + int(activations)


def images_that_fit(
    meta: RunMeta, device: torch.device, source: object = "model", tta: bool = False
) -> int:
    """How many images one batch may hold on ``device`` (:func:`memory_budget`).

    Raises:
        CheckpointError: not even one image fits: the record's input size is absurd for the
            model (a damaged or hostile file), named with the estimate.
    """
    from cnnlab import formats
    from cnnlab.errors import CheckpointError

    need, budget = bytes_per_image(meta, tta), memory_budget(device)
    where = "GPU's" if device.type == "cuda" else "machine's"
    if need > budget:
        raise CheckpointError(
            f"{source}: {meta.model} at {formats.shape(meta.input_size)} needs about "
            f"{formats.size(need)} per image, more than one batch may take here "
            f"({formats.size(budget)}, {MEMORY_SHARE:.0%} of the {where} memory): the input size "
            "in its metadata is damaged, or use a machine with more memory"
        )
    return budget // max(need, 1)


def load(
    path: str | os.PathLike[str],
    device: str | torch.device = "auto",
    tta: bool | None = None,
) -> Predictor:
    """Load a trained model for prediction or evaluation.

    Args:
        path: a run directory (its ``model.safetensors``, or its newest valid checkpoint while
            training runs), a ``.safetensors`` model or checkpoint, or an ``.onnx`` file written
            by ``cnnlab export`` (run by ONNX Runtime on the CPU whatever ``device`` says).
        device: ``auto`` (CUDA when available), ``cpu``, ``cuda`` or a ``torch.device``.
        tta: flip test-time augmentation; None: as the run was evaluated (``meta.tta``).

    Raises:
        CheckpointError: a file cnnlab did not write, a damaged one, or an ONNX file without
            the run's metadata. Nothing in the file is executed.
        ConfigError: ``cuda`` asked for where there is none.
    """
    from cnnlab.run.device import pick_device

    where = device if isinstance(device, torch.device) else pick_device(device)
    if str(path).endswith(".onnx"):  # a `cnnlab export` file: ONNX Runtime on the CPU
        from cnnlab.export import OnnxClassifier

        onnx = OnnxClassifier(path, require_meta=True)  # refuses a file without a RunMeta
        return Predictor(onnx, cast(RunMeta, onnx.meta), onnx.path, CPU, tta)
    from cnnlab.run.load import load_trained

    trained = load_trained(path, device=where)
    return Predictor(trained.model, trained.meta, trained.source, where, tta)
