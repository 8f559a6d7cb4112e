"""Plots of finished runs (PNG, matplotlib): stage matrices, forgetting curves, bar charts."""

from __future__ import annotations

import math
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402

from ccrbench.evaluation.protocol import ALL_TASKS, AVERAGE, DIRECTIONS, POLICIES  # noqa: E402
from ccrbench.evaluation.report import group_runs, mean_std, run_label  # noqa: E402

POLICY_NAMES = {"reindex": "reindex", "noreindex": "no reindex"}
DIRECTION_NAMES = {"i2t": "image→text", "t2i": "text→image"}


def stage_heatmaps(results: dict[str, Any], path: Path, *, metric: str = "r10") -> Path:
    """Task x stage matrix of one run, for both directions and both policies."""
    names = results["task_names"]
    fig, axes = plt.subplots(2, 2, figsize=(2.2 + 1.3 * len(names) * 2, 2 + 1.0 * len(results["stages"]) * 2), squeeze=False)
    for row, direction in enumerate(DIRECTIONS):
        for col, policy in enumerate(POLICIES):
            ax = axes[row][col]
            matrix = [[math.nan if v is None else v for v in stage] for stage in results["matrices"][policy].get(f"{direction}_{metric}", [])]
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
            ax.set_title(f"{DIRECTION_NAMES[direction]}, {POLICY_NAMES[policy]}", fontsize=10)
    fig.suptitle(f"{run_label(results['config'])}: {metric} per task (columns) after each stage (rows)")
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path


def forgetting_curves(results: Sequence[dict[str, Any]], path: Path, *, direction: str, metric: str = "r10") -> Path:
    """Each task's recall across stages, one line per strategy (solid: reindex, dashed: no reindex)."""
    groups = group_runs([r for r in results if len(r["stages"]) > 1])
    series = [(label + (f", shared {s}" if s else ""), rs) for s in sorted(groups) for label, rs in sorted(groups[s].items())]
    names = results[0]["task_names"]
    key = f"{direction}_{metric}"
    fig, axes = plt.subplots(1, len(names), figsize=(4 * len(names), 3.4), sharey=True, squeeze=False)
    colours = plt.rcParams["axes.prop_cycle"].by_key()["color"]
    for t, name in enumerate(names):
        ax = axes[0][t]
        for i, (label, rs) in enumerate(series):
            for policy, style in (("reindex", "-"), ("noreindex", "--")):
                stages = range(len(rs[0]["stages"]))
                ys = [mean_std([r["matrices"][policy][key][s][t] for r in rs])[0] for s in stages]
                ax.plot(list(stages), ys, style, marker="o", color=colours[i % len(colours)], label=f"{label} ({POLICY_NAMES[policy]})")
        ax.set_title(f"task {name}")
        ax.set_xticks(range(len(names)), [f"after {n}" for n in names], fontsize=8)
        ax.set_ylim(0, 100)
        ax.grid(alpha=0.3)
    axes[0][0].set_ylabel(f"{DIRECTION_NAMES[direction]} {metric}")
    axes[0][-1].legend(fontsize=7, loc="lower left", bbox_to_anchor=(1.02, 0))
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path


def strategy_bars(results: Sequence[dict[str, Any]], path: Path, *, metric: str = "r10") -> Path:
    """Final average (known task) and all-task (unknown task) recall of every run label."""
    groups = group_runs(results)
    labels = [(shared, label) for shared in sorted(groups) for label in sorted(groups[shared])]
    fig, axes = plt.subplots(1, 2, figsize=(max(8, 0.9 * len(labels) + 3), 4), sharey=True)
    bars = [(scope, policy) for scope in (AVERAGE, ALL_TASKS) for policy in POLICIES]
    width = 0.8 / len(bars)
    for ax, direction in zip(axes, DIRECTIONS):
        for b, (scope, policy) in enumerate(bars):
            stats = [mean_std([r["final"][policy][scope].get(f"{direction}_{metric}") for r in groups[s][lab]]) for s, lab in labels]
            xs = [i + (b - (len(bars) - 1) / 2) * width for i in range(len(labels))]
            ax.bar(xs, [m for m, _, _ in stats], width, yerr=[sd for _, sd, _ in stats], label=f"{'known task avg' if scope == AVERAGE else 'all tasks'}, {POLICY_NAMES[policy]}")
        ax.set_xticks(range(len(labels)), [f"{lab}" + (f"\n(shared {s})" if s else "") for s, lab in labels], rotation=45, ha="right", fontsize=8)
        ax.set_title(DIRECTION_NAMES[direction])
        ax.grid(axis="y", alpha=0.3)
    axes[0].set_ylabel(metric)
    axes[1].legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path


def plot_all(results: Sequence[dict[str, Any]], names: Sequence[str], folder: Path, *, metric: str = "r10") -> list[Path]:
    """Every plot of a report into `folder`: one heatmap per run, curves and bars overall."""
    folder.mkdir(parents=True, exist_ok=True)
    paths = [stage_heatmaps(r, folder / f"matrix_{n}.png", metric=metric) for r, n in zip(results, names)]
    if any(len(r["stages"]) > 1 for r in results):
        paths += [forgetting_curves(results, folder / f"curves_{d}.png", direction=d, metric=metric) for d in DIRECTIONS]
    paths.append(strategy_bars(results, folder / "bars.png", metric=metric))
    return paths
