"""The only module that touches torch.distributed (style.md rule 14).

torchrun sets RANK, LOCAL_RANK and WORLD_SIZE; a plain `python -m calibrate.probe` sets none and runs
as a single process. Backend: NCCL on CUDA, gloo on CPU.

Gradients are averaged by DistributedDataParallel, so the all-reduce of each bucket overlaps the rest
of the backward pass (Li et al. 2020, "PyTorch Distributed", §3.2.3). The McCandlish two-batch
estimator (batch-laws.md §2) also needs each rank's OWN gradient norm, which DDP overwrites: a
communication hook (`NormTap`) adds up |bucket|^2 of the local gradients just before it launches the
bucket's all-reduce, the same kernel-side work as one extra norm, with no host sync and no flat copy.
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


class NormTap:
    """State of `norm_tap_hook`: |g_local|^2 of this rank's gradients over one backward pass.

    `take()` returns it averaged over ranks (one scalar all-reduce) and resets it for the next step.
    """

    def __init__(self, device: torch.device):
        self.local_sq = torch.zeros((), dtype=torch.float32, device=device)

    def take(self) -> torch.Tensor:
        out = all_reduce_mean(self.local_sq.clone())
        self.local_sq.zero_()
        return out


def norm_tap_hook(tap: NormTap, bucket):  # no return annotation: DDP checks it against a live type
    """DDP communication hook: add |bucket|^2 to the tap, then DDP's own averaging all-reduce.

    Same arithmetic as torch.distributed.algorithms.ddp_comm_hooks.default_hooks.allreduce_hook.
    """
    buf = bucket.buffer()
    tap.local_sq += torch.linalg.vector_norm(buf, dtype=torch.float32).square()
    buf.div_(dist.get_world_size())
    return dist.all_reduce(buf, async_op=True).get_future().then(lambda fut: fut.value()[0])


def wrap_ddp(model: torch.nn.Module, info: DistInfo) -> tuple[torch.nn.Module, NormTap]:
    """DistributedDataParallel around `model` (weights broadcast from rank 0), with a NormTap hook."""
    from torch.nn.parallel import DistributedDataParallel

    ids = [info.local_rank] if info.device.type == "cuda" else None
    ddp = DistributedDataParallel(model, device_ids=ids, gradient_as_bucket_view=True)
    tap = NormTap(info.device)
    ddp.register_comm_hook(tap, norm_tap_hook)
    return ddp, tap


def barrier() -> None:
    if dist.is_initialized():
        dist.barrier()
