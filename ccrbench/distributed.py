"""Data parallelism over the processes torchrun starts: one run trained by N processes.

torchrun sets WORLD_SIZE, RANK and LOCAL_RANK in every process it starts. Without them
(or with WORLD_SIZE=1) every function here is the single-process identity and nothing is
communicated, so a plain run computes exactly what it computed before.

The processes train one model together; `train.batch_size` is the global batch, split
between them (`ShardedBatchSampler`). What they share:

- the global batch's negatives: `gather_with_grad` concatenates every process's
  embeddings (with gradients) before the loss, so every process computes the same loss
  of the whole batch (as open_clip's `gather_features`);
- gradients: `average_gradients` averages them, which turns the gradients of that
  common loss into exactly the gradient of the one-process loss (see its docstring);
- random state: `sync_rng` makes every process continue from the main process's torch
  RNG (replay memories and data loader seeds stay identical);
- small Python values: `from_main`.

A failure on one process ends the launch: torchrun stops the others.
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Iterator, Sequence
from datetime import timedelta
from typing import Any, TypeVar

import torch
import torch.distributed as dist
from torch import Tensor
from torch.utils.data import Sampler

T = TypeVar("T")

TIMEOUT = timedelta(hours=2)  # the other processes wait while the main one evaluates a stage (NCCL's default is 10 min)


def world_size() -> int:
    """The number of processes training the run (1 without torchrun)."""
    return int(os.environ.get("WORLD_SIZE", 1))


def rank() -> int:
    """This process's rank, 0 to world_size() - 1; rank 0 is the main process."""
    return int(os.environ.get("RANK", 0))


def is_main() -> bool:
    """Whether this process evaluates, logs and writes the run directory (rank 0)."""
    return rank() == 0


def device(name: str) -> torch.device:
    """The torch device of this process for config `device: name`: `name` itself, except that
    several processes on CUDA each take the GPU of their local rank (LOCAL_RANK)."""
    wanted = torch.device(name)
    if world_size() > 1 and wanted.type == "cuda":
        return torch.device("cuda", int(os.environ.get("LOCAL_RANK", 0)))
    return wanted


def init(name: str) -> None:
    """Joins the process group of a torchrun launch (once per process): gloo on the CPU, NCCL on
    CUDA with this process's GPU as the current device. Nothing without torchrun."""
    if world_size() == 1 or dist.is_initialized():
        return
    own = device(name)
    if own.type == "cuda":
        torch.cuda.set_device(own)
    dist.init_process_group("nccl" if own.type == "cuda" else "gloo", timeout=TIMEOUT)


def shard(items: Sequence[T]) -> Sequence[T]:
    """This process's part of `items`: contiguous, near-equal parts in rank order (the parts of
    all processes, concatenated, are `items`)."""
    n, w, r = len(items), world_size(), rank()
    return items[r * n // w : (r + 1) * n // w]


class ShardedBatchSampler(Sampler[list[int]]):
    """This process's part (`shard`) of every batch of `batches`, a batch sampler that draws the
    same batches on every process (the global batches).

    A global batch of fewer indices than processes is skipped (a process would get none), so
    `len` is an upper bound with several processes; with one, the batches are `batches`' own.

    Args:
        batches: the global batches, e.g. a `BatchSampler` over a sampler seeded alike everywhere.
    """

    def __init__(self, batches: Sampler[list[int]]) -> None:
        self.batches = batches

    def __iter__(self) -> Iterator[list[int]]:
        for batch in self.batches:
            if len(batch) >= world_size():
                yield list(shard(batch))

    def __len__(self) -> int:
        return len(self.batches)


class _GatherRows(torch.autograd.Function):
    """[n, ...] on every process -> [W * n, ...], rank by rank; backward: the sum over the
    processes of the gradients of this process's rows."""

    @staticmethod
    def forward(ctx: Any, x: Tensor) -> Tensor:
        parts = [torch.empty_like(x) for _ in range(world_size())]
        dist.all_gather(parts, x.contiguous())
        return torch.cat(parts)

    @staticmethod
    def backward(ctx: Any, grad: Tensor) -> Tensor:
        grad = grad.contiguous()
        dist.all_reduce(grad)  # gloo has no reduce-scatter; the gathered embeddings are small
        return grad.chunk(world_size())[rank()]


def gather_with_grad(*tensors: Tensor) -> tuple[Tensor, ...]:
    """Every process's `tensors` concatenated along dim 0 in rank order (with one process: `tensors`).

    The tensors of one call share their first dimension, which may differ between processes
    (rows are padded for the exchange and dropped after it). Gradients flow back to each
    process's own rows, summed over what every process computed for them (as the backward
    pass of open_clip's all_gather with gradients): when all W processes compute the same loss L
    of the gathered tensors, the gradient reaching a process's parameters is W times the part
    of dL/dtheta that passes through its rows (plus, for parameters used outside the
    gathered rows, such as a learnable temperature, dL/dtheta's own remaining part, the same
    on every process), so the mean over the processes (`average_gradients`) is dL/dtheta.
    """
    if world_size() == 1:
        return tensors
    count = torch.tensor([len(tensors[0])], device=tensors[0].device)
    counts = [torch.zeros_like(count) for _ in range(world_size())]
    dist.all_gather(counts, count)
    counts = [int(c) for c in counts]
    gathered = []
    for x in tensors:
        padded = torch.cat([x, x.new_zeros(max(counts) - len(x), *x.shape[1:])])  # [max count, ...]: all_gather needs equal shapes
        parts = _GatherRows.apply(padded).chunk(world_size())  # W x [max count, ...]
        gathered.append(torch.cat([part[:c] for part, c in zip(parts, counts)]))  # [sum of counts, ...]
    return tuple(gathered)


def average_gradients(grads: Iterable[Tensor | None]) -> None:
    """Replaces every tensor of `grads` by its mean over the processes, in place (None entries are
    skipped; every process must pass the same shapes in the same order)."""
    if world_size() == 1:
        return
    grads = [g for g in grads if g is not None]
    for work in [dist.all_reduce(g, async_op=True) for g in grads]:
        work.wait()
    for g in grads:
        g.div_(world_size())


def from_main(value: T) -> T:
    """The main process's `value` on every process (pickled: for small objects); a barrier."""
    if world_size() == 1:
        return value
    box = [value]
    dist.broadcast_object_list(box, src=0)
    return box[0]


def sync_rng() -> None:
    """Every process continues from the main process's torch RNG state: the generator that replay
    picks and data loader seeds draw from (the main process alone also draws from it when it
    evaluates a stage)."""
    if world_size() > 1:
        torch.set_rng_state(from_main(torch.get_rng_state()))
