import math

import pytest

from ccrbench.cli import main
from ccrbench.reporting.comparison import comparison_csv, comparison_report
from ccrbench.evaluation.continual import backward_transfer, forgetting, incremental, plasticity, summarize
from ccrbench.reporting.findings import FINDINGS, check_findings, findings_table
from ccrbench.reporting.plots import plot_all
from ccrbench.reporting.statistics import confidence_interval

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


def test_cl_metrics_against_hand_computation():
    nan = math.nan
    # tasks learned at stages 0, 1, 2; task 0 peaks after stage 1 (backward transfer), then drops
    m = [[60.0, nan, nan], [80.0, 90.0, nan], [50.0, 70.0, 95.0]]
    assert forgetting(m) == pytest.approx(((80 - 50) + (90 - 70)) / 2)  # best earlier value, not the first
    assert backward_transfer(m) == pytest.approx(((50 - 60) + (70 - 90)) / 2)
    assert plasticity(m) == pytest.approx((60 + 90 + 95) / 3)
    assert incremental([60.0, 85.0, 71.0]) == pytest.approx(72.0)
    ranks = [[4.0, nan, nan], [2.0, 3.0, nan], [6.0, 3.0, 1.0]]  # lower is better: best earlier of task 0 is 2
    assert forgetting(ranks, higher_is_better=False) == pytest.approx(((6 - 2) + (3 - 3)) / 2)
    assert backward_transfer(ranks, higher_is_better=False) == pytest.approx((-(6 - 4) - (3 - 3)) / 2)
    joint = [[70.0, 80.0]]  # one stage: nothing is old
    assert math.isnan(backward_transfer(joint)) and math.isnan(forgetting(joint)) and plasticity(joint) == 75.0


def test_summarize_keeps_cl_metrics_per_policy_and_key():
    r = fake_results("finetune", 0, {("reindex", 0, 0): 80.0, ("reindex", 1, 0): 40.0, ("reindex", 1, 1): 90.0})
    assert r["bwt"]["reindex"]["i2t_r10"] == pytest.approx(40 - 80)
    assert r["bwt"]["reindex"]["t2i_r10"] == pytest.approx((40 - 80) / 2)
    assert r["bwt"]["reindex"]["i2t_medr"] == pytest.approx(-((100 - 40) - (100 - 80)))  # ranks: signed as recall
    assert r["plasticity"]["reindex"]["i2t_r10"] == pytest.approx((80 + 90) / 2)
    assert r["incremental"]["reindex"]["i2t_r10"] == pytest.approx((80 + (40 + 90) / 2) / 2)
    assert r["plasticity"]["noreindex"]["i2t_r10"] == 50.0 and r["forgetting"]["noreindex"]["i2t_r10"] == 0.0


def test_confidence_interval_is_student_t():
    low, high = confidence_interval(10.0, 2.0, 3)
    assert (high - low) / 2 == pytest.approx(4.302653 * 2.0 / math.sqrt(3), rel=1e-5)  # t(0.975, 2) = 4.3027
    assert all(math.isnan(x) for x in confidence_interval(10.0, 0.0, 1))


def test_findings_are_paired_over_seeds_with_verdicts():
    def runs(ft_values, ewc_values):
        out = []
        for seed, (ft, ewc) in enumerate(zip(ft_values, ewc_values)):
            out.append(fake_results("finetune", seed, {("reindex", 1, 0): ft, ("noreindex", 1, 0): ft + 10}))
            out.append(fake_results("ewc", seed, {("reindex", 1, 0): ewc}))
        return out

    def verdict(results, name, direction="i2t", policy="reindex"):
        (v,) = [v for v in check_findings(results) if v.finding.name == name and v.direction == direction and v.finding.low.policy == policy]
        return v

    # seed-to-seed noise is large, but the paired difference is always +5 (i2t: +10 on task 0 of 2 tasks)
    v = verdict(runs([20.0, 60.0, 40.0], [0, 0, 0]), "no reindex >= reindex for fine-tuning")
    assert v.differences == (5.0, 5.0, 5.0) and v.verdict == "holds" and v.low == v.high == 5.0
    assert v.setting == "Architecture: no sharing"
    ewc = "EWC reduces forgetting vs fine-tuning"
    # forgetting of task 0 = 50 - final: fine-tuning 20/30/25 -> 30/20/25; EWC 40/45/42 -> 10/5/8: holds
    v = verdict(runs([20.0, 30.0, 25.0], [40.0, 45.0, 42.0]), ewc)
    assert v.differences == pytest.approx((20.0, 15.0, 17.0)) and v.verdict == "holds"
    v = verdict(runs([40.0, 45.0, 42.0], [20.0, 30.0, 25.0]), ewc)
    assert v.verdict == "does not hold" and v.high < 0
    v = verdict(runs([20.0, 50.0, 25.0], [40.0, 30.0, 28.0]), ewc)
    assert v.verdict == "inconclusive" and v.low < 0 < v.high
    one_seed = verdict(runs([20.0], [40.0]), ewc)
    assert one_seed.verdict == "inconclusive" and math.isnan(one_seed.low)
    # only comparisons whose runs exist are listed, per direction and policy; the table shows them
    results = runs([20.0, 30.0, 25.0], [40.0, 45.0, 42.0])
    assert {(v.finding.name, v.direction, v.finding.low.policy) for v in check_findings(results)} == {
        (name, d, p) for name, p in ((FINDINGS[1].name, "reindex"), (ewc, "reindex"), (ewc, "noreindex")) for d in ("i2t", "t2i")
    }
    assert "| EWC reduces forgetting vs fine-tuning | finetune (reindex) forgetting > ewc (reindex) forgetting | i2t |" in findings_table(results)
    # layer sharing compares architectures: 1 shared layer forgets more than none, seed by seed
    shared = [fake_results("finetune", s, {("noreindex", 1, 0): 20.0 + s}, shared=1) for s in range(3)]
    plain = [fake_results("finetune", s, {("noreindex", 1, 0): 40.0 + 2 * s}) for s in range(3)]
    v = verdict(shared + plain, "layer sharing increases fine-tuning's forgetting", policy="noreindex")
    assert v.differences == (20.0, 21.0, 22.0) and v.verdict == "holds" and v.setting is None


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
    # two seeds: mean ± std [95% Student t interval: mean ± 12.706 * std / sqrt(2)]
    assert cells[1:] == ["99.0", "25.0 ± 7.1 [-38.5, 88.5]", "40.0", "50.0 ± 0.0 [50.0, 50.0]", "**70.0**", "50.0"]
    assert "finetune (2 seeds)" in text
    csv = comparison_csv(runs)
    assert '0,"finetune",i2t,reindex,a,r10,25.000,7.071,2,-38.531,88.531' in csv
    assert '0,"finetune",i2t,reindex,plasticity,r10,' in csv
    medr = comparison_report(runs, metric="medr")
    assert "**30.0**" in medr  # lower is better for ranks: 100 - 70

    names = ["strategy-finetune__seed-0", "strategy-finetune__seed-1", "strategy-ewc__seed-0", "decoupled", "joint"]
    paths = plot_all(runs, names, tmp_path / "plots")
    assert all(p.exists() and p.stat().st_size > 1000 for p in paths)
    # one image of stage matrices per group (its seeds together), named by what its runs' names share
    assert sorted(p.name for p in paths) == sorted(
        ["matrices_strategy-finetune.png", "matrices_strategy-ewc__seed-0.png", "matrices_decoupled.png", "matrices_joint.png", "curves.png", "bars.png"]
    )


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
    report = (tmp_path / "report.md").read_text()
    assert "Plasticity (right after learning each task) of r10:" in report
    # one seed each: the finding is listed, but no interval can be drawn from one paired difference
    assert "| continual < joint | joint (reindex) known-task average > finetune (reindex) known-task average | i2t |" in report
    assert "| 1 |" in report and "| - | inconclusive |" in report
    assert main(["report", str(tmp_path / "empty")]) == 2


def test_plots_drawn_on_several_cores_are_the_files_drawn_on_one(tmp_path, monkeypatch):
    results = [fake_results(s, seed, {("reindex", 1, 0): 30.0 + seed}) for s in ("finetune", "ewc") for seed in (0, 1)]
    names = [f"{r['config']['strategy']['name']}-{r['config']['seed']}" for r in results]
    parallel = plot_all(results, names, tmp_path / "parallel")
    monkeypatch.setattr("os.cpu_count", lambda: 1)
    serial = plot_all(results, names, tmp_path / "serial")
    assert [p.name for p in parallel] == [p.name for p in serial] and len(parallel) >= 3
    assert all(p.read_bytes() == s.read_bytes() for p, s in zip(parallel, serial))
