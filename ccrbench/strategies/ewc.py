"""EWC on the two-branch retrieval model (importance: Fisher of the retrieval loss)."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any, Literal

from ccrbench.registry import register_strategy
from ccrbench.strategies.regularization import Params, WeightRegularizer, ewc_importance
from ccrbench.training.template import RetrievalBatch


@register_strategy("ewc")
class EWC(WeightRegularizer):
    """Elastic Weight Consolidation: Omega = mean squared gradient of the retrieval loss.

    Args:
        lam: penalty strength lambda (default chosen on the built-in benchmark's validation split (results/paper_table/selection.md)).
        branches: which branch is protected: "both", "image" (EWC-im) or "text" (EWC-txt).
        decay: importance accumulation factor across tasks (1 sums them; <1 is online EWC).
        importance_batches: training mini-batches used for the Fisher (0: all).
    """

    def __init__(
        self,
        *,
        lam: float = 1000.0,
        branches: Literal["both", "image", "text"] = "both",
        decay: float = 1.0,
        importance_batches: int = 0,
    ) -> None:
        super().__init__(lam=lam, branches=branches, decay=decay, importance_batches=importance_batches)

    def importance(self, strategy: Any, params: Params, batches: Iterable[RetrievalBatch]) -> Params:
        return ewc_importance(strategy.model, strategy._criterion, params, batches)
