"""Report sections on why a model forgets (the drift diagnostics) and on what partial
reindexing buys (recall against the fraction of the database re-embedded): one run's
sections of results.md, and the tables comparing groups of runs."""

from __future__ import annotations

import math
from typing import Any

from ccrbench.evaluation.keys import ALL_TASKS, AVERAGE, DIAGNOSTICS, DIRECTIONS, IndexingPolicy, MetricKey, split_model
from ccrbench.markdown import markdown_table
from ccrbench.reporting.common import NAN, fmt, mean, seeds
from ccrbench.reporting.statistics import final_stat, mean_std, stat_cell


def diagnostics_per_stage(results: dict[str, Any]) -> dict[str, list[float]]:
    """{diagnostic: [value per stage]}: task-overlap diagnostics over all tasks, the others
    averaged over the old tasks (learned at an earlier stage; NaN at the first stage). Decoupled
    runs' keys carry their model's prefix (e.g. "i2t_model_image_drift")."""
    out: dict[str, list[float]] = {}
    old: list[int] = []
    for stage in results["stages"]:
        diagnostics = stage.get("diagnostics", {})
        for key in diagnostics.get(AVERAGE, {}):
            if "_cross_" in key:
                value = diagnostics[ALL_TASKS].get(key, NAN)
            else:
                value = mean(diagnostics[str(t)][key] for t in old)
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
    order = [key for key, _ in DIAGNOSTICS]

    def rank(key: str) -> tuple[int, str]:
        base = split_model(key)[1]
        return (order.index(base) if base in order else len(order), key)

    rows = []
    for key in sorted(per_stage, key=rank):
        model, base = split_model(key)
        rows.append([labels.get(base, base) + (f" ({model} model)" if model else ""), *(fmt(v, 3) for v in per_stage[key])])
    return [
        "## Why it forgets: drift diagnostics",
        "",
        "Stored = embedded when the task was indexed; current = the encoders after the stage. Per-task "
        "diagnostics are averaged over the tasks learned before the stage; overlap is over every query "
        "of the all-task search, under the current encoders.",
        "",
        *markdown_table(["diagnostic", *heads], rows),
        "",
    ]


def budget_policies(results: dict[str, Any]) -> list[str]:
    """The partial-reindexing policies of a run (names like budget0.25_random)."""
    return [p for p in results["final"] if IndexingPolicy.parse(p).kind == "budget"]


def reembedded_fraction(results: dict[str, Any], policy: str) -> float:
    """Items re-embedded over all stages / items stored before each stage, summed (0 with none)."""
    eligible = sum(s["reindex_cost"]["eligible"] for s in results["stages"])
    return sum(s["reindex_cost"]["items"][policy] for s in results["stages"]) / eligible if eligible else 0.0


def reembedding_seconds(results: dict[str, Any], policy: str) -> float:
    """Estimated seconds spent re-embedding: items per stage x that stage's measured embedding
    seconds per item (mean over the run's models)."""
    per_item = [mean(m[s]["embed_s_per_item"] for m in results.get("timings", []) if s < len(m)) for s in range(len(results["stages"]))]
    return sum(st["reindex_cost"]["items"][policy] * t for st, t in zip(results["stages"], per_item) if not math.isnan(t))


def policy_title(policy: str) -> str:
    """noreindex -> "no reindex"; budget0.25_most_drifted_first -> "25% budget, most drifted first"."""
    return IndexingPolicy.parse(policy).title


def budget_curve(results: dict[str, Any], rule: str, key: str, scope: str) -> list[tuple[float, float]]:
    """(fraction re-embedded, final value) of no reindex, every budget of `rule`, and reindex, by fraction."""
    final = results["final"]
    budgets = [(reembedded_fraction(results, p), final[p][scope].get(key, NAN)) for p in budget_policies(results) if IndexingPolicy.parse(p).rule == rule]
    ends = [(0.0, final["noreindex"][scope].get(key, NAN)), (1.0, final["reindex"][scope].get(key, NAN))]
    return sorted([*budgets, *ends], key=lambda point: point[0])


def evaluation_cost_line(results: dict[str, Any]) -> str:
    """One line: mean seconds per stage of embedding, metrics, diagnostics and reindex selection."""
    rows = [t for model in results.get("timings", []) for t in model]
    if not rows:
        return ""
    parts = [f"{name} {mean(r[key] for r in rows):.3f}s" for key, name in (
        ("embed_s", "embedding the test sets"), ("metrics_s", "retrieval metrics"), ("diagnostics_s", "diagnostics"), ("reindex_select_s", "partial-reindex selection")
    )]
    return "Evaluation cost per stage (mean): " + ", ".join(parts) + "."


def budget_section(results: dict[str, Any], *, metric: str = "r10") -> list[str]:
    """Markdown lines: every indexing policy's final recall beside what it re-embedded."""
    cost = evaluation_cost_line(results)
    policies = ["noreindex", *budget_policies(results), "reindex"]
    if len(policies) == 2 or "reindex_cost" not in results["stages"][-1]:
        return [cost, ""] if cost else []
    key = MetricKey.parse(metric)
    directions = [d for d in DIRECTIONS if str(key.with_direction(d)) in results["final"]["reindex"][ALL_TASKS]]
    heads = [f"{d} {metric} {'average' if s == AVERAGE else 'all tasks'}" for s in (AVERAGE, ALL_TASKS) for d in directions]
    rows = [
        [p, str(sum(s["reindex_cost"]["items"][p] for s in results["stages"])), f"{reembedded_fraction(results, p):.2f}", f"{reembedding_seconds(results, p):.2f}"]
        + [fmt(results["final"][p][s].get(str(key.with_direction(d)), NAN)) for s in (AVERAGE, ALL_TASKS) for d in directions]
        for p in policies
    ]
    lines = [
        "## Budgeted partial reindexing",
        "",
        "Items = images with their captions; re-embedded: summed over stages; fraction: of the items "
        "stored before each stage; seconds: items x the stage's measured embedding time per item.",
        "",
        *markdown_table(["policy", "items re-embedded", "fraction", "seconds (est.)", *heads], rows),
    ]
    return [*lines, "", cost, ""] if cost else [*lines, ""]


def final_diagnostics_table(runs: dict[str, list[dict[str, Any]]]) -> list[str]:
    """Markdown lines: each drift diagnostic after the last stage (old tasks' mean; overlap over
    all tasks), one column per group of runs that recorded them, over seeds (none: no lines)."""
    finals = {label: [{k: v[-1] for k, v in diagnostics_per_stage(r).items()} for r in rs] for label, rs in sorted(runs.items())}
    finals = {label: values for label, values in finals.items() if values[0]}
    if not finals:
        return []
    rows = [
        [title, *(stat_cell(mean_std([f.get(key) for f in values]), digits=3) for values in finals.values())]
        for key, title in DIAGNOSTICS
        if any(key in values[0] for values in finals.values())
    ]
    return [
        "Drift diagnostics after the last task (stored = embedded when its task was indexed; per-task values "
        "averaged over the old tasks, overlap over all tasks; '-': not defined, e.g. joint training stores nothing before its only stage):",
        "",
        *markdown_table(["diagnostic", *(f"{label} ({seeds(len(v))})" for label, v in finals.items())], rows),
        "",
    ]


def budget_table(runs: dict[str, list[dict[str, Any]]], *, metric: str = "r10") -> list[str]:
    """Markdown lines: final recall of every indexing policy (no reindex, each budget x rule,
    reindex) of the groups that evaluated partial reindexing, over seeds (none: no lines)."""
    with_budgets = {label: rs for label, rs in runs.items() if budget_policies(rs[0]) and len(rs[0]["stages"]) > 1}
    if not with_budgets:
        return []
    key = MetricKey.parse(metric)
    heads = [f"{d} {'average' if scope == AVERAGE else 'all tasks'}" for scope in (AVERAGE, ALL_TASKS) for d in DIRECTIONS]
    rows = []
    for label, rs in sorted(with_budgets.items()):
        for policy in ["noreindex", *budget_policies(rs[0]), "reindex"]:
            fraction = sum(reembedded_fraction(r, policy) for r in rs) / len(rs)  # reindex_cost counts both ends too
            cells = [stat_cell(final_stat(rs, policy, scope, str(key.with_direction(d)))) for scope in (AVERAGE, ALL_TASKS) for d in DIRECTIONS]
            rows.append([f"{label} ({seeds(len(rs))})", policy_title(policy), f"{fraction:.2f}", *cells])
    return [
        f"Budgeted partial reindexing, final {metric} per indexing policy (fraction: items re-embedded over the "
        "run / items stored before each stage, mean over seeds; no reindex = 0, reindex = 1):",
        "",
        *markdown_table(["run", "policy", "fraction", *heads], rows),
        "",
    ]
