"""Experience replay: a fixed-size memory of old image-caption pairs mixed into every batch.

The memory holds the training items themselves, `(image, caption, image_id, task)`, so it
is saved in checkpoints as it is (indices would not survive a new process); a checkpoint
grows by `memory_size` encoder inputs (500 float 3x224x224 images: about 300 MB). Replayed
pairs sit in the same batch as the new task's pairs, so the retrieval loss also sees
cross-task negatives. All sampling draws from torch's global generator: a run is
deterministic given its seed. With several processes, every process holds the same memory
(filled from the whole experience, never from its part of the batches; the template makes
the processes' generators equal before the update) and the replayed pairs of a batch are
split between them like its new pairs.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Annotated, Any, Literal

import torch
from annotated_types import Ge
from torch.utils.data import DataLoader

from ccrbench.distributed import shard
from ccrbench.registry import register_strategy
from ccrbench.strategies.base import StrategyPlugin
from ccrbench.training.template import RetrievalBatch

Item = tuple[Any, ...]  # (image, caption, image_id, task)


def reservoir_slots(seen: int, incoming: int, capacity: int) -> dict[int, int]:
    """Algorithm R: the memory slot each kept new item ends in, {slot: index of the new item}.

    After any number of calls every item offered so far is in memory with probability
    capacity / (items offered). `seen`: items offered before these `incoming` ones.
    """
    ranks = torch.arange(seen + 1, seen + incoming + 1, dtype=torch.float64)
    draws = (torch.rand(incoming, dtype=torch.float64) * ranks).long().tolist()
    slots: dict[int, int] = {}
    for k, draw in enumerate(draws):
        if seen + k < capacity:
            slots[seen + k] = k
        elif draw < capacity:
            slots[draw] = k
    return slots


def reservoir_update(memory: Sequence[Item], seen: int, dataset: Sequence[Item], capacity: int) -> list[Item]:
    """The memory after offering every item of `dataset` (only the kept items are read)."""
    out = list(memory)
    for slot, k in sorted(reservoir_slots(seen, len(dataset), capacity).items()):
        if slot < len(out):
            out[slot] = dataset[k]
        else:
            out.append(dataset[k])
    return out


def even_split(capacity: int, tasks: Sequence[int]) -> dict[int, int]:
    """capacity split over the tasks as evenly as possible (the earliest tasks get the remainder)."""
    share, extra = divmod(capacity, len(tasks))
    return {t: share + (i < extra) for i, t in enumerate(sorted(tasks))}


def task_balanced_update(memory: Sequence[Item], dataset: Sequence[Item], task: int, capacity: int) -> list[Item]:
    """Every task seen keeps an equal share: old tasks keep the first items of their share,
    the new task (which replaces any old items of the same task) gets a uniform sample."""
    old = [m for m in memory if m[-1] != task]
    quota = even_split(capacity, sorted({m[-1] for m in old} | {task}))
    kept: list[Item] = []
    for t in sorted(quota.keys() - {task}):
        kept += [m for m in old if m[-1] == t][: quota[t]]
    picks = torch.randperm(len(dataset))[: quota[task]].tolist()
    return kept + [dataset[i] for i in picks]


class ReplayCollate:
    """Collates a batch of new items plus `per_batch` memory items drawn without replacement
    (with several processes, this process's part of them).

    Args:
        collate: the template's collate function.
        memory: the items to replay.
        per_batch: memory items added to each batch.
    """

    def __init__(self, collate: Callable[[Sequence[Item]], RetrievalBatch], memory: Sequence[Item], per_batch: int) -> None:
        self.collate = collate
        self.memory = memory
        self.per_batch = per_batch

    def __call__(self, items: Sequence[Item]) -> RetrievalBatch:
        picks = shard(torch.randperm(len(self.memory))[: self.per_batch].tolist())  # the same draw on every process
        return self.collate([*items, *(self.memory[i] for i in picks)])


@register_strategy("replay")
class Replay(StrategyPlugin):
    """Experience replay with a memory of `memory_size` image-caption pairs of previous tasks.

    Args:
        memory_size: image-caption pairs kept in memory (over all tasks; default chosen on the built-in benchmark's validation split (results/paper_table/selection.md)).
        policy: how the memory is filled after each task: "reservoir" (every pair seen so far
            equally likely to be kept) or "task_balanced" (an equal share per task).
        replay_per_batch: memory pairs added to every training batch of a later task (default likewise).
    """

    def __init__(
        self,
        *,
        memory_size: Annotated[int, Ge(0)] = 1000,
        policy: Literal["reservoir", "task_balanced"] = "reservoir",
        replay_per_batch: Annotated[int, Ge(0)] = 64,
    ) -> None:
        super().__init__()
        self.memory_size = memory_size
        self.policy = policy
        self.replay_per_batch = replay_per_batch
        self.memory: list[Item] = []
        self.seen = 0  # pairs offered to the reservoir so far

    def before_training_exp(self, strategy: Any, **kwargs: Any) -> None:
        if not self.memory or self.replay_per_batch <= 0:
            return
        loader = strategy.dataloader  # keep its batches (shuffling, size, drop_last); add replayed pairs to each
        strategy.dataloader = DataLoader(
            loader.dataset,
            batch_sampler=loader.batch_sampler,
            collate_fn=ReplayCollate(loader.collate_fn, self.memory, self.replay_per_batch),
            num_workers=loader.num_workers,
        )

    def after_training_exp(self, strategy: Any, **kwargs: Any) -> None:
        dataset = strategy.experience.dataset
        if self.policy == "reservoir":
            self.memory = reservoir_update(self.memory, self.seen, dataset, self.memory_size)
        else:
            self.memory = task_balanced_update(self.memory, dataset, strategy.experience.task_label, self.memory_size)
        self.seen += len(dataset)
