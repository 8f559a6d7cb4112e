"""Report pieces of the pretrained era: the evaluation before any training (row 0 of the task x
stage matrices), the tasks not learned yet (the upper triangle), forward transfer and ZSCL's
Transfer / Avg / Last, and the held-out retention sets; for one run's results.md and console
summary, and for the comparison of groups of runs. A run without an evaluation before training
(results.json without `full_matrices` or `retention`) gets none of it (formulas: docs/metrics.md)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from ccrbench.evaluation.continual import PRETRAINED_METRIC_TITLES, PRETRAINED_METRICS, START
from ccrbench.evaluation.keys import ALL_TASKS, AVERAGE, DIRECTIONS, POLICIES, POLICY_LABELS, MetricKey, parse_keys
from ccrbench.markdown import markdown_table
from ccrbench.reporting.common import NAN, fmt, missing, seeds
from ccrbench.reporting.statistics import mean_std, stat_cell

BEFORE_TRAINING = "before training"
UNLEARNED_NOTE = (
    "In parentheses: tasks not learned yet at that stage (the first row, before any training, "
    "holds every task, and its average and all-task search are over every task)."
)
RETENTION_NOTE = (
    "Held-out sets never trained on (`eval.retention`), evaluated before training and after every "
    "stage; no reindex keeps the database embedded before training. Change: the last value minus the "
    "value before training (ranks sign-flipped, so negative always means that something of the start was lost)."
)
METRIC_NAMES = {"forward_transfer": "forward transfer", "transfer": "Transfer", "avg": "Avg", "last": "Last"}
HEADS = [f"{d} {POLICY_LABELS[p]}" for d in DIRECTIONS for p in POLICIES]


def unlearned_cell(x: float | None) -> str:
    """A matrix cell of a task not learned yet: the value in parentheses ('-' when missing)."""
    return "-" if missing(x) else f"({fmt(x)})"


def start_row(results: dict[str, Any], *, policy: str, key: str) -> list[str] | None:
    """The cells of a task x stage matrix's row before training (tasks, average, all tasks), or
    None for a run not evaluated before training."""
    full = results.get("full_matrices", {}).get(policy, {}).get(key)
    if not full:
        return None
    start = results["start"][policy]
    return [BEFORE_TRAINING, *map(unlearned_cell, full[0]), *(unlearned_cell(start[s].get(key, NAN)) for s in (AVERAGE, ALL_TASKS))]


def unlearned_row(results: dict[str, Any], *, policy: str, key: str, stage: int) -> list[float] | None:
    """Row `stage` of the full matrix (every task after that stage, learned or not), or None."""
    full = results.get("full_matrices", {}).get(policy, {}).get(key)
    return full[stage + 1] if full else None


def stage_label(results: dict[str, Any], stage: int) -> str:
    """`before training` (stage START), `after blocks` (one task per stage) or `stage 2`."""
    names = results["task_names"]
    if stage == START:
        return BEFORE_TRAINING
    return f"after {names[stage]}" if len(results["stages"]) == len(names) else f"stage {stage}"


def _recall_keys(values: dict[str, Any], ks: Sequence[int] | None = None) -> list[str]:
    return [k for k, m in zip(values, parse_keys(values)) if m.is_recall and (ks is None or m.k in ks)]


def pretrained_metrics_section(results: dict[str, Any]) -> list[str]:
    """Markdown lines of results.md: forward transfer, Transfer, Avg and Last of every recall
    under each policy (none for a run not evaluated before training)."""
    if "forward_transfer" not in results:
        return []
    policies = list(results["forward_transfer"])
    keys = _recall_keys(results["forward_transfer"][policies[0]])
    rows = [[METRIC_NAMES[name], p, *(fmt(results[name][p].get(k, NAN)) for k in keys)] for name in PRETRAINED_METRICS for p in policies]
    return [
        "## Pretrained-era metrics",
        "",
        "Over the full task x stage matrices (row 0 before any training; every task at every stage, learned or not):",
        "",
        *(f"- {title}" for title in PRETRAINED_METRIC_TITLES.values()),
        "",
        *markdown_table(["metric", "policy", *keys], rows),
        "",
    ]


def retention_section(results: dict[str, Any]) -> list[str]:
    """Markdown lines of results.md: per retention set and R@1 / R@10, its value at every
    evaluation and its change since the first (none for a run without retention sets)."""
    retention = results.get("retention")
    if not retention:
        return []
    per_stage, change = retention["per_stage"], retention["retention"]
    labels = list(per_stage[POLICIES[0]])
    first = stage_label(results, retention["stages"][0]["stage"])  # before training, unless the run was not evaluated then
    parts = ["## Retention sets", "", RETENTION_NOTE, ""]
    records = retention["stages"]
    for label in labels:
        measures = dict.fromkeys(MetricKey.parse(k).with_direction(None) for k in _recall_keys(per_stage[POLICIES[0]][label], (1, 10)))
        for measure in measures:
            columns = [(str(measure.with_direction(d)), p) for d in DIRECTIONS for p in POLICIES]
            rows = [
                [stage_label(results, record["stage"]), *(fmt((per_stage[p][label].get(k) or [NAN] * len(records))[i]) for k, p in columns)]
                for i, record in enumerate(records)
            ]
            rows.append([f"change since {first}", *(fmt(change[p][label].get(k, NAN)) for k, p in columns)])
            parts += [*markdown_table([f"{label} {measure}", *HEADS], rows), ""]
    return parts


def pretrained_summary_lines(results: dict[str, Any], recall: MetricKey) -> list[str]:
    """The console summary's lines: forward transfer, Transfer, Avg, Last and each retention
    set's change of `recall` (a direction-free recall key), when the run has them."""
    i2t, t2i = (str(recall.with_direction(d)) for d in DIRECTIONS)
    lines = []
    for name in PRETRAINED_METRICS:
        if name in results:
            f = results[name]
            unit = " (points)" if name == "forward_transfer" else ""  # a difference; the others are recalls
            lines.append(f"{name} of R@{recall.k}{unit}: " + ", ".join(f"{p} i2t {fmt(f[p].get(i2t))} / t2i {fmt(f[p].get(t2i))}" for p in f))
    for label in results.get("retention", {}).get("per_stage", {}).get(POLICIES[0], {}):
        change = results["retention"]["retention"]
        lines.append(
            f"retention of R@{recall.k} on {label} (points since before training): "
            + ", ".join(f"{p} i2t {fmt(change[p][label].get(i2t))} / t2i {fmt(change[p][label].get(t2i))}" for p in POLICIES)
        )
    return lines


def retention_value(r: dict[str, Any], policy: str, label: str, key: str, *, when: str) -> float | None:
    """A run's value on retention set `label`: `when` = "first" (before training), "last" (after the
    last stage) or "change" (the retention: last minus first); None when it has none."""
    retention = r.get("retention", {})
    if when == "change":
        return retention.get("retention", {}).get(policy, {}).get(label, {}).get(key)
    values = retention.get("per_stage", {}).get(policy, {}).get(label, {}).get(key)
    return (values[0] if when == "first" else values[-1]) if values else None


def retention_labels(results: Sequence[dict[str, Any]]) -> list[str]:
    """The retention sets' labels of these runs, first seen first."""
    return list(dict.fromkeys(label for r in results for label in r.get("retention", {}).get("per_stage", {}).get(POLICIES[0], {})))


def pretrained_tables(runs: dict[str, list[dict[str, Any]]], *, metric: str) -> list[str]:
    """Markdown lines of a suite report: forward transfer, Transfer, Avg and Last of `metric`, then per
    retention set its value before training and after the last task and its change, one row per group
    of runs that have them (mean ± std [95% interval] over seeds); none when no run has them."""
    measure = MetricKey.parse(metric)
    keys = [(str(measure.with_direction(d)), p) for d in DIRECTIONS for p in POLICIES]
    groups = [(label, rs) for label, rs in sorted(runs.items()) if any("forward_transfer" in r or "retention" in r for r in rs)]
    parts: list[str] = []
    for name in PRETRAINED_METRICS:
        rows = [
            [f"{label} ({seeds(len(rs))})", *(stat_cell(mean_std([r.get(name, {}).get(p, {}).get(k) for r in rs])) for k, p in keys)]
            for label, rs in groups
            if any(name in r for r in rs)
        ]
        if rows:
            parts += [f"{PRETRAINED_METRIC_TITLES[name]} of {metric}:", "", *markdown_table(["run", *HEADS], rows), ""]
    for set_label in retention_labels([r for _, rs in groups for r in rs]):
        having = [(label, rs) for label, rs in groups if any(retention_value(r, POLICIES[0], set_label, keys[0][0], when="first") is not None for r in rs)]
        values = [
            [
                f"{label} ({seeds(len(rs))})",
                *(
                    stat_cell(mean_std([retention_value(r, p, set_label, k, when=when) for r in rs]))
                    for d in DIRECTIONS
                    for k, p, when in [(str(measure.with_direction(d)), POLICIES[0], "first")]
                    + [(str(measure.with_direction(d)), p, "last") for p in POLICIES]
                ),
            ]
            for label, rs in having
        ]
        changes = [
            [f"{label} ({seeds(len(rs))})", *(stat_cell(mean_std([retention_value(r, p, set_label, k, when="change") for r in rs])) for k, p in keys)]
            for label, rs in having
        ]
        heads = [f"{d} {what}" for d in DIRECTIONS for what in (BEFORE_TRAINING, *(f"last, {POLICY_LABELS[p]}" for p in POLICIES))]
        parts += [
            f"Retention set {set_label}: {metric} before training and after the last task (held out, never trained on):",
            "",
            *markdown_table(["run", *heads], values),
            "",
            f"Retention on {set_label}: change of {metric} since before training (negative: something of the start was lost, ranks too):",
            "",
            *markdown_table(["run", *HEADS], changes),
            "",
        ]
    return parts


def pretrained_stats(runs: Sequence[dict[str, Any]], policy: str, key: str) -> list[tuple[str, tuple[float, float, int]]]:
    """(name, `mean_std` over the runs) of forward transfer, Transfer, Avg, Last and each retention
    set's change (`retention <label>`) of `key` under `policy`: the comparison CSV's extra rows
    (a count of 0 where the runs have none)."""
    stats = [(name, mean_std([r.get(name, {}).get(policy, {}).get(key) for r in runs])) for name in PRETRAINED_METRICS]
    return stats + [(f"retention {label}", mean_std([retention_value(r, policy, label, key, when="change") for r in runs])) for label in retention_labels(runs)]
