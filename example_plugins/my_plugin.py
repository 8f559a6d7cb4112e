"""An example strategy plugin outside the package: `strategy: example_plugins.my_plugin:L2Anchor`."""

from __future__ import annotations

from typing import Annotated, Any, Literal

import torch
from annotated_types import Ge
from torch import Tensor

from ccrbench.strategies import StrategyPlugin


def l2_distance(params: dict[str, Tensor], anchors: dict[str, Tensor]) -> Tensor:
    """sum_i ||theta_i - theta*_i||^2 over the parameters named in `anchors`."""
    return sum(((params[n] - a).pow(2).sum() for n, a in anchors.items()), torch.zeros(()))


class L2Anchor(StrategyPlugin):
    """Pulls the weights towards those learned on the previous task (the "L2" baseline).

    Args:
        lam: penalty strength.
        branches: the branch held back: "both", "image" or "text".
    """

    def __init__(self, *, lam: Annotated[float, Ge(0)] = 0.01, branches: Literal["both", "image", "text"] = "both") -> None:
        super().__init__()
        self.lam = lam
        self.branches = branches
        self.anchors: dict[str, Tensor] = {}  # saved in checkpoints like every attribute

    def before_backward(self, strategy: Any, **kwargs: Any) -> None:
        if self.anchors:
            params = strategy.model.branch_parameters(self.branches)
            self.add_loss_term(strategy, "L2 anchor", self.lam * l2_distance(params, self.anchors))  # logged as train/loss/L2 anchor

    def after_training_exp(self, strategy: Any, **kwargs: Any) -> None:
        params = strategy.model.branch_parameters(self.branches)
        self.anchors = {n: p.detach().clone() for n, p in params.items()}
