"""The tutorial pipeline that cnnlab's benchmarks compare against, written once.

What the PyTorch tutorials teach, without any of cnnlab's training code:
``torchvision.datasets.FashionMNIST`` with per-sample transforms (optionally ``RandomCrop`` with
padding and ``RandomHorizontalFlip``; ``Resize`` where the model needs a larger input;
``ToTensor``, ``Normalize``), a ``DataLoader`` that shuffles and collates, float32, the default
NCHW layout, SGD with momentum and the four lines of a step (forward and loss, ``zero_grad``,
``backward``, ``step``), then the test set through a ``DataLoader`` of :data:`TEST_BATCH`.

``benchmarks/throughput.py`` (in-process rates and one LeNet-5 epoch) and
``benchmarks/lenet_epoch.py`` (the epoch as a whole process) both use it; they choose the batch
size and the number of DataLoader workers. Scripts run as ``python benchmarks/NAME.py``, so this
module is importable as ``tutorial``. Heavy imports (torch, torchvision) happen inside the
functions, so that importing it costs a timed tutorial process nothing extra.
"""

from __future__ import annotations

import gzip
import shutil
from pathlib import Path
from typing import Any

DATASET = "fashion-mnist"
TUTORIAL_LR = 0.01  # the tutorials' SGD settings
TUTORIAL_MOMENTUM = 0.9
TEST_BATCH = 1000


def make_tutorial_root(work: Path) -> Path:
    """torchvision reads the uncompressed IDX files from ROOT/FashionMNIST/raw: put them there.

    The files are cnnlab's located copies (system or cache), decompressed once; nothing is
    downloaded.
    """
    from cnnlab.data import find_dataset
    from cnnlab.errors import DataError

    raw = work / "FashionMNIST" / "raw"
    raw.mkdir(parents=True, exist_ok=True)
    for split in ("train", "test"):
        location = find_dataset(DATASET, split)
        if location is None:
            raise DataError(f"{DATASET} is not on this machine: run `cnnlab data fetch {DATASET}`")
        for path in location.paths.values():
            target = raw / path.name.removesuffix(".gz")
            with path.open("rb") as probe:
                compressed = probe.read(2) == b"\x1f\x8b"
            opener: Any = gzip.open if compressed else open
            with opener(path, "rb") as src, open(target, "wb") as dst:
                shutil.copyfileobj(src, dst)
    return work


def tutorial_dataset(root: Path, train: bool, size: int, crop_padding: int | None = None) -> Any:
    """torchvision's FashionMNIST with the tutorials' per-sample transforms.

    Args:
        root: a folder from :func:`make_tutorial_root`.
        train: the training split (else the test split).
        size: the model's input side; other than 28, a ``Resize`` comes first.
        crop_padding: augment with ``RandomCrop(size, padding=crop_padding)`` and a horizontal
            flip (None: no augmentation).
    """
    from torchvision import datasets, transforms

    from cnnlab.data import dataset_info

    info = dataset_info(DATASET)
    steps: list[Any] = [transforms.Resize(size)] if size != info.size[0] else []
    if crop_padding is not None:
        steps += [
            transforms.RandomCrop(size, padding=crop_padding),
            transforms.RandomHorizontalFlip(),
        ]
    steps += [transforms.ToTensor(), transforms.Normalize(info.mean, info.std)]
    return datasets.FashionMNIST(
        str(root), train=train, download=False, transform=transforms.Compose(steps)
    )


def sgd(model: Any) -> Any:
    """The tutorials' optimizer: SGD with momentum at :data:`TUTORIAL_LR`."""
    import torch

    return torch.optim.SGD(model.parameters(), lr=TUTORIAL_LR, momentum=TUTORIAL_MOMENTUM)


def train_step(model: Any, opt: Any, x: Any, y: Any) -> int:
    """The four lines every tutorial writes; returns the images stepped on.

    GoogLeNet and Inception return a tuple in training mode: the loss takes its main logits only.
    """
    from torch.nn import functional as F

    from cnnlab.run.metrics import main_logits

    loss = F.cross_entropy(main_logits(model(x)), y)
    opt.zero_grad()
    loss.backward()
    opt.step()
    return len(y)


def train_and_test(
    model: Any, train_set: Any, test_set: Any, batch: int, workers: int = 0
) -> float:
    """One shuffled training epoch over ``train_set``, then the test accuracy on ``test_set``.

    Args:
        model: the network, any mode (set here).
        train_set, test_set: datasets yielding ``(image (C, H, W) float, label)``.
        batch: the training batch; the test batch is :data:`TEST_BATCH`.
        workers: DataLoader worker processes (0: load in this process).
    """
    import torch
    from torch.utils.data import DataLoader

    loader = DataLoader(train_set, batch_size=batch, shuffle=True, num_workers=workers)
    opt = sgd(model)
    model.train()
    for x, y in loader:
        train_step(model, opt, x, y)
    model.eval()
    correct = 0
    with torch.no_grad():
        for x, y in DataLoader(test_set, batch_size=TEST_BATCH, num_workers=workers):
            correct += int((model(x).argmax(1) == y).sum())
    return correct / len(test_set)
