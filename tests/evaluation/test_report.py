import math

import pytest

from ccrbench.cli import main
from ccrbench.evaluation.plots import plot_all
from ccrbench.evaluation.report import comparison_csv, comparison_report, forgetting, summarize

NAMES = ["a", "b"]


def fake_results(strategy: str, seed: int, values: dict, *, decoupled: bool = False, shared: int = 0, stages: int = 2) -> dict:
    """Results with R@10 = values[(policy, stage, task)] (other metrics derived from it)."""

    def scope(policy, stage, task):
        v = values.get((policy, stage, task), 50.0)
        return {"i2t_r10": v, "t2i_r10": v / 2, "i2t_medr": 100 - v, "t2i_medr": 100 - v / 2}

    records = []
    for s in range(stages):
        tasks = list(range(s + 1)) if stages > 1 else [0, 1]
        metrics = {}
        for policy in ("reindex", "noreindex"):
            scopes = {str(t): scope(policy, s, t) for t in tasks}
            keys = scopes["0"].keys()
            scopes["average"] = {k: sum(scopes[str(t)][k] for t in tasks) / len(tasks) for k in keys}
            scopes["all"] = {k: scopes["average"][k] - 10 for k in keys}
            metrics[policy] = scopes
        records.append({"stage": s, "tasks": tasks, "metrics": metrics})
    config = {"strategy": {"name": strategy, "branches": "both"}, "decoupled": decoupled, "model": {"shared_layers": shared}, "seed": seed}
    return {"complete": True, "config": config, **summarize(records, NAMES)}


def test_forgetting_against_hand_computation():
    nan = math.nan
    matrix = [[80.0, nan, nan], [60.0, 90.0, nan], [50.0, 70.0, 95.0]]
    assert forgetting(matrix) == pytest.approx(((80 - 50) + (90 - 70)) / 2)
    assert forgetting([[3.0, nan], [5.0, 2.0]], higher_is_better=False) == pytest.approx(2.0)
    assert math.isnan(forgetting([[1.0, 2.0]]))


def test_comparison_report_marks_best_and_averages_seeds(tmp_path):
    runs = [
        fake_results("finetune", 0, {("reindex", 1, 0): 20.0}),
        fake_results("finetune", 1, {("reindex", 1, 0): 30.0}),
        fake_results("ewc", 0, {("reindex", 1, 0): 40.0, ("noreindex", 1, 0): 70.0}),
        fake_results("ewc", 0, {}, decoupled=True),
        fake_results("joint", 0, {("reindex", 0, 0): 99.0}, stages=1),
    ]
    text = comparison_report(runs, metric="r10")
    assert "## Architecture: no sharing" in text
    row = next(line for line in text.splitlines() if line.startswith("| a |"))
    cells = [c.strip() for c in row.strip("|").split("|")]
    # columns: joint, ft (reindex), EWC (reindex), ft (no reindex), EWC (no reindex), EWC-im (no reindex)
    assert cells[1:] == ["99.0", "25.0 ± 7.1", "40.0", "50.0 ± 0.0", "**70.0**", "50.0"]
    assert "finetune (2 seeds)" in text
    csv = comparison_csv(runs)
    assert '0,"finetune",i2t,reindex,a,r10,25.000,7.071,2' in csv
    medr = comparison_report(runs, metric="medr")
    assert "**30.0**" in medr  # lower is better for ranks: 100 - 70

    paths = plot_all(runs, [f"run{i}" for i in range(len(runs))], tmp_path / "plots")
    assert len(paths) == len(runs) + 3 and all(p.exists() and p.stat().st_size > 1000 for p in paths)


def test_report_cli_on_real_runs(tmp_path, capsys):
    from tests.tiny import TINY

    for strategy in ("finetune", "joint"):
        args = ["run", "--quiet", "--out", str(tmp_path / strategy), "--set", f"strategy={strategy}"]
        for item in TINY:
            args += ["--set", item]
        assert main(args) == 0
    assert main(["report", str(tmp_path)]) == 0
    assert (tmp_path / "report.md").exists() and (tmp_path / "report.csv").exists()
    assert (tmp_path / "plots" / "bars.png").exists()
    assert main(["report", str(tmp_path / "empty")]) == 2
