"""The training loss as an Avalanche evaluation-plugin metric (curves for every Avalanche logger)."""

from __future__ import annotations

from typing import Any

from avalanche.evaluation.metric_definitions import PluginMetric
from avalanche.evaluation.metric_results import MetricValue
from avalanche.evaluation.metric_utils import get_metric_name


class TrainingLoss(PluginMetric[dict]):
    """Each epoch's mean training loss and mean penalty terms, as MetricValues at x_plot = training
    iterations so far: `Loss_Epoch/train_phase/train_stream/Task000` and, for every term a strategy
    adds (`strategy.loss_terms`, e.g. "EWC penalty"), `Loss_Epoch_EWC penalty/...`.

    Sums stay on the strategy's device during the epoch: one device sync per epoch, not per iteration.

    Args:
        prefix: put before every name (e.g. "i2t_model_" for one model of a decoupled pair).
    """

    def __init__(self, *, prefix: str = "") -> None:
        super().__init__()
        self.prefix = prefix
        self._sums: dict[str, Any] = {}
        self._iterations = 0

    def reset(self) -> None:
        self._sums, self._iterations = {}, 0

    def result(self) -> dict[str, float]:
        return {name: float(total) / self._iterations for name, total in self._sums.items()} if self._iterations else {}

    def before_training_epoch(self, strategy: Any) -> None:
        self.reset()

    def after_training_iteration(self, strategy: Any) -> None:
        terms = {f"{self.prefix}Loss_Epoch": strategy.loss.detach(), **{f"{self.prefix}Loss_Epoch_{k}": v for k, v in getattr(strategy, "loss_terms", {}).items()}}
        for name, value in terms.items():
            self._sums[name] = self._sums.get(name, 0.0) + value
        self._iterations += 1

    def after_training_epoch(self, strategy: Any) -> list[MetricValue]:
        step = strategy.clock.train_iterations
        return [MetricValue(self, get_metric_name(name, strategy), value, step) for name, value in self.result().items()]

    def __str__(self) -> str:
        return "Loss_Epoch"
