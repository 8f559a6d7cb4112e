"""WiSE-FT, continual (Wortsman et al., CVPR 2022, "Robust fine-tuning of zero-shot models";
used after every task as in ZSCL's continual baseline).

After each task the weights become (1 - alpha) * start + alpha * trained, where `start` is
the model the run started from (the pretrained towers or `model.init_from`), fixed for the
whole run. The interpolated model is the one evaluated AND the start of the next task: one
model, as the continual WiSE-FT baseline of ZSCL trains it (the trained endpoint is not kept
aside). Every task is thus pulled back to the start: after any task the start's share of
the weights is 1 - alpha, the rest is what the last task's training made of the previous
interpolation.
"""

from __future__ import annotations

from typing import Annotated, Any

from annotated_types import Interval

from ccrbench.registry import register_strategy
from ccrbench.strategies.base import StrategyPlugin
from ccrbench.strategies.weight_averaging import Weights, assign, floating_weights, interpolate


@register_strategy("wise_ft")
class WiseFT(StrategyPlugin):
    """Weight-space ensembling with the starting model after every task (one copy of the
    start's weights in memory and in checkpoints).

    Args:
        alpha: weight of the trained model in the interpolation, in [0, 1] (0: the start
            is kept, 1: plain fine-tuning); default 0.5, WiSE-FT's middle point, not tuned
            (choose it on the validation split, see `ccrbench tune`).
    """

    def __init__(self, *, alpha: Annotated[float, Interval(ge=0, le=1)] = 0.5) -> None:
        super().__init__()
        self.alpha = alpha
        self.start: Weights | None = None

    def before_training_exp(self, strategy: Any, **kwargs: Any) -> None:
        if self.start is None:
            self.start = floating_weights(strategy.model)

    def after_training_exp(self, strategy: Any, **kwargs: Any) -> None:
        assign(strategy.model, interpolate(self.start, floating_weights(strategy.model), self.alpha))

    def state_dict(self) -> dict[str, Any]:
        return {"start": self.start}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.start = state["start"]
