"""Which runs are one entry of a report: runs that differ only in their seed, with a short label."""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from ccrbench.config import flatten
from ccrbench.evaluation.keys import ALL_TASKS


def run_label(config: dict[str, Any]) -> str:
    """A short name for a run from its resolved config, e.g. "ewc-im" or "mas (decoupled)"."""
    strategy = config["strategy"]
    name = strategy["name"]
    branch = strategy.get("branches", "both")
    if config.get("decoupled"):
        return f"{name} (decoupled)"
    return name if branch == "both" else f"{name}-{'im' if branch == 'image' else 'txt'}"


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
