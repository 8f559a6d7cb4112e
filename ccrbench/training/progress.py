"""Progress bars for training epochs and indexing, as an Avalanche plugin."""

from __future__ import annotations

from typing import Any

from avalanche.core import SupervisedPlugin
from tqdm.auto import tqdm


class ProgressBar(SupervisedPlugin):
    """One tqdm bar per training epoch (with the running loss) and per indexed task.

    Args:
        enabled: show bars (False keeps runs silent, e.g. in tests).
    """

    def __init__(self, *, enabled: bool = True) -> None:
        super().__init__()
        self.enabled = enabled
        self.bar: tqdm | None = None

    def _open(self, strategy: Any, desc: str) -> None:
        self.bar = tqdm(total=len(strategy.dataloader), desc=desc, leave=False, disable=not self.enabled, dynamic_ncols=True)

    def _close(self) -> None:
        if self.bar is not None:
            self.bar.close()
            self.bar = None

    def before_training_epoch(self, strategy: Any, **kwargs: Any) -> None:
        exp, epoch = strategy.clock.train_exp_counter, strategy.clock.train_exp_epochs
        self._open(strategy, f"train exp {exp} epoch {epoch + 1}/{strategy.train_epochs}")

    def after_training_iteration(self, strategy: Any, **kwargs: Any) -> None:
        self.bar.update()
        if strategy.clock.train_epoch_iterations % 10 == 0:
            self.bar.set_postfix(loss=f"{strategy.loss.item():.4f}")

    def after_training_epoch(self, strategy: Any, **kwargs: Any) -> None:
        self._close()

    def before_eval_exp(self, strategy: Any, **kwargs: Any) -> None:
        self._open(strategy, f"index task {strategy.experience.current_experience}")

    def after_eval_iteration(self, strategy: Any, **kwargs: Any) -> None:
        self.bar.update()

    def after_eval_exp(self, strategy: Any, **kwargs: Any) -> None:
        self._close()
