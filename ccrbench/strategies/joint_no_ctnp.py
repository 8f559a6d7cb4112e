"""Joint training without cross-task negatives: every batch holds one task only."""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from typing import Any

import torch
from torch.utils.data import DataLoader, Sampler

from ccrbench.distributed import ShardedBatchSampler
from ccrbench.registry import register_strategy
from ccrbench.strategies.joint import Joint


class TaskBatchSampler(Sampler[list[int]]):
    """Batches of indices that share a task label, in a random interleaving of tasks.

    Args:
        task_labels: the task of every sample.
        batch_size: samples per batch (a task's last batch may be smaller).
    """

    def __init__(self, task_labels: Sequence[int], batch_size: int) -> None:
        self.groups = [
            torch.tensor([i for i, t in enumerate(task_labels) if t == task]) for task in sorted(set(task_labels))
        ]
        self.batch_size = batch_size

    def __iter__(self) -> Iterator[list[int]]:
        batches = [
            chunk.tolist()
            for group in self.groups
            for chunk in group[torch.randperm(len(group))].split(self.batch_size)
        ]
        for b in torch.randperm(len(batches)).tolist():
            yield batches[b]

    def __len__(self) -> int:
        return sum(-(-len(g) // self.batch_size) for g in self.groups)


@register_strategy("joint_no_ctnp")
class JointNoCTNP(Joint):
    """Joint training where every batch comes from a single task (tasks interleaved), so the
    model never sees a cross-task negative pair: the paper's "joint, CTNP: No"."""

    def before_training_exp(self, strategy: Any, **kwargs: Any) -> None:
        dataset = strategy.adapted_dataset
        strategy.dataloader = DataLoader(
            dataset,
            batch_sampler=ShardedBatchSampler(TaskBatchSampler(list(dataset.targets_task_labels), strategy.train_mb_size)),
            collate_fn=strategy.collate,
            num_workers=strategy.num_workers,
        )
