"""Data-parallel training under ``torchrun``: process group, model wrapping, batch sharding.

``torchrun`` starts one process per rank with ``WORLD_SIZE``, ``RANK`` and ``LOCAL_RANK`` in the
environment; :func:`setup` notices them and joins the process group (gloo on CPU, NCCL on CUDA).
The contract the training loop relies on:

* ``--batch-size`` is the *global* batch. Every rank draws the same seeded permutation and
  augments the same global batch, then takes its contiguous slice of ``batch / world_size``
  images (the batch must divide evenly). DDP averages the gradients, so one step equals a
  single-process step on the global batch, except for batch-norm statistics, which each rank
  computes on its own slice (no SyncBatchNorm, as in the ResNet paper's multi-GPU setup).
* Each rank seeds its global torch RNG (dropout) with ``seed + rank``; checkpoints carry every
  rank's RNG state, gathered to rank 0, so ``--resume`` restores them all.
* Only rank 0 writes the run directory; metrics are all-reduced sums, so every rank logs the same
  numbers.

Without ``torchrun`` everything here is a no-op (world size 1).
"""

from __future__ import annotations

import os
from dataclasses import dataclass

import torch
import torch.distributed as dist
from torch import nn

from cnnlab.errors import ConfigError


@dataclass(frozen=True)
class DistInfo:
    """Where this process stands in the job."""

    rank: int = 0
    world_size: int = 1
    local_rank: int = 0

    @property
    def enabled(self) -> bool:
        return self.world_size > 1

    @property
    def is_main(self) -> bool:
        return self.rank == 0


def from_env() -> DistInfo:
    """Read ``torchrun``'s environment (world size 1 when not launched by it)."""
    try:
        world = int(os.environ.get("WORLD_SIZE", "1"))
        rank = int(os.environ.get("RANK", "0"))
        local = int(os.environ.get("LOCAL_RANK", "0"))
    except ValueError:
        raise ConfigError(
            "WORLD_SIZE/RANK/LOCAL_RANK must be integers: launch with torchrun"
        ) from None
    return DistInfo(rank, world, local)


def setup(device: torch.device) -> DistInfo:
    """Join the process group when launched by ``torchrun``; pin the CUDA device per rank."""
    info = from_env()
    if not info.enabled:
        return info
    if device.type == "cuda":
        torch.cuda.set_device(info.local_rank)
    if not dist.is_initialized():
        dist.init_process_group(backend="nccl" if device.type == "cuda" else "gloo")
    return info


def device_for(device: torch.device, info: DistInfo) -> torch.device:
    """This rank's device: ``cuda:LOCAL_RANK`` under DDP on GPUs."""
    if info.enabled and device.type == "cuda":
        return torch.device("cuda", info.local_rank)
    return device


def wrap(model: nn.Module, info: DistInfo, device: torch.device) -> nn.Module:
    """Wrap in ``DistributedDataParallel`` under DDP; otherwise return the model unchanged."""
    if not info.enabled:
        return model
    ids = [device.index] if device.type == "cuda" else None
    return nn.parallel.DistributedDataParallel(model, device_ids=ids)


def shard(batch: torch.Tensor, info: DistInfo) -> torch.Tensor:
    """This rank's contiguous slice of a global batch (the batch divides evenly)."""
    if not info.enabled:
        return batch
    per = len(batch) // info.world_size
    return batch[info.rank * per : (info.rank + 1) * per]


def all_reduce_sum(tensor: torch.Tensor, info: DistInfo, device: torch.device) -> torch.Tensor:
    """Sum a CPU tensor over ranks in place (through ``device`` for NCCL) and return it."""
    if info.enabled:
        t = tensor.to(device)
        dist.all_reduce(t)
        tensor.copy_(t.cpu())
    return tensor


def gather_uint8(tensor: torch.Tensor, info: DistInfo, device: torch.device) -> list[torch.Tensor]:
    """Every rank's copy of a same-shaped uint8 tensor (used for RNG states; no pickle)."""
    if not info.enabled:
        return [tensor]
    t = tensor.to(device)
    out = [torch.empty_like(t) for _ in range(info.world_size)]
    dist.all_gather(out, t)
    return [o.cpu() for o in out]


def broadcast_buffers(model: nn.Module, info: DistInfo) -> None:
    """Give every rank rank 0's buffers (batch-norm running statistics) before evaluation."""
    if info.enabled:
        for buffer in model.buffers():
            dist.broadcast(buffer, src=0)


def broadcast_int(value: int, info: DistInfo, device: torch.device) -> int:
    """Rank 0's ``value`` on every rank."""
    if not info.enabled:
        return value
    t = torch.tensor([value], dtype=torch.int64, device=device)
    dist.broadcast(t, src=0)
    return int(t.item())


def barrier(info: DistInfo) -> None:
    if info.enabled:
        dist.barrier()


def cleanup(info: DistInfo) -> None:
    if info.enabled and dist.is_initialized():
        dist.destroy_process_group()
