"""What every registered strategy is: an Avalanche plugin that may also plan the training schedule."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from avalanche.benchmarks.scenarios.dataset_scenario import DatasetExperience
from avalanche.core import SupervisedPlugin
from torch import Tensor


class StrategyPlugin(SupervisedPlugin):
    """Base class of the plugins in the strategy registry.

    Subclasses override only the Avalanche hooks they need (`before_backward` for a
    penalty, `after_training_exp` for importances, ...). The one extra hook is
    `training_experiences`, which decides what is trained at each stage; the default
    is one stage per task, in order. State kept in attributes is saved in checkpoints
    (override `state_dict`/`load_state_dict` to keep less).
    """

    def training_experiences(self, stream: Sequence[DatasetExperience]) -> list[DatasetExperience]:
        """The experiences to train on, one evaluation stage after each."""
        return list(stream)

    @staticmethod
    def add_loss_term(strategy: Any, name: str, value: Tensor) -> None:
        """Adds a penalty to the strategy's loss and records it, detached, in
        `strategy.loss_terms[name]` (logged as a training curve)."""
        strategy.loss = strategy.loss + value
        strategy.loss_terms[name] = value.detach()

    def state_dict(self) -> dict[str, Any]:
        """What a checkpoint keeps of this plugin: by default every attribute (tensors included)."""
        return dict(vars(self))

    def load_state_dict(self, state: dict[str, Any]) -> None:
        vars(self).update(state)
