"""EWC on the two-branch retrieval model (importance: Fisher of the retrieval loss)."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Annotated, Any

from annotated_types import Ge

from ccrbench.registry import register_strategy
from ccrbench.strategies.regularization import Params, WeightRegularizer, ewc_importance
from ccrbench.training.template import RetrievalBatch


@register_strategy("ewc")
@dataclass(kw_only=True, eq=False)
class EWC(WeightRegularizer):
    """Elastic Weight Consolidation: Omega = mean squared gradient of the retrieval loss.

    Args:
        lam: penalty strength lambda (default chosen on the built-in benchmark's validation split (results/paper_table/selection.md)).
        branches: which branch is protected: "both", "image" (EWC-im) or "text" (EWC-txt).
        decay: importance accumulation factor across tasks (1 sums them; <1 is online EWC).
        importance_batches: training mini-batches used for the Fisher (0: all).
    """

    lam: Annotated[float, Ge(0)] = 1000.0

    def importance(self, strategy: Any, params: Params, batches: Iterable[RetrievalBatch]) -> Params:
        return ewc_importance(strategy.model, strategy._criterion, params, batches)
