"""Checkpoints and trained models on disk: safetensors + JSON, written atomically, no pickle.

Two kinds of file, both readable without running any code from them:

* ``model.safetensors`` -- the final weights, with cnnlab's metadata (model name, classes, input
  size, normalisation, dataset) as a JSON string under the safetensors metadata key ``cnnlab``.
* ``checkpoints/step-XXXXXXXX.safetensors`` + ``.json`` -- the weights *and* the training state.
  Tensors (weights, optimizer buffers, RNG states as uint8 tensors) go into the safetensors file;
  everything scalar (step, epoch, config, optimizer hyperparameters, scheduler state, NumPy and
  Python RNG positions, the metrics so far) into the JSON file. The JSON is written last and
  records the size and SHA-256 of its safetensors file, so a pair is valid only when both halves
  were completely written: it is the commit marker.

Every file is written to a temporary name in the same directory, flushed and fsynced, renamed over
the final name, and the directory is fsynced, so a crash (or SIGKILL) at any point leaves either the
old file or the new one. The last :data:`KEEP_CHECKPOINTS` checkpoints are kept.

Loading never uses ``pickle`` or ``torch.load``: a file that is not a well-formed safetensors file
written by cnnlab is refused with a :class:`~cnnlab.errors.CheckpointError` before any of it is
interpreted.
"""

from __future__ import annotations

import dataclasses
import json
import os
import random
import re
import struct
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
from safetensors import SafetensorError, safe_open
from safetensors.torch import save_file

from cnnlab import files
from cnnlab.errors import CheckpointError
from cnnlab.runmeta import RunMeta

KEEP_CHECKPOINTS = 2
MODEL_FORMAT = "cnnlab.model/1"
CHECKPOINT_FORMAT = "cnnlab.checkpoint/1"
MODEL_FILE = "model.safetensors"
BEST_MODEL_FILE = "model_best.safetensors"  # the weights of the best epoch by validation accuracy
CHECKPOINT_DIR = "checkpoints"
_STEP_NAME = re.compile(r"^step-(\d{8,})\.json$")
# A safetensors header larger than this is not one we wrote (ours are a few kB to a few MB).
_MAX_HEADER_BYTES = 100 * 2**20
# Weight files of other tools, named in the refusal so the user knows why they were not used.
_FOREIGN_SUFFIXES = frozenset({".pt", ".pth", ".pkl", ".pickle", ".ckpt", ".bin"})
# How a checkpoint's tensor names say which part of the training state they belong to.
MODEL_PREFIX, OPTIMIZER_PREFIX, RNG_PREFIX = "model.", "optim.", "rng."
# A hook called with a file's temporary name once it is written, before it is committed.
Hook = Callable[[Path], None] | None
PhaseHook = Callable[[str, Path], None] | None


# --- writing ------------------------------------------------------------------------------------


def _write_atomic(path: Path, write: Callable[[Path], object], before_commit: Hook = None) -> None:
    """:func:`cnnlab.files.write_atomic` with cnnlab's checkpoint error for a failed write.

    Raises:
        CheckpointError: the write failed (full disk, no permission); the temporary file is
            removed and whatever ``path`` held before is still there.
    """

    def write_then_notify(tmp: Path) -> None:
        write(tmp)
        if before_commit is not None:
            before_commit(tmp)

    try:
        files.write_atomic(path, write_then_notify)
    except (OSError, SafetensorError) as err:
        reason = getattr(err, "strerror", None) or str(err).splitlines()[0]
        raise CheckpointError(
            f"cannot write {path}: {reason}; free some space (or pass --out on another disk) "
            "and resume with --resume: the previous checkpoint is intact"
        ) from None


def write_json_atomic(path: Path, obj: Any, before_commit: Hook = None) -> None:
    """Write ``obj`` as JSON to ``path`` atomically (CheckpointError when the disk refuses)."""
    text = json.dumps(obj, indent=1) + "\n"
    _write_atomic(Path(path), lambda tmp: tmp.write_text(text), before_commit)


def write_safetensors_atomic(
    path: Path,
    tensors: dict[str, torch.Tensor],
    meta: Mapping[str, Any],
    before_commit: Hook = None,
) -> None:
    """Write tensors (moved to CPU, made contiguous) and cnnlab metadata to ``path`` atomically."""
    cpu = {k: v.detach().to("cpu").contiguous() for k, v in tensors.items()}
    _write_atomic(
        Path(path),
        lambda tmp: save_file(cpu, str(tmp), metadata={"cnnlab": json.dumps(dict(meta))}),
        before_commit,
    )


remove_temporaries = files.remove_temporaries


# --- reading safetensors safely -----------------------------------------------------------------


def read_header(path: Path) -> dict[str, Any]:
    """Validate a safetensors file's framing and return its cnnlab metadata, reading no tensors.

    Raises:
        CheckpointError: the file is missing, is a pickle or ``torch.save`` archive, is truncated,
            or carries no cnnlab metadata.
    """
    path = Path(path)
    if not path.is_file():
        raise CheckpointError(f"{path}: no such file: pass a run directory or a .safetensors file")
    size = path.stat().st_size
    with open(path, "rb") as f:
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
    try:
        header = json.loads(raw)
    except (UnicodeDecodeError, json.JSONDecodeError):
        raise CheckpointError(
            f"{path} has a damaged safetensors header: use a file written by `cnnlab train`"
        ) from None
    if not isinstance(header, dict):
        raise CheckpointError(f"{path} has a malformed safetensors header: not written by cnnlab")
    end = 0
    for key, entry in header.items():
        if key == "__metadata__":
            continue
        try:
            end = max(end, int(entry["data_offsets"][1]))
        except (TypeError, KeyError, IndexError, ValueError):
            raise CheckpointError(f"{path}: malformed entry {key!r} in the header") from None
    if 8 + n + end != size:
        raise CheckpointError(
            f"{path} is truncated or padded ({size} bytes, header describes {8 + n + end}): "
            "use another checkpoint or retrain"
        )
    meta_raw = (header.get("__metadata__") or {}).get("cnnlab")
    if meta_raw is None:
        raise CheckpointError(
            f"{path} has no cnnlab metadata (not written by `cnnlab train`): cnnlab needs the "
            "model name, classes and input size it records"
        )
    try:
        meta = json.loads(meta_raw)
    except json.JSONDecodeError:
        raise CheckpointError(f"{path}: its cnnlab metadata is not valid JSON") from None
    if not isinstance(meta, dict):
        raise CheckpointError(f"{path}: its cnnlab metadata is not a JSON object")
    return meta


def read_tensors(path: Path, prefix: str = "") -> dict[str, torch.Tensor]:
    """All tensors of a validated safetensors file whose names start with ``prefix`` (stripped)."""
    try:
        with safe_open(str(path), framework="pt", device="cpu") as f:
            return {k[len(prefix) :]: f.get_tensor(k) for k in f.keys() if k.startswith(prefix)}  # noqa: SIM118
    except Exception as err:  # safetensors raises its own error types
        raise CheckpointError(f"{path}: cannot read tensors ({err}); use another file") from None


# --- the final model ----------------------------------------------------------------------------


def _meta_dict(meta: RunMeta | Mapping[str, Any]) -> dict[str, Any]:
    return meta.to_dict() if isinstance(meta, RunMeta) else dict(meta)


def save_model(path: Path, model: torch.nn.Module, meta: RunMeta | Mapping[str, Any]) -> None:
    """Write a trained model's ``state_dict`` (torchvision-compatible keys) and its metadata."""
    write_safetensors_atomic(
        path, dict(model.state_dict()), {"format": MODEL_FORMAT, **_meta_dict(meta)}
    )


def resolve_model_file(path: Path) -> Path:
    """The weights file a user means by ``path``: a file, or a run directory's model/checkpoint."""
    path = Path(path)
    if path.is_dir():
        final = path / MODEL_FILE
        if final.exists():
            return final
        latest, _ = latest_valid_checkpoint(path / CHECKPOINT_DIR)
        if latest is not None:
            return latest.with_suffix(".safetensors")
        foreign = sorted(p.name for p in path.iterdir() if p.suffix in _FOREIGN_SUFFIXES)
        hint = (
            f" ({', '.join(foreign)}: pickle/torch.save files, which cnnlab never loads because "
            "unpickling can run code)"
            if foreign
            else ""
        )
        raise CheckpointError(
            f"{path} holds no {MODEL_FILE} and no valid checkpoint{hint}: pass a run directory "
            "written by `cnnlab train`"
        )
    if path.suffix == ".json" and _STEP_NAME.match(path.name):
        return path.with_suffix(".safetensors")
    return path


@dataclass
class TrainedModel:
    """A model cnnlab trained, rebuilt from one file.

    Attributes:
        model: the network, in eval mode, on the requested device.
        meta: its :class:`~cnnlab.runmeta.RunMeta`.
        source: the file the weights were read from.
    """

    model: torch.nn.Module
    meta: RunMeta
    source: Path


def load_trained(path: str | os.PathLike, device: str | torch.device = "cpu") -> TrainedModel:
    """Load a model cnnlab trained, for evaluation, prediction, export or inspection.

    Args:
        path: a run directory (its ``model.safetensors``, or its newest valid checkpoint when
            training has not finished), a ``model.safetensors`` or a checkpoint file.
        device: where to put the model.

    Raises:
        CheckpointError: anything cnnlab did not write, or whose weights do not fit the recorded
            architecture. Nothing in the file is executed: only safetensors is read.
    """
    from cnnlab.errors import UnknownModelError
    from cnnlab.registry import create_model

    file = resolve_model_file(Path(path))
    header = read_header(file)
    if header.get("format") not in (MODEL_FORMAT, CHECKPOINT_FORMAT):
        raise CheckpointError(f"{file}: unknown cnnlab format {header.get('format')!r}")
    is_checkpoint = header.get("format") == CHECKPOINT_FORMAT
    meta = RunMeta.from_dict(header["model_meta"] if is_checkpoint else header, file)
    try:
        model = create_model(
            meta.model,
            num_classes=meta.num_classes,
            in_channels=meta.in_channels,
            **meta.model_kwargs,
        )
    except UnknownModelError as err:
        raise CheckpointError(f"{file}: {err}") from None
    state = read_tensors(file, MODEL_PREFIX if is_checkpoint else "")
    try:
        model.load_state_dict(state, strict=True)
    except RuntimeError as err:
        first = str(err).splitlines()[1].strip() if "\n" in str(err) else str(err)
        raise CheckpointError(
            f"{file}: its weights do not fit {meta.model} ({first}); the file is damaged or "
            "was not written for this architecture"
        ) from None
    model.to(device).eval()
    return TrainedModel(model, meta, file)


# --- training state: optimizer, RNG -------------------------------------------------------------


def optimizer_state_to_files(
    optimizer: torch.optim.Optimizer,
) -> tuple[dict[str, torch.Tensor], dict[str, Any]]:
    """Split ``optimizer.state_dict()`` into tensors (for safetensors) and scalars (for JSON)."""
    return optimizer_state_to_files_dict(optimizer.state_dict())


def optimizer_state_to_files_dict(
    sd: dict[str, Any],
) -> tuple[dict[str, torch.Tensor], dict[str, Any]]:
    """:func:`optimizer_state_to_files` of an already taken ``state_dict``."""
    tensors: dict[str, torch.Tensor] = {}
    scalars: dict[str, dict[str, Any]] = {}
    for index, entry in sd["state"].items():
        for key, value in entry.items():
            if isinstance(value, torch.Tensor):
                tensors[f"{index}.{key}"] = value
            else:
                scalars.setdefault(str(index), {})[key] = value
    return tensors, {"param_groups": sd["param_groups"], "state_scalars": scalars}


def optimizer_state_from_files(
    tensors: dict[str, torch.Tensor], data: dict[str, Any]
) -> dict[str, Any]:
    """Rebuild a ``state_dict`` for ``optimizer.load_state_dict`` from the two halves."""
    state: dict[int, dict[str, Any]] = {}
    for name, value in tensors.items():
        index, key = name.split(".", 1)
        state.setdefault(int(index), {})[key] = value
    for index, entry in data["state_scalars"].items():
        state.setdefault(int(index), {}).update(entry)
    # JSON has no tuples; optimizers keep pairs such as Adam's betas as tuples.
    groups = [
        {k: (tuple(v) if isinstance(v, list) and k != "params" else v) for k, v in g.items()}
        for g in data["param_groups"]
    ]
    return {"state": state, "param_groups": groups}


def capture_rng() -> tuple[dict[str, torch.Tensor], dict[str, Any]]:
    """The global torch (CPU and CUDA), NumPy and Python RNG states, as tensors + JSON."""
    tensors = {"torch": torch.get_rng_state()}
    if torch.cuda.is_available() and torch.cuda.is_initialized():
        for i, s in enumerate(torch.cuda.get_rng_state_all()):
            tensors[f"cuda.{i}"] = s
    kind, keys, pos, has_gauss, cached = np.random.get_state()
    tensors["numpy"] = torch.from_numpy(np.asarray(keys, dtype=np.uint32).view(np.uint8).copy())
    version, internal, gauss_next = random.getstate()
    tensors["python"] = torch.tensor(internal, dtype=torch.int64)
    scalars = {
        "numpy": {"kind": kind, "pos": int(pos), "has_gauss": int(has_gauss), "cached": cached},
        "python": {"version": version, "gauss_next": gauss_next},
    }
    return tensors, scalars


def restore_rng(tensors: dict[str, torch.Tensor], scalars: dict[str, Any]) -> None:
    """Inverse of :func:`capture_rng`."""
    torch.set_rng_state(tensors["torch"])
    cuda = sorted(k for k in tensors if k.startswith("cuda."))
    if cuda and torch.cuda.is_available():
        torch.cuda.set_rng_state_all([tensors[k] for k in cuda])
    n = scalars["numpy"]
    keys = tensors["numpy"].numpy().view(np.uint32)
    np.random.set_state((n["kind"], keys, n["pos"], n["has_gauss"], n["cached"]))
    p = scalars["python"]
    random.setstate((p["version"], tuple(int(v) for v in tensors["python"]), p["gauss_next"]))


# --- checkpoint pairs ---------------------------------------------------------------------------


def checkpoint_name(step: int) -> str:
    return f"step-{step:08d}"


def save_checkpoint(
    directory: Path,
    step: int,
    tensors: dict[str, torch.Tensor],
    state: dict[str, Any],
    model_meta: RunMeta | Mapping[str, Any],
    keep: int = KEEP_CHECKPOINTS,
    on_phase: PhaseHook = None,
) -> Path:
    """Write one checkpoint pair for ``step`` and delete all but the newest ``keep`` pairs.

    Args:
        directory: the run's ``checkpoints/`` directory (created if needed).
        step: optimizer steps done; names the files.
        tensors: every tensor of the training state, names prefixed by their part (``model.``,
            ``optim.``, ``rng.``).
        state: the JSON-ready rest (epoch, config, scheduler, RNG scalars, history).
        model_meta: what :func:`load_trained` needs to rebuild the model from this file alone.
        keep: how many pairs to keep.
        on_phase: called as ``on_phase(phase, path)`` at each point a crash could interrupt:
            ``tensors-written`` and ``record-written`` (complete temporary file, not yet
            committed), ``committed`` (both halves in place, old pairs not yet pruned) and
            ``pruned-tensors`` (an old pair's tensors deleted, its record not yet). Crash tests
            kill the process there.

    Returns:
        The path of the JSON half.
    """
    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    base = directory / checkpoint_name(step)
    weights = base.with_suffix(".safetensors")
    notify = on_phase or (lambda phase, path: None)
    write_safetensors_atomic(
        weights,
        tensors,
        {"format": CHECKPOINT_FORMAT, "step": step, "model_meta": _meta_dict(model_meta)},
        lambda tmp: notify("tensors-written", tmp),
    )
    record = {
        "format": CHECKPOINT_FORMAT,
        "step": step,
        "tensors_file": weights.name,
        "tensors_bytes": weights.stat().st_size,
        "tensors_sha256": files.sha256_file(weights),
        **state,
    }
    write_json_atomic(base.with_suffix(".json"), record, lambda tmp: notify("record-written", tmp))
    notify("committed", base.with_suffix(".json"))
    for old in list_checkpoints(directory)[:-keep]:
        # Tensors first: a crash in between leaves a record whose tensors are missing, which
        # validation rejects, never tensors without the record that vouches for them.
        old.with_suffix(".safetensors").unlink(missing_ok=True)
        notify("pruned-tensors", old)
        old.unlink(missing_ok=True)
    return base.with_suffix(".json")


def list_checkpoints(directory: Path) -> list[Path]:
    """JSON halves of the checkpoints in ``directory``, oldest first (by step)."""
    directory = Path(directory)
    if not directory.is_dir():
        return []
    found = [(int(m.group(1)), p) for p in directory.iterdir() if (m := _STEP_NAME.match(p.name))]
    return [p for _, p in sorted(found)]


def validate_checkpoint(json_path: Path) -> dict[str, Any]:
    """Check a checkpoint pair completely; return its JSON record or raise CheckpointError."""
    json_path = Path(json_path)
    try:
        record = json.loads(json_path.read_text())
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as err:
        raise CheckpointError(f"{json_path.name}: unreadable JSON ({err})") from None
    if not isinstance(record, dict) or record.get("format") != CHECKPOINT_FORMAT:
        raise CheckpointError(f"{json_path.name}: not a cnnlab checkpoint record")
    step = int(_STEP_NAME.match(json_path.name).group(1))  # type: ignore[union-attr]
    if record.get("step") != step:
        raise CheckpointError(f"{json_path.name}: records step {record.get('step')}, not {step}")
    weights = json_path.with_suffix(".safetensors")
    if not weights.is_file():
        raise CheckpointError(f"{json_path.name}: its {weights.name} is missing")
    if weights.stat().st_size != record.get("tensors_bytes"):
        raise CheckpointError(f"{weights.name}: size differs from the record (truncated?)")
    meta = read_header(weights)
    if meta.get("step") != step:
        raise CheckpointError(f"{weights.name}: header says step {meta.get('step')}, not {step}")
    if files.sha256_file(weights) != record.get("tensors_sha256"):
        raise CheckpointError(f"{weights.name}: SHA-256 differs from the record (damaged)")
    return record


def latest_valid_checkpoint(directory: Path) -> tuple[Path | None, list[str]]:
    """The newest checkpoint that passes :func:`validate_checkpoint`, and why newer ones failed."""
    rejected = []
    for json_path in reversed(list_checkpoints(directory)):
        try:
            validate_checkpoint(json_path)
        except CheckpointError as err:
            rejected.append(str(err))
            continue
        return json_path, rejected
    return None, rejected


def load_checkpoint(json_path: Path) -> tuple[dict[str, torch.Tensor], dict[str, Any]]:
    """The tensors and JSON record of a validated checkpoint pair."""
    record = validate_checkpoint(json_path)
    return read_tensors(Path(json_path).with_suffix(".safetensors")), record


# --- the training state: what a checkpoint holds, and how its names are laid out ----------------


@dataclass
class EpochWatch:
    """What the trainer tracks across epochs to decide when to stop; part of every checkpoint.

    Attributes:
        best_val_acc: the best validation accuracy so far (``None`` before the first epoch).
        best_epoch: its 1-based epoch (the weights in ``model_best.safetensors``).
        epochs_since_best: epochs since then (``--early-stop`` counts these).
        stalled_epochs: consecutive epochs at chance, up to the last (the stall guard counts
            these).
        stopped_early: ``--early-stop`` ended training before the last epoch.
    """

    best_val_acc: float | None = None
    best_epoch: int = 0
    epochs_since_best: int = 0
    stalled_epochs: int = 0
    stopped_early: bool = False


@dataclass
class TrainingState:
    """Everything ``--resume`` needs to continue a run bitwise exactly, in memory.

    Attributes:
        step: optimizer steps done.
        epoch: 0-based epoch in progress (``epochs`` once training has finished).
        batch: first batch of ``epoch`` still to run (0 at an epoch boundary).
        history: one record per finished epoch (what ``metrics.jsonl`` holds).
        epoch_sums: ``[loss * n, correct, n]`` of the unfinished epoch, summed over ranks.
        model: the model's ``state_dict``.
        optimizer: ``optimizer.state_dict()``.
        plateau: the ``ReduceLROnPlateau`` state.
        rank_rng: per DDP rank, the tensors of :func:`capture_rng`.
        rng_scalars: rank 0's JSON half of :func:`capture_rng`.
        order_rng: the data-order generator's state at the start of ``epoch``, so the epoch's
            permutation is drawn again identically.
        augment_rng: the augmentation generator's state now.
        world_size: DDP ranks the run was trained with.
        threads: intra-op threads (CPU reductions depend on it, so resume uses the same).
        config: the run's config as a dict.
        watch: the best epoch, early-stopping and stall counters (:class:`EpochWatch`).
    """

    step: int
    epoch: int
    batch: int
    history: list[dict[str, Any]]
    epoch_sums: list[float]
    model: dict[str, torch.Tensor]
    optimizer: dict[str, Any]
    plateau: dict[str, Any]
    rank_rng: list[dict[str, torch.Tensor]]
    rng_scalars: dict[str, Any]
    order_rng: torch.Tensor
    augment_rng: torch.Tensor
    world_size: int
    threads: int
    config: dict[str, Any]
    watch: EpochWatch = field(default_factory=EpochWatch)


def save_training_state(
    directory: Path,
    state: TrainingState,
    meta: RunMeta,
    on_phase: PhaseHook = None,
) -> Path:
    """Write ``state`` as checkpoint pair ``step-<state.step>`` in ``directory``.

    Tensor names: ``model.<param>``, ``optim.<index>.<buffer>``, ``rng.rank<r>.<generator>``,
    ``rng.order``, ``rng.augment``; everything else goes into the JSON record.

    Returns:
        The path of the JSON half.
    """
    optim_tensors, optim_json = optimizer_state_to_files_dict(state.optimizer)
    tensors = {f"{MODEL_PREFIX}{k}": v for k, v in state.model.items()}
    tensors |= {f"{OPTIMIZER_PREFIX}{k}": v for k, v in optim_tensors.items()}
    for rank, rng in enumerate(state.rank_rng):
        tensors |= {f"{RNG_PREFIX}rank{rank}.{k}": v for k, v in rng.items()}
    tensors[f"{RNG_PREFIX}order"] = state.order_rng
    tensors[f"{RNG_PREFIX}augment"] = state.augment_rng
    record = {
        "cnnlab_version": meta.cnnlab_version,
        "epoch": state.epoch,
        "batch": state.batch,
        "world_size": state.world_size,
        "threads": state.threads,
        "config": state.config,
        "optimizer": optim_json,
        "plateau": state.plateau,
        "rng": state.rng_scalars,
        "epoch_sums": state.epoch_sums,
        "history": state.history,
        "watch": dataclasses.asdict(state.watch),
    }
    return save_checkpoint(directory, state.step, tensors, record, meta, on_phase=on_phase)


def load_training_state(json_path: Path) -> TrainingState:
    """Read and validate a checkpoint pair into a :class:`TrainingState`."""
    tensors, record = load_checkpoint(json_path)

    def part(prefix: str) -> dict[str, torch.Tensor]:
        return {k[len(prefix) :]: v for k, v in tensors.items() if k.startswith(prefix)}

    rng = part(RNG_PREFIX)
    rank_rng = [part(f"{RNG_PREFIX}rank{rank}.") for rank in range(int(record["world_size"]))]
    return TrainingState(
        step=int(record["step"]),
        epoch=int(record["epoch"]),
        batch=int(record["batch"]),
        history=record["history"],
        epoch_sums=list(record["epoch_sums"]),
        model=part(MODEL_PREFIX),
        optimizer=optimizer_state_from_files(part(OPTIMIZER_PREFIX), record["optimizer"]),
        plateau=record["plateau"],
        rank_rng=rank_rng,
        rng_scalars=record["rng"],
        order_rng=rng["order"],
        augment_rng=rng["augment"],
        world_size=int(record["world_size"]),
        threads=record.get("threads"),
        config=record["config"],
        watch=EpochWatch(**record.get("watch", {})),  # absent in checkpoints before it existed
    )
