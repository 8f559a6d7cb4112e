"""Joint training: the upper bound that sees all tasks at once."""

from __future__ import annotations

from collections.abc import Sequence

from avalanche.benchmarks.scenarios.dataset_scenario import DatasetExperience, benchmark_from_datasets
from avalanche.benchmarks.scenarios.task_aware import with_task_labels
from avalanche.benchmarks.utils import concat_datasets

from ccrbench.registry import register_strategy
from ccrbench.strategies.base import StrategyPlugin


def merge_experiences(stream: Sequence[DatasetExperience]) -> DatasetExperience:
    """One experience holding every experience's data (task labels kept per sample)."""
    merged = concat_datasets([exp.dataset for exp in stream])
    return with_task_labels(benchmark_from_datasets(train=[merged])).train_stream[0]


@register_strategy("joint")
class Joint(StrategyPlugin):
    """Joint training on all tasks shuffled together: batches mix tasks, so the model sees
    cross-task negative pairs (CTNPs). One training stage, evaluated on every task."""

    def training_experiences(self, stream: Sequence[DatasetExperience]) -> list[DatasetExperience]:
        return [merge_experiences(stream)]
