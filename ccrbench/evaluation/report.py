"""Results of a run: task x stage matrices, forgetting, and tables in the paper's layout."""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

from ccrbench.evaluation.protocol import ALL_TASKS, AVERAGE, DIRECTIONS, POLICIES

NAN = float("nan")


def stage_matrices(stages: Sequence[dict[str, Any]], num_tasks: int) -> dict[str, dict[str, list[list[float]]]]:
    """{policy: {metric: [stage][task]}}, NaN where a task was not seen yet."""
    out: dict[str, dict[str, list[list[float]]]] = {}
    for policy in POLICIES:
        keys = next(iter(stages[0]["metrics"][policy].values())).keys()
        out[policy] = {
            key: [[s["metrics"][policy].get(str(t), {}).get(key, NAN) for t in range(num_tasks)] for s in stages]
            for key in keys
        }
    return out


def forgetting(matrix: Sequence[Sequence[float]], *, higher_is_better: bool = True) -> float:
    """Mean over all but the last learned task of (value right after learning it - final value).

    The task learned at stage s is the one that first appears at stage s. NaN when
    fewer than two stages exist (e.g. joint training). For ranks (lower is better) the
    sign is flipped so that positive always means forgetting.
    """
    if len(matrix) < 2:
        return NAN
    drops = []
    final = matrix[-1]
    for task in range(len(final)):
        first = next((s for s, row in enumerate(matrix) if not math.isnan(row[task])), None)
        if first is None or first == len(matrix) - 1:
            continue
        drop = matrix[first][task] - final[task]
        drops.append(drop if higher_is_better else -drop)
    return sum(drops) / len(drops) if drops else NAN


def summarize(stages: Sequence[dict[str, Any]], task_names: Sequence[str]) -> dict[str, Any]:
    """Everything results.json holds besides the config: stages, matrices, forgetting."""
    matrices = stage_matrices(stages, len(task_names))
    per_stage = {
        policy: {
            scope: {key: [s["metrics"][policy][scope][key] for s in stages] for key in stages[0]["metrics"][policy][scope]}
            for scope in (AVERAGE, ALL_TASKS)
        }
        for policy in POLICIES
    }
    forget = {
        policy: {key: forgetting(m, higher_is_better=not key.endswith(("medr", "meanr"))) for key, m in ms.items()}
        for policy, ms in matrices.items()
    }
    return {
        "task_names": list(task_names),
        "stages": list(stages),
        "matrices": matrices,
        "per_stage": per_stage,
        "forgetting": forget,
        "final": stages[-1]["metrics"],
    }


def _fmt(x: float) -> str:
    return "-" if x is None or (isinstance(x, float) and math.isnan(x)) else f"{x:.1f}"


def paper_table(results: dict[str, Any], *, metric: str = "r10") -> str:
    """Final-stage table in the layout of the paper's Tables 1-2 (markdown).

    Rows: each task (known task), average (known task), all tasks (unknown task).
    Columns: im2txt and txt2im, each under reindexing and no reindexing.
    """
    final, names = results["final"], results["task_names"]
    dirs = [d for d in DIRECTIONS if f"{d}_{metric}" in final["reindex"][ALL_TASKS]]
    heads = [f"{'im2txt' if d == 'i2t' else 'txt2im'} {'reindex' if p == 'reindex' else 'no reindex'}" for d in dirs for p in POLICIES]
    lines = [f"| task ({metric}) | " + " | ".join(heads) + " |", "|---" * (len(heads) + 1) + "|"]
    for scope, label in [*((str(t), n) for t, n in enumerate(names)), (AVERAGE, "average"), (ALL_TASKS, "all tasks")]:
        cells = [_fmt(final[p].get(scope, {}).get(f"{d}_{metric}", NAN)) for d in dirs for p in POLICIES]
        lines.append(f"| {label} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def stage_table(results: dict[str, Any], *, policy: str, key: str) -> str:
    """Task x stage matrix of one metric (rows: stage after training; columns: tasks)."""
    names = results["task_names"]
    m = results["matrices"][policy][key]
    per = results["per_stage"][policy]
    lines = [
        f"| {policy} {key} | " + " | ".join(names) + " | average | all tasks |",
        "|---" * (len(names) + 3) + "|",
    ]
    for s, row in enumerate(m):
        label = f"after {names[s]}" if len(m) == len(names) else f"stage {s}"
        cells = [*map(_fmt, row), _fmt(per[AVERAGE][key][s]), _fmt(per[ALL_TASKS][key][s])]
        lines.append(f"| {label} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def markdown_report(results: dict[str, Any], *, title: str) -> str:
    """The run's results.md: paper tables for R@K and ranks, stage matrices, forgetting."""
    final = results["final"]["reindex"][ALL_TASKS]
    ks = [k[len("i2t_r"):] for k in final if k.startswith("i2t_r")] or [k[len("t2i_r"):] for k in final if k.startswith("t2i_r")]
    parts = [f"# {title}", "", "## After the last task (paper layout)", ""]
    for metric in [f"r{k}" for k in ks] + ["medr", "meanr"]:
        parts += [paper_table(results, metric=metric), ""]
    parts += ["## Task x stage matrices", ""]
    for key in [k for k in results["matrices"]["reindex"] if k.endswith(("_r1", "_r10"))]:
        for policy in POLICIES:
            parts += [stage_table(results, policy=policy, key=key), ""]
    parts += ["## Average forgetting (value right after learning a task - final value)", ""]
    keys = [k for k in results["forgetting"]["reindex"] if "_r" in k and not k.endswith("meanr")]
    parts += ["| policy | " + " | ".join(keys) + " |", "|---" * (len(keys) + 1) + "|"]
    for policy in POLICIES:
        parts.append(f"| {policy} | " + " | ".join(_fmt(results["forgetting"][policy][k]) for k in keys) + " |")
    return "\n".join(parts) + "\n"


def run_label(config: dict[str, Any]) -> str:
    """A short name for a run from its resolved config, e.g. "ewc-im" or "mas (decoupled)"."""
    strategy = config["strategy"]
    name = strategy["name"]
    branch = strategy.get("branches", "both")
    if config.get("decoupled"):
        return f"{name} (decoupled)"
    return name if branch == "both" else f"{name}-{'im' if branch == 'image' else 'txt'}"


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


def comparison_table(runs: dict[str, dict[str, Any]], *, direction: str, metric: str = "r10") -> str:
    """The paper's table layout for one direction, over runs keyed by `run_label`.

    Joint columns, then continual runs under reindexing and under no reindexing; the best
    continual value of each row is in bold. Missing runs are left out.
    """
    names = next(iter(runs.values()))["task_names"]
    query = "im" if direction == "i2t" else "txt"
    columns = [(title.format(q=query), label, policy) for title, label, policy in PAPER_COLUMNS if label in runs]
    heads = [f"{t} ({'joint' if l.startswith('joint') else 'reindex' if p == 'reindex' else 'no reindex'})" for t, l, p in columns]
    key = f"{direction}_{metric}"
    lines = [f"| {direction} {metric} | " + " | ".join(heads) + " |", "|---" * (len(heads) + 1) + "|"]
    for scope, label in [*((str(t), n) for t, n in enumerate(names)), (AVERAGE, "average"), (ALL_TASKS, "all tasks")]:
        values = [runs[l]["final"][p].get(scope, {}).get(key) for _, l, p in columns]
        continual = [v for (_, l, _), v in zip(columns, values) if not l.startswith("joint") and v is not None]
        best = max(continual) if continual and not metric.endswith(("medr", "meanr")) else min(continual, default=None)
        cells = [("**" + _fmt(v) + "**") if v is not None and v == best and not l.startswith("joint") else _fmt(v) for (_, l, _), v in zip(columns, values)]
        lines.append(f"| {label} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def comparison_report(results: Sequence[dict[str, Any]], *, metric: str = "r10") -> str:
    """Markdown comparing runs in the paper's layout, one section per architecture.

    Runs are grouped by `model.shared_layers` ("no sharing" / "sharing N layers"); within a
    group each run label (see `run_label`) must appear once.
    """
    groups: dict[int, dict[str, dict[str, Any]]] = {}
    for r in results:
        group = groups.setdefault(r["config"]["model"]["shared_layers"], {})
        label = run_label(r["config"])
        if label in group:
            raise ValueError(f"two runs labelled {label!r} with shared_layers={r['config']['model']['shared_layers']}")
        group[label] = r
    parts = []
    for shared in sorted(groups):
        parts += [f"## Architecture: {'no sharing' if shared == 0 else f'sharing {shared} top layer(s)'}", ""]
        for direction in DIRECTIONS:
            parts += [comparison_table(groups[shared], direction=direction, metric=metric), ""]
        rows = [
            f"| {label} | " + " | ".join(_fmt(r["forgetting"][p].get(f"{d}_{metric}")) for d in DIRECTIONS for p in POLICIES) + " |"
            for label, r in sorted(groups[shared].items())
        ]
        parts += [
            f"Average forgetting of {metric} (points; after learning a task minus final):",
            "",
            "| run | i2t reindex | i2t no reindex | t2i reindex | t2i no reindex |",
            "|---|---|---|---|---|",
            *rows,
            "",
        ]
    return "\n".join(parts)
