"""Plots of finished runs (PNG, matplotlib): stage matrices, forgetting curves, bar charts."""

from __future__ import annotations

import functools
import math
import multiprocessing
import os
from collections.abc import Callable, Sequence
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path
from typing import Any

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
from matplotlib.lines import Line2D  # noqa: E402

from ccrbench.evaluation.keys import ALL_TASKS, AVERAGE, DIAGNOSTICS, DIRECTIONS, POLICIES, POLICY_LABELS, IndexingPolicy, MetricKey  # noqa: E402
from ccrbench.reporting.drift import budget_curve, budget_policies, diagnostics_per_stage  # noqa: E402
from ccrbench.reporting.grouping import Group, group_runs  # noqa: E402
from ccrbench.reporting.statistics import confidence_interval, mean_std  # noqa: E402

DIRECTION_NAMES = {"i2t": "image→text", "t2i": "text→image"}


def stage_matrices(runs: Sequence[dict[str, Any]], path: Path, *, metric: str = "r10", title: str = "") -> Path:
    """Task x stage matrices of `runs` (e.g. the seeds of one group, one row of blocks each):
    both directions and both policies side by side, one image on one axes (a figure of
    axes per matrix costs a report seconds of tick layout)."""
    names = runs[0]["task_names"]
    panels = [(d, p) for d in DIRECTIONS for p in POLICIES]
    keys = {d: str(MetricKey.parse(metric).with_direction(d)) for d in DIRECTIONS}
    blocks = [[r["matrices"][p].get(keys[d], []) for d, p in panels] for r in runs]
    stages = max(len(m) for row in blocks for m in row) or 1
    tasks = len(names)
    grid = np.full((len(runs) * (stages + 1) - 1, len(panels) * (tasks + 1) - 1), np.nan)  # blank lines between blocks
    longest = max(map(len, names))
    cell_w, cell_h = max(0.5, 0.065 * longest), 0.36  # inches; a character of the 8-point labels is about 0.065
    left, right, top, bottom = 0.3 + 0.065 * (len("after ") + longest), 0.8, 0.75, 0.35
    width, height = cell_w * grid.shape[1], cell_h * grid.shape[0]
    fig = plt.figure(figsize=(left + width + right, top + height + bottom))
    ax = fig.add_axes((left / fig.get_figwidth(), bottom / fig.get_figheight(), width / fig.get_figwidth(), height / fig.get_figheight()))
    for row, matrices in enumerate(blocks):
        for col, matrix in enumerate(matrices):
            for s, stage in enumerate(matrix):
                for t, v in enumerate(stage):
                    if v is not None and not math.isnan(v):
                        y, x = row * (stages + 1) + s, col * (tasks + 1) + t
                        grid[y, x] = v
                        ax.text(x, y, f"{v:.0f}", ha="center", va="center", color="white" if v < 60 else "black", fontsize=8)
        ax.text(grid.shape[1] - 0.3, row * (stages + 1) + (stages - 1) / 2, f"seed {runs[row]['config'].get('seed', '?')}", va="center", fontsize=8)
    ax.imshow(grid, vmin=0, vmax=100, cmap=matplotlib.colormaps["viridis"].with_extremes(bad="white"), aspect="auto")
    for col, (direction, policy) in enumerate(panels):
        ax.text(col * (tasks + 1) + (tasks - 1) / 2, -0.7, f"{DIRECTION_NAMES[direction]}, {POLICY_LABELS[policy]}", ha="center", fontsize=9)
    ax.set_xticks([c * (tasks + 1) + t for c in range(len(panels)) for t in range(tasks)], names * len(panels), fontsize=8)
    stage_labels = [f"after {names[s]}" if stages == tasks else "after all tasks" if stages == 1 else f"stage {s}" for s in range(stages)]
    ax.set_yticks([r * (stages + 1) + s for r in range(len(runs)) for s in range(stages)], stage_labels * len(runs), fontsize=8)
    ax.tick_params(length=0)
    ax.set_frame_on(False)
    fig.suptitle(f"{title}: {metric} per task (columns) after each stage (rows)" if title else f"{metric} per task (columns) after each stage (rows)", fontsize=10)
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path


def _stems(groups: Sequence[Group]) -> list[str]:
    """A file name for each group: the `__`-separated parts its runs' names share (the seed
    left out), else its first run's name."""
    stems = []
    for g in groups:
        parts = [p for p in g.names[0].split("__") if all(p in n.split("__") for n in g.names)]
        stems.append("__".join(parts) or g.names[0])
    return [stem if stems.count(stem) == 1 else g.names[0] for stem, g in zip(stems, groups)]


def _fixed_layout(fig: Any, rows: int, cols: int, *, left: float, right: float, top: float, bottom: float, gap_w: float, gap_h: float) -> None:
    """Margins and gaps between axes in inches, for a grid whose labels' sizes are known
    (`tight_layout` would draw the figure once more to measure them)."""
    width, height = fig.get_size_inches()
    axes_w = (width - left - right - (cols - 1) * gap_w) / cols
    axes_h = (height - top - bottom - (rows - 1) * gap_h) / rows
    fig.subplots_adjust(left=left / width, right=1 - right / width, top=1 - top / height, bottom=bottom / height,
                        wspace=gap_w / axes_w, hspace=gap_h / axes_h)  # fmt: skip


def _series(groups: Sequence[Group]) -> list[tuple[str, tuple[dict[str, Any], ...]]]:
    """(legend label, runs) of each group; the setting is named when there are several."""
    several = len({g.setting for g in groups}) > 1
    return [(g.label + (f"\n[{g.setting}]" if several else ""), g.runs) for g in groups]


def forgetting_curves(results: Sequence[dict[str, Any]], path: Path, *, metric: str = "r10", names: Sequence[str] | None = None) -> Path:
    """Each task's recall across stages (columns), one row per setting and direction, one line
    per group of runs (mean over seeds; solid: reindex, dashed: no reindex), each setting's
    legend beside its rows."""
    multi = [i for i, r in enumerate(results) if len(r["stages"]) > 1]
    groups = group_runs([results[i] for i in multi], None if names is None else [names[i] for i in multi])
    settings = list(dict.fromkeys(g.setting for g in groups))
    tasks = list(dict.fromkeys(n for g in groups for n in g.runs[0]["task_names"]))  # every task, by name
    same_order = all(g.runs[0]["task_names"] == tasks for g in groups)
    stages = max(len(g.runs[0]["stages"]) for g in groups)
    rows = [(setting, direction) for setting in settings for direction in DIRECTIONS]
    fig, axes = plt.subplots(
        len(rows), len(tasks) + 1, figsize=(4 * len(tasks) + 3, 3 * len(rows)), sharex=True, sharey=True, squeeze=False,
        gridspec_kw={"width_ratios": [4] * len(tasks) + [3]},
    )
    colours = plt.rcParams["axes.prop_cycle"].by_key()["color"]
    styles = {"reindex": "-", "noreindex": "--"}
    for row, (setting, direction) in enumerate(rows):
        members = [g for g in groups if g.setting == setting]
        key = str(MetricKey.parse(metric).with_direction(direction))
        for t, name in enumerate(tasks):
            ax = axes[row][t]
            for i, g in enumerate(members):
                if name not in g.runs[0]["task_names"] or key not in g.runs[0]["matrices"]["reindex"]:
                    continue
                column = g.runs[0]["task_names"].index(name)  # this task in these runs' own order
                xs = range(len(g.runs[0]["stages"]))
                for policy, style in styles.items():
                    ys = [mean_std([r["matrices"][policy][key][s][column] for r in g.runs])[0] for s in xs]
                    ax.plot(list(xs), ys, style, marker="o", markersize=4, color=colours[i % len(colours)])
            ax.set_title(f"{DIRECTION_NAMES[direction]}, task {name}", fontsize=10)
            ax.set_xticks(range(stages), [f"after {n}" for n in tasks] if same_order else [f"stage {s}" for s in range(stages)], fontsize=8)
            ax.set_xlim(-0.4, stages - 0.6)  # room for the end labels
            ax.set_ylim(0, 100)
            ax.grid(alpha=0.3)
        axes[row][0].set_ylabel(f"{DIRECTION_NAMES[direction]} {metric}")
        legend = axes[row][-1]
        legend.axis("off")
        if direction == DIRECTIONS[0]:
            handles = [Line2D([], [], color=colours[i % len(colours)], marker="o", label=g.label) for i, g in enumerate(members)]
            handles += [Line2D([], [], color="black", linestyle=style, label=POLICY_LABELS[policy]) for policy, style in styles.items()]
            legend.legend(handles=handles, loc="upper left", fontsize=8, title=setting, title_fontsize=8, frameon=False)
    _fixed_layout(fig, len(rows), len(tasks) + 1, left=0.8, right=0.1, top=0.35, bottom=0.4, gap_w=0.3, gap_h=0.4)
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
    runs (mean over seeds): a colour per strategy label, a line style per setting, the legend
    in a cell of its own."""
    groups = group_runs(results, names)
    titles = dict(DIAGNOSTICS)
    series = [(g, runs) for g in groups if any(k in (runs := [diagnostics_per_stage(r) for r in g.runs])[0] for k in titles)]
    keys = [k for k in titles if any(k in runs[0] for _, runs in series)]
    colours = plt.rcParams["axes.prop_cycle"].by_key()["color"]
    colour = {label: colours[i % len(colours)] for i, label in enumerate(dict.fromkeys(g.label for g, _ in series))}
    style = {setting: ("-", "--", ":", "-.")[i % 4] for i, setting in enumerate(dict.fromkeys(g.setting for g, _ in series))}
    cols, rows = 4, math.ceil((len(keys) + 1) / 4)
    fig, axes = plt.subplots(rows, cols, figsize=(4 * cols, 3 * rows), sharex=True, squeeze=False)
    for ax, key in zip(axes.flat, keys):
        for g, runs in series:
            if key in runs[0]:
                learned = [len(stage["tasks"]) for stage in g.runs[0]["stages"]]
                ys = [mean_std([r[key][s] for r in runs])[0] for s in range(len(learned))]
                ax.plot(learned, ys, style[g.setting], marker="o", markersize=4, color=colour[g.label])
        ax.set_title(titles[key], fontsize=9)
        ax.xaxis.set_major_locator(matplotlib.ticker.MaxNLocator(integer=True))
        ax.tick_params(labelbottom=True)
        ax.grid(alpha=0.3)
    for ax in list(axes.flat)[len(keys):]:
        ax.axis("off")
    fig.supxlabel("tasks learned", fontsize=10)
    handles = [Line2D([], [], color=c, marker="o", label=label) for label, c in colour.items()]
    if len(style) > 1:
        handles += [Line2D([], [], color="black", linestyle=ls, label=setting) for setting, ls in style.items()]
    axes.flat[-1].legend(handles=handles, loc="upper left", fontsize=7, frameon=False)
    _fixed_layout(fig, rows, cols, left=0.6, right=0.15, top=0.3, bottom=0.6, gap_w=0.65, gap_h=0.6)
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path


def plot_all(results: Sequence[dict[str, Any]], names: Sequence[str], folder: Path, *, metric: str = "r10") -> list[Path]:
    """Every plot of a report into `folder`: the stage matrices of each group of runs (its
    seeds together), curves and bars overall; drawn on the machine's cores (`render`)."""
    folder.mkdir(parents=True, exist_ok=True)
    groups = group_runs(results, names)
    jobs = [
        functools.partial(stage_matrices, g.runs, folder / f"matrices_{stem}.png", metric=metric, title=f"{g.label} [{g.setting}]")
        for g, stem in zip(groups, _stems(groups))
    ]
    if any(len(r["stages"]) > 1 for r in results):
        jobs.append(functools.partial(forgetting_curves, results, folder / "curves.png", metric=metric, names=names))
    jobs.append(functools.partial(strategy_bars, results, folder / "bars.png", metric=metric, names=names))
    if any(budget_policies(r) and len(r["stages"]) > 1 for r in results):
        jobs.append(functools.partial(budget_curves, results, folder / "reindex_budget.png", metric=metric, names=names))
    if any("diagnostics" in r["stages"][0] for r in results):
        jobs.append(functools.partial(diagnostics_curves, results, folder / "diagnostics.png", names=names))
    return render(jobs)


_JOBS: list[Callable[[], Path]] = []  # the figures being drawn: forked workers read them from here, unpickled


def _draw(index: int) -> Path:
    return _JOBS[index]()


def render(jobs: Sequence[Callable[[], Path]]) -> list[Path]:
    """Draws each figure (`jobs`: callables returning the file they wrote), in that order; on
    several cores in forked processes, which share the runs' data with this one instead of
    receiving a copy (drawing is most of a report's time: 54 runs' figures take seconds). The
    files are the same either way."""
    global _JOBS
    workers = min(len(jobs), os.cpu_count() or 1)
    if workers < 2 or "fork" not in multiprocessing.get_all_start_methods():
        return [job() for job in jobs]
    _JOBS = list(jobs)
    try:
        with ProcessPoolExecutor(workers, mp_context=multiprocessing.get_context("fork")) as pool:
            return list(pool.map(_draw, range(len(jobs))))
    finally:
        _JOBS = []

