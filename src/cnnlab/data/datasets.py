"""The datasets cnnlab knows by name, as data: files, addresses, checksums, classes, statistics.

Sources (the canonical address each dataset's own documentation gives):

- Fashion-MNIST: Xiao, Rasul and Vollgraf, "Fashion-MNIST: a Novel Image Dataset for Benchmarking
  Machine Learning Algorithms", arXiv:1708.07747 (2017). Files from the address the dataset's
  README (github.com/zalandoresearch/fashion-mnist) gives. Debian's ``dataset-fashion-mnist``
  package ships the same IDX content re-compressed (no file name in the gzip header), so its
  ``.gz`` files have different SHA-256 digests; both sets are listed and both are accepted.
- MNIST: LeCun, Bottou, Bengio and Haffner, "Gradient-based learning applied to document
  recognition", Proc. IEEE 86(11), 1998. The original site now requires a login, so the address
  is the S3 mirror that torchvision downloads from.
- CIFAR-10: Krizhevsky, "Learning Multiple Layers of Features from Tiny Images", tech. report,
  University of Toronto, 2009. Only the *binary version* (``cifar-10-binary.tar.gz``) is used: the
  "python version" is a set of pickles, and cnnlab never unpickles anything.

Each row also carries its reader (the function that turns the split's files into tensors) and
whether a horizontal mirror keeps an image's class, so a new dataset in a format cnnlab reads is
one row here and its section in ``docs/data.md``: loading, ``cnnlab data``, the ``--data`` help and
the training recipes' flip rule all come from the row.

``mean`` and ``std`` are per channel over every pixel of the training split, pixel values scaled
to [0, 1], rounded to 4 decimals. Fashion-MNIST's were computed here from the files (and
``tests/test_data_real.py`` recomputes them); MNIST's (0.1307, 0.3081) and CIFAR-10's are the
widely published figures for the same computation (population standard deviation over all
pixels).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:  # the readers import PyTorch when they run, never when this table is imported
    import torch

    from cnnlab.data.fetch import Location

__all__ = [
    "DATASETS",
    "DEFAULT_DATASET",
    "DataFile",
    "DatasetInfo",
    "Reader",
    "read_cifar_split",
    "read_idx_split",
]

#: Reads one split of a named dataset: ``reader(info, location, split, fix) -> (images, labels)``,
#: from the files :func:`cnnlab.data.fetch.locate` found; ``fix`` ends every error message about
#: a malformed file (what the user should do about it).
Reader = Callable[["DatasetInfo", "Location", str, str], tuple["torch.Tensor", "torch.Tensor"]]


@dataclass(frozen=True)
class DataFile:
    """One file of a named dataset.

    Attributes:
        name: File name as published (``train-images-idx3-ubyte.gz``).
        split: ``"train"`` or ``"test"``, or ``None`` for an archive that holds both.
        role: ``"images"``, ``"labels"``, ``"records"`` (CIFAR batches: label byte + pixels)
            or ``"archive"`` (downloaded, then unpacked into the ``records`` files).
        sha256: Accepted SHA-256 digests, the upstream file's first, then known repackagings.
        member: For a file that comes out of an archive, its path inside the archive.
        content_sha256: Digests of the file's uncompressed content, so that a raw or
            re-compressed copy of the right data is recognised too.
    """

    name: str
    split: str | None
    role: str
    sha256: tuple[str, ...]
    member: str | None = None
    content_sha256: tuple[str, ...] = ()


@dataclass(frozen=True)
class DatasetInfo:
    """What cnnlab knows about a dataset before reading any of it.

    Attributes:
        name: The name ``load_dataset`` takes (``"fashion-mnist"``), or the folder's path.
        title: Human name with its paper.
        classes: Class names, index ``i`` is label ``i``.
        channels: 1 (grayscale) or 3 (RGB).
        size: Image (height, width) in pixels.
        mean: Per-channel mean of the training split, pixel values in [0, 1].
        std: Per-channel standard deviation of the training split, same scale.
        num_train: Number of training samples (``None`` where unknown before reading).
        num_test: Number of test samples.
        format: ``"idx"``, ``"cifar-binary"`` or ``"folder"`` (the name ``cnnlab data info``
            shows; ``reader`` is what reads it).
        reader: The function that reads a split's files (:data:`Reader`); ``None`` for an image
            folder, which :mod:`cnnlab.data.folder` reads.
        flip_preserves_label: Whether a horizontally mirrored image keeps its class. False for
            digits (a mirrored digit is another symbol or none): the training recipes then drop
            flip augmentation and flip test-time augmentation
            (:func:`cnnlab.run.recipes.resolve`).
        url: Base address the files are downloaded from (file name appended).
        files: The dataset's files with their checksums (empty for image folders).
        homepage: Where the dataset is documented.
        root: For an image folder, its directory.
    """

    name: str
    title: str
    classes: tuple[str, ...]
    channels: int
    size: tuple[int, int]
    mean: tuple[float, ...]
    std: tuple[float, ...]
    num_train: int | None
    num_test: int | None
    format: str
    reader: Reader | None = None
    flip_preserves_label: bool = True
    url: str = ""
    files: tuple[DataFile, ...] = ()
    homepage: str = ""
    root: Path | None = field(default=None, compare=False)

    @property
    def num_classes(self) -> int:
        return len(self.classes)

    def split_files(self, split: str) -> tuple[DataFile, ...]:
        """The files ``load_dataset(name, split)`` reads, in reading order."""
        return tuple(f for f in self.files if f.split == split and f.role != "archive")


def read_idx_split(
    info: DatasetInfo, loc: Location, split: str, fix: str
) -> tuple[torch.Tensor, torch.Tensor]:
    """IDX (MNIST-style): the split's images file and labels file, checked to belong together."""
    from cnnlab.data.idx import read_idx_pair

    by_role = {f.role: f for f in info.split_files(split)}
    images, labels = (loc.paths[by_role[role].name] for role in ("images", "labels"))
    return read_idx_pair(images, labels, info.num_classes, fix=fix)


def read_cifar_split(
    info: DatasetInfo, loc: Location, split: str, fix: str
) -> tuple[torch.Tensor, torch.Tensor]:
    """CIFAR binary version: the split's batch files, unpacked or straight out of the tarball."""
    from cnnlab.data.cifar import read_cifar_archive, read_cifar_files

    files = info.split_files(split)
    if loc.archive is not None:
        return read_cifar_archive(loc.archive, [f.member for f in files if f.member], fix=fix)
    return read_cifar_files([loc.paths[f.name] for f in files], fix=fix)


def _idx_files(
    digests: dict[str, tuple[str, ...]], content: dict[str, str] | None = None
) -> tuple[DataFile, ...]:
    """The four IDX files of MNIST-style datasets, in the order images, labels per split."""
    files = []
    for split, prefix in (("train", "train"), ("test", "t10k")):
        for role, stem in (("images", "images-idx3-ubyte"), ("labels", "labels-idx1-ubyte")):
            name = f"{prefix}-{stem}.gz"
            raw = (content[name],) if content else ()
            files.append(DataFile(name, split, role, digests[name], content_sha256=raw))
    return tuple(files)


FASHION_MNIST = DatasetInfo(
    name="fashion-mnist",
    title="Fashion-MNIST (Xiao, Rasul and Vollgraf, 2017)",
    # Label order from the dataset README, "Labels" table.
    classes=(
        "T-shirt/top",
        "Trouser",
        "Pullover",
        "Dress",
        "Coat",
        "Sandal",
        "Shirt",
        "Sneaker",
        "Bag",
        "Ankle boot",
    ),
    channels=1,
    size=(28, 28),
    mean=(0.2860,),
    std=(0.3530,),
    num_train=60_000,
    num_test=10_000,
    format="idx",
    reader=read_idx_split,
    flip_preserves_label=True,  # clothes: a mirrored shoe is still a shoe
    url="http://fashion-mnist.s3-website.eu-central-1.amazonaws.com/",
    homepage="https://github.com/zalandoresearch/fashion-mnist",
    files=_idx_files(
        {
            # (upstream S3 / GitHub file, Debian dataset-fashion-mnist re-compression)
            "train-images-idx3-ubyte.gz": (
                "3aede38d61863908ad78613f6a32ed271626dd12800ba2636569512369268a84",
                "b0564c3eedabfbf835052cff8503ea422014ce006caf5b757f851416ee8300c7",
            ),
            "train-labels-idx1-ubyte.gz": (
                "a04f17134ac03560a47e3764e11b92fc97de4d1bfaf8ba1a3aa29af54cc90845",
                "0ae29f65d86684f32d1b9c85147786c547b9c6aebcaf235f0400a0cce308b056",
            ),
            "t10k-images-idx3-ubyte.gz": (
                "346e55b948d973a97e58d2351dde16a484bd415d4595297633bb08f03db6a073",
                "cc1d090a38ace84dfa1aa66e3ada7c336ef481a96936906477e6dd344da56eaa",
            ),
            "t10k-labels-idx1-ubyte.gz": (
                "67da17c76eaffca5446c3361aaab5c3cd6d1c2608764d35dfb1850b086bf8dd5",
                "8d3605d196f4be44669e46906da9733c8131fef761fdbfec72c424d5222f1a05",
            ),
        },
        # SHA-256 of the uncompressed IDX files (computed here from Debian's copy, whose
        # content is the upstream content: same lengths, and its .gz differ only in header).
        {
            "train-images-idx3-ubyte.gz": (
                "c59f468a2f672dc815687fe0f83887768d799fd8a3f3276145d20f83aa44d888"
            ),
            "train-labels-idx1-ubyte.gz": (
                "bad3541b69d912435c50bb6ba87bec294ff4f6a2e1246121d8633921760443d9"
            ),
            "t10k-images-idx3-ubyte.gz": (
                "5b4141f0afbad91edebe8549f8fcffe087ea10ca49f1dbef5c9a5cd8815ce37b"
            ),
            "t10k-labels-idx1-ubyte.gz": (
                "0402a96d92fd2663957122ceb108a494c5af83dab82d92729df917d7dec38c34"
            ),
        },
    ),
)

MNIST = DatasetInfo(
    name="mnist",
    title="MNIST (LeCun, Bottou, Bengio and Haffner, 1998)",
    classes=tuple(str(d) for d in range(10)),
    channels=1,
    size=(28, 28),
    mean=(0.1307,),
    std=(0.3081,),
    num_train=60_000,
    num_test=10_000,
    format="idx",
    reader=read_idx_split,
    flip_preserves_label=False,  # a mirrored digit is another symbol or none
    url="https://ossci-datasets.s3.amazonaws.com/mnist/",
    homepage="https://yann.lecun.com/exdb/mnist/",
    files=_idx_files(
        {
            "train-images-idx3-ubyte.gz": (
                "440fcabf73cc546fa21475e81ea370265605f56be210a4024d2ca8f203523609",
            ),
            "train-labels-idx1-ubyte.gz": (
                "3552534a0a558bbed6aed32b30c495cca23d567ec52cac8be1a0730e8010255c",
            ),
            "t10k-images-idx3-ubyte.gz": (
                "8d422c7b0a1c1c79245a5bcf07fe86e33eeafee792b84584aec276f5a2dbc4e6",
            ),
            "t10k-labels-idx1-ubyte.gz": (
                "f7ae60f92e00ec6debd23a6088c31dbd2371eca3ffa0defaefb259924204aec6",
            ),
        }
    ),
)

# The binary version's members: 5 training batches of 10,000 records and one test batch.
_CIFAR_DIR = "cifar-10-batches-bin"
CIFAR10 = DatasetInfo(
    name="cifar10",
    title="CIFAR-10 (Krizhevsky, 2009)",
    # batches.meta.txt of the binary version, one name per label.
    classes=(
        "airplane",
        "automobile",
        "bird",
        "cat",
        "deer",
        "dog",
        "frog",
        "horse",
        "ship",
        "truck",
    ),
    channels=3,
    size=(32, 32),
    mean=(0.4914, 0.4822, 0.4465),
    std=(0.2470, 0.2435, 0.2616),
    num_train=50_000,
    num_test=10_000,
    format="cifar-binary",
    reader=read_cifar_split,
    flip_preserves_label=True,  # photos of objects and animals
    url="https://www.cs.toronto.edu/~kriz/",
    homepage="https://www.cs.toronto.edu/~kriz/cifar.html",
    files=(
        DataFile(
            "cifar-10-binary.tar.gz",
            None,
            "archive",
            ("c4a38c50a1bc5f3a1c5537f2155ab9d68f9f25eb1ed8d9ddda3db29a59bca1dd",),
        ),
        *(
            DataFile(
                f"data_batch_{i}.bin",
                "train",
                "records",
                (digest,),
                f"{_CIFAR_DIR}/data_batch_{i}.bin",
            )
            for i, digest in enumerate(
                (
                    "cee916563c9f80d84e3cc88e17fdc0941787f1244f00a67874d45b261883ada5",
                    "a591ca11fa1708a91ee40f54b3da4784ccd871ecf2137de63f51ada8b3fa57ed",
                    "bbe8596564c0f86427f876058170b84dac6670ddf06d79402899d93ceea26f67",
                    "014e562d6e23c72197cc727519169a60359f5eccd8945ad5a09d710285ff4e48",
                    "755304fc0b379caeae8c14f0dac912fbc7d6cd469eb67a1029a08a39453a9add",
                ),
                start=1,
            )
        ),
        DataFile(
            "test_batch.bin",
            "test",
            "records",
            ("8e2eb146ae340b09e24670f29cabc6326dba54da8789dab6768acf480273f65b",),
            f"{_CIFAR_DIR}/test_batch.bin",
        ),
    ),
)

#: Named datasets, by the name ``load_dataset`` takes.
DATASETS: dict[str, DatasetInfo] = {d.name: d for d in (FASHION_MNIST, MNIST, CIFAR10)}

#: The dataset ``load_dataset``, ``cnnlab train`` and ``cnnlab eval`` use when none is named.
DEFAULT_DATASET = FASHION_MNIST.name

#: Other spellings users type, mapped to the canonical name.
ALIASES: dict[str, str] = {
    "fashion_mnist": "fashion-mnist",
    "fashionmnist": "fashion-mnist",
    "fmnist": "fashion-mnist",
    "cifar-10": "cifar10",
    "cifar_10": "cifar10",
}
