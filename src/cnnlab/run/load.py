"""Loading a model cnnlab trained: the architecture from its metadata, the weights from its file.

:func:`load_trained` is the one way back from a file to a network; :func:`cnnlab.load` wraps it
with preprocessing for prediction (:class:`cnnlab.predictor.Predictor`).
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

import torch

from cnnlab.errors import CheckpointError
from cnnlab.formats import printable
from cnnlab.run.checkpoints import resolve_model_file
from cnnlab.run.layout import RunFiles
from cnnlab.run.records import DamagedRunError
from cnnlab.run.tensorfile import (
    CHECKPOINT_FORMAT,
    MODEL_FORMAT,
    check_weights,
    file_digest,
    read_header,
    read_tensors,
)
from cnnlab.runmeta import RunMeta

MODEL_PREFIX = "model."  # a checkpoint's weights are its tensors named model.<param>


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
    file = resolve_model_file(Path(path))
    meta, is_checkpoint = read_meta(file)
    if not is_checkpoint:
        check_against_run(file)
    model = _build(file, meta)
    # Names, shapes, dtypes and finiteness, before load_state_dict converts anything silently.
    state = check_weights(
        read_tensors(file, MODEL_PREFIX if is_checkpoint else ""),
        model.state_dict(),
        file,
        model=meta.model,
    )
    try:
        model.load_state_dict(state, strict=True)
    except RuntimeError as err:
        first = str(err).splitlines()[1].strip() if "\n" in str(err) else str(err)
        raise CheckpointError(
            f"{file}: its weights do not fit {meta.model} ({printable(first)}); the file is "
            "damaged or was not written for this architecture"
        ) from None
    model.to(device).eval()
    return TrainedModel(model, meta, file)


def check_against_run(file: Path) -> None:
    """A run's weights file against the SHA-256 its ``results.json`` records for it.

    The file checks its own content when its tensors are read (:func:`read_tensors`); this
    catches what that cannot: a file swapped for another run's, or one whose digest was lost.
    Files outside a finished run (and runs whose ``results.json`` is itself damaged, which
    ``cnnlab runs`` reports) have nothing to compare with.

    Raises:
        DamagedRunError: the run records another digest for this file.
    """
    run = RunFiles(file.parent)
    if file.name not in (run.model.name, run.model_best.name) or not run.results.is_file():
        return
    try:
        outcome = run.read_outcome()
    except CheckpointError:
        return
    recorded = outcome.files.get(file.name) if outcome is not None else None
    if recorded is not None and file_digest(file) != recorded:
        raise DamagedRunError(
            run.root,
            file.name,
            "not the file this run wrote (its SHA-256 differs from the one results.json "
            "records): restore it or retrain",
        )


def read_meta(file: Path) -> tuple[RunMeta, bool]:
    """A weights file's checked :class:`RunMeta`, and whether the file is a checkpoint.

    Raises:
        CheckpointError: not a regular file, not cnnlab's safetensors, or malformed metadata.
    """
    header = read_header(file)
    kind = header.get("format")
    if kind not in (MODEL_FORMAT, CHECKPOINT_FORMAT):
        raise CheckpointError(f"{file}: unknown cnnlab format {printable(repr(kind), 60)}")
    is_checkpoint = kind == CHECKPOINT_FORMAT
    if is_checkpoint and "model_meta" not in header:
        raise CheckpointError(f"{file}: checkpoint metadata lacks model_meta: the file is damaged")
    return RunMeta.from_dict(header["model_meta"] if is_checkpoint else header, file), is_checkpoint


def _build(file: Path, meta: RunMeta) -> torch.nn.Module:
    """The untrained network ``meta`` describes."""
    from cnnlab.errors import UnknownModelError
    from cnnlab.registry import create_model

    try:
        return create_model(
            meta.model,
            num_classes=meta.num_classes,
            in_channels=meta.in_channels,
            **meta.model_kwargs,
        )
    except UnknownModelError as err:
        raise CheckpointError(f"{file}: {err}") from None
    except (TypeError, ValueError) as err:  # settings the builder does not take
        raise CheckpointError(
            f"{file}: {meta.model} cannot be built with the recorded settings "
            f"({printable(str(err), 120)}): the file is damaged"
        ) from None
