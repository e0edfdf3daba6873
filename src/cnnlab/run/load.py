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
from cnnlab.run.checkpoints import resolve_model_file
from cnnlab.run.tensorfile import CHECKPOINT_FORMAT, MODEL_FORMAT, read_header, read_tensors
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
