"""What every registered strategy is: an Avalanche plugin that may also plan the training schedule."""

from __future__ import annotations

from collections.abc import Sequence

from avalanche.benchmarks.scenarios.dataset_scenario import DatasetExperience
from avalanche.core import SupervisedPlugin


class StrategyPlugin(SupervisedPlugin):
    """Base class of the plugins in the strategy registry.

    Subclasses override only the Avalanche hooks they need (`before_backward` for a
    penalty, `after_training_exp` for importances, ...). The one extra hook is
    `training_experiences`, which decides what is trained at each stage; the default
    is one stage per task, in order.
    """

    def training_experiences(self, stream: Sequence[DatasetExperience]) -> list[DatasetExperience]:
        """The experiences to train on, one evaluation stage after each."""
        return list(stream)
