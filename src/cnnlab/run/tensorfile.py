"""cnnlab's tensor files: safetensors with cnnlab's metadata, written atomically, read safely.

Every weights file cnnlab writes (``model.safetensors``, checkpoint tensors, imported pretrained
weights) is a safetensors file whose metadata key ``cnnlab`` holds a JSON object (the model's
:class:`~cnnlab.runmeta.RunMeta`, or a checkpoint's step and model metadata). This module owns
that format: :func:`read_header` validates a file's framing and returns the metadata before any
tensor is read; :func:`read_tensors` reads the tensors of a validated file. Nothing here uses
``pickle`` or ``torch.load``: a file that is not well-formed safetensors is refused with a
:class:`~cnnlab.errors.CheckpointError` before any of it is interpreted. Files are opened only
through :func:`cnnlab.files.open_regular` (a FIFO, a device, a directory or a symlink loop is one
line, never a hang), and every level of the header is type-checked (``__metadata__`` must be a
map, its ``cnnlab`` entry JSON text of an object).

:func:`check_weights` is what every reader of weights (``cnnlab.load``, ``--weights``,
``cnnlab weights import``) runs before ``load_state_dict``, which would otherwise convert
integers, booleans and complex numbers to floats without a word and let NaN through: the names,
shapes, dtypes and finiteness of the tensors are checked against the model's own state dict.

Every file verifies itself: :func:`write_safetensors_atomic` records in the metadata
(:data:`DIGEST_KEY`) a SHA-256 over the metadata and every tensor's name, dtype, shape and bytes
(:func:`tensors_digest`), and :func:`read_tensors` computes it again and refuses a file whose
tensors or record changed since (a flipped byte would otherwise change every prediction without a
word). Files written before the digest existed carry none and still read; a run directory records
its files' digests in ``results.json`` too (:mod:`cnnlab.run.records`), so a file of a finished run
that lost its digest is caught there. The digest finds damage, not forgery: whoever edits a file
on purpose can recompute it.

Writes go to a temporary name in the same directory, fsynced, then renamed
(:func:`cnnlab.files.write_atomic`), so a crash leaves the old file or the new one.
"""

from __future__ import annotations

import json
import os
import struct
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any, BinaryIO

import numpy as np
import torch
from safetensors import SafetensorError, safe_open
from safetensors.torch import save_file

from cnnlab import files
from cnnlab.errors import CheckpointError
from cnnlab.formats import printable

MODEL_FORMAT = "cnnlab.model/1"
CHECKPOINT_FORMAT = "cnnlab.checkpoint/1"
# The metadata key of a file's own SHA-256 (:func:`tensors_digest`).
DIGEST_KEY = "sha256"
# The key of a checkpoint record's own SHA-256 (:func:`record_digest`).
RECORD_DIGEST_KEY = "record_sha256"
# A safetensors header larger than this is not one we wrote (ours are a few kB to a few MB).
_MAX_HEADER_BYTES = 100 * 2**20
# A hook called with a file's temporary name once it is written, before it is committed.
Hook = Callable[[Path], None] | None


# --- writing ------------------------------------------------------------------------------------


# What to do when a write fails, unless the caller knows better (``fix``).
_WRITE_FIX = (
    "free some space (or pass --out on another disk) and resume with --resume: the previous "
    "checkpoint is intact"
)


def _write_atomic(
    path: Path,
    write: Callable[[Path], object],
    before_commit: Hook = None,
    fix: str = _WRITE_FIX,
) -> None:
    """:func:`cnnlab.files.write_atomic` with cnnlab's checkpoint error for a failed write.

    Raises:
        CheckpointError: the write failed (full disk, no permission), with ``fix``; the
            temporary file is removed and whatever ``path`` held before is still there.
    """

    def write_then_notify(tmp: Path) -> None:
        write(tmp)
        if before_commit is not None:
            before_commit(tmp)

    try:
        files.write_atomic(path, write_then_notify)
    except (OSError, SafetensorError) as err:
        reason = getattr(err, "strerror", None) or str(err).splitlines()[0]
        raise CheckpointError(f"cannot write {path}: {reason}; {fix}") from None


def write_json_atomic(path: Path, obj: Any, before_commit: Hook = None) -> None:
    """Write ``obj`` as JSON to ``path`` atomically (CheckpointError when the disk refuses)."""
    text = json.dumps(obj, indent=1) + "\n"
    _write_atomic(Path(path), lambda tmp: tmp.write_text(text), before_commit)


def write_safetensors_atomic(
    path: Path,
    tensors: dict[str, torch.Tensor],
    meta: Mapping[str, Any],
    before_commit: Hook = None,
    fix: str = _WRITE_FIX,
) -> str:
    """Write tensors (moved to CPU, made contiguous) and cnnlab metadata to ``path`` atomically,
    the metadata carrying the file's digest (:func:`tensors_digest`); ``fix`` ends the message
    when the write fails.

    Returns:
        The digest, for records that vouch for the file (``results.json``).
    """
    cpu = {k: v.detach().to("cpu").contiguous() for k, v in tensors.items()}
    record = {k: v for k, v in meta.items() if k != DIGEST_KEY}
    record[DIGEST_KEY] = digest = tensors_digest(cpu, record)
    _write_atomic(
        Path(path),
        lambda tmp: save_file(cpu, str(tmp), metadata={"cnnlab": json.dumps(record)}),
        before_commit,
        fix,
    )
    return digest


def record_digest(record: Mapping[str, Any], key: str = RECORD_DIGEST_KEY) -> str:
    """The hex SHA-256 of a JSON record as canonical JSON (keys sorted), ``key`` left out: what
    a checkpoint's JSON half stores under ``key`` so that an edited record is caught."""
    body = {k: v for k, v in record.items() if k != key}
    return files.sha256_bytes(json.dumps(body, sort_keys=True, separators=(",", ":")).encode())


def tensors_digest(tensors: Mapping[str, torch.Tensor], meta: Mapping[str, Any]) -> str:
    """The hex SHA-256 of a weights file's content, independent of how safetensors lays it out.

    Hashed: the metadata as canonical JSON (keys sorted, :data:`DIGEST_KEY` left out), then for
    each tensor in name order its name, dtype, shape and raw bytes (CPU, contiguous). So any
    change to a value, a name, a shape, a dtype or a field of the record changes the digest.
    """
    h = files.sha256()
    record = {k: v for k, v in meta.items() if k != DIGEST_KEY}
    h.update(json.dumps(record, sort_keys=True, separators=(",", ":")).encode())
    for name in sorted(tensors):
        t = tensors[name].detach().to("cpu").contiguous()
        h.update(json.dumps([name, str(t.dtype), list(t.shape)]).encode())
        # Bytes of any dtype (bfloat16 and bool have no NumPy twin to hash through directly).
        h.update(memoryview(t.reshape(-1).view(torch.uint8).numpy()))
    return h.hexdigest()


# --- reading safely -----------------------------------------------------------------------------


def _open(path: Path) -> BinaryIO:
    """A weights file, opened only if it is a regular file of bounded size (cnnlab.files)."""
    return files.open_regular(path, what="weights file", limit="weights", error=CheckpointError)


def read_header(path: Path) -> dict[str, Any]:
    """Validate a safetensors file's framing and return its cnnlab metadata, reading no tensors.

    Raises:
        CheckpointError: the file is missing or not a regular file, is a pickle or ``torch.save``
            archive, is truncated, or carries no cnnlab metadata object.
    """
    path = Path(path)
    try:
        size, raw = _read_framing(path)
    except OSError as err:  # opened, then refused (/proc/self/mem: EIO)
        raise CheckpointError(f"{path}: cannot read this weights file: {_reason(err)}") from None
    n = len(raw)
    header = _json(raw, path, "safetensors header")
    if not isinstance(header, dict):
        raise CheckpointError(f"{path} has a malformed safetensors header: not written by cnnlab")
    end = 0
    for key, entry in header.items():
        if key == "__metadata__":
            continue
        offsets = entry.get("data_offsets") if isinstance(entry, dict) else None
        if not (isinstance(offsets, list) and len(offsets) == 2 and all(map(_is_int, offsets))):
            raise CheckpointError(f"{path}: malformed entry {printable(key, 80)} in the header")
        end = max(end, offsets[1])
    if 8 + n + end != size:
        raise CheckpointError(
            f"{path} is truncated or padded ({size} bytes, header describes {8 + n + end}): "
            "use another checkpoint or retrain"
        )
    return _cnnlab_metadata(header.get("__metadata__"), path)


def _read_framing(path: Path) -> tuple[int, bytes]:
    """A safetensors file's size and JSON header bytes, once its framing is checked."""
    with _open(path) as f:
        size = os.fstat(f.fileno()).st_size
        head = f.read(9)
        # A safetensors file starts with its header's length (little-endian) and then "{"; a
        # length of 0x..80 bytes starts with the pickle opcode byte, so only a file without
        # that framing can be a pickle.
        framed = len(head) == 9 and head[8:] == b"{"
        head = head[:8]
        if not framed and (head[:1] == b"\x80" or head[:2] == b"PK"):
            raise CheckpointError(
                f"{path} is a pickle/torch.save file, which can run code when loaded; cnnlab "
                "only reads the safetensors files it writes: retrain with `cnnlab train`"
            )
        if len(head) < 8:
            raise CheckpointError(f"{path} is truncated ({size} bytes): use another checkpoint")
        (n,) = struct.unpack("<Q", head)
        if n > min(_MAX_HEADER_BYTES, size - 8):
            raise CheckpointError(
                f"{path} is not a safetensors file (or is truncated): header claims {n} bytes "
                f"in a {size}-byte file; use a file written by `cnnlab train`"
            )
        f.seek(8)
        raw = f.read(n)
    if len(raw) != n:  # the file shrank since fstat, or lied about its size (/proc)
        raise CheckpointError(f"{path} is truncated ({size} bytes): use another checkpoint")
    return size, raw


def _reason(err: OSError) -> str:
    return (err.strerror or str(err)).lower()


def _is_int(value: object) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _json(raw: bytes | str, path: Path, what: str) -> Any:
    """JSON text from a file; anything else is a damaged ``what``."""
    try:
        return json.loads(raw)
    except (UnicodeDecodeError, ValueError, RecursionError):  # ValueError: JSON, huge numbers
        raise CheckpointError(
            f"{path} has a damaged {what}: use a file written by `cnnlab train`"
        ) from None


def _cnnlab_metadata(metadata: object, path: Path) -> dict[str, Any]:
    """The JSON object under ``__metadata__["cnnlab"]`` (safetensors keeps metadata as text)."""
    if metadata is not None and not isinstance(metadata, dict):
        raise CheckpointError(
            f"{path}: its safetensors __metadata__ is not an object: the file is damaged"
        )
    meta_raw = (metadata or {}).get("cnnlab")
    if meta_raw is None:
        raise CheckpointError(
            f"{path} has no cnnlab metadata (not written by `cnnlab train`): cnnlab needs the "
            "model name, classes and input size it records"
        )
    if not isinstance(meta_raw, str):
        raise CheckpointError(f"{path}: its cnnlab metadata is not JSON text: the file is damaged")
    meta = _json(meta_raw, path, "cnnlab metadata (not valid JSON)")
    if not isinstance(meta, dict):
        raise CheckpointError(f"{path}: its cnnlab metadata is not a JSON object")
    return meta


def read_tensors(path: Path, prefix: str = "") -> dict[str, torch.Tensor]:
    """All tensors of a validated safetensors file whose names start with ``prefix`` (stripped).

    The file is checked again to be a regular file of bounded size (it may have been replaced
    since :func:`read_header`), then memory-mapped by safetensors, which checks every entry. All
    its tensors are read and hashed: a file that carries a digest must match it.

    Raises:
        CheckpointError: the file is not safetensors, or its content no longer matches its
            digest (the file is damaged: a flipped byte, an edited record).
    """
    with _open(Path(path)):
        try:
            with safe_open(str(path), framework="pt", device="cpu") as f:
                tensors = {k: f.get_tensor(k) for k in f.keys()}  # noqa: SIM118
                raw_meta = (f.metadata() or {}).get("cnnlab")
        except Exception as err:  # safetensors raises its own error types
            first = (str(err).strip().splitlines() or [type(err).__name__])[0][:200]
            raise CheckpointError(
                f"{path}: cannot read tensors ({first}); use another file"
            ) from None
    # A file without cnnlab metadata has no digest to check (read_header refuses it where a
    # record is needed).
    meta = _cnnlab_metadata({"cnnlab": raw_meta}, Path(path)) if raw_meta is not None else {}
    recorded = meta.get(DIGEST_KEY)
    if recorded is not None and recorded != tensors_digest(tensors, meta):
        raise CheckpointError(
            f"{path} is damaged: its content does not match the SHA-256 recorded in it (a "
            "changed byte or an edited record); use another checkpoint or retrain"
        )
    return {k[len(prefix) :]: v for k, v in tensors.items() if k.startswith(prefix)}


def file_digest(path: Path) -> str | None:
    """The digest a cnnlab weights file records in its metadata (None for older files), read
    from the header alone: what ``results.json`` compares with."""
    value = read_header(Path(path)).get(DIGEST_KEY)
    if value is not None and not isinstance(value, str):
        raise CheckpointError(f"{path}: its recorded SHA-256 is not text: the file is damaged")
    return value


# --- checking tensors -----------------------------------------------------------------------------

# What a weights file may hold where the model has floating point tensors: real floats only
# (integers would be converted silently, complex numbers lose their imaginary part).
FLOAT_DTYPES = frozenset({torch.float16, torch.bfloat16, torch.float32, torch.float64})
# Where the model has integer buffers (batch norm's num_batches_tracked, an int64 count).
INT_DTYPES = frozenset({torch.uint8, torch.int8, torch.int16, torch.int32, torch.int64})


def check_weights(
    tensors: Mapping[str, object],
    expected: Mapping[str, torch.Tensor],
    source: object,
    *,
    model: str = "this model",
    fix: str = "the file is damaged or holds another architecture's weights",
) -> dict[str, torch.Tensor]:
    """Check tensors read from a file against a model's state dict before loading them.

    ``load_state_dict`` converts whatever it is given to the model's dtypes without a word: an
    int64 tensor is truncated, a complex one loses its imaginary part, a bool becomes 0 and 1,
    and NaN or infinity passes through to every prediction. This refuses all of those.

    Args:
        tensors: names to tensors, as a file holds them.
        expected: the model's state dict (on any device, ``meta`` included): names, shapes and
            dtypes.
        source: the file, for messages.
        model: the architecture's name, for messages.
        fix: what the user can do, the end of the key-and-shape message.

    Returns:
        The tensors in ``expected``'s order, each converted to the model's dtype, contiguous.

    Raises:
        CheckpointError: a value that is not a dense tensor; missing or unexpected names or a
            shape that differs (the first few named, with counts); a floating point tensor of
            the model held as anything but float16/bfloat16/float32/float64; an integer buffer
            held as anything but an integer; a value that is NaN or infinite once converted (the
            first bad tensor is named).
    """
    for key, value in tensors.items():
        dense = isinstance(value, torch.Tensor) and value.layout == torch.strided
        if not dense or value.device.type == "meta":  # a meta tensor has a shape, no values
            kind = type(value).__name__
            if isinstance(value, torch.Tensor):
                kind = f"{value.layout} tensor on {value.device.type}"
            raise CheckpointError(
                f"{source}: {printable(str(key), 80)} is a {kind}, not a dense tensor of values: "
                "the file was not saved from a model's state_dict()"
            )
    _check_names_and_shapes(tensors, expected, source, model, fix)
    out = {}
    for key, want in expected.items():
        have = tensors[key]
        assert isinstance(have, torch.Tensor)
        if have.dtype not in _dtypes_for(want.dtype):
            kinds = "floating point" if want.dtype.is_floating_point else "integer"
            raise CheckpointError(
                f"{source}: {key} holds {str(have.dtype).removeprefix('torch.')} values where "
                f"{model} has {kinds} ones ({str(want.dtype).removeprefix('torch.')}): the "
                "file is damaged or was not saved from a model's state_dict()"
            )
        have = have.detach().to(want.dtype).contiguous()
        if want.dtype.is_floating_point and not _all_finite(have):
            bad = "NaN" if bool(torch.isnan(have).any()) else "infinite"
            raise CheckpointError(
                f"{source}: {key} holds {bad} values (as {str(want.dtype).removeprefix('torch.')})"
                ": the weights are damaged (a diverged training run?); use another file"
            )
        out[key] = have
    return out


def _all_finite(t: torch.Tensor) -> bool:
    """Whether every value of a floating point tensor is finite.

    Through NumPy, on one thread: ``torch.isfinite`` starts the intra-op thread pool for each of
    a model's few dozen tensors, which on a busy 2-core machine cost 90 ms per load (0.8 ms on
    one thread; NumPy 0.1 ms, measured on the demo run's 262,378 weights).
    """
    if t.device.type != "cpu" or t.dtype not in (torch.float16, torch.float32, torch.float64):
        t = t.detach().to("cpu", torch.float32)  # bfloat16 has no NumPy type
    return bool(np.isfinite(t.detach().numpy()).all())


def _dtypes_for(dtype: torch.dtype) -> frozenset[torch.dtype]:
    """The dtypes a file may hold for a model tensor of ``dtype``."""
    if dtype in FLOAT_DTYPES:
        return FLOAT_DTYPES
    return INT_DTYPES if dtype in INT_DTYPES else frozenset({dtype})


def _check_names_and_shapes(
    tensors: Mapping[str, object],
    expected: Mapping[str, torch.Tensor],
    source: object,
    model: str,
    fix: str,
) -> None:
    missing = sorted(set(expected) - set(tensors))
    unexpected = sorted(printable(str(k), 80) for k in set(tensors) - set(expected))
    wrong = [
        f"{k} {tuple(tensors[k].shape)} (expected {tuple(v.shape)})"  # type: ignore[union-attr]
        for k, v in expected.items()
        if k in tensors and tensors[k].shape != v.shape  # type: ignore[union-attr]
    ]
    problems = [
        f"{len(items)} {what}: {', '.join(items[:3])}{', ...' if len(items) > 3 else ''}"
        for what, items in (
            ("missing", missing),
            ("unexpected", unexpected),
            ("wrong shapes", wrong),
        )
        if items
    ]
    if problems:
        raise CheckpointError(
            f"{source}: not a state dict of {model} ({'; '.join(problems)}): {fix}"
        )
