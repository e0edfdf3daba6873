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
  directory: ``cnnlab.model``, ``cnnlab.input_size`` (JSON ``[C, H, W]``) and ``cnnlab.opset``
  always; from ``cnnlab export``, every field of the run's :class:`~cnnlab.runmeta.RunMeta`
  (``cnnlab.classes``, ``cnnlab.mean`` / ``cnnlab.std`` in [0, 1] units, ``cnnlab.num_classes``,
  ``cnnlab.in_channels``, ``cnnlab.dataset``, ``cnnlab.tta``, ...), each a JSON value. Files
  written before the record existed carry fewer keys and still read: the missing ones default.

Files are written atomically through :mod:`cnnlab.files`, so a crash never leaves a half-written
``.onnx`` under the real name. Reading (:class:`OnnxClassifier`) takes the bytes once, through
:func:`cnnlab.files.read_bytes` (a regular file of bounded size), and hands ONNX Runtime those
bytes, never the path again; the run record is checked field by field
(:meth:`~cnnlab.runmeta.RunMeta.from_dict`), the graph's input against the record's size, and its
output against the record's class count, so a file that does not fit its record is one line.

Deviations: models larger than 2 GiB of weights (protobuf's limit for a single file) are refused
rather than written with external data, so that one ``.onnx`` file is always self-contained.
"""

from __future__ import annotations

import contextlib
import io
import json
import os
import warnings
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from cnnlab import files
from cnnlab.choices import DEFAULT_OPSET, MAX_OPSET, MIN_OPSET  # also read by --help
from cnnlab.errors import CheckpointError, ConfigError, DataError
from cnnlab.run.metrics import eval_mode, main_logits
from cnnlab.runmeta import RunMeta

# The parity tolerances of :func:`check_onnx`: ONNX Runtime and PyTorch use different
# convolution kernels and summation orders, so float32 results differ by rounding only.
RTOL = 1e-3
ATOL = 1e-5

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
        return main_logits(self.model(x))


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


def export_onnx(
    model: nn.Module,
    path: str | os.PathLike[str],
    input_size: Sequence[int],
    *,
    opset: int = DEFAULT_OPSET,
    dynamic_batch: bool = True,
    metadata: RunMeta | Mapping[str, Any] | None = None,
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
        metadata: facts stored in ``metadata_props`` under ``cnnlab.<key>`` as JSON text: a
            :class:`~cnnlab.runmeta.RunMeta` (what ``cnnlab predict`` needs to run the file
            alone) or any mapping. ``model``, ``input_size`` and ``opset`` are always added.
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
    _check_fits_one_file(model)
    proto = _trace(model, size, opset, dynamic_batch, optimize)
    info = getattr(model, "cnnlab_info", None)
    facts: dict[str, Any] = {"input_size": list(size), "opset": opset}
    if info is not None:
        facts["model"] = info.name
    facts.update(metadata.to_dict() if isinstance(metadata, RunMeta) else metadata or {})
    _set_metadata(proto, facts)
    got = {o.domain: o.version for o in proto.opset_import}.get("")
    if got != opset:  # never ship a file whose opset differs from the one asked for
        raise ConfigError(f"the exporter produced opset {got}, not {opset}: use --opset {got}")
    return files.write_bytes_atomic(path, proto.SerializeToString())


def _first_line(err: BaseException) -> str:
    """An exception's first line, short (ONNX Runtime's messages run to pages)."""
    return (str(err).strip().splitlines() or [type(err).__name__])[0][:200]


def _check_fits_one_file(model: nn.Module) -> None:
    n_bytes = sum(p.numel() * p.element_size() for p in model.parameters())
    n_bytes += sum(b.numel() * b.element_size() for b in model.buffers())
    if n_bytes >= _PROTOBUF_LIMIT:
        raise ConfigError(
            f"{n_bytes / 2**30:.1f} GiB of weights do not fit one ONNX file (protobuf limit "
            "2 GiB): export a smaller model or reduce num_classes"
        )


def _trace(
    model: nn.Module, size: tuple[int, int, int], opset: int, dynamic_batch: bool, optimize: bool
) -> Any:
    """The exporter's ``ModelProto`` of the model's eval graph (quietly: it prints and warns)."""
    example = torch.zeros((1, *size), device=_model_device(model))
    dynamic_shapes = None
    if dynamic_batch:
        # torch.export would specialise a size-1 example dimension; declaring it dynamic keeps
        # it symbolic. The upper bound is only a hint for the exporter's range analysis.
        dynamic_shapes = ({0: torch.export.Dim("batch", min=1, max=65536)},)
    with (
        eval_mode(model),
        torch.no_grad(),
        warnings.catch_warnings(),
        contextlib.redirect_stdout(io.StringIO()),  # the exporter prints progress lines
    ):
        warnings.simplefilter("ignore")
        try:
            program = torch.onnx.export(
                _EvalLogits(model),
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
    return program.model_proto


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


def _read_onnx(path: Path) -> tuple[bytes, Any]:
    """A cnnlab ONNX file's bytes and ``ModelProto``, read once, checked to be self-contained.

    Raises:
        CheckpointError: not a regular file of bounded size (:func:`cnnlab.files.read_bytes`),
            not an ONNX model, or one that keeps tensors in other files.
    """
    onnx, _ = _require_onnx()
    try:
        data = files.read_bytes(path, what="ONNX file", limit="weights", error=CheckpointError)
    except OSError as err:  # opened, then refused (/proc/self/mem: EIO)
        reason = (err.strerror or str(err)).lower()
        raise CheckpointError(f"{path}: cannot read this ONNX file: {reason}") from None
    try:
        # From bytes: external data is never loaded, so a crafted file cannot make us read
        # arbitrary paths it names.
        proto = onnx.load_model_from_string(data)
    except Exception as err:
        raise CheckpointError(
            f"{str(path)!r} is not a valid ONNX file ({type(err).__name__}): re-export it with "
            "`cnnlab export RUN_DIR --onnx OUT.onnx`"
        ) from None
    if not proto.HasField("graph") or not proto.graph.node:  # empty bytes parse as a ModelProto
        raise CheckpointError(
            f"{str(path)!r} is not a valid ONNX file (no graph): re-export it with "
            "`cnnlab export RUN_DIR --onnx OUT.onnx`"
        )
    # cnnlab files are self-contained; a file whose tensors live in other files could make ONNX
    # Runtime read any path it names, so it is refused.
    external = onnx.TensorProto.EXTERNAL
    if any(t.data_location == external for t in proto.graph.initializer):
        raise CheckpointError(
            f"{str(path)!r} keeps tensors in external files, which cnnlab never writes: "
            "re-export it with `cnnlab export RUN_DIR --onnx OUT.onnx`"
        )
    return data, proto


def _metadata_of(proto: Any) -> dict[str, Any]:
    """The ``cnnlab.*`` metadata of a ``ModelProto``, JSON values decoded, prefix dropped."""
    out: dict[str, Any] = {}
    for p in proto.metadata_props:
        # protobuf hands over text that is not UTF-8 as bytes: never a key cnnlab wrote
        if not isinstance(p.key, str) or not p.key.startswith(METADATA_PREFIX):
            continue
        key = p.key[len(METADATA_PREFIX) :]
        try:
            out[key] = json.loads(p.value)
        except (ValueError, RecursionError):  # not JSON (or absurd JSON): kept as the text
            out[key] = p.value
    return out


def read_metadata(path: str | os.PathLike[str]) -> dict[str, Any]:
    """The ``cnnlab.*`` metadata of an ONNX file, JSON values decoded, prefix dropped.

    Raises:
        CheckpointError: if the file is missing, is not a regular file, or is not a readable,
            self-contained ONNX model.
    """
    return _metadata_of(_read_onnx(Path(path))[1])


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
        inputs = _random_inputs(path, input_size, batch_size, seed)
    session = OnnxClassifier(path)
    got = session.logits(inputs.float().cpu().numpy())
    with eval_mode(model), torch.no_grad():
        out = main_logits(model(inputs.to(_model_device(model))))
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


def _random_inputs(
    path: Path, input_size: Sequence[int] | None, batch_size: int, seed: int
) -> torch.Tensor:
    """A seeded standard-normal batch of the file's input size (or ``input_size``)."""
    if input_size is None:
        input_size = read_metadata(path).get("input_size")
        if input_size is None:
            raise ConfigError(f"{str(path)!r} has no cnnlab.input_size: pass input_size")
    size = _check_input_size(input_size)
    gen = torch.Generator().manual_seed(seed)
    return torch.randn((batch_size, *size), generator=gen)


class OnnxClassifier:
    """An exported cnnlab model run by ONNX Runtime on the CPU, described by its own metadata.

    It stands in for the PyTorch model in :mod:`cnnlab.predictor`: calling it maps a preprocessed
    float batch to logits, and :attr:`meta` is the :class:`~cnnlab.runmeta.RunMeta` that
    :func:`cnnlab.run.load_trained` gives for the run, read from the file's ``metadata_props``
    alone.

    Args:
        path: a ``.onnx`` file written by :func:`export_onnx`.
        threads: intra-op threads for ONNX Runtime (0: its default).
        require_meta: refuse a file without a complete run record (a bare ``export_onnx`` of a
            model rather than ``cnnlab export`` of a run).

    Attributes:
        metadata: every ``cnnlab.*`` fact of the file, as :func:`read_metadata` returns them.
        meta: the run record, or None when the file does not carry a complete one.
        input_size: ``(C, H, W)`` the graph takes, when the file says.

    Raises:
        CheckpointError: if the file is missing, is not a loadable ONNX model, carries a damaged
            run record, or (with ``require_meta``) lacks the metadata ``cnnlab predict`` needs.
    """

    def __init__(
        self, path: str | os.PathLike[str], *, threads: int = 0, require_meta: bool = False
    ) -> None:
        _, ort = _require_onnx()
        self.path = Path(path)
        data, proto = _read_onnx(self.path)
        self.metadata = _metadata_of(proto)
        self.meta = self._run_meta(require_meta)
        self.input_size: tuple[int, ...] | None = (
            self.meta.input_size if self.meta is not None else self._recorded_size()
        )
        options = ort.SessionOptions()
        options.intra_op_num_threads = threads
        options.log_severity_level = 3  # errors only; ORT warns about unused initializers
        try:
            # From the bytes already read and checked, never from the path again.
            self._session = ort.InferenceSession(
                data, sess_options=options, providers=["CPUExecutionProvider"]
            )
        except Exception as err:
            raise CheckpointError(
                f"ONNX Runtime cannot load {str(self.path)!r} ({_first_line(err)}): "
                "re-export it with `cnnlab export`"
            ) from None
        self._input = self._check_graph()

    def _run_meta(self, required: bool) -> RunMeta | None:
        missing = [k for k in RunMeta.required() if k not in self.metadata]
        if not missing:
            return RunMeta.from_dict(self.metadata, str(self.path))
        if required:
            raise CheckpointError(
                f"{str(self.path)!r} lacks the cnnlab metadata {', '.join(missing)}: export "
                "it with `cnnlab export RUN_DIR --onnx OUT.onnx`"
            )
        return None

    def _recorded_size(self) -> tuple[int, ...] | None:
        """``cnnlab.input_size`` of a file without a run record, when it is three sizes."""
        size = self.metadata.get("input_size")
        ok = isinstance(size, list) and len(size) == 3
        if ok and all(isinstance(s, int) and not isinstance(s, bool) and s > 0 for s in size):
            return tuple(size)
        return None

    def _check_graph(self) -> str:
        """The graph's one input's name, once its inputs and outputs fit the metadata."""
        inputs, outputs = self._session.get_inputs(), self._session.get_outputs()
        if len(inputs) != 1 or len(outputs) < 1:
            raise CheckpointError(
                f"{str(self.path)!r} has {len(inputs)} inputs and {len(outputs)} outputs, not "
                "the one image input and logits output cnnlab exports: re-export it"
            )
        shape = inputs[0].shape  # ints where fixed, names or None where symbolic
        fixed = self.input_size
        if fixed is not None and (
            len(shape) != 4
            or any(isinstance(g, int) and g != w for g, w in zip(shape[1:], fixed, strict=True))
        ):
            raise CheckpointError(
                f"{str(self.path)!r}: its graph takes {shape}, its metadata says "
                f"{'x'.join(map(str, fixed))} images: the file is damaged; re-export it"
            )
        return inputs[0].name

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
        try:
            out = self._session.run(None, {self._input: x})[0]
        except Exception as err:  # ORT's own error types: a graph that does not fit its record
            raise CheckpointError(
                f"ONNX Runtime cannot run {str(self.path)!r} on {'x'.join(map(str, x.shape))} "
                f"input ({_first_line(err)}): re-export it with `cnnlab export`"
            ) from None
        classes = self.meta.num_classes if self.meta is not None else None
        if not (
            isinstance(out, np.ndarray)
            and out.ndim == 2
            and len(out) == len(x)
            and np.issubdtype(out.dtype, np.floating)
            and classes in (None, out.shape[1])
        ):
            got = getattr(out, "shape", type(out).__name__)
            raise CheckpointError(
                f"{str(self.path)!r} returned {got} for {len(x)} images, not "
                f"({len(x)}, {classes or 'K'}) logits: the file is damaged; re-export it"
            )
        return out

    def __call__(self, images: torch.Tensor) -> torch.Tensor:
        """Torch in, torch out, so code written for the PyTorch model can run the file.

        Shape:
            - images: (N, C, H, W) float
            - return: (N, num_classes) float32
        """
        return torch.from_numpy(self.logits(images.detach().float().cpu().numpy()))
