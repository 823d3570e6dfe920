"""Data-parallel training over ``torchrun`` processes, with negatives drawn from the global batch.

Each process embeds its slice of the global batch. :func:`gather_with_grad` collects every slice's embeddings
(differentiably), so each process computes the *whole* batch's loss, the same number everywhere; the gather's
backward sums the W identical gradients, and :func:`average_gradients` divides by W before each optimizer
step. The parameters therefore receive exactly the gradient one process computing the whole batch would get
(``tests/test_distributed.py`` checks this with 2 gloo processes). This is DDP's scheme (one process per
GPU, gradients all-reduced before the step) written out by hand, because the paper's alternating text and
image/audio updates run different parts of the model and ``DistributedDataParallel`` would need
``find_unused_parameters`` on every step.
"""

from __future__ import annotations

import os
from dataclasses import dataclass

import torch
import torch.distributed as dist

from nlsup_kit.errors import NlsupError


@dataclass(frozen=True)
class Workers:
    rank: int = 0
    world_size: int = 1
    local_rank: int = 0

    @property
    def is_main(self) -> bool:
        return self.rank == 0

    def local_slice(self, global_size: int, setting: str) -> slice:
        """This process's rows of a global batch of ``global_size``."""
        if global_size % self.world_size:
            raise NlsupError(f"setting {setting}={global_size} does not split over {self.world_size} processes; "
                             f"use a multiple of {self.world_size}")
        size = global_size // self.world_size
        return slice(self.rank * size, (self.rank + 1) * size)


def rank_from_env() -> int:
    """This process's rank as torchrun announces it (0 without torchrun), before any process group exists."""
    return int(os.environ.get("RANK", "0"))


def init_from_env(device_type: str) -> Workers:
    """Join the process group ``torchrun`` describes (WORLD_SIZE, RANK, LOCAL_RANK); one process otherwise."""
    world_size = int(os.environ.get("WORLD_SIZE", "1"))
    if world_size == 1:
        return Workers()
    if not dist.is_initialized():
        dist.init_process_group("nccl" if device_type == "cuda" else "gloo")
    return Workers(dist.get_rank(), dist.get_world_size(), int(os.environ.get("LOCAL_RANK", "0")))


def active() -> bool:
    return dist.is_available() and dist.is_initialized() and dist.get_world_size() > 1


class _GatherWithGrad(torch.autograd.Function):
    """all_gather forward; backward sums every process's gradient for this process's rows (the gather's
    adjoint). all_reduce + slice instead of reduce_scatter: gloo has no reduce_scatter, and embeddings are small."""

    @staticmethod
    def forward(ctx, tensor: torch.Tensor) -> torch.Tensor:
        ctx.rows = slice(dist.get_rank() * len(tensor), (dist.get_rank() + 1) * len(tensor))
        out = tensor.new_empty((dist.get_world_size() * len(tensor), *tensor.shape[1:]))
        dist.all_gather_into_tensor(out, tensor.contiguous())
        return out

    @staticmethod
    def backward(ctx, grad: torch.Tensor) -> torch.Tensor:
        grad = grad.contiguous()
        dist.all_reduce(grad)
        return grad[ctx.rows]


def gather_with_grad(tensor: torch.Tensor) -> torch.Tensor:
    """Every process's ``tensor`` concatenated in rank order; gradients flow back to each owner."""
    return _GatherWithGrad.apply(tensor) if active() else tensor


def gather(tensor: torch.Tensor) -> torch.Tensor:
    """Like :func:`gather_with_grad`, for tensors without gradients (labels)."""
    if not active():
        return tensor
    out = tensor.new_empty((dist.get_world_size() * len(tensor), *tensor.shape[1:]))
    dist.all_gather_into_tensor(out, tensor.contiguous())
    return out


def gather_objects(obj: object) -> list:
    """Every process's ``obj`` (picklable) in rank order; ``[obj]`` in one process."""
    if not active():
        return [obj]
    out = [None] * dist.get_world_size()
    dist.all_gather_object(out, obj)
    return out


def average_gradients(parameters: list[torch.nn.Parameter]) -> None:
    """All-reduce the gradients as one flat buffer (one collective per update), then divide by W."""
    if not active():
        return
    grads = [p.grad for p in parameters if p.grad is not None]
    flat = torch.cat([g.reshape(-1) for g in grads])
    dist.all_reduce(flat)
    flat /= dist.get_world_size()
    offset = 0
    for g in grads:
        g.copy_(flat[offset:offset + g.numel()].view_as(g))
        offset += g.numel()


def broadcast_parameters(parameters: list[torch.nn.Parameter]) -> None:
    """Start every process from rank 0's weights (they are seeded alike; this makes it certain)."""
    if active():
        for p in parameters:
            dist.broadcast(p.data, src=0)


def barrier() -> None:
    if active():
        dist.barrier()


_host_group = None  # gloo beside NCCL: a per-step flag must not wait on the GPU's queue of work


def max_over_processes(value: int) -> int:
    """The largest ``value`` over all processes (``value`` itself in one process). Through gloo on the host,
    so calling it every step (the stop request) does not synchronize a CUDA run's stream."""
    global _host_group
    if not active():
        return value
    if _host_group is None:
        _host_group = dist.group.WORLD if dist.get_backend() == "gloo" else dist.new_group(backend="gloo")
    flag = torch.tensor([value], dtype=torch.int64)
    dist.all_reduce(flag, op=dist.ReduceOp.MAX, group=_host_group)
    return int(flag.item())
