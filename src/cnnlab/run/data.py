"""From stored uint8 images to what a model takes: splits, input size, normalisation.

The whole dataset stays in memory as one uint8 tensor (60,000 Fashion-MNIST images are 47 MB);
batches are indexed out of it, augmented as whole batches, and only then converted to float,
normalised and, where the model needs a larger input than the data has, resized. The same
:func:`cnnlab.run.inputs.make_prepare` serves training, evaluation and ``cnnlab predict``, so a
trained model always sees its inputs prepared the same way.

Image folders (photos) are decoded once, at the size the model needs
(:func:`load_run_data`): the training images at the resize size (``R``, 256 for a 224 input,
torchvision's ImageNet ratio: the shorter side resized to ``R``, the centre ``R x R`` kept), the
validation and test images already in their evaluation form (the shorter side resized to ``R``,
the centre ``S x S``). Training then takes a random-resized crop of ``S x S`` from each stored
image (:mod:`cnnlab.data.crops`), so memory holds ``R x R`` per image, never the photo.
"""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import torch

from cnnlab.errors import ConfigError
from cnnlab.registry import ModelInfo, model_info

if TYPE_CHECKING:
    from cnnlab.data.datasets import DatasetInfo
    from cnnlab.data.folder import FolderSplits
    from cnnlab.run.config import TrainConfig

ORDER_SEED_OFFSET = 1  # data-order generator = seed + 1, augmentation = seed + 2
AUGMENT_SEED_OFFSET = 2
# Offset added to --seed for the validation split's generator, so the split does not share a
# stream with weight initialisation or the data order.
SPLIT_SEED_OFFSET = 1_000_003
# torchvision's ImageNet evaluation: resize the shorter side to 256, keep the centre 224x224.
RESIZE_RATIO = 256 / 224
# A batch of more than half the training images is never a deliberate choice: it is capped to
# the largest power of two that gives at least this many steps per epoch.
MIN_STEPS_PER_EPOCH = 4


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


@dataclass(frozen=True)
class Augmenter:
    """The training augmentation of a recipe, applied to whole uint8 batches.

    With ``resized_crop`` (image folders, whose training images are stored larger than the
    input) every augmentation but ``none`` takes a random-resized crop of that ``(H, W)``, and
    ``none`` the centre crop; flips follow the setting.
    """

    crop: bool
    flip: bool
    padding: int
    resized_crop: tuple[int, int] | None = None

    @classmethod
    def from_setting(cls, setting: str, padding: int) -> Augmenter:
        return cls(crop="crop" in setting, flip="flip" in setting, padding=padding)

    @classmethod
    def for_run(cls, config: TrainConfig, data: RunData) -> Augmenter:
        """The recipe's augmentation, made for the run's data (photos get resized crops)."""
        if data.image_size is None:
            return cls.from_setting(config.augment, config.crop_padding)
        return cls(
            crop=config.augment != "none",
            flip="flip" in config.augment,
            padding=0,
            resized_crop=data.image_size,
        )

    def __call__(self, batch: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
        from cnnlab.data import augment, crops

        if self.resized_crop is not None:
            if self.crop:
                return crops.random_resized_crop(
                    batch, self.resized_crop, generator, flip=self.flip
                )
            batch = crops.center_crop(batch, self.resized_crop)
            return augment.random_hflip(batch, generator) if self.flip else batch
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

    info: DatasetInfo  # classes, mean, std
    train_x: torch.Tensor
    train_y: torch.Tensor
    val_x: torch.Tensor
    val_y: torch.Tensor
    test_x: torch.Tensor
    test_y: torch.Tensor
    # Image folders only: the network's (H, W) (the training images are stored at ``resize``
    # and cropped to it), the resize side, the file lists, and what loading had to say.
    image_size: tuple[int, int] | None = None
    resize: int | None = None
    splits: FolderSplits | None = None
    notes: tuple[str, ...] = ()

    @property
    def in_channels(self) -> int:
        return int(self.train_x.shape[1])

    @property
    def num_classes(self) -> int:
        return len(self.info.classes)


def load_run_data(config: TrainConfig, sides: tuple[int, int] | None = None) -> RunData:
    """Load ``config.data`` (a name or an image folder), split and limit it as the config says.

    ``sides`` is ``(crop, resize)`` of the run's pretrained weights' preprocessing, which sets an
    image folder's input and resize sides (:func:`folder_geometry`): training asks the weights
    for it (:func:`cnnlab.train.trainer.run_data`); a finished run's readers take it from its
    record (``meta.image_size``, ``meta.resize``), so they need neither the weights file nor
    training code.

    Named datasets: the validation split is ``--val-size`` images held out of the training
    split; ``--classes`` keeps some classes (relabelled in the order given) and
    ``--limit-per-class`` the first N training images of each. Image folders: see
    :func:`load_folder_run`.
    """
    from cnnlab.data import dataset_info, load_dataset, resolve

    if isinstance(resolve(config.data), Path):
        return load_folder_run(config, sides)
    info = dataset_info(config.data)
    keep = parse_classes(config.classes, info.classes)
    images, labels = select_classes(*load_dataset(config.data, "train", root=config.data_dir), keep)
    train_x, train_y, val_x, val_y = split_train_val(images, labels, config.val_size, config.seed)
    if config.limit_per_class:
        train_x, train_y = first_per_class(train_x, train_y, config.limit_per_class)
    if config.limit_train is not None:
        train_x, train_y = train_x[: config.limit_train], train_y[: config.limit_train]
    test_x, test_y = select_classes(*load_dataset(config.data, "test", root=config.data_dir), keep)
    if config.limit_test is not None:
        test_x, test_y = test_x[: config.limit_test], test_y[: config.limit_test]
    if keep is not None:
        info = dataclasses.replace(info, classes=tuple(info.classes[k] for k in keep))
    return RunData(info, train_x, train_y, val_x, val_y, test_x, test_y)


def load_run_split(
    config: TrainConfig, split: str = "test", sides: tuple[int, int] | None = None
) -> tuple[torch.Tensor, torch.Tensor]:
    """One held-out split of a run's data, exactly as training split it, and nothing else read.

    What ``eval``, ``show``, the report and the studio mean by "the run's test images": a named
    dataset's published split with ``--classes`` applied (relabelled as training numbered
    them); an image folder's files held out by the run's own ``--val-fraction``,
    ``--test-fraction`` and ``--seed`` (default fractions would hand back training images),
    decoded at the run's sizes. ``--limit-test`` is not applied: callers take the first N.

    Args:
        config: the run's resolved config (``RunFiles.read_config(resolved=True)``).
        split: ``"test"`` or ``"val"``.
        sides: as :func:`load_run_data` (:func:`record_sides` of a finished run).

    Shape:
        images uint8 ``(N, C, H, W)``, labels int64 ``(N,)``.
    """
    from cnnlab.data import dataset_info, load_dataset, resolve

    if split not in ("test", "val"):
        raise ConfigError(f"split {split!r}: a run's held-out splits are test and val")
    if isinstance(resolve(config.data), Path):
        from cnnlab.data.folder import channels_of, decode_files, split_folder

        splits = split_folder(
            config.data,
            val_fraction=config.val_fraction,
            test_fraction=config.test_fraction,
            seed=config.seed,
        )
        size, resize = folder_geometry(config, sides)
        images, labels, _ = decode_files(
            getattr(splits, split), channels_of(splits.train), (size, size),
            shorter_side=resize, skip_unreadable=True,
        )  # fmt: skip
        return images, labels
    keep = parse_classes(config.classes, dataset_info(config.data).classes)
    if split == "val":
        data = load_run_data(config, sides)
        return data.val_x, data.val_y
    return select_classes(*load_dataset(config.data, "test", root=config.data_dir), keep)


def record_sides(meta: Any) -> tuple[int, int] | None:
    """A finished image-folder run's ``(input, resize)`` sides from its record (a
    :class:`~cnnlab.runmeta.RunMeta`): its data decodes as training decoded it, without the
    pretrained weights file training read them from. None for named datasets."""
    return (meta.image_size[0], meta.resize) if meta.resize else None


# --- a subset of the classes (transfer experiments) ----------------------------------------------


def parse_classes(text: str, names: tuple[str, ...]) -> tuple[int, ...] | None:
    """``"5,6,7"`` or ``"Sandal,Shirt"`` -> class indices in the order given; ``""`` -> None."""
    if not text:
        return None
    keep = []
    for item in (t.strip() for t in text.split(",")):
        if item.isdigit() and int(item) < len(names):
            keep.append(int(item))
        elif item in names:
            keep.append(names.index(item))
        else:
            raise ConfigError(
                f"--classes: {item!r} is not a class index (0-{len(names) - 1}) or name of "
                f"the dataset ({', '.join(names)})"
            )
    if len(set(keep)) != len(keep) or len(keep) < 2:
        raise ConfigError(f"--classes {text!r}: name at least two different classes")
    return tuple(keep)


def select_classes(
    images: torch.Tensor, labels: torch.Tensor, keep: tuple[int, ...] | None
) -> tuple[torch.Tensor, torch.Tensor]:
    """The samples of the classes ``keep``, relabelled 0..k-1 in that order (order kept)."""
    if keep is None:
        return images, labels
    relabel = torch.full((int(labels.max()) + 1,), -1, dtype=torch.int64)
    relabel[list(keep)] = torch.arange(len(keep))
    new = relabel[labels]
    mask = new >= 0
    return images[mask], new[mask]


def first_per_class(
    images: torch.Tensor, labels: torch.Tensor, n: int
) -> tuple[torch.Tensor, torch.Tensor]:
    """The first ``n`` samples of each class, in their original order (a few-shot subset)."""
    rank = torch.zeros_like(labels)
    for k in labels.unique():
        where = labels == k
        rank[where] = torch.arange(int(where.sum()))
    mask = rank < n
    return images[mask], labels[mask]


# --- image folders -------------------------------------------------------------------------------


def folder_geometry(config: TrainConfig, sides: tuple[int, int] | None) -> tuple[int, int]:
    """``(S, R)``: the input side and the resize side, given the weights' ``(crop, resize)``.

    ``S`` is ``--image-size``, else the pretrained weights' crop, else the model's own input
    (224 for the ImageNet models), grown to the model's minimum. ``R`` is the weights' resize
    side when their crop is used, else ``S x 256/224``.
    """
    info = model_info(config.model)
    crop, weights_resize = sides if sides else (None, None)
    side = config.image_size or crop or info.input_size[1]
    (s, _), _ = input_size_for(info, (side, side), config.image_size)
    resize = weights_resize if weights_resize and s == crop else round(s * RESIZE_RATIO)
    return s, resize


def _mean_std(images: torch.Tensor, chunk: int = 32) -> tuple[tuple[float, ...], ...]:
    """Per-channel mean and std in [0, 1] of a uint8 batch, in chunks (bounded memory)."""
    c = images.shape[1]
    sums = torch.zeros(2, c, dtype=torch.float64)
    for i in range(0, len(images), chunk):
        x = images[i : i + chunk].to(torch.float64).div_(255)
        sums[0] += x.sum(dim=(0, 2, 3))
        sums[1] += x.square().sum(dim=(0, 2, 3))
    n = images.numel() / c
    mean = sums[0] / n
    std = (sums[1] / n - mean.square()).clamp(min=1e-8).sqrt()
    return (
        tuple(round(float(v), 4) for v in mean),
        tuple(max(round(float(v), 4), 1e-4) for v in std),
    )


def load_folder_run(config: TrainConfig, sides: tuple[int, int] | None = None) -> RunData:
    """An image folder for training: split, decoded at the model's size, never at full size.

    The splits come from :func:`cnnlab.data.folder.split_folder` (``train/``, ``val/``,
    ``test/`` when present, else ``--val-fraction`` and ``--test-fraction`` of each class, fixed
    by ``--seed``). Unreadable files are skipped and counted in a note; a class left with no
    readable training image is an error. Mean and std are measured on the stored training
    images.
    """
    from cnnlab.data.datasets import DatasetInfo
    from cnnlab.data.folder import channels_of, decode_splits, split_folder

    if config.classes or config.limit_per_class:
        raise ConfigError(
            "--classes and --limit-per-class apply to named datasets; for an image folder, "
            "copy the classes and images you want into a folder of their own"
        )
    splits = split_folder(
        config.data,
        val_fraction=config.val_fraction,
        test_fraction=config.test_fraction,
        seed=config.seed,
    )
    size, resize = folder_geometry(config, sides)
    channels = channels_of(splits.train)
    root = splits.root
    # The rule `cnnlab data info` shares: what is skipped, the notes, a class left unreadable.
    sizes = {"train": (resize, resize), "val": (size, size), "test": (size, size)}
    folder = decode_splits(splits, channels, sizes, shorter_side=resize)
    notes = folder.notes()
    decoded = {split: (folder.images[split], folder.labels[split]) for split in folder.images}
    if config.val_size != _field_default(config, "val_size"):
        notes.append(
            "note: --val-size does not apply to image folders: the validation split is "
            "val/ or --val-fraction of each class"
        )
    train_x, train_y = decoded["train"]
    if config.limit_train is not None:
        train_x, train_y = train_x[: config.limit_train], train_y[: config.limit_train]
    test_x, test_y = decoded["test"]
    if config.limit_test is not None:
        test_x, test_y = test_x[: config.limit_test], test_y[: config.limit_test]
    mean, std = _mean_std(train_x)
    info = DatasetInfo(
        name=str(root),
        title=f"image folder {root}",
        classes=splits.classes,
        channels=channels,
        size=(size, size),
        mean=mean,
        std=std,
        num_train=len(train_x),
        num_test=len(test_x),
        format="folder",
        root=root,
    )
    return RunData(
        info,
        train_x,
        train_y,
        *decoded["val"],
        test_x,
        test_y,
        image_size=(size, size),
        resize=resize,
        splits=splits,
        notes=tuple(notes),
    )


def _field_default(config: TrainConfig, name: str) -> Any:
    """A config field's default (a different value is the user's own)."""
    return next(f.default for f in dataclasses.fields(config) if f.name == name)


def write_splits(data: RunData, run_dir: Path) -> None:
    """Record an image folder's file lists in the run directory (nothing for named datasets)."""
    from cnnlab.files import write_json_atomic
    from cnnlab.run.layout import RunFiles

    if data.splits is not None:
        write_json_atomic(RunFiles(Path(run_dir)).splits, data.splits.to_dict())


def fit_config_to_data(config: TrainConfig, data: RunData) -> tuple[TrainConfig, list[str]]:
    """Cap a batch larger than half the training images, scaling the lr with it.

    The cap is the largest power of two giving :data:`MIN_STEPS_PER_EPOCH` steps per epoch;
    the learning rate follows the linear scaling rule (Goyal et al. 2017), as the recipe's lr was
    chosen for its batch.

    Returns:
        The config to train with, and the notes saying what changed.
    """
    n = len(data.train_x)
    if config.batch_size <= n // 2:
        return config, []
    batch = 2 ** max(0, int(math.log2(max(1, n // MIN_STEPS_PER_EPOCH))))
    lr = config.lr * batch / config.batch_size
    note = (
        f"note: --batch-size {config.batch_size} is more than half of the {n} training images: "
        f"using {batch} ({n // batch} steps per epoch) and lr {config.lr:g} x {batch}/"
        f"{config.batch_size} = {lr:.4g} (linear scaling); pass a --batch-size up to {n // 2} "
        "to choose"
    )
    return dataclasses.replace(config, batch_size=batch, lr=lr), [note]


# --- the order and augmentation of training batches ---------------------------------------------


def data_generators(seed: int) -> tuple[torch.Generator, torch.Generator]:
    """The data-order and augmentation generators of a run with ``seed``, as epoch 1 starts."""
    order = torch.Generator().manual_seed(seed + ORDER_SEED_OFFSET)
    augment = torch.Generator().manual_seed(seed + AUGMENT_SEED_OFFSET)
    return order, augment


def first_batch(config: TrainConfig, data: RunData) -> tuple[torch.Tensor, torch.Tensor]:
    """The first training step's batch, drawn exactly as training draws it.

    The same seeded generators (:func:`data_generators`), the same permutation and the same
    :meth:`Augmenter.for_run` (so a photo folder's random-resized crops, not the named datasets'
    padded crops) as :meth:`cnnlab.train.trainer.Trainer.run_epoch`, so a picture of it is the
    batch training used.

    Returns:
        The batch's indices into ``data.train_x`` ``(B,)``, and the augmented uint8 images
        ``(B, C, H, W)`` (before normalisation), ``B = config.batch_size``.
    """
    order, augment = data_generators(config.seed)
    index = torch.randperm(len(data.train_x), generator=order)[: config.batch_size]
    return index, Augmenter.for_run(config, data)(data.train_x[index], augment)
