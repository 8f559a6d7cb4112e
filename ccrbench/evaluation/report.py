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


def mean_std(values: Sequence[float | None]) -> tuple[float, float, int]:
    """Mean, sample standard deviation (0 for one value) and count of the non-missing values."""
    xs = [v for v in values if v is not None and not (isinstance(v, float) and math.isnan(v))]
    if not xs:
        return NAN, NAN, 0
    mean = sum(xs) / len(xs)
    std = math.sqrt(sum((x - mean) ** 2 for x in xs) / (len(xs) - 1)) if len(xs) > 1 else 0.0
    return mean, std, len(xs)


def _cell(stat: tuple[float, float, int], bold: bool) -> str:
    mean, std, n = stat
    text = _fmt(mean) + (f" ± {std:.1f}" if n > 1 else "")
    return f"**{text}**" if bold else text


def group_runs(results: Sequence[dict[str, Any]]) -> dict[int, dict[str, list[dict[str, Any]]]]:
    """{shared_layers: {run label: [results of each seed]}}."""
    groups: dict[int, dict[str, list[dict[str, Any]]]] = {}
    for r in results:
        groups.setdefault(r["config"]["model"]["shared_layers"], {}).setdefault(run_label(r["config"]), []).append(r)
    return groups


def final_stat(runs: Sequence[dict[str, Any]], policy: str, scope: str, key: str) -> tuple[float, float, int]:
    return mean_std([r["final"][policy].get(scope, {}).get(key) for r in runs])


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
    key = f"{direction}_{metric}"
    lower_is_better = metric in ("medr", "meanr")
    lines = [f"| {direction} {metric} | " + " | ".join(heads) + " |", "|---" * (len(heads) + 1) + "|"]
    for scope, label in [*((str(t), n) for t, n in enumerate(names)), (AVERAGE, "average"), (ALL_TASKS, "all tasks")]:
        stats = [final_stat(runs[l], p, scope, key) for _, l, p in columns]
        continual = [st[0] for (_, l, _), st in zip(columns, stats) if not l.startswith("joint") and st[2]]
        best = (min if lower_is_better else max)(continual) if continual else None
        cells = [_cell(st, not l.startswith("joint") and st[2] > 0 and st[0] == best) for (_, l, _), st in zip(columns, stats)]
        lines.append(f"| {label} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def comparison_report(results: Sequence[dict[str, Any]], *, metric: str = "r10") -> str:
    """Markdown comparing runs in the paper's layout, one section per architecture.

    Runs are grouped by `model.shared_layers` and by `run_label`; seeds of one label are
    averaged (mean ± std).
    """
    parts = []
    for shared, runs in sorted(group_runs(results).items()):
        parts += [f"## Architecture: {'no sharing' if shared == 0 else f'sharing {shared} top layer(s)'}", ""]
        for direction in DIRECTIONS:
            parts += [comparison_table(runs, direction=direction, metric=metric), ""]
        rows = [
            f"| {label} ({len(rs)} seed{'s' if len(rs) > 1 else ''}) | "
            + " | ".join(_cell(mean_std([r["forgetting"][p].get(f"{d}_{metric}") for r in rs]), False) for d in DIRECTIONS for p in POLICIES)
            + " |"
            for label, rs in sorted(runs.items())
        ]
        parts += [
            f"Average forgetting of {metric} (points; right after learning a task minus final):",
            "",
            "| run | i2t reindex | i2t no reindex | t2i reindex | t2i no reindex |",
            "|---|---|---|---|---|",
            *rows,
            "",
        ]
    return "\n".join(parts)


def comparison_csv(results: Sequence[dict[str, Any]], *, metric: str = "r10") -> str:
    """Long-format CSV of the final metrics: one row per run label, scope, direction, policy."""
    lines = ["shared_layers,run,direction,policy,scope,metric,mean,std,seeds"]
    for shared, runs in sorted(group_runs(results).items()):
        for label, rs in sorted(runs.items()):
            names = rs[0]["task_names"]
            for direction in DIRECTIONS:
                for policy in POLICIES:
                    for scope, scope_name in [*((str(t), n) for t, n in enumerate(names)), (AVERAGE, AVERAGE), (ALL_TASKS, "all tasks")]:
                        mean, std, n = final_stat(rs, policy, scope, f"{direction}_{metric}")
                        if n:
                            lines.append(f'{shared},"{label}",{direction},{policy},{scope_name},{metric},{mean:.3f},{std:.3f},{n}')
    return "\n".join(lines) + "\n"


def loss_table(runs: dict[str, dict[str, Any]], *, policy: str = "reindex", scope: str = ALL_TASKS) -> str:
    """Final metrics of several runs side by side, in the layout of a loss study's results table.

    One row per run (keyed by its label, e.g. the loss name); for image->text then
    text->image: R@K for every K evaluated, mean rank and median rank, from the final
    stage under `policy`, for `scope` (default: all tasks, the unknown-task search).
    """
    final = next(iter(runs.values()))["final"][policy][scope]
    heads, keys = [], []
    for direction in DIRECTIONS:
        prefix = f"{direction}_r"
        ks = sorted(int(k[len(prefix) :]) for k in final if k.startswith(prefix) and k[len(prefix) :].isdigit())
        heads += [f"{direction} R@{k}" for k in ks] + [f"{direction} meanr", f"{direction} medr"]
        keys += [f"{prefix}{k}" for k in ks] + [f"{direction}_meanr", f"{direction}_medr"]
    lines = [f"| run ({scope}, {policy}) | " + " | ".join(heads) + " |", "|---" * (len(heads) + 1) + "|"]
    for label, r in runs.items():
        lines.append(f"| {label} | " + " | ".join(_fmt(r["final"][policy][scope].get(k, NAN)) for k in keys) + " |")
    return "\n".join(lines)
