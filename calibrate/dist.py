"""The only module that touches torch.distributed (style.md rule 14).

torchrun sets RANK, LOCAL_RANK and WORLD_SIZE; a plain `python -m calibrate.probe` sets none and runs
as a single process. Backend: NCCL on CUDA, gloo on CPU.

Gradients are averaged by DistributedDataParallel, so the all-reduce of each bucket overlaps the rest
of the backward pass (Li et al. 2020, "PyTorch Distributed", §3.2.3). The McCandlish two-batch
estimator (batch-laws.md §2) also needs each rank's OWN gradient norm, which DDP overwrites: a
communication hook (`NormTap`) adds up |bucket|^2 of the local gradients just before it launches the
bucket's all-reduce, the same kernel-side work as one extra norm, with no host sync and no flat copy.
The ranks' own norms are averaged only on log steps (calibrate/train.py log_values), not every step.

CALIBRATE_FORCE_DDP=1 (TEST-ONLY; never set by the planner) wraps the model in DDP even in a single
process, joining a one-rank group (torchrun's, or a FileStore one of its own), so that the DDP code path
(compiled DDP, the comm hook, no_sync, bucket-view gradients) runs on one GPU: NCCL refuses two ranks
on one device. B_simple is then undefined (one batch size) and reported as None.
"""

from __future__ import annotations

import os
import tempfile
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


FORCE_DDP_ENV = "CALIBRATE_FORCE_DDP"  # test-only: see the module docstring
_store_path: str | None = None  # the FileStore of a forced-DDP group without torchrun


def force_ddp() -> bool:
    """Test-only switch: DDP even at world size 1 (CALIBRATE_FORCE_DDP=1)."""
    return os.environ.get(FORCE_DDP_ENV) == "1"


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
    if (world_size > 1 or force_ddp()) and not dist.is_initialized():
        backend = "nccl" if device_type == "cuda" else "gloo"
        kwargs = {"device_id": device} if device_type == "cuda" else {}
        if world_size == 1 and "MASTER_ADDR" not in os.environ:  # forced DDP without torchrun: a private store
            global _store_path
            fd, _store_path = tempfile.mkstemp(prefix="calibrate-store-")
            os.close(fd)
            kwargs |= {"init_method": f"file://{_store_path}", "rank": 0, "world_size": 1}
        dist.init_process_group(backend=backend, **kwargs)
    return DistInfo(rank, local_rank, world_size, device)


def cleanup() -> None:
    global _store_path
    if dist.is_initialized():
        dist.destroy_process_group()
    if _store_path is not None:
        if os.path.exists(_store_path):
            os.unlink(_store_path)
        _store_path = None


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

    `take()` returns this rank's value (no collective: the trainer averages its GNS accumulators over
    ranks on log steps only) and resets it for the next step.
    """

    def __init__(self, device: torch.device):
        self.local_sq = torch.zeros((), dtype=torch.float32, device=device)

    def take(self) -> torch.Tensor:
        out = self.local_sq.clone()
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
