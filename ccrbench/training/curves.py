"""Training curves for TensorBoard, as an Avalanche plugin."""

from __future__ import annotations

from typing import Any

from avalanche.core import SupervisedPlugin
from torch.utils.tensorboard import SummaryWriter


class TrainingCurves(SupervisedPlugin):
    """Logs the training loss, each penalty term (`strategy.loss_terms`) and the learning
    rate every `every` iterations, at step = training iterations so far.

    Args:
        writer: where to log.
        prefix: tag prefix after `train/` (e.g. "i2t model/" for one of a decoupled pair).
        every: log every this many iterations (the first one included).
    """

    def __init__(self, writer: SummaryWriter, *, prefix: str = "", every: int = 10) -> None:
        super().__init__()
        self.writer = writer
        self.prefix = f"train/{prefix}"
        self.every = every

    def before_training_iteration(self, strategy: Any, **kwargs: Any) -> None:
        strategy.loss_terms.clear()

    def after_training_iteration(self, strategy: Any, **kwargs: Any) -> None:
        step = strategy.clock.train_iterations
        if step % self.every:
            return
        self.writer.add_scalar(f"{self.prefix}loss/total", strategy.loss.item(), step)
        for name, value in strategy.loss_terms.items():
            self.writer.add_scalar(f"{self.prefix}loss/{name}", float(value), step)
        self.writer.add_scalar(f"{self.prefix}lr", strategy.optimizer.param_groups[0]["lr"], step)
