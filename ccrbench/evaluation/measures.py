"""Retrieval measures of 0-based ranks: the one place a metric is added.

Each measure is a pure function of one direction's ranks, registered with `@measure`;
`rank_metrics` evaluates every registered measure, so it is in results.json (under the key
`{direction}_{name}`, or `{direction}_{name}{K}` for each K of `eval.ks` when `per_k`), in
TensorBoard, in every report table and available to `ccrbench report --metric` and the tune
criterion, read through `ccrbench.evaluation.keys.MetricKey`.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING

if TYPE_CHECKING:  # torch is imported where ranks are measured: reports read this registry without it
    from torch import Tensor


@dataclass(frozen=True)
class Measure:
    """A registered measure.

    Attributes:
        name: its key in results.json after the direction, e.g. "medr" (`r` + K for R@K).
        title: how tables and charts name it; "{k}" is replaced by K, e.g. "R@{k}".
        higher_is_better: False for ranks: reports flip their best value and their signs.
        per_k: one value per K of `eval.ks` (the function then takes K).
        of_ranks: the function of a direction's 0-based ranks [Q] (float64, on the CPU).
    """

    name: str
    title: str
    higher_is_better: bool
    per_k: bool
    of_ranks: Callable[..., float]


MEASURES: dict[str, Measure] = {}  # by name, in the order of results.json's keys


def measure(name: str, *, title: str, higher_is_better: bool = True, per_k: bool = False) -> Callable:
    """Registers the decorated function of ranks as the measure `name`."""

    def register(fn: Callable[..., float]) -> Callable[..., float]:
        if name in MEASURES or not name.isidentifier() or name[-1].isdigit():
            raise ValueError(f"measure {name!r}: taken or not a name (letters and '_', not ending in a digit)")
        MEASURES[name] = Measure(name, title, higher_is_better, per_k, fn)
        return fn

    return register


@measure("r", title="R@{k}", per_k=True)
def recall_at(ranks: Tensor, k: int) -> float:
    """Recall@K in percent: 100 * #(rank < K) / #queries."""
    return 100.0 * int((ranks < k).sum()) / ranks.numel()


@measure("medr", title="median rank", higher_is_better=False)
def median_rank(ranks: Tensor) -> float:
    """floor(median(rank)) + 1 (the median of an even count averages the two middle values), as in VSE++."""
    import torch

    return float(torch.floor(torch.quantile(ranks, 0.5))) + 1.0


@measure("meanr", title="mean rank", higher_is_better=False)
def mean_rank(ranks: Tensor) -> float:
    """mean(rank) + 1."""
    return float(ranks.mean()) + 1.0
