"""MAS on the two-branch retrieval model (importance: sensitivity of the embeddings' norm)."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Annotated, Any

from annotated_types import Ge

from ccrbench.registry import register_strategy
from ccrbench.strategies.regularization import Params, WeightRegularizer, mas_importance
from ccrbench.training.template import RetrievalBatch


@register_strategy("mas")
@dataclass(kw_only=True, eq=False)
class MAS(WeightRegularizer):
    """Memory Aware Synapses: Omega = mean |d ||f(x)||^2 / d theta| over both branches' outputs.

    Args:
        lam: penalty strength lambda (default chosen on the built-in benchmark's validation split (results/paper_table/selection.md)).
        branches: which branch is protected: "both", "image" (MAS-im) or "text" (MAS-txt).
        decay: importance accumulation factor across tasks (1 sums them, as in MAS).
        importance_batches: training mini-batches used for the importances (0: all).
    """

    lam: Annotated[float, Ge(0)] = 0.3

    def importance(self, strategy: Any, params: Params, batches: Iterable[RetrievalBatch]) -> Params:
        return mas_importance(strategy.model, params, batches)
