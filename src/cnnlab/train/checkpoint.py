"""Writing checkpoints and trained models: safetensors + JSON, written atomically, no pickle.

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

This module is the training side. Reading, validating and loading them is the run package's
(:mod:`cnnlab.run.tensorfile`, :mod:`cnnlab.run.checkpoints`, :mod:`cnnlab.run.load`), which
never uses ``pickle`` or ``torch.load``.
"""

from __future__ import annotations

import dataclasses
import random
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch

from cnnlab import files
from cnnlab.errors import CheckpointError
from cnnlab.run.checkpoints import checkpoint_name, list_checkpoints, read_checkpoint
from cnnlab.run.config import to_dict
from cnnlab.run.load import MODEL_PREFIX
from cnnlab.run.records import EpochWatch
from cnnlab.run.tensorfile import (
    CHECKPOINT_FORMAT,
    MODEL_FORMAT,
    RECORD_DIGEST_KEY,
    record_digest,
    write_json_atomic,
    write_safetensors_atomic,
)
from cnnlab.runmeta import RunMeta

KEEP_CHECKPOINTS = 2
# How a checkpoint's tensor names say which part of the training state they belong to.
OPTIMIZER_PREFIX, RNG_PREFIX = "optim.", "rng."
PhaseHook = Callable[[str, Path], None] | None


# --- the final model ----------------------------------------------------------------------------


def _meta_dict(meta: RunMeta | Mapping[str, Any]) -> dict[str, Any]:
    return meta.to_dict() if isinstance(meta, RunMeta) else dict(meta)


def save_model(path: Path, model: torch.nn.Module, meta: RunMeta | Mapping[str, Any]) -> str:
    """Write a trained model's ``state_dict`` (torchvision-compatible keys) and its metadata;
    returns the file's digest (:func:`~cnnlab.run.tensorfile.tensors_digest`)."""
    return write_safetensors_atomic(
        path, dict(model.state_dict()), {"format": MODEL_FORMAT, **_meta_dict(meta)}
    )


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
    record[RECORD_DIGEST_KEY] = record_digest(record)  # an edited record is caught, not used
    write_json_atomic(base.with_suffix(".json"), record, lambda tmp: notify("record-written", tmp))
    notify("committed", base.with_suffix(".json"))
    for old in list_checkpoints(directory)[:-keep]:
        # Tensors first: a crash in between leaves a record whose tensors are missing, which
        # validation rejects, never tensors without the record that vouches for them.
        old.with_suffix(".safetensors").unlink(missing_ok=True)
        notify("pruned-tensors", old)
        old.unlink(missing_ok=True)
    return base.with_suffix(".json")


# --- the training state: what a checkpoint holds, and how its names are laid out ----------------


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
    """Read a checkpoint pair into a :class:`TrainingState`, every part checked.

    The record's fields were checked as it was read (:class:`~cnnlab.run.records.TrainingRecord`:
    types, ranges, and a position that agrees with the history); here the tensors are checked
    against it: every rank's RNG states, the data-order and augmentation generators, and the
    optimizer buffers of the parameters its groups list.

    Raises:
        CheckpointError: the pair is torn or edited, holds no training state, or its tensors do
            not fit its record; one line naming the checkpoint (``--resume`` then falls back to
            an older one).
    """
    tensors, record = read_checkpoint(json_path)
    training = record.training

    def damaged(what: str) -> CheckpointError:
        return CheckpointError(f"{Path(json_path).name}: {what}: use an older checkpoint")

    if training is None:
        raise damaged("it holds no training state (a checkpoint of weights only)")

    def part(prefix: str) -> dict[str, torch.Tensor]:
        return {k[len(prefix) :]: v for k, v in tensors.items() if k.startswith(prefix)}

    rng = part(RNG_PREFIX)
    rank_rng = [part(f"{RNG_PREFIX}rank{rank}.") for rank in range(training.world_size)]
    for rank, states in enumerate(rank_rng):
        _check_rng(states, f"rank {rank}", damaged)
    for name in ("order", "augment"):
        if not _is_generator_state(rng.get(name)):
            raise damaged(f"its {name} generator state is missing or malformed")
    optim_tensors = part(OPTIMIZER_PREFIX)
    params = set(training.optimizer.params)
    for name in optim_tensors:
        index = name.split(".", 1)[0]
        if "." not in name or not index.isdigit() or int(index) not in params:
            raise damaged(f"optimizer tensor {name[:80]!r} names no parameter of its groups")
    return TrainingState(
        step=record.step,
        epoch=training.epoch,
        batch=training.batch,
        history=[epoch.to_dict() for epoch in training.history],
        epoch_sums=list(training.epoch_sums),
        model=part(MODEL_PREFIX),
        optimizer=optimizer_state_from_files(optim_tensors, training.optimizer.to_dict()),
        plateau=training.plateau,
        rank_rng=rank_rng,
        rng_scalars=training.rng_scalars,
        order_rng=rng["order"],
        augment_rng=rng["augment"],
        world_size=training.world_size,
        threads=training.threads,
        config=to_dict(training.config),
        watch=dataclasses.replace(training.watch),
    )


# Sizes of the RNG states capture_rng stores as tensors: NumPy's 624 uint32 keys (as bytes) and
# Python's 624 words plus the position.
_NUMPY_STATE_BYTES = 624 * 4
_PYTHON_STATE_WORDS = 625


def _is_generator_state(state: torch.Tensor | None) -> bool:
    """A torch generator's state (``Generator.get_state()``): a non-empty uint8 vector."""
    return state is not None and state.dtype == torch.uint8 and state.dim() == 1 and len(state) > 0


def _check_rng(
    states: dict[str, torch.Tensor], rank: str, damaged: Callable[[str], CheckpointError]
) -> None:
    """One rank's tensors of :func:`capture_rng` have the dtypes and sizes it wrote."""
    numpy, python = states.get("numpy"), states.get("python")
    if not _is_generator_state(states.get("torch")):
        raise damaged(f"its torch RNG state of {rank} is missing or malformed")
    if numpy is None or numpy.dtype != torch.uint8 or numpy.shape != (_NUMPY_STATE_BYTES,):
        raise damaged(f"its NumPy RNG state of {rank} is missing or malformed")
    if python is None or python.dtype != torch.int64 or python.shape != (_PYTHON_STATE_WORDS,):
        raise damaged(f"its Python RNG state of {rank} is missing or malformed")
    if any(not _is_generator_state(v) for k, v in states.items() if k.startswith("cuda.")):
        raise damaged(f"a CUDA RNG state of {rank} is malformed")
