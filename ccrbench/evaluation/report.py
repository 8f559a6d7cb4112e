"""Results of a run: task x stage matrices, forgetting, and tables in the paper's layout."""

from __future__ import annotations

import json
import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from ccrbench.config import flatten
from ccrbench.evaluation.drift_report import (
    DIAGNOSTICS,
    budget_policies,
    budget_section,
    diagnostics_per_stage,
    diagnostics_section,
    policy_title,
    reembedded_fraction,
)
from ccrbench.evaluation.protocol import ALL_TASKS, AVERAGE, DIRECTIONS, POLICIES
from ccrbench.evaluation.reindexing import RULES, policy_name
from ccrbench.registry import ConfigError

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


def _learned_at(matrix: Sequence[Sequence[float]]) -> list[int | None]:
    """Per task, the stage at which it was learned: the first stage where it has a value."""
    return [next((s for s, row in enumerate(matrix) if not math.isnan(row[t])), None) for t in range(len(matrix[-1]))]


def _mean(xs: Sequence[float]) -> float:
    return sum(xs) / len(xs) if xs else NAN


def forgetting(matrix: Sequence[Sequence[float]], *, higher_is_better: bool = True) -> float:
    """Average forgetting: mean over old tasks of (best value before the last stage - final value).

    Old tasks are those learned before the last stage (the task learned at stage s is the
    one that first appears at stage s). NaN when fewer than two stages exist (e.g. joint
    training). For ranks (lower is better) the best value is the lowest and the sign is
    flipped, so that positive always means forgetting.
    """
    if len(matrix) < 2:
        return NAN
    sign = 1.0 if higher_is_better else -1.0
    drops = [
        max(sign * row[t] for row in matrix[first:-1]) - sign * matrix[-1][t]
        for t, first in enumerate(_learned_at(matrix))
        if first is not None and first < len(matrix) - 1
    ]
    return _mean(drops)


def backward_transfer(matrix: Sequence[Sequence[float]], *, higher_is_better: bool = True) -> float:
    """BWT: mean over old tasks of (final value - value right after learning the task).

    Negative means forgetting, positive that later tasks helped the old ones (for ranks
    the sign is flipped, so positive still means the old tasks improved). NaN with fewer
    than two stages.
    """
    if len(matrix) < 2:
        return NAN
    sign = 1.0 if higher_is_better else -1.0
    return _mean(
        [sign * (matrix[-1][t] - matrix[first][t]) for t, first in enumerate(_learned_at(matrix)) if first is not None and first < len(matrix) - 1]
    )


def plasticity(matrix: Sequence[Sequence[float]]) -> float:
    """Mean over tasks of the value right after learning the task (how well new tasks are learned)."""
    return _mean([matrix[first][t] for t, first in enumerate(_learned_at(matrix)) if first is not None])


def incremental(averages: Sequence[float]) -> float:
    """Mean over stages of the known-task average (the area under its curve, per stage)."""
    return _mean(list(averages))


CL_METRICS = ("forgetting", "bwt", "plasticity", "incremental")
CL_METRIC_TITLES = {
    "forgetting": "Average forgetting (points; best earlier value minus final, over old tasks)",
    "bwt": "Backward transfer (final minus right after learning, over old tasks; negative = forgetting)",
    "plasticity": "Plasticity (right after learning each task)",
    "incremental": "Incremental (known-task average, averaged over stages)",
}


def summarize(stages: Sequence[dict[str, Any]], task_names: Sequence[str]) -> dict[str, Any]:
    """Everything results.json holds besides the config: stages, matrices and the continual-learning
    metrics of every key under each policy (`forgetting`, `bwt`, `plasticity`, `incremental`)."""
    matrices = stage_matrices(stages, len(task_names))
    per_stage = {
        policy: {
            scope: {key: [s["metrics"][policy][scope][key] for s in stages] for key in stages[0]["metrics"][policy][scope]}
            for scope in (AVERAGE, ALL_TASKS)
        }
        for policy in POLICIES
    }
    higher = {key: not key.endswith(("medr", "meanr")) for ms in matrices.values() for key in ms}
    return {
        "task_names": list(task_names),
        "stages": list(stages),
        "matrices": matrices,
        "per_stage": per_stage,
        "forgetting": {p: {k: forgetting(m, higher_is_better=higher[k]) for k, m in ms.items()} for p, ms in matrices.items()},
        "bwt": {p: {k: backward_transfer(m, higher_is_better=higher[k]) for k, m in ms.items()} for p, ms in matrices.items()},
        "plasticity": {p: {k: plasticity(m) for k, m in ms.items()} for p, ms in matrices.items()},
        "incremental": {p: {k: incremental(v) for k, v in per_stage[p][AVERAGE].items()} for p in POLICIES},
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
    parts += [
        "## Continual-learning metrics",
        "",
        "forgetting: mean over old tasks of (best earlier value - final); bwt: mean over old tasks of "
        "(final - value right after learning it); plasticity: mean over tasks of the value right after "
        "learning it; incremental: mean over stages of the known-task average (see docs/metrics.md).",
        "",
    ]
    keys = [k for k in results["forgetting"]["reindex"] if "_r" in k and not k.endswith("meanr")]
    parts += ["| metric | policy | " + " | ".join(keys) + " |", "|---" * (len(keys) + 2) + "|"]
    for name in CL_METRICS:
        for policy in POLICIES:
            parts.append(f"| {name} | {policy} | " + " | ".join(_fmt(results[name][policy].get(k, NAN)) for k in keys) + " |")
    parts += ["", *diagnostics_section(results), *budget_section(results)]
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


def confidence_interval(mean: float, std: float, n: int, *, level: float = 0.95) -> tuple[float, float]:
    """Student t interval of a mean from the sample standard deviation of n values (NaN if n < 2)."""
    if n < 2:
        return NAN, NAN
    from scipy.stats import t  # imported here: scipy is slow to import and only reports need it

    half = float(t.ppf(0.5 + level / 2, n - 1)) * std / math.sqrt(n)
    return mean - half, mean + half


def _cell(stat: tuple[float, float, int], bold: bool, *, digits: int = 1) -> str:
    """'mean', or 'mean ± std [95% CI]' over several seeds."""
    mean, std, n = stat
    text = "-" if math.isnan(mean) else f"{mean:.{digits}f}"
    if n > 1:
        low, high = confidence_interval(mean, std, n)
        text += f" ± {std:.{digits}f} [{low:.{digits}f}, {high:.{digits}f}]"
    return f"**{text}**" if bold else text


@dataclass(frozen=True)
class Group:
    """Runs that differ only in their seed: one entry (a column, a bar, a line) of a report.

    Attributes:
        label: the `run_label`, followed by the config keys that tell it apart when other
            groups of its setting share that label, e.g. "finetune (train.lr=0.1)".
        setting: what a table's rows are: the architecture, and the benchmark with its task
            list when the runs used several; groups of one setting make one section.
        runs: the results of each seed.
        names: the runs' names (their directories).
    """

    label: str
    setting: str
    runs: tuple[dict[str, Any], ...]
    names: tuple[str, ...]


def _identity(r: dict[str, Any]) -> str:
    """What runs of one group share: every config key but the seed, the tasks, the metric keys."""
    config = {k: v for k, v in r["config"].items() if k != "seed"}
    return json.dumps([config, r["task_names"], sorted(r["final"]["reindex"][ALL_TASKS])], sort_keys=True)


def _differing(configs: Sequence[dict[str, Any]], skip: tuple[str, ...] = ("seed",)) -> list[str]:
    """The dotted config keys whose values are not the same in all `configs`."""
    flat = [flatten(c) for c in configs]
    keys = sorted({k for f in flat for k in f} - set(skip))
    return [k for k in keys if len({json.dumps(f.get(k), sort_keys=True) for f in flat}) > 1]


def _describe(config: dict[str, Any], keys: Sequence[str]) -> str:
    flat = flatten(config)
    return ", ".join(f"{k}={v if isinstance(v := flat.get(k), str) else json.dumps(v)}" for k in keys)


def group_runs(results: Sequence[dict[str, Any]], names: Sequence[str] | None = None) -> list[Group]:
    """Groups runs that agree on the benchmark (name, options, task list), the metric keys
    and every config key except the seed; others are kept apart, with distinct labels.

    Returns:
        The groups, by setting (architecture first) then label.
    """
    names = list(names) if names is not None else [f"run {i}" for i in range(len(results))]
    buckets: dict[str, list[int]] = {}
    for i, r in enumerate(results):
        buckets.setdefault(_identity(r), []).append(i)
    firsts = [results[members[0]] for members in buckets.values()]
    settings = [(r["config"]["model"]["shared_layers"], json.dumps([r["config"].get("benchmark"), r["task_names"]], sort_keys=True)) for r in firsts]
    benchmark_keys = _differing([r["config"].get("benchmark", {}) for r in firsts], skip=("tasks", "task_names"))
    several_benchmarks = len({b for _, b in settings}) > 1

    def setting_title(r: dict[str, Any]) -> str:
        shared = r["config"]["model"]["shared_layers"]
        title = f"Architecture: {'no sharing' if shared == 0 else f'sharing {shared} top layer(s)'}"
        if several_benchmarks:
            benchmark = r["config"].get("benchmark", {})
            options = _describe(benchmark, benchmark_keys)
            title += f"; {benchmark.get('name', 'benchmark')} on {', '.join(r['task_names'])}" + (f" ({options})" if options else "")
        return title

    groups = []
    for order, setting in enumerate(sorted(dict.fromkeys(settings), key=lambda s: s[0])):  # stable: first seen first
        members = [(r, m) for r, m, s in zip(firsts, buckets.values(), settings) if s == setting]
        for r, m in members:
            label = run_label(r["config"])
            twins = [t["config"] for t, _ in members if run_label(t["config"]) == label]
            if len(twins) > 1:
                label += f" ({_describe(r['config'], _differing(twins)) or names[m[0]]})"
            groups.append((order, label, Group(label, setting_title(r), tuple(results[i] for i in m), tuple(names[i] for i in m))))
    return [g for _, _, g in sorted(groups, key=lambda x: x[:2])]


def by_setting(groups: Sequence[Group]) -> dict[str, dict[str, list[dict[str, Any]]]]:
    """{setting: {label: [results of each seed]}}, in the order of `groups`."""
    out: dict[str, dict[str, list[dict[str, Any]]]] = {}
    for g in groups:
        out.setdefault(g.setting, {})[g.label] = list(g.runs)
    return out


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


def comparison_report(results: Sequence[dict[str, Any]], *, metric: str = "r10", names: Sequence[str] | None = None) -> str:
    """Markdown comparing runs in the paper's layout, one section per setting (architecture,
    and benchmark when several), one column per group of `group_runs` (seeds averaged: mean ± std).
    """
    parts = []
    for setting, runs in by_setting(group_runs(results, names)).items():
        parts += [f"## {setting}", ""]
        for direction in DIRECTIONS:
            parts += [comparison_table(runs, direction=direction, metric=metric), ""]
        for name, what in CL_METRIC_TITLES.items():
            rows = [
                f"| {label} ({len(rs)} seed{'s' if len(rs) > 1 else ''}) | "
                + " | ".join(_cell(mean_std([r.get(name, {}).get(p, {}).get(f"{d}_{metric}") for r in rs]), False) for d in DIRECTIONS for p in POLICIES)
                + " |"
                for label, rs in sorted(runs.items())
            ]
            parts += [
                f"{what} of {metric}:",
                "",
                "| run | i2t reindex | i2t no reindex | t2i reindex | t2i no reindex |",
                "|---|---|---|---|---|",
                *rows,
                "",
            ]
        parts += budget_table(runs, metric=metric)
        parts += final_diagnostics_table(runs)
    return "\n".join(parts)


def final_diagnostics_table(runs: dict[str, list[dict[str, Any]]]) -> list[str]:
    """Markdown lines: each drift diagnostic after the last stage (old tasks' mean; overlap over
    all tasks), one column per group of runs that recorded them, over seeds (none: no lines)."""
    finals = {label: [{k: v[-1] for k, v in diagnostics_per_stage(r).items()} for r in rs] for label, rs in sorted(runs.items())}
    finals = {label: values for label, values in finals.items() if values[0]}
    if not finals:
        return []
    lines = [
        "Drift diagnostics after the last task (stored = embedded when its task was indexed; per-task values "
        "averaged over the old tasks, overlap over all tasks; '-': not defined, e.g. joint training stores nothing before its only stage):",
        "",
        "| diagnostic | " + " | ".join(f"{label} ({len(v)} seed{'s' if len(v) > 1 else ''})" for label, v in finals.items()) + " |",
        "|---" * (len(finals) + 1) + "|",
    ]
    for key, title in DIAGNOSTICS:
        if any(key in values[0] for values in finals.values()):
            cells = [_cell(mean_std([f.get(key) for f in values]), False, digits=3) for values in finals.values()]
            lines.append(f"| {title} | " + " | ".join(cells) + " |")
    return [*lines, ""]


def budget_table(runs: dict[str, list[dict[str, Any]]], *, metric: str = "r10") -> list[str]:
    """Markdown lines: final recall of every indexing policy (no reindex, each budget x rule,
    reindex) of the groups that evaluated partial reindexing, over seeds (none: no lines)."""
    with_budgets = {label: rs for label, rs in runs.items() if budget_policies(rs[0]) and len(rs[0]["stages"]) > 1}
    if not with_budgets:
        return []
    heads = [f"{d} {'average' if scope == AVERAGE else 'all tasks'}" for scope in (AVERAGE, ALL_TASKS) for d in DIRECTIONS]
    lines = [
        f"Budgeted partial reindexing, final {metric} per indexing policy (fraction: items re-embedded over the "
        "run / items stored before each stage, mean over seeds; no reindex = 0, reindex = 1):",
        "",
        "| run | policy | fraction | " + " | ".join(heads) + " |",
        "|---" * (len(heads) + 3) + "|",
    ]
    for label, rs in sorted(with_budgets.items()):
        for policy in ["noreindex", *budget_policies(rs[0]), "reindex"]:
            fraction = sum(reembedded_fraction(r, policy) for r in rs) / len(rs)  # reindex_cost counts both ends too
            cells = [_cell(final_stat(rs, policy, scope, f"{d}_{metric}"), False) for scope in (AVERAGE, ALL_TASKS) for d in DIRECTIONS]
            lines.append(f"| {label} ({len(rs)} seed{'s' if len(rs) > 1 else ''}) | {policy_title(policy)} | {fraction:.2f} | " + " | ".join(cells) + " |")
    return [*lines, ""]


def comparison_csv(results: Sequence[dict[str, Any]], *, metric: str = "r10", names: Sequence[str] | None = None) -> str:
    """Long-format CSV of the final metrics: one row per group of `group_runs`, scope, direction, policy."""
    lines = ["shared_layers,run,direction,policy,scope,metric,mean,std,seeds,ci95_low,ci95_high,setting"]
    for group in group_runs(results, names):
        rs, shared = group.runs, group.runs[0]["config"]["model"]["shared_layers"]
        scopes = [*((str(t), n) for t, n in enumerate(rs[0]["task_names"])), (AVERAGE, AVERAGE), (ALL_TASKS, "all tasks")]
        for direction in DIRECTIONS:
            key = f"{direction}_{metric}"
            for policy in POLICIES:
                stats = [(scope_name, final_stat(rs, policy, scope, key)) for scope, scope_name in scopes]
                stats += [(name, mean_std([r.get(name, {}).get(policy, {}).get(key) for r in rs])) for name in CL_METRICS]
                for scope_name, (mean, std, n) in stats:
                    if n:
                        low, high = confidence_interval(mean, std, n)
                        lines.append(
                            f'{shared},"{group.label}",{direction},{policy},{scope_name},{metric},{mean:.3f},{std:.3f},{n},'
                            f'{low:.3f},{high:.3f},"{group.setting}"'
                        )
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


# --------------------------------------------------------------------------- findings


@dataclass(frozen=True)
class Arm:
    """One side of a finding's comparison: a value of the runs with one label.

    Attributes:
        label: runs with this `run_label` (e.g. "finetune", "ewc (decoupled)").
        policy: the indexing policy read.
        quantity: "final" (final recall in `scope`) or one of CL_METRICS.
        scope: for "final": AVERAGE (known task) or ALL_TASKS (unknown task).
        shared_layers: runs of this architecture; None: each architecture in turn.
    """

    label: str
    policy: str
    quantity: str = "final"
    scope: str = AVERAGE
    shared_layers: int | None = None

    def describe(self) -> str:
        what = {AVERAGE: "known-task average", ALL_TASKS: "all-task search"}[self.scope] if self.quantity == "final" else self.quantity
        arch = "" if self.shared_layers is None else f", {self.shared_layers} shared layer(s)"
        return f"{self.label} ({policy_title(self.policy)}{arch}) {what}"


@dataclass(frozen=True)
class Finding:
    """A claim of the paper as a paired comparison: `high` exceeds `low`, seed by seed."""

    name: str
    high: Arm
    low: Arm


# The paper's findings (README), each checked per direction. forgetting is positive when
# tasks are forgotten, so "reduces forgetting" reads forgetting(finetune) > forgetting(ewc).
FINDINGS = (
    Finding("continual < joint", Arm("joint", "reindex"), Arm("finetune", "reindex")),
    Finding("no reindex >= reindex for fine-tuning", Arm("finetune", "noreindex"), Arm("finetune", "reindex")),
    *(
        Finding(f"{name} reduces forgetting vs fine-tuning", Arm("finetune", policy, "forgetting"), Arm(label, policy, "forgetting"))
        for label, name in (("ewc", "EWC"), ("mas", "MAS"))
        for policy in POLICIES
    ),
    Finding(
        "joint without cross-task negatives loses on the all-task search",
        Arm("joint", "reindex", scope=ALL_TASKS),
        Arm("joint_no_ctnp", "reindex", scope=ALL_TASKS),
    ),
    *(
        Finding(f"decoupled directions help {name}", Arm(f"{label} (decoupled)", "noreindex"), Arm(label, "noreindex"))
        for label, name in (("ewc", "EWC"), ("mas", "MAS"))
    ),
    Finding(
        "layer sharing increases fine-tuning's forgetting",
        Arm("finetune", "noreindex", "forgetting", shared_layers=1),
        Arm("finetune", "noreindex", "forgetting", shared_layers=0),
    ),
    # Beyond the paper (configs/suites/reindexing.yaml): compatible training against fine-tuning
    # and EWC where the database is not (fully) re-embedded: no reindex, and a 25 % budget
    # under each selection rule.
    *(
        Finding(f"compatible training beats {name} ({policy_title(policy)})", Arm("compatible", policy), Arm(label, policy))
        for policy in ("noreindex", *(policy_name(0.25, rule) for rule in RULES))
        for label, name in (("finetune", "fine-tuning"), ("ewc", "EWC"))
    ),
)


@dataclass(frozen=True)
class Verdict:
    """A finding checked on one direction and setting.

    Attributes:
        finding: what was compared.
        direction: "i2t" or "t2i".
        setting: the setting of `group_runs` compared (None when the arms fix the architecture).
        differences: high - low for each seed both arms ran (sign-corrected for ranks).
        mean, low, high: the mean difference and its 95% Student t interval.
        verdict: "holds" (interval above 0), "does not hold" (below 0) or "inconclusive".
    """

    finding: Finding
    direction: str
    setting: str | None
    differences: tuple[float, ...]
    mean: float
    low: float
    high: float
    verdict: str


def _arm_values(groups: Sequence[Group], arm: Arm, setting: str | None, key: str) -> dict[int, float] | None:
    """{seed: value} of the one group the arm means in `setting`; None when no group or several match."""
    if arm.shared_layers is None:
        matches = [g for g in groups if g.setting == setting and g.label == arm.label]
    else:
        matches = [g for g in groups if g.label == arm.label and g.runs[0]["config"]["model"]["shared_layers"] == arm.shared_layers]
    if len(matches) != 1:
        return None
    values: dict[int, float] = {}
    for r in matches[0].runs:
        seed = r["config"]["seed"]
        if seed in values:
            raise ConfigError(f"finding {arm.describe()}: two runs of {matches[0].label} have seed {seed}; keep one")
        source = r["final"].get(arm.policy, {}).get(arm.scope, {}) if arm.quantity == "final" else r.get(arm.quantity, {}).get(arm.policy, {})
        value = source.get(key)
        if value is not None and not math.isnan(value):
            values[seed] = value
    return values


def check_finding(groups: Sequence[Group], finding: Finding, *, direction: str, metric: str, setting: str | None) -> Verdict | None:
    """The paired difference of a finding over the seeds both arms ran; None if there is none."""
    key = f"{direction}_{metric}"
    high = _arm_values(groups, finding.high, setting, key)
    low = _arm_values(groups, finding.low, setting, key)
    seeds = sorted(set(high) & set(low)) if high and low else []
    if not seeds:
        return None
    # ranks: lower is better, so a claim "high beats low" reads low - high (forgetting and bwt are already signed)
    flip = -1.0 if metric in ("medr", "meanr") and finding.high.quantity not in ("forgetting", "bwt") else 1.0
    diffs = tuple(flip * (high[s] - low[s]) for s in seeds)
    mean, std, n = mean_std(diffs)
    lo, hi = confidence_interval(mean, std, n)
    verdict = "holds" if lo > 0 else "does not hold" if hi < 0 else "inconclusive"  # NaN (one seed): inconclusive
    return Verdict(finding, direction, setting, diffs, mean, lo, hi, verdict)


def check_findings(results: Sequence[dict[str, Any]], *, metric: str = "r10") -> list[Verdict]:
    """Every finding of FINDINGS that the runs allow, per direction and setting of `group_runs`."""
    groups = group_runs(results)
    settings = list(dict.fromkeys(g.setting for g in groups))
    verdicts = []
    for finding in FINDINGS:
        for setting in [None] if finding.high.shared_layers is not None else settings:
            for direction in DIRECTIONS:
                v = check_finding(groups, finding, direction=direction, metric=metric, setting=setting)
                if v is not None:
                    verdicts.append(v)
    return verdicts


def findings_table(results: Sequence[dict[str, Any]], *, metric: str = "r10") -> str:
    """Markdown table of the paper's findings: paired difference over seeds, 95% interval, verdict."""
    lines = [
        f"| finding | comparison ({metric}) | direction | setting | seeds | mean difference | 95% CI | verdict |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for v in check_findings(results, metric=metric):
        ci = "-" if math.isnan(v.low) else f"[{v.low:.1f}, {v.high:.1f}]"
        lines.append(
            f"| {v.finding.name} | {v.finding.high.describe()} > {v.finding.low.describe()} | {v.direction} | {v.setting or '-'} "
            f"| {len(v.differences)} | {v.mean:.1f} | {ci} | {v.verdict} |"
        )
    return "\n".join(lines)
