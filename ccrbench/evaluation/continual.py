"""Continual-learning metrics of a run: task x stage matrices, forgetting, backward transfer,
plasticity, incremental; with the evaluation before any training and of tasks not learned yet
(the full matrix, row 0 first): forward transfer and ZSCL's Transfer / Avg / Last; and the
retention of held-out sets. `summarize` gives the runner everything results.json holds besides
the config, and the metric plugin its stage-by-stage forgetting (formulas: docs/metrics.md)."""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from typing import Any

from ccrbench.evaluation.keys import ALL_TASKS, AVERAGE, POLICIES, MetricKey

NAN = float("nan")

CL_METRICS = ("forgetting", "bwt", "plasticity", "incremental")
START = -1  # the stage number of the evaluation before any training (the full matrices' row 0)
PRETRAINED_METRICS = ("forward_transfer", "transfer", "avg", "last")  # over the full matrices
PRETRAINED_METRIC_TITLES = {
    "forward_transfer": "Forward transfer (just before learning each task minus before any training, over tasks after the first)",
    "transfer": "Transfer (ZSCL: mean over the stages before learning each task, over tasks after the first)",
    "avg": "Avg (ZSCL: mean over every stage and every task, learned or not)",
    "last": "Last (ZSCL: mean over every task after the last stage)",
}
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


def summarize(
    stages: Sequence[dict[str, Any]],
    task_names: Sequence[str],
    *,
    unlearned: Sequence[dict[str, Any]] = (),
    retention: Sequence[dict[str, Any]] = (),
) -> dict[str, Any]:
    """Everything results.json holds besides the config: stages, matrices and the continual-learning
    metrics of every key under each policy (`forgetting`, `bwt`, `plasticity`, `incremental`); with
    the evaluation before training in `unlearned`, `pretrained_summary`'s; with `retention`
    records, `retention_summary`'s under "retention"."""
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
        **pretrained_summary(stages, unlearned, len(task_names)),
        **({"retention": retention_summary(retention)} if retention else {}),
    }


def full_matrices(
    stages: Sequence[dict[str, Any]], unlearned: Sequence[dict[str, Any]], num_tasks: int, policies: Iterable[str] = POLICIES
) -> dict[str, dict[str, list[list[float]]]]:
    """`{policy: {metric: [row][task]}}` with every task in every row: row 0 before any training
    (the `unlearned` record of stage `START`), row s + 1 after stage s (the learned tasks from
    `stages`, the others from that stage's `unlearned` record; NaN where none was evaluated).
    Empty when the run was not evaluated before training."""
    by_stage = {u["stage"]: u["metrics"] for u in unlearned}
    if START not in by_stage or not stages:
        return {}
    rows = [{"metrics": by_stage[START]}] + [
        {"metrics": {p: {**by_stage.get(s["stage"], {}).get(p, {}), **s["metrics"][p]} for p in s["metrics"]}} for s in stages
    ]
    return stage_matrices(rows, num_tasks, policies)


def _learned_rows(matrix: Sequence[Sequence[float]], full: Sequence[Sequence[float]]) -> list[tuple[int, int]]:
    """(task, the full matrix's row at which it is first learned) of the tasks learned after the first stage."""
    return [(t, first + 1) for t, first in enumerate(_learned_at(matrix)) if first is not None and first >= 1]


def forward_transfer(matrix: Sequence[Sequence[float]], full: Sequence[Sequence[float]], *, higher_is_better: bool = True) -> float:
    """Mean over the tasks learned after the first stage of (value just before learning the task minus
    value before any training) (GEM, CLiMB); for ranks the sign is flipped, so positive always means
    that the earlier tasks helped. `matrix`: the stage matrix; `full`: the full matrix (row 0 first)."""
    sign = 1.0 if higher_is_better else -1.0
    return mean(sign * (full[row - 1][t] - full[0][t]) + 0.0 for t, row in _learned_rows(matrix, full))  # + 0.0: no -0.0


def zscl_transfer(matrix: Sequence[Sequence[float]], full: Sequence[Sequence[float]]) -> float:
    """ZSCL's Transfer: per task learned after the first stage, its mean over the stages before it
    was learned (rows 1 .. just before; never trained on it yet), averaged over those tasks."""
    return mean(mean(full[r][t] for r in range(1, row)) for t, row in _learned_rows(matrix, full))


def zscl_avg(full: Sequence[Sequence[float]]) -> float:
    """ZSCL's Avg: the mean over every stage (rows 1 ..) and every task, learned or not."""
    return mean(mean(row) for row in full[1:])


def zscl_last(full: Sequence[Sequence[float]]) -> float:
    """ZSCL's Last: the mean over every task after the last stage."""
    return mean(full[-1])


def retention_summary(records: Sequence[dict[str, Any]]) -> dict[str, Any]:
    """What results.json holds of the held-out retention sets: their records, every value per
    evaluation (`per_stage`, first evaluation first) and `retention`, the change from the first
    evaluation (before any training, when the run made one) to the last; for ranks the sign is
    flipped, so negative always means that something of the start was lost."""
    if not records:
        return {}
    first, last = records[0]["metrics"], records[-1]["metrics"]
    return {
        "stages": list(records),
        "per_stage": {
            p: {label: {k: [r["metrics"][p][label][k] for r in records] for k in values} for label, values in by_label.items()}
            for p, by_label in last.items()
        },
        "retention": {
            p: {
                label: {k: (1.0 if MetricKey.parse(k).higher_is_better else -1.0) * (v - first[p][label][k]) + 0.0 for k, v in values.items()}
                for label, values in by_label.items()
            }
            for p, by_label in last.items()
        },
    }


def pretrained_summary(stages: Sequence[dict[str, Any]], unlearned: Sequence[dict[str, Any]], num_tasks: int) -> dict[str, Any]:
    """The evaluation before training (`start`), the later records of tasks not learned yet, the full
    matrices and the metrics over them (`PRETRAINED_METRICS`); empty without an evaluation before training."""
    policies = [p for p in POLICIES if p in stages[-1]["metrics"]] if stages else []  # partial reindexing has no row 0
    full = full_matrices(stages, unlearned, num_tasks, policies)
    if not full:
        return {"unlearned": list(unlearned)} if unlearned else {}
    matrices = stage_matrices(stages, num_tasks, policies)
    higher = {k: MetricKey.parse(k).higher_is_better for ms in full.values() for k in ms}
    return {
        "start": next(u["metrics"] for u in unlearned if u["stage"] == START),
        "unlearned": [u for u in unlearned if u["stage"] != START],
        "full_matrices": full,
        "forward_transfer": {p: {k: forward_transfer(matrices[p][k], m, higher_is_better=higher[k]) for k, m in ms.items()} for p, ms in full.items()},
        "transfer": {p: {k: zscl_transfer(matrices[p][k], m) for k, m in ms.items()} for p, ms in full.items()},
        "avg": {p: {k: zscl_avg(m) for k, m in ms.items()} for p, ms in full.items()},
        "last": {p: {k: zscl_last(m) for k, m in ms.items()} for p, ms in full.items()},
    }
