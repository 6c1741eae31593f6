"""The only module that touches torch.distributed (style.md rule 14).

torchrun sets RANK, LOCAL_RANK and WORLD_SIZE; a plain `python -m calibrate.probe` sets none and runs
as a single process. Backend: NCCL on CUDA, gloo on CPU. Gradients are all-reduced explicitly (no DDP
wrapper) so that the trainer can read the local gradient norm before the reduction, which is what the
McCandlish two-batch estimator needs (batch-laws.md §2); probes are small, so losing DDP's overlap of
communication with the backward pass costs little.
"""

from __future__ import annotations

import os
from dataclasses import dataclass

import torch
import torch.distributed as dist


@dataclass(frozen=True)
class DistInfo:
    rank: int
    local_rank: int
    world_size: int
    device: torch.device

    @property
    def is_rank0(self) -> bool:
        return self.rank == 0


def init(device_type: str) -> DistInfo:
    """Join the torchrun group if there is one; pick this rank's device."""
    rank = int(os.environ.get("RANK", "0"))
    local_rank = int(os.environ.get("LOCAL_RANK", "0"))
    world_size = int(os.environ.get("WORLD_SIZE", "1"))
    if device_type == "cuda":
        device = torch.device("cuda", local_rank)
        torch.cuda.set_device(device)
    else:
        device = torch.device("cpu")
    if world_size > 1 and not dist.is_initialized():
        backend = "nccl" if device_type == "cuda" else "gloo"
        kwargs = {"device_id": device} if device_type == "cuda" else {}
        dist.init_process_group(backend=backend, **kwargs)
    return DistInfo(rank, local_rank, world_size, device)


def cleanup() -> None:
    if dist.is_initialized():
        dist.destroy_process_group()


def is_rank0() -> bool:
    return not dist.is_initialized() or dist.get_rank() == 0


def print0(*args, **kwargs) -> None:
    if is_rank0():
        print(*args, **kwargs, flush=True)


def world_size() -> int:
    return dist.get_world_size() if dist.is_initialized() else 1


def all_reduce_mean(t: torch.Tensor) -> torch.Tensor:
    """In-place mean over ranks; a no-op in a single process."""
    if dist.is_initialized():
        dist.all_reduce(t, op=dist.ReduceOp.SUM)
        t.div_(dist.get_world_size())
    return t


def all_reduce_max(t: torch.Tensor) -> torch.Tensor:
    if dist.is_initialized():
        dist.all_reduce(t, op=dist.ReduceOp.MAX)
    return t


def all_reduce_grads(params) -> tuple[torch.Tensor, torch.Tensor]:
    """Average gradients over ranks; return (|g_local|^2 averaged over ranks, |g_global|^2), fp32.

    |g_local|^2 is the squared norm of each rank's own batch gradient (B_small = per-rank batch),
    |g_global|^2 that of the all-reduced mean (B_big = global batch): McCandlish App. A.1 under DDP.
    """
    grads = [p.grad for p in params if p.grad is not None]
    flat = torch.cat([g.reshape(-1).float() for g in grads])
    local_sq = flat.pow(2).sum()
    if not dist.is_initialized():
        return local_sq, local_sq.clone()
    local_sq = all_reduce_mean(local_sq)
    all_reduce_mean(flat)
    offset = 0
    for g in grads:  # copy the reduced values back into .grad
        n = g.numel()
        g.copy_(flat[offset : offset + n].view_as(g))
        offset += n
    return local_sq, flat.pow(2).sum()


def barrier() -> None:
    if dist.is_initialized():
        dist.barrier()
