"""ONNX export of any zoo model, with a parity check against PyTorch and a small runtime.

The exporter is PyTorch's ``torch.export``-based one (``torch.onnx.export(..., dynamo=True)``,
which needs ``onnxscript``), at ONNX opset 18 by default. Why that one and not the legacy
TorchScript exporter (``dynamo=False``): in torch 2.14 the legacy exporter is deprecated and it
cannot export ``AdaptiveAvgPool2d`` when the output size does not divide the input size, which is
exactly what torchvision's AlexNet and VGG heads do on inputs other than 224x224 (their 6x6 / 7x7
adaptive pool on a 1x1 or 2x2 map). The dynamo exporter handles every zoo family. Why opset 18:
it is the lowest opset the dynamo exporter emits natively (asking for less silently stays at 18),
and ONNX Runtime has run it since 1.14; opsets 18 to :data:`MAX_OPSET` are accepted.

What a file holds:

- one input ``input`` of shape (batch, C, H, W), float32, with a symbolic batch dimension
  (``dynamic_batch=True``), and one output ``logits`` of shape (batch, num_classes);
- the model's *eval* graph: batch norm uses its running statistics, dropout is the identity and
  models with auxiliary training heads (GoogLeNet) export only the main classifier;
- ``metadata_props`` with the cnnlab facts a consumer needs to run it without cnnlab's run
  directory: ``cnnlab.model``, ``cnnlab.input_size`` (JSON ``[C, H, W]``), ``cnnlab.classes``
  (JSON list of names), ``cnnlab.mean`` / ``cnnlab.std`` (JSON per-channel normalisation in
  [0, 1] units), plus anything else the caller passes.

Files are written atomically: to a temporary file in the destination directory, fsynced, then
renamed over the destination, so a crash never leaves a half-written ``.onnx`` under the real name.

Deviations: models larger than 2 GiB of weights (protobuf's limit for a single file) are refused
rather than written with external data, so that one ``.onnx`` file is always self-contained.
"""

from __future__ import annotations

import contextlib
import io
import json
import os
import tempfile
import warnings
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from cnnlab.errors import CheckpointError, ConfigError, DataError

DEFAULT_OPSET = 18
MIN_OPSET = 18  # lowest opset the dynamo exporter emits natively (see module docstring)
MAX_OPSET = 23  # highest opset torch 2.14's exporter implements (torch.onnx._constants)

# The parity tolerances of :func:`check_onnx`: ONNX Runtime and PyTorch use different
# convolution kernels and summation orders, so float32 results differ by rounding only.
RTOL = 1e-3
ATOL = 1e-5

# Metadata `cnnlab predict` needs to run a file on its own (the keys load_trained returns).
PREDICT_KEYS = ("model", "num_classes", "in_channels", "input_size", "classes", "mean", "std")

INPUT_NAME = "input"
OUTPUT_NAME = "logits"
METADATA_PREFIX = "cnnlab."
_PROTOBUF_LIMIT = 2**31 - 1  # bytes; a single ModelProto cannot be larger


def _require_onnx() -> tuple[Any, Any]:
    """Import onnx and onnxruntime, or say how to install them."""
    try:
        import onnx
        import onnxruntime
    except ImportError as err:  # pragma: no cover - both are in the test extra
        raise ConfigError(
            f"ONNX export needs the optional packages onnx, onnxruntime and onnxscript ({err}): "
            "install them with `pip install 'cnnlab[export]'`"
        ) from None
    return onnx, onnxruntime


class _EvalLogits(nn.Module):
    """Wraps a classifier so its exported graph returns the main logits only.

    GoogLeNet-style models return ``(logits, aux2, aux1)`` in training mode; in eval mode they
    return logits, but a wrapper keeps the export correct even for a model that returns a tuple
    or namedtuple in both modes.
    """

    def __init__(self, model: nn.Module) -> None:
        super().__init__()
        self.model = model

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = self.model(x)
        if isinstance(out, (tuple, list)):
            out = out[0]
        return out


@contextlib.contextmanager
def _eval_mode(model: nn.Module) -> Iterator[None]:
    """Put ``model`` (and every submodule) in eval mode for the block, then restore each flag."""
    flags = [(m, m.training) for m in model.modules()]
    model.eval()
    try:
        yield
    finally:
        for m, flag in flags:
            m.training = flag


def _check_opset(opset: int) -> int:
    if not isinstance(opset, int) or isinstance(opset, bool) or not MIN_OPSET <= opset <= MAX_OPSET:
        raise ConfigError(
            f"ONNX opset {opset!r} is not supported: pick one from {MIN_OPSET} to {MAX_OPSET} "
            f"(default {DEFAULT_OPSET})"
        )
    return opset


def _check_input_size(input_size: Sequence[int]) -> tuple[int, int, int]:
    size = tuple(int(s) for s in input_size)
    if len(size) != 3 or min(size) < 1:
        raise ConfigError(
            f"input_size must be (C, H, W) with positive sizes, got {tuple(input_size)!r}: "
            "pass e.g. (1, 28, 28)"
        )
    return size  # type: ignore[return-value]


def _model_device(model: nn.Module) -> torch.device:
    for p in model.parameters():
        return p.device
    return torch.device("cpu")


def _atomic_write_bytes(path: Path, data: bytes) -> None:
    """Write ``data`` to ``path`` via a fsynced temporary file in the same directory + rename."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        # mkstemp creates the file 0600; give it the permissions a plain open() would.
        umask = os.umask(0)
        os.umask(umask)
        os.chmod(tmp, 0o666 & ~umask)
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
        raise
    # Make the rename itself durable (POSIX: fsync the directory entry).
    with contextlib.suppress(OSError):
        dfd = os.open(path.parent, os.O_RDONLY)
        try:
            os.fsync(dfd)
        finally:
            os.close(dfd)


def export_onnx(
    model: nn.Module,
    path: str | os.PathLike[str],
    input_size: Sequence[int],
    *,
    opset: int = DEFAULT_OPSET,
    dynamic_batch: bool = True,
    metadata: Mapping[str, Any] | None = None,
    optimize: bool = True,
) -> Path:
    """Export a classifier's eval graph to a self-contained ONNX file, atomically.

    Args:
        model: any ``nn.Module`` mapping (N, C, H, W) images to (N, num_classes) logits (or a
            tuple whose first element is the logits). Its train/eval flags are restored after.
        path: destination ``.onnx`` file; its directory is created if needed.
        input_size: (C, H, W) of one input image, e.g. ``(1, 28, 28)``.
        opset: ONNX opset, :data:`MIN_OPSET` to :data:`MAX_OPSET`.
        dynamic_batch: give the batch dimension a symbolic size so the file runs at any batch
            size; with False the file only takes batches of 1.
        metadata: extra facts stored in ``metadata_props`` under ``cnnlab.<key>`` as JSON
            text. ``model``, ``input_size`` and ``opset`` are always added.
        optimize: let the exporter fold constants and fuse trivial ops (slower export, leaner
            graph); ONNX Runtime optimises the graph again when it loads it either way.

    Returns:
        The path written.

    Raises:
        ConfigError: for an unsupported opset or input size, a model the exporter cannot trace,
            or weights over protobuf's 2 GiB single-file limit.

    Shape:
        - file input ``input``: (N, C, H, W) float32, N symbolic when ``dynamic_batch``
        - file output ``logits``: (N, num_classes) float32
    """
    _require_onnx()
    opset = _check_opset(opset)
    size = _check_input_size(input_size)
    path = Path(path)
    n_bytes = sum(p.numel() * p.element_size() for p in model.parameters())
    n_bytes += sum(b.numel() * b.element_size() for b in model.buffers())
    if n_bytes >= _PROTOBUF_LIMIT:
        raise ConfigError(
            f"{n_bytes / 2**30:.1f} GiB of weights do not fit one ONNX file (protobuf limit "
            "2 GiB): export a smaller model or reduce num_classes"
        )

    wrapper = _EvalLogits(model)
    example = torch.zeros((1, *size), device=_model_device(model))
    dynamic_shapes = None
    if dynamic_batch:
        # torch.export would specialise a size-1 example dimension; declaring it dynamic keeps
        # it symbolic. The upper bound is only a hint for the exporter's range analysis.
        dynamic_shapes = ({0: torch.export.Dim("batch", min=1, max=65536)},)
    stdout = io.StringIO()
    with (
        _eval_mode(model),
        torch.no_grad(),
        warnings.catch_warnings(),
        contextlib.redirect_stdout(stdout),  # the exporter prints progress lines
    ):
        warnings.simplefilter("ignore")
        try:
            program = torch.onnx.export(
                wrapper,
                (example,),
                None,
                dynamo=True,
                opset_version=opset,
                input_names=[INPUT_NAME],
                output_names=[OUTPUT_NAME],
                dynamic_shapes=dynamic_shapes,
                optimize=optimize,
                verbose=False,
                external_data=False,
            )
        except Exception as err:  # the exporter raises many unrelated types
            first = str(err).strip().splitlines()[0] if str(err).strip() else type(err).__name__
            raise ConfigError(
                f"could not export {type(model).__name__} to ONNX opset {opset}: {first[:300]}; "
                f"check the model runs on a {'x'.join(map(str, size))} input, or try another "
                "--opset"
            ) from err
    proto = program.model_proto
    info = getattr(model, "cnnlab_info", None)
    facts: dict[str, Any] = {"input_size": list(size), "opset": opset}
    if info is not None:
        facts["model"] = info.name
    facts.update(metadata or {})
    _set_metadata(proto, facts)
    got = {o.domain: o.version for o in proto.opset_import}.get("")
    if got != opset:  # never ship a file whose opset differs from the one asked for
        raise ConfigError(f"the exporter produced opset {got}, not {opset}: use --opset {got}")
    _atomic_write_bytes(path, proto.SerializeToString())
    return path


def _set_metadata(proto: Any, facts: Mapping[str, Any]) -> None:
    existing = {p.key: p for p in proto.metadata_props}
    for key, value in facts.items():
        full = key if key.startswith(METADATA_PREFIX) else METADATA_PREFIX + key
        text = json.dumps(value)  # strings too, so "10" comes back as a string, not 10
        if full in existing:
            existing[full].value = text
        else:
            entry = proto.metadata_props.add()
            entry.key, entry.value = full, text


def read_metadata(path: str | os.PathLike[str]) -> dict[str, Any]:
    """The ``cnnlab.*`` metadata of an ONNX file, JSON values decoded, prefix dropped.

    Raises:
        CheckpointError: if the file is missing or is not a readable ONNX model.
    """
    onnx, _ = _require_onnx()
    path = Path(path)
    if not path.is_file():
        raise CheckpointError(f"ONNX file {str(path)!r} not found: check the path")
    try:
        # load_external_data=False: a self-contained cnnlab file has none, and a crafted file
        # must not make us read arbitrary paths it names.
        proto = onnx.load(str(path), load_external_data=False)
    except Exception as err:
        raise CheckpointError(
            f"{str(path)!r} is not a valid ONNX file ({type(err).__name__}): re-export it with "
            "`cnnlab export RUN_DIR --onnx OUT.onnx`"
        ) from None
    # cnnlab files are self-contained; a file whose tensors live in other files could make ONNX
    # Runtime read any path it names, so it is refused.
    external = onnx.TensorProto.EXTERNAL
    if any(t.data_location == external for t in proto.graph.initializer):
        raise CheckpointError(
            f"{str(path)!r} keeps tensors in external files, which cnnlab never writes: "
            "re-export it with `cnnlab export RUN_DIR --onnx OUT.onnx`"
        )
    out: dict[str, Any] = {}
    for p in proto.metadata_props:
        if not p.key.startswith(METADATA_PREFIX):
            continue
        key = p.key[len(METADATA_PREFIX) :]
        try:
            out[key] = json.loads(p.value)
        except json.JSONDecodeError:
            out[key] = p.value
    return out


@dataclass(frozen=True)
class ParityReport:
    """Result of :func:`check_onnx`.

    Attributes:
        ok: every output element within ``atol + rtol * |torch|``.
        max_abs_diff: largest ``|onnx - torch|`` over all outputs.
        max_rel_diff: largest ``|onnx - torch| / max(|torch|, tiny)``.
        batch_size: batch the comparison ran at.
        rtol: relative tolerance used.
        atol: absolute tolerance used.
    """

    ok: bool
    max_abs_diff: float
    max_rel_diff: float
    batch_size: int
    rtol: float
    atol: float


def check_onnx(
    model: nn.Module,
    path: str | os.PathLike[str],
    input_size: Sequence[int] | None = None,
    *,
    batch_size: int = 2,
    inputs: torch.Tensor | None = None,
    rtol: float = RTOL,
    atol: float = ATOL,
    seed: int = 0,
) -> ParityReport:
    """Check an exported file: ONNX's checker, then ONNX Runtime against the PyTorch model.

    Args:
        model: the PyTorch model the file was exported from (run in eval mode; its flags are
            restored).
        path: the ``.onnx`` file.
        input_size: (C, H, W); default: the file's ``cnnlab.input_size`` metadata.
        batch_size: batch of the random comparison input.
        inputs: the comparison input (N, C, H, W) instead of a seeded standard-normal batch.
        rtol: relative tolerance.
        atol: absolute tolerance.
        seed: seed of the random input.

    Returns:
        A :class:`ParityReport`; ``ok`` is False when any element is out of tolerance.

    Raises:
        CheckpointError: if the file fails ``onnx.checker`` or cannot be loaded.
    """
    onnx, _ = _require_onnx()
    path = Path(path)
    try:
        onnx.checker.check_model(str(path), full_check=True)
    except Exception as err:
        raise CheckpointError(
            f"{str(path)!r} fails the ONNX checker ({str(err).splitlines()[0][:200]}): re-export it"
        ) from None
    if inputs is None:
        if input_size is None:
            input_size = read_metadata(path).get("input_size")
            if input_size is None:
                raise ConfigError(f"{str(path)!r} has no cnnlab.input_size: pass input_size")
        size = _check_input_size(input_size)
        gen = torch.Generator().manual_seed(seed)
        inputs = torch.randn((batch_size, *size), generator=gen)
    session = OnnxClassifier(path)
    got = session.logits(inputs.float().cpu().numpy())
    with _eval_mode(model), torch.no_grad():
        out = model(inputs.to(_model_device(model)))
        if isinstance(out, (tuple, list)):
            out = out[0]
    want = out.float().cpu().numpy()
    if got.shape != want.shape:
        return ParityReport(False, float("inf"), float("inf"), len(inputs), rtol, atol)
    diff = np.abs(got.astype(np.float64) - want.astype(np.float64))
    scale = np.maximum(np.abs(want.astype(np.float64)), np.finfo(np.float32).tiny)
    ok = bool(np.all(diff <= atol + rtol * np.abs(want)))
    return ParityReport(
        ok=ok,
        max_abs_diff=float(diff.max(initial=0.0)),
        max_rel_diff=float((diff / scale).max(initial=0.0)),
        batch_size=len(inputs),
        rtol=rtol,
        atol=atol,
    )


class OnnxClassifier:
    """An exported cnnlab model run by ONNX Runtime on the CPU, described by its own metadata.

    It stands in for the PyTorch model in ``cnnlab predict``: calling it maps a preprocessed
    float batch to logits, and :attr:`meta` holds what :func:`cnnlab.train.load_trained`'s
    metadata holds (``model``, ``num_classes``, ``in_channels``, ``input_size``, ``classes``,
    ``mean``, ``std``), read from the file's ``metadata_props`` alone.

    Args:
        path: a ``.onnx`` file written by :func:`export_onnx`.
        threads: intra-op threads for ONNX Runtime (0: its default).

    Raises:
        CheckpointError: if the file is missing, is not a loadable ONNX model, or (with
            ``require_meta``) lacks the metadata ``cnnlab predict`` needs.
    """

    def __init__(
        self, path: str | os.PathLike[str], *, threads: int = 0, require_meta: bool = False
    ) -> None:
        _, ort = _require_onnx()
        self.path = Path(path)
        self.meta = read_metadata(self.path)
        if require_meta:
            missing = [k for k in PREDICT_KEYS if k not in self.meta]
            if missing:
                raise CheckpointError(
                    f"{str(self.path)!r} lacks the cnnlab metadata {', '.join(missing)}: export "
                    "it with `cnnlab export RUN_DIR --onnx OUT.onnx`"
                )
        self.meta["source"] = str(self.path)
        options = ort.SessionOptions()
        options.intra_op_num_threads = threads
        options.log_severity_level = 3  # errors only; ORT warns about unused initializers
        try:
            self._session = ort.InferenceSession(
                str(self.path), sess_options=options, providers=["CPUExecutionProvider"]
            )
        except Exception as err:
            raise CheckpointError(
                f"ONNX Runtime cannot load {str(self.path)!r} ({str(err).splitlines()[0][:200]}): "
                "re-export it with `cnnlab export`"
            ) from None
        self._input = self._session.get_inputs()[0].name
        size = self.meta.get("input_size")
        self.input_size: tuple[int, ...] | None = (
            tuple(int(s) for s in size) if isinstance(size, list) and len(size) == 3 else None
        )

    def logits(self, images: np.ndarray) -> np.ndarray:
        """Run the graph on float images that are already preprocessed (normalised, resized).

        Shape:
            - images: (N, C, H, W) float32
            - return: (N, num_classes) float32
        """
        x = np.ascontiguousarray(images, dtype=np.float32)
        if self.input_size is not None and tuple(x.shape[1:]) != self.input_size:
            c, h, w = self.input_size
            raise DataError(
                f"{self.path.name} takes {c}x{h}x{w} input but got "
                f"{'x'.join(map(str, x.shape[1:]))}: resize the images to {h}x{w} with {c} "
                "channel(s)"
            )
        return self._session.run(None, {self._input: x})[0]

    def __call__(self, images: torch.Tensor) -> torch.Tensor:
        """Torch in, torch out, so code written for the PyTorch model can run the file.

        Shape:
            - images: (N, C, H, W) float
            - return: (N, num_classes) float32
        """
        return torch.from_numpy(self.logits(images.detach().float().cpu().numpy()))
