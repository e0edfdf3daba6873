"""From stored uint8 images to what a model takes: splits, input size, normalisation.

The whole dataset stays in memory as one uint8 tensor (60,000 Fashion-MNIST images are 47 MB);
batches are indexed out of it, augmented as whole batches, and only then converted to float,
normalised and, where the model needs a larger input than the data has, resized. The same
:func:`make_prepare` serves training, evaluation and ``cnnlab predict``, so a trained model always
sees its inputs prepared the same way.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import torch

from cnnlab.errors import ConfigError
from cnnlab.registry import ModelInfo

# Offset added to --seed for the validation split's generator, so the split does not share a
# stream with weight initialisation or the data order.
SPLIT_SEED_OFFSET = 1_000_003


def split_train_val(
    images: torch.Tensor, labels: torch.Tensor, val_size: int, seed: int
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
    """Hold out ``val_size`` images, chosen by a permutation fixed by ``seed``.

    Returns:
        ``(train_images, train_labels, val_images, val_labels)``; both parts keep the original
        order of the images they contain (so ``--limit-train`` takes a stable subset).
    """
    n = len(images)
    if val_size >= n:
        raise ConfigError(
            f"--val-size {val_size} leaves no training images out of {n}: use a smaller --val-size"
        )
    g = torch.Generator().manual_seed(seed + SPLIT_SEED_OFFSET)
    held = torch.zeros(n, dtype=torch.bool)
    held[torch.randperm(n, generator=g)[:val_size]] = True
    return images[~held], labels[~held], images[held], labels[held]


def input_size_for(
    info: ModelInfo, data_hw: tuple[int, int], image_size: int | None
) -> tuple[tuple[int, int], str | None]:
    """The (H, W) to feed a model, and a note when that differs from the data's size.

    A fixed-input model gets exactly its input size; otherwise the data's size, grown to the
    model's minimum where it is smaller; ``image_size`` overrides both (checked against them).
    """
    h, w = data_hw
    if image_size is not None:
        size = (image_size, image_size)
        if info.fixed_input and size != tuple(info.input_size[1:]):
            raise ConfigError(
                f"{info.name} takes exactly {info.input_size[1]}x{info.input_size[2]} input: "
                "leave out --image-size"
            )
        if size[0] < info.min_input_size[0] or size[1] < info.min_input_size[1]:
            raise ConfigError(
                f"--image-size {image_size} is below {info.name}'s minimum input "
                f"{info.min_input_size[0]}x{info.min_input_size[1]}: pass at least "
                f"{max(info.min_input_size)}"
            )
    elif info.fixed_input:
        size = (info.input_size[1], info.input_size[2])
    else:
        size = (max(h, info.min_input_size[0]), max(w, info.min_input_size[1]))
    if size == (h, w):
        return size, None
    ratio = size[0] * size[1] / (h * w)
    why = (
        "takes exactly"
        if info.fixed_input and image_size is None
        else "needs at least"
        if image_size is None
        else "is set to"
    )
    note = (
        f"note: {info.name} {why} {size[0]}x{size[1]} input; the {h}x{w} images are resized to "
        f"{size[0]}x{size[1]} on the fly, {ratio:.2f}x the pixels (and roughly the compute) per "
        "image"
    )
    return size, note


def make_prepare(
    size: tuple[int, int],
    mean: tuple[float, ...],
    std: tuple[float, ...],
    device: torch.device,
    channels_last: bool = False,
) -> Callable[[torch.Tensor], torch.Tensor]:
    """A function from a uint8 batch ``(N, C, H, W)`` to the model's float input on ``device``.

    Steps: move to the device, normalise with the training split's per-channel mean and std
    (pixels scaled to [0, 1] first), resize to ``size`` when the batch is another size.

    Shape:
        uint8 ``(N, C, H, W)`` on the CPU -> float32 ``(N, C, *size)`` on ``device``.
    """
    from cnnlab.data import augment

    memory = torch.channels_last if channels_last else torch.contiguous_format

    def prepare(batch: torch.Tensor) -> torch.Tensor:
        x = augment.normalize(batch.to(device, non_blocking=True), mean, std)
        if tuple(x.shape[-2:]) != tuple(size):
            x = augment.resize(x, size)
        return x.contiguous(memory_format=memory)

    return prepare


@dataclass(frozen=True)
class Augmenter:
    """The training augmentation of a recipe, applied to whole uint8 batches."""

    crop: bool
    flip: bool
    padding: int

    @classmethod
    def from_setting(cls, setting: str, padding: int) -> Augmenter:
        return cls(crop="crop" in setting, flip="flip" in setting, padding=padding)

    def __call__(self, batch: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
        from cnnlab.data import augment

        if self.crop and self.padding > 0:
            batch = augment.random_crop(batch, self.padding, generator)
        if self.flip:
            batch = augment.random_hflip(batch, generator)
        return batch


@dataclass(frozen=True)
class RunData:
    """A run's images in memory, uint8 ``(N, C, H, W)`` with int64 labels ``(N,)``.

    The validation split is held out of the training split by a permutation fixed by the seed;
    the test split is only evaluated once, at the end (the plateau rule never sees it).
    """

    info: Any  # cnnlab.data.DatasetInfo: classes, mean, std
    train_x: torch.Tensor
    train_y: torch.Tensor
    val_x: torch.Tensor
    val_y: torch.Tensor
    test_x: torch.Tensor
    test_y: torch.Tensor

    @property
    def in_channels(self) -> int:
        return int(self.train_x.shape[1])

    @property
    def num_classes(self) -> int:
        return len(self.info.classes)


def load_run_data(config: Any) -> RunData:
    """Load ``config.data`` (a name or an image folder), split and limit it as the config says."""
    from cnnlab.data import dataset_info, load_dataset

    info = dataset_info(config.data)
    images, labels = load_dataset(config.data, "train", root=config.data_dir)
    train_x, train_y, val_x, val_y = split_train_val(images, labels, config.val_size, config.seed)
    if config.limit_train is not None:
        train_x, train_y = train_x[: config.limit_train], train_y[: config.limit_train]
    test_x, test_y = load_dataset(config.data, "test", root=config.data_dir)
    if config.limit_test is not None:
        test_x, test_y = test_x[: config.limit_test], test_y[: config.limit_test]
    return RunData(info, train_x, train_y, val_x, val_y, test_x, test_y)
