"""Runs compared: the paper's Tables 1-2 over groups of runs (mean ± std over seeds), their
continual-learning metrics (with an evaluation before training: forward transfer, ZSCL's metrics
and the retention sets), and the same numbers as a long-format CSV."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from ccrbench.evaluation.keys import ALL_TASKS, AVERAGE, DIRECTIONS, POLICIES, MetricKey
from ccrbench.markdown import markdown_table
from ccrbench.reporting.common import seeds
from ccrbench.evaluation.continual import CL_METRIC_TITLES, CL_METRICS
from ccrbench.reporting.drift import budget_table, final_diagnostics_table
from ccrbench.reporting.grouping import by_setting, group_runs
from ccrbench.reporting.pretrained import pretrained_stats, pretrained_tables
from ccrbench.reporting.statistics import confidence_interval, final_stat, mean_std, stat_cell

# Columns of the paper's Tables 1-2 for one direction: (column title, run label, policy).
PAPER_COLUMNS = (
    ("joint CTNP", "joint", "reindex"),
    ("joint no CTNP", "joint_no_ctnp", "reindex"),
    ("ft", "finetune", "reindex"),
    ("EWC", "ewc", "reindex"),
    ("MAS", "mas", "reindex"),
    ("ft", "finetune", "noreindex"),
    ("EWC", "ewc", "noreindex"),
    ("EWC-{q}", "ewc (decoupled)", "noreindex"),
    ("MAS", "mas", "noreindex"),
    ("MAS-{q}", "mas (decoupled)", "noreindex"),
)


def comparison_table(runs: dict[str, list[dict[str, Any]]], *, direction: str, metric: str = "r10") -> str:
    """The paper's table layout for one direction, over runs grouped by `run_label`.

    Joint columns, then continual runs under reindexing and under no reindexing, then any
    other strategy under both policies; cells are the mean (± std over seeds when there are
    several); the best continual value of each row is in bold. Missing runs are left out.
    """
    names = next(iter(runs.values()))[0]["task_names"]
    query = "im" if direction == "i2t" else "txt"
    columns = [(title.format(q=query), label, policy) for title, label, policy in PAPER_COLUMNS if label in runs]
    known = {label for _, label, _ in PAPER_COLUMNS}
    columns += [(label, label, policy) for label in sorted(set(runs) - known) for policy in POLICIES]  # other strategies
    heads = [t if l.startswith("joint") else f"{t} ({'reindex' if p == 'reindex' else 'no reindex'})" for t, l, p in columns]
    key = MetricKey.parse(metric).with_direction(direction)
    rows = []
    for scope, label in [*((str(t), n) for t, n in enumerate(names)), (AVERAGE, "average"), (ALL_TASKS, "all tasks")]:
        stats = [final_stat(runs[l], p, scope, str(key)) for _, l, p in columns]
        continual = [st[0] for (_, l, _), st in zip(columns, stats) if not l.startswith("joint") and st[2]]
        best = (max if key.higher_is_better else min)(continual) if continual else None
        rows.append([label, *(stat_cell(st, not l.startswith("joint") and st[2] > 0 and st[0] == best) for (_, l, _), st in zip(columns, stats))])
    return "\n".join(markdown_table([f"{direction} {metric}", *heads], rows))


def comparison_report(results: Sequence[dict[str, Any]], *, metric: str = "r10", names: Sequence[str] | None = None) -> str:
    """Markdown comparing runs in the paper's layout, one section per setting (architecture,
    and benchmark when several), one column per group of `group_runs` (seeds averaged: mean ± std).
    """
    measure = MetricKey.parse(metric)
    parts = []
    for setting, runs in by_setting(group_runs(results, names)).items():
        parts += [f"## {setting}", ""]
        for direction in DIRECTIONS:
            parts += [comparison_table(runs, direction=direction, metric=metric), ""]
        for name, what in CL_METRIC_TITLES.items():
            rows = [
                [f"{label} ({seeds(len(rs))})"]
                + [stat_cell(mean_std([r.get(name, {}).get(p, {}).get(str(measure.with_direction(d))) for r in rs])) for d in DIRECTIONS for p in POLICIES]
                for label, rs in sorted(runs.items())
            ]
            parts += [
                f"{what} of {metric}:",
                "",
                *markdown_table(["run", "i2t reindex", "i2t no reindex", "t2i reindex", "t2i no reindex"], rows),
                "",
            ]
        parts += pretrained_tables(runs, metric=metric)
        parts += budget_table(runs, metric=metric)
        parts += final_diagnostics_table(runs)
    return "\n".join(parts)


def comparison_csv(results: Sequence[dict[str, Any]], *, metric: str = "r10", names: Sequence[str] | None = None) -> str:
    """Long-format CSV of the final metrics: one row per group of `group_runs`, scope, direction, policy."""
    measure = MetricKey.parse(metric)
    lines = ["shared_layers,run,direction,policy,scope,metric,mean,std,seeds,ci95_low,ci95_high,setting"]
    for group in group_runs(results, names):
        rs, shared = group.runs, group.runs[0]["config"]["model"]["shared_layers"]
        scopes = [*((str(t), n) for t, n in enumerate(rs[0]["task_names"])), (AVERAGE, AVERAGE), (ALL_TASKS, "all tasks")]
        for direction in DIRECTIONS:
            key = str(measure.with_direction(direction))
            for policy in POLICIES:
                stats = [(scope_name, final_stat(rs, policy, scope, key)) for scope, scope_name in scopes]
                stats += [(name, mean_std([r.get(name, {}).get(policy, {}).get(key) for r in rs])) for name in CL_METRICS]
                stats += pretrained_stats(rs, policy, key)
                for scope_name, (mean, std, n) in stats:
                    if n:
                        low, high = confidence_interval(mean, std, n)
                        lines.append(
                            f'{shared},"{group.label}",{direction},{policy},{scope_name},{metric},{mean:.3f},{std:.3f},{n},'
                            f'{low:.3f},{high:.3f},"{group.setting}"'
                        )
    return "\n".join(lines) + "\n"
