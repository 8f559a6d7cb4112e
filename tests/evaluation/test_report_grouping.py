"""`ccrbench report` averages only runs that differ in nothing but the seed."""

import pytest

from ccrbench.reporting.comparison import comparison_csv, comparison_report
from ccrbench.evaluation.continual import summarize
from ccrbench.reporting.grouping import group_runs


def fake_run(tasks, recall, *, seed=0, strategy="finetune", lr=5e-4, threads=1, ks=(1, 10)) -> dict:
    """A finished run whose final R@K of the task named t is recall[t] (one stage per task)."""
    stages = []
    for s in range(len(tasks)):
        metrics = {}
        for policy in ("reindex", "noreindex"):
            scopes = {str(t): {f"{d}_r{k}": recall[tasks[t]] for d in ("i2t", "t2i") for k in ks} for t in range(s + 1)}
            keys = scopes["0"]
            scopes["average"] = {k: sum(v[k] for v in scopes.values()) / (s + 1) for k in keys}
            scopes["all"] = dict(scopes["average"])
            metrics[policy] = scopes
        stages.append({"stage": s, "tasks": list(range(s + 1)), "metrics": metrics})
    config = {
        "seed": seed,
        "threads": threads,
        "benchmark": {"name": "shapes", "tasks": list(tasks), "train_images": 24},
        "model": {"shared_layers": 0},
        "strategy": {"name": strategy},
        "decoupled": False,
        "train": {"lr": lr},
        "eval": {"ks": list(ks)},
    }
    return {"complete": True, "config": config, **summarize(stages, tasks)}


def row(text, first_cell):
    line = next(line for line in text.splitlines() if line.startswith(f"| {first_cell} |"))
    return [c.strip() for c in line.strip("|").split("|")][1:]


def test_runs_with_other_task_lists_are_never_averaged():
    runs = [
        fake_run(["blocks", "curves", "signs"], {"blocks": 10.0, "curves": 20.0, "signs": 30.0}),
        fake_run(["curves", "blocks"], {"blocks": 70.0, "curves": 80.0}, seed=1),
    ]
    groups = group_runs(runs, ["three", "two"])
    assert [(len(g.runs), g.names) for g in groups] == [(1, ("three",)), (1, ("two",))]
    assert groups[0].setting != groups[1].setting  # two sections, each with its own task rows
    text = comparison_report(runs)
    assert "2 seeds" not in text
    assert text.count("## Architecture: no sharing; shapes on ") == 2
    assert "## Architecture: no sharing; shapes on blocks, curves, signs" in text
    sections = text.split("## Architecture")[1:]
    curves_rows = [row(section, "curves")[0].strip("*") for section in sections]  # ft (reindex), each section
    assert sorted(curves_rows) == ["20.0", "80.0"]  # never a mix of blocks and curves


@pytest.mark.parametrize(
    "other, label",
    [
        ({"lr": 0.1}, "finetune (train.lr=0.1)"),
        ({"threads": 2}, "finetune (threads=2)"),
        ({"ks": (1, 5, 10)}, "finetune (eval.ks=[1, 5, 10])"),
    ],
)
def test_runs_that_differ_in_a_config_key_are_apart_with_distinct_labels(other, label):
    tasks, recall = ["blocks", "curves"], {"blocks": 40.0, "curves": 60.0}
    runs = [fake_run(tasks, recall), fake_run(tasks, recall, seed=1), fake_run(tasks, recall, seed=2, **other)]
    groups = group_runs(runs, ["a", "b", "c"])
    assert {g.label: g.names for g in groups}[label] == ("c",)
    assert len(groups) == 2 and len({g.label for g in groups}) == 2
    assert sum(len(g.runs) == 2 for g in groups) == 1  # seeds 0 and 1 agree on everything else: averaged
    assert f'"{label}"' in comparison_csv(runs, names=["a", "b", "c"])
    assert "(2 seeds)" in comparison_report(runs, names=["a", "b", "c"])
