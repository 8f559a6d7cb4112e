"""Continual-learning metrics of a run: task x stage matrices, forgetting, backward transfer,
plasticity, incremental; `summarize` gives the runner everything results.json holds besides
the config, and the metric plugin its stage-by-stage forgetting (formulas: docs/metrics.md)."""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from typing import Any

from ccrbench.evaluation.keys import ALL_TASKS, AVERAGE, POLICIES, MetricKey

NAN = float("nan")

CL_METRICS = ("forgetting", "bwt", "plasticity", "incremental")
CL_METRIC_TITLES = {
    "forgetting": "Average forgetting (points; best earlier value minus final, over old tasks)",
    "bwt": "Backward transfer (final minus right after learning, over old tasks; negative = forgetting)",
    "plasticity": "Plasticity (right after learning each task)",
    "incremental": "Incremental (known-task average, averaged over stages)",
}


def missing(x: float | None) -> bool:
    """None or NaN: a value not measured (results.json writes NaN as null)."""
    return x is None or (isinstance(x, float) and math.isnan(x))


def mean(xs: Iterable[float | None]) -> float:
    """Mean of the values that are not missing (NaN when none is)."""
    kept = [x for x in xs if not missing(x)]
    return sum(kept) / len(kept) if kept else NAN


def stage_matrices(
    stages: Sequence[dict[str, Any]], num_tasks: int, policies: Iterable[str] = POLICIES
) -> dict[str, dict[str, list[list[float]]]]:
    """`{policy: {metric: [stage][task]}}`, NaN where a task was not seen yet."""
    out: dict[str, dict[str, list[list[float]]]] = {}
    for policy in policies:
        keys = next(iter(stages[-1]["metrics"][policy].values())).keys()
        out[policy] = {
            key: [[s["metrics"].get(policy, {}).get(str(t), {}).get(key, NAN) for t in range(num_tasks)] for s in stages]
            for key in keys
        }
    return out


def _learned_at(matrix: Sequence[Sequence[float]]) -> list[int | None]:
    """Per task, the stage at which it was learned: the first stage where it has a value."""
    return [next((s for s, row in enumerate(matrix) if not math.isnan(row[t])), None) for t in range(len(matrix[-1]))]


def task_forgetting(matrix: Sequence[Sequence[float]], *, higher_is_better: bool = True) -> list[float]:
    """Per task: its best value before the last stage minus its final value; NaN for a task not
    learned before the last stage (the task learned at stage s is the one that first appears at
    stage s). For ranks (lower is better) the best value is the lowest and the sign is flipped,
    so that positive always means forgetting."""
    sign = 1.0 if higher_is_better else -1.0
    return [
        max(sign * row[t] for row in matrix[first:-1]) - sign * matrix[-1][t] if first is not None and first < len(matrix) - 1 else NAN
        for t, first in enumerate(_learned_at(matrix))
    ]


def forgetting(matrix: Sequence[Sequence[float]], *, higher_is_better: bool = True) -> float:
    """Average forgetting: mean over old tasks of `task_forgetting`; NaN when fewer than two
    stages exist (e.g. joint training)."""
    return mean(task_forgetting(matrix, higher_is_better=higher_is_better)) if len(matrix) >= 2 else NAN


def backward_transfer(matrix: Sequence[Sequence[float]], *, higher_is_better: bool = True) -> float:
    """BWT: mean over old tasks of (final value - value right after learning the task).

    Negative means forgetting, positive that later tasks helped the old ones (for ranks
    the sign is flipped, so positive still means the old tasks improved). NaN with fewer
    than two stages.
    """
    if len(matrix) < 2:
        return NAN
    sign = 1.0 if higher_is_better else -1.0
    return mean(
        sign * (matrix[-1][t] - matrix[first][t]) for t, first in enumerate(_learned_at(matrix)) if first is not None and first < len(matrix) - 1
    )


def plasticity(matrix: Sequence[Sequence[float]]) -> float:
    """Mean over tasks of the value right after learning the task (how well new tasks are learned)."""
    return mean(matrix[first][t] for t, first in enumerate(_learned_at(matrix)) if first is not None)


def incremental(averages: Sequence[float]) -> float:
    """Mean over stages of the known-task average (the area under its curve, per stage)."""
    return mean(averages)


def summarize(stages: Sequence[dict[str, Any]], task_names: Sequence[str]) -> dict[str, Any]:
    """Everything results.json holds besides the config: stages, matrices and the continual-learning
    metrics of every key under each policy (`forgetting`, `bwt`, `plasticity`, `incremental`)."""
    matrices = stage_matrices(stages, len(task_names))
    per_stage = {
        policy: {
            scope: {key: [s["metrics"][policy][scope][key] for s in stages] for key in stages[0]["metrics"][policy][scope]}
            for scope in (AVERAGE, ALL_TASKS)
        }
        for policy in POLICIES
    }
    higher = {key: MetricKey.parse(key).higher_is_better for ms in matrices.values() for key in ms}
    return {
        "task_names": list(task_names),
        "stages": list(stages),
        "matrices": matrices,
        "per_stage": per_stage,
        "forgetting": {p: {k: forgetting(m, higher_is_better=higher[k]) for k, m in ms.items()} for p, ms in matrices.items()},
        "bwt": {p: {k: backward_transfer(m, higher_is_better=higher[k]) for k, m in ms.items()} for p, ms in matrices.items()},
        "plasticity": {p: {k: plasticity(m) for k, m in ms.items()} for p, ms in matrices.items()},
        "incremental": {p: {k: incremental(v) for k, v in per_stage[p][AVERAGE].items()} for p in POLICIES},
        "final": stages[-1]["metrics"],
    }
