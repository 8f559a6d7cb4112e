"""MAS on the two-branch retrieval model (importance: sensitivity of the embeddings' norm)."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any, Literal

from ccrbench.registry import register_strategy
from ccrbench.strategies.regularization import Params, WeightRegularizer, mas_importance
from ccrbench.training.template import RetrievalBatch


@register_strategy("mas")
class MAS(WeightRegularizer):
    """Memory Aware Synapses: Omega = mean |d ||f(x)||^2 / d theta| over both branches' outputs.

    Args:
        lam: penalty strength lambda (default chosen on the built-in benchmark's validation split (results/paper_table/selection.md)).
        branches: which branch is protected: "both", "image" (MAS-im) or "text" (MAS-txt).
        decay: importance accumulation factor across tasks (1 sums them, as in MAS).
        importance_batches: training mini-batches used for the importances (0: all).
    """

    def __init__(
        self,
        *,
        lam: float = 0.3,
        branches: Literal["both", "image", "text"] = "both",
        decay: float = 1.0,
        importance_batches: int = 0,
    ) -> None:
        super().__init__(lam=lam, branches=branches, decay=decay, importance_batches=importance_batches)

    def importance(self, strategy: Any, params: Params, batches: Iterable[RetrievalBatch]) -> Params:
        return mas_importance(strategy.model, params, batches)
