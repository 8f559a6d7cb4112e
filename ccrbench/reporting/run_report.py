"""One run's tables: the paper's layout after the last task, task x stage matrices, the
run's results.md, the summary `ccrbench run` prints, and runs side by side (a loss study)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from ccrbench.evaluation.keys import ALL_TASKS, AVERAGE, DIRECTIONS, POLICIES, MetricKey, measure_keys, parse_keys
from ccrbench.io import write_atomic
from ccrbench.markdown import markdown_table
from ccrbench.reporting.common import NAN, fmt, missing
from ccrbench.evaluation.continual import CL_METRICS
from ccrbench.reporting.drift import budget_section, diagnostics_section
from ccrbench.reporting.pretrained import (
    UNLEARNED_NOTE,
    pretrained_metrics_section,
    pretrained_summary_lines,
    retention_section,
    start_row,
    unlearned_cell,
    unlearned_row,
)


def paper_table(results: dict[str, Any], *, metric: str = "r10") -> str:
    """Final-stage table in the layout of the paper's Tables 1-2 (markdown).

    Rows: each task (known task), average (known task), all tasks (unknown task).
    Columns: im2txt and txt2im, each under reindexing and no reindexing.
    """
    final, names = results["final"], results["task_names"]
    measure = MetricKey.parse(metric)
    keys = {d: str(measure.with_direction(d)) for d in DIRECTIONS if str(measure.with_direction(d)) in final["reindex"][ALL_TASKS]}
    heads = [f"{'im2txt' if d == 'i2t' else 'txt2im'} {'reindex' if p == 'reindex' else 'no reindex'}" for d in keys for p in POLICIES]
    rows = [
        [label, *(fmt(final[p].get(scope, {}).get(key, NAN)) for key in keys.values() for p in POLICIES)]
        for scope, label in [*((str(t), n) for t, n in enumerate(names)), (AVERAGE, "average"), (ALL_TASKS, "all tasks")]
    ]
    return "\n".join(markdown_table([f"task ({metric})", *heads], rows))


def stage_table(results: dict[str, Any], *, policy: str, key: str) -> str:
    """Task x stage matrix of one metric (rows: stage after training; columns: tasks); for a run
    evaluated before training, a first row before training and, in parentheses, the tasks not
    learned yet (the full matrix)."""
    names = results["task_names"]
    m = results["matrices"][policy][key]
    per = results["per_stage"][policy]
    start = start_row(results, policy=policy, key=key)
    rows = [start] if start else []
    for s, row in enumerate(m):
        full = unlearned_row(results, policy=policy, key=key, stage=s) or row
        cells = [fmt(v) if not missing(v) else unlearned_cell(u) for v, u in zip(row, full)]
        rows.append([f"after {names[s]}" if len(m) == len(names) else f"stage {s}", *cells, fmt(per[AVERAGE][key][s]), fmt(per[ALL_TASKS][key][s])])
    return "\n".join(markdown_table([f"{policy} {key}", *names, "average", "all tasks"], rows))


def markdown_report(results: dict[str, Any], *, title: str) -> str:
    """The run's results.md: paper tables for R@K and ranks, stage matrices, forgetting; for a run
    evaluated before training, the matrices' row 0 and upper triangle, forward transfer, ZSCL's
    metrics and the retention sets."""
    parts = [f"# {title}", "", "## After the last task (paper layout)", ""]
    for measure in measure_keys(results["ks"]):
        parts += [paper_table(results, metric=str(measure)), ""]
    parts += ["## Task x stage matrices", ""]
    for key in [k for k, m in zip(results["matrices"]["reindex"], parse_keys(results["matrices"]["reindex"])) if m.is_recall and m.k in (1, 10)]:
        for policy in POLICIES:
            parts += [stage_table(results, policy=policy, key=key), ""]
    if "full_matrices" in results:
        parts += [UNLEARNED_NOTE, ""]
    parts += [
        "## Continual-learning metrics",
        "",
        "forgetting: mean over old tasks of (best earlier value - final); bwt: mean over old tasks of "
        "(final - value right after learning it); plasticity: mean over tasks of the value right after "
        "learning it; incremental: mean over stages of the known-task average (see docs/metrics.md).",
        "",
    ]
    keys = [k for k, m in zip(results["forgetting"]["reindex"], parse_keys(results["forgetting"]["reindex"])) if m.is_recall]
    rows = [[name, policy, *(fmt(results[name][policy].get(k, NAN)) for k in keys)] for name in CL_METRICS for policy in POLICIES]
    parts += [*markdown_table(["metric", "policy", *keys], rows)]
    parts += ["", *pretrained_metrics_section(results), *retention_section(results), *diagnostics_section(results), *budget_section(results)]
    return "\n".join(parts) + "\n"


def refresh_results_md(run_dir: Path, results: dict[str, Any]) -> bool:
    """Rewrites `run_dir`/results.md from `results` (its results.json) as the current report writes
    it, keeping its title line, so that a run written by an older ccrbench shows every section its
    results allow (e.g. row 0 and the retention sets); a run without results.md is left alone.

    Returns:
        Whether results.md changed.
    """
    path = run_dir / "results.md"
    old = path.read_text(encoding="utf-8") if path.is_file() else ""
    if not old.startswith("# "):
        return False
    text = markdown_report(results, title=old.split("\n", 1)[0].removeprefix("# "))
    if text == old:
        return False
    write_atomic(path, lambda f: f.write(text))
    return True


def run_summary(results: dict[str, Any]) -> str:
    """What `ccrbench run` prints: R@10 (else the largest K) after the last task in the paper's
    layout and, over several stages, its task x stage matrices and continual-learning metrics;
    with an evaluation before training, forward transfer, ZSCL's metrics and the retention sets."""
    ks = results["ks"]
    recall = MetricKey("r", None, 10 if 10 in ks else max(ks))  # R@10, the paper's measure, when evaluated
    i2t, t2i = (str(recall.with_direction(d)) for d in DIRECTIONS)
    config = results["config"]
    parts = [f"\n{config['strategy']['name']} on {config['benchmark']['name']}: Recall@{recall.k} after the last task\n"]
    parts.append(paper_table(results, metric=str(recall)))
    if len(results["stages"]) > 1:
        parts.append(f"\nRecall@{recall.k} of each task after each stage (image->text, reindex | no reindex)\n")
        parts += [stage_table(results, policy="reindex", key=i2t), "", stage_table(results, policy="noreindex", key=i2t), ""]
        for name in CL_METRICS:  # formulas: docs/metrics.md
            f = results[name]
            parts.append(f"{name} of R@{recall.k} (points): " + ", ".join(f"{p} i2t {f[p][i2t]:.1f} / t2i {f[p][t2i]:.1f}" for p in POLICIES))
    parts += pretrained_summary_lines(results, recall)  # joint training too: its retention sets
    return "\n".join(parts)


def loss_table(runs: dict[str, dict[str, Any]], *, policy: str = "reindex", scope: str = ALL_TASKS) -> str:
    """Final metrics of several runs side by side, in the layout of a loss study's results table.

    One row per run (keyed by its label, e.g. the loss name); for image->text then
    text->image: R@K for every K evaluated, mean rank and median rank, from the final
    stage under `policy`, for `scope` (default: all tasks, the unknown-task search).
    """
    final = parse_keys(next(iter(runs.values()))["final"][policy][scope])
    heads, keys = [], []
    for direction in DIRECTIONS:
        recalls = sorted(key.k for key in final if key.is_recall and key.direction == direction)
        heads += [f"{direction} R@{k}" for k in recalls] + [f"{direction} meanr", f"{direction} medr"]
        keys += [str(MetricKey(m, direction, k)) for m, k in [*(("r", k) for k in recalls), ("meanr", None), ("medr", None)]]
    rows = [[label, *(fmt(r["final"][policy][scope].get(k, NAN)) for k in keys)] for label, r in runs.items()]
    return "\n".join(markdown_table([f"run ({scope}, {policy})", *heads], rows))
