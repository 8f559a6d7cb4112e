"""Hyper-parameters chosen on the validation split: `ccrbench tune TUNE_SUITE`.

A tune suite file:

    base: ../shapes_finetune.yaml          # as in a suite (path relative to this file)
    set: [train.epochs=6]                  # overrides applied to every run (optional)
    axes: {seed: [0]}                      # crossed with every grid point; the criterion is averaged over them
    criterion: {metric: r10, scope: average}             # optional; this is the default
    selection: ../../results/paper_table/selection.json  # where the choice is written (optional)
    strategies:                            # per strategy: a grid of at most 4 values per key
      ewc: {strategy.lam: [100, 1000, 10000, 100000]}
      lwf: {strategy.lam: [0.5, 2], strategy.temperature: [1, 2]}

Every run evaluates the benchmark's validation split (`eval.split=val` is forced), never
the test split. For each strategy, the grid point with the best criterion wins: by default
the mean, over both directions and both indexing policies, of the final known-task
average R@10. The choice (grid, every validation score, the winner) goes to a JSON file
and a selection.md beside it; a suite with `selection: that.json` gives each run of a
tuned strategy the winning values.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, Literal

from ccrbench.config import build_section
from ccrbench.evaluation.keys import AVERAGE, DIRECTIONS, POLICIES, MetricKey
from ccrbench.io import read_json, write_atomic
from ccrbench.markdown import markdown_table
from ccrbench.registry import ConfigError
from ccrbench.suite import SuiteRun, expand_spec, grid_points, read_suite, run_runs, run_status

TUNE_KEYS = ("base", "set", "axes", "criterion", "selection", "strategies")
MAX_VALUES = 4  # the same small budget for every strategy: at most this many values per key


@dataclass(frozen=True)
class Criterion:
    """What a grid point is judged by: a final metric averaged over directions and policies.

    Attributes:
        metric: r1, r5, r10, rsum (higher is better) or medr, meanr (lower is better).
        scope: "average" (known-task average over the tasks seen) or "all" (unknown-task
            search over the union of all tasks).
    """

    metric: str = "r10"
    scope: Literal["average", "all"] = "average"

    @property
    def higher_is_better(self) -> bool:
        return MetricKey.parse(self.metric).higher_is_better

    def describe(self) -> str:
        where = "known-task average" if self.scope == AVERAGE else "all-task search"
        return f"mean over {', '.join(DIRECTIONS)} x {', '.join(POLICIES)} of the final {where} {self.metric} on the validation split"

    def score(self, results: dict[str, Any]) -> float:
        """The criterion of one run's results (mean over both directions and both policies)."""
        try:  # scope names are those of results.json: AVERAGE, ALL_TASKS
            key = MetricKey.parse(self.metric)
            values = [results["final"][p][self.scope][str(key.with_direction(d))] for d in DIRECTIONS for p in POLICIES]
        except ValueError as e:
            raise ConfigError(f"criterion: {e}; choose a metric the runs evaluate (see eval.ks)") from e
        except KeyError as e:
            raise ConfigError(f"criterion: the runs have no {e.args[0]}; choose a metric they evaluate (see eval.ks)") from e
        return sum(values) / len(values)


@dataclass(frozen=True)
class GridPoint:
    """One strategy's setting in the grid and the runs (one per axes value) that judge it."""

    strategy: str
    values: dict[str, Any]
    runs: tuple[SuiteRun, ...]


def tune_grid(path: str | Path) -> tuple[Criterion, Path | None, list[GridPoint]]:
    """Reads a tune suite: its criterion, where its selection goes, and every grid point's runs.

    Raises:
        ConfigError: naming the file and the offending key.
    """
    path = Path(path)
    spec = read_suite(path, TUNE_KEYS)
    criterion = build_section(Criterion, spec.get("criterion", {}), "criterion")
    selection = path.parent / spec["selection"] if "selection" in spec else None
    strategies = spec.get("strategies")
    if not isinstance(strategies, dict) or not strategies:
        raise ConfigError(f"{path}: 'strategies' must map each strategy to its grid, e.g. {{ewc: {{strategy.lam: [100, 1000]}}}}")
    axes = spec.get("axes", {})
    points = []
    for name, grid in strategies.items():
        grid = grid or {}
        if not isinstance(grid, dict):
            raise ConfigError(f"{path}: strategies.{name}: expected a mapping of key: [values], got {grid!r}")
        if "eval.split" in grid or "eval.split" in axes:
            raise ConfigError(f"{path}: eval.split cannot be tuned: tuning always evaluates the val split")
        for key, values in grid.items():
            if not isinstance(values, list) or not 1 <= len(values) <= MAX_VALUES:
                raise ConfigError(f"{path}: strategies.{name}.{key}: expected a list of 1 to {MAX_VALUES} values, got {values!r}")
        for overrides in grid_points(grid):
            runs = expand_spec(
                {
                    **({"base": spec["base"]} if "base" in spec else {}),
                    "set": [*spec.get("set", []), f"strategy={json.dumps(name)}", "eval.split=val"],
                    "variants": [dict(overrides)],
                    "axes": axes,
                },
                path,
            )
            named = tuple(SuiteRun(name=f"{name}/{r.name}", config=r.config) for r in runs)
            points.append(GridPoint(strategy=name, values=dict(overrides), runs=named))
    return criterion, selection, points


def select(criterion: Criterion, points: Sequence[GridPoint], out: Path) -> dict[str, Any]:
    """Scores every grid point from its finished runs under `out` and picks each strategy's best.

    Returns:
        {"split", "criterion", "strategies": {name: {"grid", "scores", "winner", "score"}}}; ties
        go to the first point in grid order.
    """
    strategies: dict[str, dict[str, Any]] = {}
    sign = 1.0 if criterion.higher_is_better else -1.0
    for point in points:
        runs = {r.name: criterion.score(read_json(out / r.name / "results.json")) for r in point.runs}
        entry = strategies.setdefault(point.strategy, {"grid": {}, "scores": []})
        for key, value in point.values.items():
            entry["grid"].setdefault(key, [])
            if value not in entry["grid"][key]:
                entry["grid"][key].append(value)
        entry["scores"].append({"values": point.values, "score": sum(runs.values()) / len(runs), "runs": runs})
    for entry in strategies.values():
        best = max(entry["scores"], key=lambda s: sign * s["score"])  # max keeps the first of equals
        entry["winner"], entry["score"] = best["values"], best["score"]
    return {"split": "val", "criterion": {**asdict(criterion), "description": criterion.describe()}, "strategies": strategies}


def selection_markdown(selection: dict[str, Any], *, source: str) -> str:
    """selection.md: per strategy, every grid point's validation score, the winner in bold."""
    parts = [
        "# Hyper-parameters selected on the validation split",
        "",
        f"Written by `ccrbench tune {source}`. Criterion: {selection['criterion']['description']} "
        "(higher is better for recall). Each strategy's grid had at most "
        f"{MAX_VALUES} values per key; the winner (**bold**) is what suites with `selection:` use.",
        "",
    ]
    for name, entry in selection["strategies"].items():
        keys = list(entry["grid"])
        rows = []
        for s in entry["scores"]:
            cells = [json.dumps(s["values"][k]) for k in keys] + [f"{s['score']:.2f}", str(len(s["runs"]))]
            rows.append([f"**{c}**" for c in cells] if s["values"] == entry["winner"] else cells)
        parts += [f"## {name}", "", *markdown_table([*keys, "validation score", "runs"], rows), ""]
    return "\n".join(parts)


def tune(path: str | Path, out: str | Path, *, jobs: int = 1, skip_existing: bool = False) -> tuple[dict[str, str | None], Path | None]:
    """Runs a tune suite's grid on the validation split and writes the selection.

    Returns:
        ({run name: error or None}, path of the selection JSON, or None when a run failed:
        then nothing is selected; rerun with `skip_existing` to finish the grid).
    """
    path, out = Path(path), Path(out)
    criterion, selection_path, points = tune_grid(path)
    runs = [r for p in points for r in p.runs]
    outcome = run_runs(runs, out, jobs=jobs, skip_existing=skip_existing)
    if any(outcome.values()) or any(run_status(out / r.name) != "done" for r in runs):
        return outcome, None
    selection = select(criterion, points, out)
    selection_path = selection_path or out / "selection.json"
    selection_path.parent.mkdir(parents=True, exist_ok=True)
    write_atomic(selection_path, lambda f: json.dump(selection, f, indent=1))
    markdown = selection_markdown(selection, source=str(path))
    write_atomic(selection_path.with_suffix(".md"), lambda f: f.write(markdown))
    return outcome, selection_path
