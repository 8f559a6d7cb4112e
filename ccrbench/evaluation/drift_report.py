"""Report sections on why a model forgets (the drift diagnostics) and on what partial
reindexing buys (recall against the fraction of the database re-embedded)."""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

from ccrbench.evaluation.protocol import ALL_TASKS, AVERAGE, DIRECTIONS, POLICIES, POLICY_LABELS

NAN = float("nan")
# (key, label) of the diagnostics shown in reports and plots.
DIAGNOSTICS = (
    ("image_drift", "image drift: cos(stored, current)"),
    ("text_drift", "caption drift: cos(stored, current)"),
    ("pair_sim", "true-pair similarity, current encoders"),
    ("i2t_pair_sim_noreindex", "true-pair similarity, current image vs stored caption"),
    ("t2i_pair_sim_noreindex", "true-pair similarity, stored image vs current caption"),
    ("i2t_margin", "i2t margin over the hardest in-task negative"),
    ("t2i_margin", "t2i margin over the hardest in-task negative"),
    ("i2t_margin_noreindex", "i2t margin, no-reindex pairing"),
    ("t2i_margin_noreindex", "t2i margin, no-reindex pairing"),
    ("i2t_cross_top10", "i2t top-10 from other tasks (all-task search)"),
    ("t2i_cross_top10", "t2i top-10 from other tasks (all-task search)"),
    ("i2t_cross_miss_share", "i2t all-task misses (R@10) caused by other tasks"),
    ("t2i_cross_miss_share", "t2i all-task misses (R@10) caused by other tasks"),
)


def _mean(xs: Sequence[float | None]) -> float:
    kept = [x for x in xs if x is not None and not math.isnan(x)]
    return sum(kept) / len(kept) if kept else NAN


def _fmt(x: float | None, digits: int = 3) -> str:
    return "-" if x is None or math.isnan(x) else f"{x:.{digits}f}"


def diagnostics_per_stage(results: dict[str, Any]) -> dict[str, list[float]]:
    """{diagnostic: [value per stage]}: task-overlap diagnostics over all tasks, the others
    averaged over the old tasks (learned at an earlier stage; NaN at the first stage). Decoupled
    runs' keys carry their model's prefix (e.g. "i2t_model_image_drift")."""
    out: dict[str, list[float]] = {}
    old: list[int] = []
    for stage in results["stages"]:
        diagnostics = stage.get("diagnostics", {})
        keys = [k for k in diagnostics.get(AVERAGE, {})]
        for key in keys:
            if "_cross_" in key:
                value = diagnostics[ALL_TASKS].get(key, NAN)
            else:
                value = _mean([diagnostics[str(t)][key] for t in old])
            out.setdefault(key, []).append(NAN if value is None else value)
        old = stage["tasks"]
    return out


def diagnostics_section(results: dict[str, Any]) -> list[str]:
    """Markdown lines: the diagnostics after every stage (none when the run has none)."""
    per_stage = diagnostics_per_stage(results)
    if not per_stage:
        return []
    names, stages = results["task_names"], results["stages"]
    heads = [f"after {names[i]}" if len(stages) == len(names) else f"stage {i}" for i in range(len(stages))]
    labels = dict(DIAGNOSTICS)
    lines = [
        "## Why it forgets: drift diagnostics",
        "",
        "Stored = embedded when the task was indexed; current = the encoders after the stage. Per-task "
        "diagnostics are averaged over the tasks learned before the stage; overlap is over every query "
        "of the all-task search, under the current encoders.",
        "",
        "| diagnostic | " + " | ".join(heads) + " |",
        "|---" * (len(heads) + 1) + "|",
    ]
    order = [key for key, _ in DIAGNOSTICS]
    rank = lambda key: order.index(key.split("_model_", 1)[-1]) if key.split("_model_", 1)[-1] in order else len(order)  # noqa: E731
    for key, values in sorted(per_stage.items(), key=lambda item: (rank(item[0]), item[0])):
        base = key.split("_model_", 1)[-1]
        label = labels.get(base, base) + (f" ({key.split('_model_')[0]} model)" if "_model_" in key else "")
        lines.append(f"| {label} | " + " | ".join(_fmt(v) for v in values) + " |")
    return [*lines, ""]


def budget_policies(results: dict[str, Any]) -> list[str]:
    """The partial-reindexing policies of a run (names like budget0.25_random)."""
    return [p for p in results["final"] if p not in POLICIES]


def reembedded_fraction(results: dict[str, Any], policy: str) -> float:
    """Items re-embedded over all stages / items stored before each stage, summed (0 with none)."""
    eligible = sum(s["reindex_cost"]["eligible"] for s in results["stages"])
    return sum(s["reindex_cost"]["items"][policy] for s in results["stages"]) / eligible if eligible else 0.0


def reembedding_seconds(results: dict[str, Any], policy: str) -> float:
    """Estimated seconds spent re-embedding: items per stage x that stage's measured embedding
    seconds per item (mean over the run's models)."""
    per_item = [_mean([m[s]["embed_s_per_item"] for m in results.get("timings", []) if s < len(m)]) for s in range(len(results["stages"]))]
    return sum(st["reindex_cost"]["items"][policy] * t for st, t in zip(results["stages"], per_item) if not math.isnan(t))


def rule_of(policy: str) -> str:
    """budget0.25_most_drifted_first -> most_drifted_first."""
    return policy.split("_", 1)[1]


def policy_title(policy: str) -> str:
    """noreindex -> "no reindex"; budget0.25_most_drifted_first -> "25% budget, most drifted first";
    budget100items_random -> "100-item budget, random" (the names of reindexing.policy_name)."""
    if policy in POLICY_LABELS:
        return POLICY_LABELS[policy]
    budget = policy.split("_", 1)[0].removeprefix("budget")
    size = f"{budget.removesuffix('items')}-item budget" if budget.endswith("items") else f"{float(budget):.0%} budget"
    return f"{size}, {rule_of(policy).replace('_', ' ')}"


def budget_curve(results: dict[str, Any], rule: str, key: str, scope: str) -> list[tuple[float, float]]:
    """(fraction re-embedded, final value) of no reindex, every budget of `rule`, and reindex, by fraction."""
    final = results["final"]
    budgets = [(reembedded_fraction(results, p), final[p][scope].get(key, NAN)) for p in budget_policies(results) if rule_of(p) == rule]
    ends = [(0.0, final["noreindex"][scope].get(key, NAN)), (1.0, final["reindex"][scope].get(key, NAN))]
    return sorted([*budgets, *ends], key=lambda point: point[0])


def evaluation_cost_line(results: dict[str, Any]) -> str:
    """One line: mean seconds per stage of embedding, metrics, diagnostics and reindex selection."""
    rows = [t for model in results.get("timings", []) for t in model]
    if not rows:
        return ""
    parts = [f"{name} {_mean([r[key] for r in rows]):.3f}s" for key, name in (
        ("embed_s", "embedding the test sets"), ("metrics_s", "retrieval metrics"), ("diagnostics_s", "diagnostics"), ("reindex_select_s", "partial-reindex selection")
    )]
    return "Evaluation cost per stage (mean): " + ", ".join(parts) + "."


def budget_section(results: dict[str, Any], *, metric: str = "r10") -> list[str]:
    """Markdown lines: every indexing policy's final recall beside what it re-embedded."""
    cost = evaluation_cost_line(results)
    policies = ["noreindex", *budget_policies(results), "reindex"]
    if len(policies) == 2 or "reindex_cost" not in results["stages"][-1]:
        return [cost, ""] if cost else []
    directions = [d for d in DIRECTIONS if f"{d}_{metric}" in results["final"]["reindex"][ALL_TASKS]]
    heads = [f"{d} {metric} {'average' if s == AVERAGE else 'all tasks'}" for s in (AVERAGE, ALL_TASKS) for d in directions]
    lines = [
        "## Budgeted partial reindexing",
        "",
        "Items = images with their captions; re-embedded: summed over stages; fraction: of the items "
        "stored before each stage; seconds: items x the stage's measured embedding time per item.",
        "",
        "| policy | items re-embedded | fraction | seconds (est.) | " + " | ".join(heads) + " |",
        "|---" * (len(heads) + 4) + "|",
    ]
    for p in policies:
        items = sum(s["reindex_cost"]["items"][p] for s in results["stages"])
        values = [results["final"][p][s].get(f"{d}_{metric}", NAN) for s in (AVERAGE, ALL_TASKS) for d in directions]
        lines.append(
            f"| {p} | {items} | {reembedded_fraction(results, p):.2f} | {reembedding_seconds(results, p):.2f} | "
            + " | ".join(_fmt(v, 1) for v in values)
            + " |"
        )
    return [*lines, "", cost, ""] if cost else [*lines, ""]
