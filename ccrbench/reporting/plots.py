"""Plots of finished runs (PNG, matplotlib): stage matrices, forgetting curves, bar charts."""

from __future__ import annotations

import math
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402

from ccrbench.evaluation.keys import ALL_TASKS, AVERAGE, DIAGNOSTICS, DIRECTIONS, POLICIES, POLICY_LABELS, IndexingPolicy, MetricKey  # noqa: E402
from ccrbench.reporting.drift import budget_curve, budget_policies, diagnostics_per_stage  # noqa: E402
from ccrbench.reporting.grouping import Group, group_runs, run_label  # noqa: E402
from ccrbench.reporting.statistics import confidence_interval, mean_std  # noqa: E402

DIRECTION_NAMES = {"i2t": "image→text", "t2i": "text→image"}


def stage_heatmaps(results: dict[str, Any], path: Path, *, metric: str = "r10") -> Path:
    """Task x stage matrix of one run, for both directions and both policies."""
    names = results["task_names"]
    fig, axes = plt.subplots(2, 2, figsize=(2.2 + 1.3 * len(names) * 2, 2 + 1.0 * len(results["stages"]) * 2), squeeze=False)
    for row, direction in enumerate(DIRECTIONS):
        for col, policy in enumerate(POLICIES):
            ax = axes[row][col]
            key = str(MetricKey.parse(metric).with_direction(direction))
            matrix = [[math.nan if v is None else v for v in stage] for stage in results["matrices"][policy].get(key, [])]
            if not matrix:
                ax.axis("off")
                continue
            ax.imshow(matrix, vmin=0, vmax=100, cmap="viridis")
            for s, stage in enumerate(matrix):
                for t, v in enumerate(stage):
                    if not math.isnan(v):
                        ax.text(t, s, f"{v:.0f}", ha="center", va="center", color="white" if v < 60 else "black", fontsize=9)
            ax.set_xticks(range(len(names)), names)
            ax.set_yticks(range(len(matrix)), [f"after {names[s]}" if len(matrix) == len(names) else f"stage {s}" for s in range(len(matrix))])
            ax.set_title(f"{DIRECTION_NAMES[direction]}, {POLICY_LABELS[policy]}", fontsize=10)
    fig.suptitle(f"{run_label(results['config'])}: {metric} per task (columns) after each stage (rows)")
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path


def _series(groups: Sequence[Group]) -> list[tuple[str, tuple[dict[str, Any], ...]]]:
    """(legend label, runs) of each group; the setting is named when there are several."""
    several = len({g.setting for g in groups}) > 1
    return [(g.label + (f"\n[{g.setting}]" if several else ""), g.runs) for g in groups]


def forgetting_curves(
    results: Sequence[dict[str, Any]], path: Path, *, direction: str, metric: str = "r10", names: Sequence[str] | None = None
) -> Path:
    """Each task's recall across stages, one line per group of runs (solid: reindex, dashed: no reindex)."""
    multi = [i for i, r in enumerate(results) if len(r["stages"]) > 1]
    groups = group_runs([results[i] for i in multi], None if names is None else [names[i] for i in multi])
    series = _series(groups)
    tasks = list(dict.fromkeys(n for g in groups for n in g.runs[0]["task_names"]))  # every task, by name
    same_order = all(g.runs[0]["task_names"] == tasks for g in groups)
    key = str(MetricKey.parse(metric).with_direction(direction))
    fig, axes = plt.subplots(1, len(tasks), figsize=(4 * len(tasks), 3.4), sharey=True, squeeze=False)
    colours = plt.rcParams["axes.prop_cycle"].by_key()["color"]
    for t, name in enumerate(tasks):
        ax = axes[0][t]
        for i, (label, rs) in enumerate(series):
            if name not in rs[0]["task_names"] or key not in rs[0]["matrices"]["reindex"]:
                continue
            column = rs[0]["task_names"].index(name)  # this task in these runs' own order
            for policy, style in (("reindex", "-"), ("noreindex", "--")):
                stages = range(len(rs[0]["stages"]))
                ys = [mean_std([r["matrices"][policy][key][s][column] for r in rs])[0] for s in stages]
                ax.plot(list(stages), ys, style, marker="o", color=colours[i % len(colours)], label=f"{label} ({POLICY_LABELS[policy]})")
        ax.set_title(f"task {name}")
        stages = max(len(g.runs[0]["stages"]) for g in groups)
        ax.set_xticks(range(stages), [f"after {n}" for n in tasks] if same_order else [f"stage {s}" for s in range(stages)], fontsize=8)
        ax.set_ylim(0, 100)
        ax.grid(alpha=0.3)
    axes[0][0].set_ylabel(f"{DIRECTION_NAMES[direction]} {metric}")
    axes[0][-1].legend(fontsize=7, loc="lower left", bbox_to_anchor=(1.02, 0))
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path


def strategy_bars(results: Sequence[dict[str, Any]], path: Path, *, metric: str = "r10", names: Sequence[str] | None = None) -> Path:
    """Final average (known task) and all-task (unknown task) recall of every group of runs."""
    series = _series(group_runs(results, names))
    fig, axes = plt.subplots(1, 2, figsize=(max(8, 0.9 * len(series) + 3), 4), sharey=True)
    bars = [(scope, policy) for scope in (AVERAGE, ALL_TASKS) for policy in POLICIES]
    width = 0.8 / len(bars)
    for ax, direction in zip(axes, DIRECTIONS):
        for b, (scope, policy) in enumerate(bars):
            key = str(MetricKey.parse(metric).with_direction(direction))
            stats = [mean_std([r["final"][policy][scope].get(key) for r in rs]) for _, rs in series]
            xs = [i + (b - (len(bars) - 1) / 2) * width for i in range(len(series))]
            ax.bar(xs, [m for m, _, _ in stats], width, yerr=[sd for _, sd, _ in stats], label=f"{'known task avg' if scope == AVERAGE else 'all tasks'}, {POLICY_LABELS[policy]}")
        ax.set_xticks(range(len(series)), [label for label, _ in series], rotation=45, ha="right", fontsize=8)
        ax.set_title(DIRECTION_NAMES[direction])
        ax.grid(axis="y", alpha=0.3)
    axes[0].set_ylabel(metric)
    axes[1].legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path


def budget_curves(results: Sequence[dict[str, Any]], path: Path, *, metric: str = "r10", names: Sequence[str] | None = None) -> Path:
    """Final recall against the fraction of the database re-embedded, one curve per selection
    rule, no reindex (0) and reindex (1) at the ends; one row per group of runs with budgets
    (mean over seeds, bars: 95% interval of the mean), columns: both directions, known-task
    average and all-task search."""
    series = [(label, rs) for label, rs in _series(group_runs(results, names)) if budget_policies(rs[0]) and len(rs[0]["stages"]) > 1]
    panels = [(d, scope) for scope in (AVERAGE, ALL_TASKS) for d in DIRECTIONS]
    fig, axes = plt.subplots(len(series), len(panels), figsize=(3.6 * len(panels), 3.2 * len(series)), squeeze=False)
    for row, (label, rs) in enumerate(series):
        rules = list(dict.fromkeys(IndexingPolicy.parse(p).rule for p in budget_policies(rs[0])))
        for col, (direction, scope) in enumerate(panels):
            ax = axes[row][col]
            for rule in rules:
                curves = [budget_curve(r, rule, str(MetricKey.parse(metric).with_direction(direction)), scope) for r in rs]
                xs = [x for x, _ in curves[0]]
                stats = [mean_std([c[i][1] for c in curves]) for i in range(len(xs))]
                ys = [mean for mean, _, _ in stats]
                half = [ys[i] - confidence_interval(*stats[i])[0] for i in range(len(xs))]  # NaN with one seed: no bar
                ax.errorbar(xs, ys, yerr=half, marker="o", capsize=3, label=rule.replace("_", " "))
            ax.set_title(f"{label}\n{DIRECTION_NAMES[direction]}, {'known task avg' if scope == AVERAGE else 'all tasks'}", fontsize=9)
            ax.set_xlabel("fraction of stored items re-embedded")
            ax.set_xlim(-0.03, 1.03)
            ax.grid(alpha=0.3)
        axes[row][0].set_ylabel(metric)
    axes[0][-1].legend(fontsize=8, title="0 = no reindex, 1 = reindex", title_fontsize=7)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path


def diagnostics_curves(results: Sequence[dict[str, Any]], path: Path, *, names: Sequence[str] | None = None) -> Path:
    """Every drift diagnostic after each stage (old tasks' mean; overlap over all tasks) against
    the tasks learned so far (joint training: one point, at the end), one line per group of
    runs (mean over seeds)."""
    series = [(label, rs, [diagnostics_per_stage(r) for r in rs]) for label, rs in _series(group_runs(results, names))]
    labels = dict(DIAGNOSTICS)
    keys = [k for k, _ in DIAGNOSTICS if any(k in runs[0] for _, _, runs in series)]
    cols = 4
    fig, axes = plt.subplots(math.ceil(len(keys) / cols), cols, figsize=(4 * cols, 3 * math.ceil(len(keys) / cols)), squeeze=False)
    for ax, key in zip(axes.flat, keys):
        for label, rs, runs in series:
            if key in runs[0]:
                learned = [len(stage["tasks"]) for stage in rs[0]["stages"]]
                ax.plot(learned, [mean_std([r[key][s] for r in runs])[0] for s in range(len(learned))], marker="o", label=label)
        ax.set_title(labels[key], fontsize=9)
        ax.set_xlabel("tasks learned")
        ax.xaxis.set_major_locator(matplotlib.ticker.MaxNLocator(integer=True))
        ax.grid(alpha=0.3)
    for ax in list(axes.flat)[len(keys):]:
        ax.axis("off")
    axes[0][-1].legend(fontsize=7)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path


def plot_all(results: Sequence[dict[str, Any]], names: Sequence[str], folder: Path, *, metric: str = "r10") -> list[Path]:
    """Every plot of a report into `folder`: one heatmap per run, curves and bars overall."""
    folder.mkdir(parents=True, exist_ok=True)
    paths = [stage_heatmaps(r, folder / f"matrix_{n}.png", metric=metric) for r, n in zip(results, names)]
    if any(len(r["stages"]) > 1 for r in results):
        paths += [forgetting_curves(results, folder / f"curves_{d}.png", direction=d, metric=metric, names=names) for d in DIRECTIONS]
    paths.append(strategy_bars(results, folder / "bars.png", metric=metric, names=names))
    if any(budget_policies(r) and len(r["stages"]) > 1 for r in results):
        paths.append(budget_curves(results, folder / "reindex_budget.png", metric=metric, names=names))
    if any("diagnostics" in r["stages"][0] for r in results):
        paths.append(diagnostics_curves(results, folder / "diagnostics.png", names=names))
    return paths
