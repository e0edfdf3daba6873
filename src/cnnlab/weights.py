"""Pretrained weights: torchvision's published ImageNet files, your own ``.pth``, cnnlab runs.

Where each piece comes from:

- **Which file.** ``--weights imagenet`` takes the address, the category names and the
  preprocessing (resize side, crop, mean, std) of ``torchvision.models.get_model_weights(name)
  .DEFAULT`` from the installed torchvision, for the 25 models whose ``ModelInfo.torchvision``
  names a builder (cnnlab's copies are tested to strict-load torchvision's state dicts). Models
  without one (the ``_paper`` variants, the CIFAR nets) are a one-line error.
- **Download.** Into ``~/.cache/cnnlab/weights`` (``$XDG_CACHE_HOME``) with a progress bar, through
  :func:`cnnlab.data.fetch.download` (``$CNNLAB_WEIGHTS_URL`` serves ``<base>/<file name>``
  instead, as the tests' local server does). The SHA-256 of the downloaded bytes must start with
  the hex digits in the file's name (``resnet18-f37072fd.pth``: torchvision's own convention)
  **before anything parses it**; a mismatch deletes it.
- **Parsing.** The file is opened once, as a regular file of bounded size
  (:func:`cnnlab.files.open_regular`: a FIFO or ``/dev/zero`` is refused, not read forever),
  hashed and parsed from that one open file; a zip archive must have its members stored, as
  ``torch.save`` writes them (a compressed member could be a zip bomb). Then only
  ``torch.load(weights_only=True)``, whose unpickler builds tensors and plain containers and
  refuses any other object without running it; then every key, shape, dtype and value is
  checked against the cnnlab model (:func:`check_state_dict`, through
  :func:`cnnlab.run.tensorfile.check_weights`): floating point tensors must be float16, bfloat16,
  float32 or float64 and finite once converted to the model's dtype, integer buffers (batch
  norm's ``num_batches_tracked``) integers. The result is written once as
  safetensors (``<file stem>.safetensors``, with the categories and preprocessing in its
  metadata) and the ``.pth`` is deleted: it is never parsed as a pickle again. Every field of
  that metadata is type- and range-checked when it is read back (:class:`~cnnlab.runmeta.Fields`).
  torchvision itself unpickles these files with ``weights_only=False`` and, once cached, checks
  nothing.
- **Loading into a model** (:func:`apply_weights`). Every tensor is copied except the classifier
  head when the classes differ (its keys are the ones whose shape depends on ``num_classes``,
  found by building the model twice on the ``meta`` device); a one-channel model gets the first
  convolution's RGB kernels summed (a grey image fed as three equal channels gives the same
  output), and the mean and std averaged over the channels.
- **Fine-tuning** (:func:`freeze_backbone`, and the optimizer's groups in
  :mod:`cnnlab.train.finetune`). ``--finetune head`` trains only the head (a linear probe: the
  rest frozen, batch-norm statistics included); ``--finetune all`` trains everything, the
  pretrained layers at ``--backbone-lr`` times the learning rate (param groups with an
  ``lr_scale``, applied around each optimizer step, so any schedule stays one number).

Exception to torchvision's preprocessing: GoogLeNet and Inception v3 were trained on inputs
scaled to [-1, 1]; torchvision's builders convert ImageNet-normalised input back
(``transform_input=True``), cnnlab's models have no such step, so their recorded mean and std are
0.5 (the same arithmetic, done in the preprocessing).
"""

from __future__ import annotations

import os
import re
import urllib.parse
import warnings
import zipfile
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, BinaryIO, cast

import torch
from torch import nn

from cnnlab import files
from cnnlab.analysis.trace import on_meta
from cnnlab.errors import CheckpointError, ConfigError
from cnnlab.formats import printable
from cnnlab.registry import create_model, model_info
from cnnlab.runmeta import MAX_CHANNELS, MAX_SIDE, MIN_STD, Fields

__all__ = [
    "IMAGENET",
    "Preprocessing",
    "Pretrained",
    "Published",
    "SourceWeights",
    "apply_weights",
    "check_state_dict",
    "convert_pth",
    "fetch_imagenet",
    "preprocessing_for",
    "published",
    "read_weights",
]

IMAGENET = "imagenet"
WEIGHTS_FORMAT = "cnnlab.weights/1"
ENV_URL = "CNNLAB_WEIGHTS_URL"
#: The hex digits torchvision puts in a file name: the start of the file's SHA-256
#: (torch.hub's ``HASH_REGEX``).
_HASH_IN_NAME = re.compile(r"-([a-f0-9]{8,})\.")
#: torchvision builds these with ``transform_input=True`` when given weights (see the docstring).
_TRANSFORM_INPUT = frozenset({"googlenet", "inception_v3"})
#: Old DenseNet files name ``norm.1`` what the module calls ``norm1`` (torchvision's densenet.py
#: renames them with this pattern when it loads them).
_DENSENET_KEY = re.compile(
    r"^(.*denselayer\d+\.(?:norm|relu|conv))\.((?:[12])\.(?:weight|bias|running_mean|running_var))$"
)
_TORCH_SAVE_SUFFIXES = frozenset({".pth", ".pt", ".bin", ".pkl", ".ckpt"})  # --weights refuses
_IMPORT_AGAIN = "the file is damaged: import the weights again with `cnnlab weights import`"
_PTH_FIX = "save a state dict with torch.save(model.state_dict(), PATH)"


@dataclass(frozen=True)
class Preprocessing:
    """How images were prepared for a set of weights: resize the shorter side, crop, normalise.

    Attributes:
        resize: shorter side in pixels before the centre crop (None: resize to ``crop``).
        crop: side of the centre crop, the network's input.
        mean, std: per channel, pixels in [0, 1].
    """

    resize: int | None
    crop: int
    mean: tuple[float, ...]
    std: tuple[float, ...]

    def for_channels(self, channels: int) -> Preprocessing:
        """The same for ``channels`` inputs: one channel averages the RGB mean and std."""
        if channels == len(self.mean):
            return self
        if channels == 1:
            avg = lambda v: (round(sum(v) / len(v), 6),)  # noqa: E731
            return Preprocessing(self.resize, self.crop, avg(self.mean), avg(self.std))
        raise ConfigError(
            f"weights for {len(self.mean)}-channel input cannot take {channels} channels: "
            "use data with the channels the weights were trained on"
        )

    def to_dict(self) -> dict[str, Any]:
        return {**asdict(self), "mean": list(self.mean), "std": list(self.std)}

    @classmethod
    def from_dict(cls, data: object, source: object = "weights file") -> Preprocessing:
        """Read what :meth:`to_dict` wrote, checking every type and range (as
        :meth:`cnnlab.runmeta.RunMeta.from_dict` does).

        Raises:
            CheckpointError: not an object, or a field missing, of the wrong type or out of
                bounds (named, with its value).
        """
        f = Fields(data, source, "weights preprocessing", _IMPORT_AGAIN)
        mean = f.data.get("mean")
        channels = len(mean) if isinstance(mean, list) and 1 <= len(mean) <= MAX_CHANNELS else 3
        return cls(
            f.integer("resize", 1, MAX_SIDE, None, optional=True),
            cast(int, f.integer("crop", 1, MAX_SIDE)),
            f.reals("mean", channels, 0.0, 1.0),
            f.reals("std", channels, MIN_STD, 1.0),
        )


@dataclass(frozen=True)
class Published:
    """torchvision's published ImageNet weights for one cnnlab model."""

    model: str
    url: str
    file_name: str
    hash_prefix: str
    categories: tuple[str, ...]
    preprocessing: Preprocessing

    @property
    def cache_name(self) -> str:
        """The converted file's name: the published name, as safetensors."""
        return Path(self.file_name).stem + ".safetensors"


@dataclass
class SourceWeights:
    """A state dict to start from, with what it was trained for."""

    model: str
    state: dict[str, torch.Tensor]
    classes: tuple[str, ...]
    preprocessing: Preprocessing
    source: str


@dataclass
class Pretrained:
    """What :func:`apply_weights` did: the tensors it copied, the head's keys, and the
    preprocessing the weights were trained with."""

    source: str
    preprocessing: Preprocessing
    loaded: set[str] = field(default_factory=set)
    head: set[str] = field(default_factory=set)
    head_reset: bool = False


# --- which weights ------------------------------------------------------------------------------


def _builder_name(model: str) -> str:
    name = model_info(model).torchvision
    if name is None:
        with_weights = ", ".join(_with_weights()[:6])
        raise ConfigError(
            f"{model} has no published ImageNet weights (cnnlab's own variant, not "
            f"torchvision's): train it from scratch, or use a torchvision-named model "
            f"({with_weights}, ...; `cnnlab models` marks them)"
        )
    return name


def _with_weights() -> list[str]:
    from cnnlab.registry import list_models

    return [n for n in list_models() if model_info(n).torchvision]


def published(model: str) -> Published:
    """The installed torchvision's DEFAULT ImageNet weights for ``model`` (no download)."""
    import torchvision

    builder = _builder_name(model)
    weights = torchvision.models.get_model_weights(builder).DEFAULT
    t = weights.transforms()
    mean, std = tuple(t.mean), tuple(t.std)
    if builder in _TRANSFORM_INPUT:
        mean, std = (0.5, 0.5, 0.5), (0.5, 0.5, 0.5)
    file_name = Path(urllib.parse.urlparse(weights.url).path).name
    match = _HASH_IN_NAME.search(file_name)
    if match is None:  # every torchvision classification file has one; refuse rather than trust
        raise CheckpointError(
            f"{weights.url}: no SHA-256 prefix in the file name to check it against; download it "
            f"yourself and run `cnnlab weights import FILE --model {model}`"
        )
    pre = Preprocessing(int(t.resize_size[0]), int(t.crop_size[0]), mean, std)
    return Published(
        model, weights.url, file_name, match.group(1), tuple(weights.meta["categories"]), pre
    )


def weights_dir() -> Path:
    """Where converted ImageNet weights are kept: ``$XDG_CACHE_HOME/cnnlab/weights``."""
    from cnnlab.data.fetch import cache_dir

    return cache_dir() / "weights"


def _url(pub: Published, base_url: str | None) -> str:
    base = base_url or os.environ.get(ENV_URL)
    return f"{base.rstrip('/')}/{pub.file_name}" if base else pub.url


# --- download, check, convert --------------------------------------------------------------------


def fetch_imagenet(
    model: str, *, base_url: str | None = None, progress: bool | None = None
) -> Path:
    """The converted ImageNet weights of ``model``, downloaded and converted unless cached.

    Raises:
        CheckpointError: the download's SHA-256 does not start with the name's digits, or the
            file is not a state dict of ``model`` (it is deleted either way); the cached copy is
            not a regular file or is damaged.
        DataError: the address cannot be reached (the message names the fix).
    """
    from cnnlab.data.fetch import download

    pub = published(model)
    dest = weights_dir() / pub.cache_name
    if os.path.lexists(dest):
        if not dest.is_file():  # a directory, a FIFO, a dangling link: never ours
            raise CheckpointError(
                f"{dest} is in the weights cache but is not a file cnnlab wrote: delete it, and "
                "the weights are downloaded again"
            )
        _read_converted(dest, model)  # framing, metadata and tensors checked; damage raises
        return dest
    url = _url(pub, base_url)
    staging = weights_dir() / pub.file_name
    fix = f"or download {pub.url} yourself and run `cnnlab weights import FILE --model {model}`"
    try:
        download(url, staging, (), progress=progress, offline_fix=f"check your connection, {fix}")
        digest = files.sha256_file(staging, what="download", error=CheckpointError)
        if not digest.startswith(pub.hash_prefix):
            raise CheckpointError(
                f"{url}: SHA-256 {digest[:16]}... does not start with {pub.hash_prefix}, the "
                "digits in its name: the download is damaged or not the published file; it was "
                "deleted unread: try again"
            )
        convert_pth(
            staging,
            model,
            dest,
            categories=pub.categories,
            preprocessing=pub.preprocessing,
            source=pub.url,
        )
    finally:
        staging.unlink(missing_ok=True)
    return dest


def _open_pth(path: Path) -> BinaryIO:
    """A ``.pth`` file, opened only if it is a regular file of bounded size (cnnlab.files)."""
    return files.open_regular(path, what="weights file", limit="weights", error=CheckpointError)


def _check_zip(f: BinaryIO, path: Path) -> None:
    """Refuse a zip archive that ``torch.save`` cannot have written, before torch reads it.

    ``torch.save`` stores its members uncompressed; a compressed member could expand a small
    file into more memory than the machine has (torch's reader inflates what it is given).
    """
    try:
        members = zipfile.ZipFile(f).infolist()
    except Exception:  # BadZipFile, OSError, ValueError, ...: a damaged central directory
        raise CheckpointError(
            f"{path} is a damaged zip archive (not a whole torch.save file): {_PTH_FIX}"
        ) from None
    packed = [m.filename for m in members if m.compress_type != zipfile.ZIP_STORED]
    if packed:
        raise CheckpointError(
            f"{path}: {printable(packed[0], 80)} is compressed, which torch.save never does "
            f"(a zip bomb could fill the memory): {_PTH_FIX}"
        )
    f.seek(0)


def _read_pth(path: Path, *, hashed: bool = False) -> tuple[str, dict[str, torch.Tensor]]:
    """The SHA-256 (with ``hashed``, else "") and state dict of a ``torch.save`` file, from one
    open file (:func:`load_pth` says what is accepted)."""
    try:
        digest, obj = _unpickle_tensors(path, hashed)
    except OSError as err:  # opened, then refused (/proc/self/mem: EIO)
        reason = (err.strerror or str(err)).lower()
        raise CheckpointError(f"{path}: cannot read this weights file: {reason}") from None
    if isinstance(obj, dict) and len(obj) == 1 and next(iter(obj)) in ("state_dict", "model"):
        obj = next(iter(obj.values()))
    if not isinstance(obj, dict) or not all(
        isinstance(k, str) and isinstance(v, torch.Tensor) for k, v in obj.items()
    ):
        raise CheckpointError(
            f"{path}: not a state dict (names to tensors): save model.state_dict() instead"
        )
    return digest, obj


def _sha256_bounded(f: BinaryIO, path: Path) -> str:
    """The SHA-256 of an open file, read to its end but never past the weights limit (a file
    that keeps growing, or a ``/proc`` file whose size reads 0), then rewound."""
    h, total = files.sha256(), 0
    for chunk in iter(lambda: f.read(files.CHUNK_BYTES), b""):
        total += len(chunk)
        if total > files.LIMITS["weights"]:
            raise CheckpointError(f"{path} is larger than any weights file cnnlab reads")
        h.update(chunk)
    f.seek(0)
    return h.hexdigest()


def _unpickle_tensors(path: Path, hashed: bool) -> tuple[str, object]:
    """What ``torch.load(weights_only=True)`` makes of the file, and its SHA-256 if ``hashed``."""
    with _open_pth(path) as f:
        digest = ""
        if hashed:
            digest = _sha256_bounded(f, path)
        head = f.read(2)
        f.seek(0)
        if head != b"PK" and head[:1] != b"\x80":
            raise CheckpointError(
                f"{path} is not a torch.save file (a zip archive or a pickle): pass a state dict "
                "saved with torch.save(model.state_dict(), PATH)"
            )
        if head == b"PK":
            _check_zip(f, path)
        try:
            with warnings.catch_warnings():  # torch warns about pickle protocols: not for users
                warnings.simplefilter("ignore")
                obj = torch.load(f, map_location="cpu", weights_only=True)
        except Exception as err:  # UnpicklingError, RuntimeError, EOFError, zip errors...
            raise CheckpointError(
                f"{path}: refused by torch.load(weights_only=True) ({_refusal(err)}); it is "
                "damaged or holds objects other than tensors, which cnnlab never unpickles"
            ) from None
    return digest, obj


def _refusal(err: Exception) -> str:
    """Why ``torch.load`` refused a file, in a few words on one printable line.

    The restricted unpickler's messages run to a paragraph of advice (including how to turn the
    protection off, and terminal escapes); only the reason after ``WeightsUnpickler error:`` is
    kept (``Unsupported global: GLOBAL builtins.exec``).
    """
    text = str(err)
    _, marker, reason = text.partition("WeightsUnpickler error:")
    lines = [line.strip() for line in (reason if marker else text).splitlines()]
    first = next((line for line in lines if line), type(err).__name__)
    first = first.split(" was not an allowed global")[0]
    return printable(first, 160)


def load_pth(path: str | os.PathLike) -> dict[str, torch.Tensor]:
    """A ``torch.save`` state dict, read only with ``torch.load(weights_only=True)``.

    Accepts a plain state dict or one wrapped as ``{"state_dict": ...}`` / ``{"model": ...}``.
    The file is opened once (a regular file of bounded size, :func:`cnnlab.files.open_regular`);
    a zip archive must have its members stored, as ``torch.save`` writes them.

    Raises:
        CheckpointError: not a regular ``torch.save`` file, an object that is not tensors
            (refused by the restricted unpickler without running it), or a dict of something
            else.
    """
    return _read_pth(Path(path))[1]


def check_state_dict(
    state: dict[str, torch.Tensor], model: str, source: object
) -> dict[str, torch.Tensor]:
    """``state`` checked against ``model`` at 1000 classes, RGB input, converted to its dtypes.

    Old DenseNet key names are renamed as torchvision does. Every key, shape, dtype and value is
    checked by :func:`cnnlab.run.tensorfile.check_weights`.

    Raises:
        CheckpointError: missing or unexpected keys, or a shape that differs (the first few are
            named, with the counts); a tensor that is not floating point where the model's is
            (or not an integer where the model has an integer buffer); NaN or infinity.
    """
    from cnnlab.run.tensorfile import check_weights

    if model_info(model).family == "densenet":
        state = {_DENSENET_KEY.sub(r"\1\2", k): v for k, v in state.items()}
    with on_meta():
        expected = create_model(model).state_dict()
    return check_weights(
        state,
        expected,
        source,
        model=model,
        fix="pass the weights of this architecture, or the matching --model",
    )


def _check_destination(dest: Path) -> None:
    """Refuse an output path that cannot become a file, before any work is done.

    The file is renamed into place, so an existing device or FIFO would be replaced, not
    written to (``-o /dev/null`` as root would remove the device): only a regular file (or a
    new name) is accepted.
    """
    if dest.is_dir():
        raise CheckpointError(
            f"{dest} is a directory: name the file to write, e.g. -o {dest / 'weights.safetensors'}"
        )
    if os.path.lexists(dest) and not dest.is_file():
        raise CheckpointError(
            f"{dest} exists and is not a regular file (a device, a FIFO or a broken link): "
            "pass -o with a new .safetensors path"
        )
    parent = next((p for p in dest.parents if os.path.lexists(p)), None)
    if parent is not None and not parent.is_dir():
        raise CheckpointError(
            f"cannot write {dest}: {parent} is not a directory: pass -o with a path in a directory"
        )


def convert_pth(
    path: str | os.PathLike,
    model: str,
    dest: str | os.PathLike,
    *,
    categories: tuple[str, ...] | None = None,
    preprocessing: Preprocessing | None = None,
    source: str | None = None,
) -> Path:
    """Check a ``.pth`` state dict of ``model`` and write it as safetensors (atomically).

    ``categories`` default to ``class0``..., ``preprocessing`` to the model's published one
    (torchvision's ImageNet transforms), or resize 256 / crop 224 with ImageNet's statistics.

    Raises:
        CheckpointError: ``path`` is not a state dict of ``model`` (see :func:`load_pth`,
            :func:`check_state_dict`), or ``dest`` cannot be written (a directory, a path under
            a file, no permission).
    """
    from cnnlab.run.tensorfile import write_safetensors_atomic

    path, dest = Path(path), Path(dest)
    _check_destination(dest)
    digest, raw = _read_pth(path, hashed=True)
    state = check_state_dict(raw, model, path)
    if preprocessing is None:
        try:
            preprocessing = published(model).preprocessing
        except ConfigError:  # no published weights: ImageNet's usual transforms
            preprocessing = Preprocessing(256, 224, (0.485, 0.456, 0.406), (0.229, 0.224, 0.225))
    if categories is None:
        categories = tuple(f"class{i}" for i in range(model_info(model).num_classes))
    meta = {
        "format": WEIGHTS_FORMAT,
        "model": model,
        "categories": list(categories),
        "preprocessing": preprocessing.to_dict(),
        "source": source or str(path),
        "source_sha256": digest,
    }
    write_safetensors_atomic(dest, state, meta, fix="pass -o with a path you can write to")
    return dest


# --- reading weights to start from ----------------------------------------------------------------


def _read_converted(path: Path, model: str) -> SourceWeights:
    """A file :func:`convert_pth` wrote, every field of its metadata and every tensor checked."""
    from cnnlab.run.tensorfile import read_header, read_tensors

    classes, pre, source = _converted_record(read_header(path), path, model)
    state = check_state_dict(read_tensors(path), model, path)
    return SourceWeights(model, state, classes, pre, source)


def _converted_record(
    header: dict[str, Any], path: Path, model: str
) -> tuple[tuple[str, ...], Preprocessing, str]:
    """The categories, preprocessing and source recorded by :func:`convert_pth`, checked.

    Raises:
        ConfigError: the weights are of another model.
        CheckpointError: a field missing, of the wrong type or out of bounds.
    """
    f = Fields(header, path, "weights metadata", _IMPORT_AGAIN)
    stored = f.text("model")
    if stored != model:
        raise ConfigError(
            f"{path} holds weights of {printable(stored, 80)}, not {model}: pass --model "
            f"{printable(stored, 80)} or other weights"
        )
    classes = f.texts("categories")
    want = model_info(model).num_classes  # checked against the model at its default head
    if len(classes) != want:
        raise f.error("categories", f"{want} names, one per output of {model}")
    pre = Preprocessing.from_dict(f.data.get("preprocessing"), path)
    return classes, pre, f.text("source", str(path))


def read_weights(spec: str, model: str, *, progress: bool | None = None) -> SourceWeights:
    """The weights ``--weights`` names: ``imagenet``, a ``.safetensors`` file or a run directory.

    A run directory or a model/checkpoint file ``cnnlab train`` wrote must be of the same
    architecture; its own preprocessing (size, mean, std) is the one recorded.

    Raises:
        CheckpointError: a file cnnlab did not write (a ``.pth`` must be imported first with
            ``cnnlab weights import``), damaged, or of another architecture.
    """
    from cnnlab.run.checkpoints import resolve_model_file
    from cnnlab.run.load import load_trained
    from cnnlab.run.tensorfile import CHECKPOINT_FORMAT, MODEL_FORMAT, read_header

    if spec == IMAGENET:
        return _read_converted(fetch_imagenet(model, progress=progress), model)
    file = resolve_model_file(_not_torch_save(Path(spec).expanduser(), model))
    header = read_header(file)
    if header.get("format") == WEIGHTS_FORMAT:
        return _read_converted(file, model)
    if header.get("format") not in (MODEL_FORMAT, CHECKPOINT_FORMAT):
        raise CheckpointError(f"{file}: unknown cnnlab format {header.get('format')!r:.80}")
    trained = load_trained(file)
    meta = trained.meta
    if meta.model != model:
        raise ConfigError(
            f"{file} holds a trained {meta.model}, not {model}: train {meta.model} or pass "
            "other weights"
        )
    pre = Preprocessing(meta.resize, meta.image_size[0], meta.mean, meta.std)
    return SourceWeights(model, trained.model.state_dict(), meta.classes, pre, str(file))


def _not_torch_save(path: Path, model: str) -> Path:
    """``path``, unless it is named like a ``torch.save`` file: those are imported first."""
    if path.suffix in _TORCH_SAVE_SUFFIXES and os.path.lexists(path) and not path.is_dir():
        raise CheckpointError(
            f"{path}: a torch.save file; convert it once with `cnnlab weights import {path} "
            f"--model {model}` and pass the .safetensors file it writes"
        )
    return path


def preprocessing_for(weights: str, model: str) -> Preprocessing | None:
    """The preprocessing of ``--weights`` without loading any tensor (None: no weights).

    Args:
        weights: ``imagenet``, a file or run directory, or ``""``/``none``.
        model: the zoo model the weights are for.

    For ``imagenet`` it comes from torchvision's enum; for a file, from its metadata (checked).
    """
    if weights in ("", "none"):
        return None
    if weights == IMAGENET:
        return published(model).preprocessing
    from cnnlab.run.checkpoints import resolve_model_file
    from cnnlab.run.tensorfile import CHECKPOINT_FORMAT, read_header
    from cnnlab.runmeta import RunMeta

    file = resolve_model_file(_not_torch_save(Path(weights).expanduser(), model))
    header = read_header(file)
    if header.get("format") == WEIGHTS_FORMAT:  # all of the record checked: fail before data
        return _converted_record(header, file, model)[1]
    raw = header.get("model_meta") if header.get("format") == CHECKPOINT_FORMAT else header
    meta = RunMeta.from_dict(raw, file)
    return Preprocessing(meta.resize, meta.image_size[0], meta.mean, meta.std)


# --- into a model ---------------------------------------------------------------------------------


def head_keys(model: str, num_classes: int, in_channels: int) -> set[str]:
    """State-dict keys whose shape depends on ``num_classes``: the classifier head(s)."""
    with on_meta():
        a = create_model(model, num_classes=num_classes, in_channels=in_channels).state_dict()
        b = create_model(model, num_classes=num_classes + 1, in_channels=in_channels)
    other = b.state_dict()
    return {k for k, v in a.items() if other[k].shape != v.shape}


def apply_weights(
    net: nn.Module, weights: SourceWeights, classes: tuple[str, ...], in_channels: int
) -> Pretrained:
    """Copy ``weights`` into ``net`` (a fresh cnnlab model of the same architecture).

    The head is kept as initialised when the classes differ from the weights' (by name and
    order); a one-channel ``net`` gets the first convolution's RGB kernels summed.

    Raises:
        ConfigError: a tensor that fits neither way.
    """
    target = net.state_dict()
    head = head_keys(weights.model, len(classes), in_channels)
    reset = tuple(classes) != tuple(weights.classes)
    new: dict[str, torch.Tensor] = {}
    for key, want in target.items():
        if reset and key in head:
            continue
        have = weights.state[key]
        if have.shape != want.shape and have.dim() == 4 and have.shape[1] == 3 and in_channels == 1:
            have = have.sum(dim=1, keepdim=True)  # grey = R = G = B: the same response
        if have.shape != want.shape:
            raise ConfigError(
                f"{weights.source}: {key} has shape {tuple(have.shape)}, the model "
                f"{tuple(want.shape)}: use data with the channels the weights expect"
            )
        new[key] = have.to(want.dtype)
    net.load_state_dict(new, strict=False)
    return Pretrained(weights.source, weights.preprocessing, set(new), head, reset)


def _batch_norm_frozen(module: nn.Module, args: Any) -> None:
    module.training = False  # use (and keep) the running statistics, whatever train() said


def freeze_backbone(net: nn.Module, record: Pretrained) -> None:
    """A linear probe: only the head's parameters train; frozen batch norms use their statistics.

    Batch-norm layers with no trainable parameter are switched to evaluation behaviour before
    every forward pass (a pre-hook), so the trainer's ``model.train()`` does not make them
    normalise with batch statistics or update their running averages.
    """
    for name, p in net.named_parameters():
        p.requires_grad_(name in record.head)
    for module in net.modules():
        params = list(module.parameters(recurse=False))
        if isinstance(module, nn.modules.batchnorm._BatchNorm) and not any(
            p.requires_grad for p in params
        ):
            module.register_forward_pre_hook(_batch_norm_frozen)


def load_for_training(
    net: nn.Module,
    *,
    model: str,
    weights: str,
    finetune: str,
    classes: tuple[str, ...],
    in_channels: int,
) -> Pretrained | None:
    """``--weights`` and ``--finetune`` for a freshly built model; None without weights.

    Args:
        net: the freshly built ``model``.
        model: its zoo name.
        weights: ``--weights`` (``imagenet``, a file or run directory, ``""``/``none``).
        finetune: ``--finetune`` (``all`` or ``head``).
        classes: the run's class names (a different head is re-initialised).
        in_channels: the run's channels (RGB kernels are summed for one channel).

    Sets ``net.cnnlab_pretrained`` (read by :func:`cnnlab.train.finetune.finetune_optimizer`).
    """
    if weights in ("", "none"):
        if finetune == "head":
            raise ConfigError("--finetune head needs pretrained weights: add --weights imagenet")
        return None
    record = apply_weights(net, read_weights(weights, model), classes, in_channels)
    if finetune == "head":
        freeze_backbone(net, record)
    net.cnnlab_pretrained = record
    return record
