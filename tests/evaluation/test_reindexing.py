"""Budgeted partial reindexing: the selection rules, the drift estimate, and the policies'
end points (0 % = no reindex, 100 % = reindex, exactly) from one tiny training run."""

import json
import math

import pytest
import torch
import torch.nn.functional as F

from ccrbench.config import apply_overrides, from_dict
from ccrbench.evaluation.protocol import TaskEmbeddings
from ccrbench.evaluation.reindexing import BudgetedIndexes, budget_items, knn_drift, policy_name, refresh, select_items
from ccrbench.reporting.comparison import comparison_report
from ccrbench.reporting.drift import budget_curve, diagnostics_per_stage, policy_title
from ccrbench.reporting.findings import check_findings
from ccrbench.reporting.plots import budget_curves, diagnostics_curves
from ccrbench.reporting.run_report import markdown_report
from ccrbench.registry import ConfigError
from ccrbench.runner import run
from tests.tiny import TINY, interrupt_training

BUDGETS = "eval.reindex_budget=[0.0, 1.0, 0.5, 4, 1000]"


def test_budgets_are_fractions_or_counts():
    assert [budget_items(b, 10) for b in (0.0, 0.25, 1.0, 0, 3, 30)] == [0, 2, 10, 0, 3, 10]
    assert policy_name(0.25, "random") == "budget0.25_random" and policy_name(100, "random") == "budget100items_random"


@pytest.mark.parametrize("bad", ["eval.reindex_budget=[1.5]", "eval.reindex_budget=[-2]", "eval.reindex_rules=[newest_first]"])
def test_bad_budgets_and_rules_are_config_errors(bad):
    with pytest.raises(ConfigError, match="eval.reindex_"):
        from_dict(apply_overrides({}, [bad]))


def test_rules_choose_the_oldest_a_nested_random_sample_or_the_most_drifted():
    ages = torch.tensor([2, 0, 1, 0, 2])
    g = lambda: torch.Generator().manual_seed(0)  # noqa: E731
    assert select_items("oldest_first", 3, ages, generator=g()).tolist() == [1, 3, 2]
    small, large = select_items("random", 2, ages, generator=g()), select_items("random", 4, ages, generator=g())
    assert set(small.tolist()) <= set(large.tolist()) and len(set(large.tolist())) == 4
    estimates = torch.tensor([0.1, 0.9, 0.5, 0.0, 0.7])
    chosen = select_items("most_drifted_first", 3, ages, generator=g(), estimates=estimates, forced=torch.tensor([3]))
    assert chosen.tolist() == [3, 1, 4]  # the probe item first, then the highest estimates
    assert select_items("most_drifted_first", 1, ages, generator=g(), estimates=estimates, forced=torch.tensor([3, 0])).numel() == 2


def test_refresh_replaces_the_chosen_images_and_all_their_captions():
    stored = TaskEmbeddings(torch.zeros(3, 2), torch.zeros(5, 2), torch.tensor([0, 0, 1, 2, 2]))
    current = TaskEmbeddings(torch.ones(3, 2), torch.ones(5, 2), stored.text_to_image)
    out = refresh(stored, current, torch.tensor([2]))
    assert out.image[:, 0].tolist() == [0, 0, 1] and out.text[:, 0].tolist() == [0, 0, 0, 1, 1]
    assert stored.image.sum() == 0  # the stored database itself is not modified


def test_nearest_probe_estimate_finds_the_region_that_drifted():
    # Items near the first axis turn by 1 radian, items near the second axis stay put.
    g = torch.Generator().manual_seed(0)
    def near(axis, n):
        return F.normalize(F.one_hot(torch.full((n,), axis), 4).float() + 0.1 * torch.randn(n, 4, generator=g), dim=1)
    def move(x):
        turned = x.clone()
        first = x.argmax(1) == 0
        c, s = math.cos(1.0), math.sin(1.0)
        turned[first, 0], turned[first, 2] = c * x[first, 0] - s * x[first, 2], s * x[first, 0] + c * x[first, 2]
        return turned
    probe, items = torch.cat([near(0, 3), near(1, 3)]), torch.cat([near(0, 5), near(1, 5)])
    estimates = knn_drift(items, probe, move(probe), k=2)
    true = 1 - F.cosine_similarity(items, move(items), dim=1)
    assert estimates[:5].min() > 0.3 and estimates[5:].max() < 1e-6
    assert torch.corrcoef(torch.stack([estimates, true]))[0, 1] > 0.9


def test_a_policy_with_no_old_items_reembeds_nothing_and_probes_survive_a_state_round_trip():
    emb = TaskEmbeddings(F.normalize(torch.randn(20, 4), dim=1), F.normalize(torch.randn(20, 4), dim=1), torch.arange(20))
    indexes = BudgetedIndexes(budgets=[0.5], rules=["most_drifted_first"], probe=0.1)
    indexes.index(0, emb, stage=0)
    assert indexes.reindex(0, {0: emb}, []) == (0, {"budget0.5_most_drifted_first": 0})
    assert indexes.probes[0].numel() == 2
    restored = BudgetedIndexes(budgets=[0.5], rules=["most_drifted_first"], probe=0.1)
    restored.load_state_dict(indexes.state_dict())
    moved = TaskEmbeddings(emb.image.flip(1), emb.text, emb.text_to_image)
    assert restored.reindex(1, {0: moved}, [0]) == (20, {"budget0.5_most_drifted_first": 10})
    assert torch.equal(restored.history[0][1].image, moved.image[restored.probes[0]])


def tiny(*extra):
    return from_dict(apply_overrides({}, [*TINY, BUDGETS, *extra]))


@pytest.fixture(scope="module")
def three_tasks(tmp_path_factory):
    out = tmp_path_factory.mktemp("budgets")
    run(tiny(), out, progress=False)
    return json.loads((out / "results.json").read_text())


def test_zero_and_full_budgets_reproduce_no_reindex_and_reindex_exactly(three_tasks):
    stages = three_tasks["stages"]
    assert len(stages) == 3
    for stage in stages:
        metrics, cost = stage["metrics"], stage["reindex_cost"]
        for rule in ("oldest_first", "random", "most_drifted_first"):
            assert metrics[f"budget0_{rule}"] == metrics["noreindex"]
            assert metrics[f"budget1_{rule}"] == metrics["reindex"]
            assert metrics[f"budget1000items_{rule}"] == metrics["reindex"]
            assert cost["items"][f"budget1_{rule}"] == cost["items"]["reindex"] == cost["eligible"]
            assert cost["items"][f"budget0_{rule}"] == cost["items"]["noreindex"] == 0
            assert cost["items"][f"budget4items_{rule}"] == min(4, cost["eligible"])
            assert cost["items"][f"budget0.5_{rule}"] == round(0.5 * cost["eligible"])
    assert [s["reindex_cost"]["eligible"] for s in stages] == [0, 10, 20]  # 10 test images per task
    final = stages[-1]["metrics"]
    assert final["budget0.5_random"] != final["noreindex"]  # a partial index is a policy of its own
    assert {"image_drift", "i2t_cross_top10", "t2i_margin_noreindex"} <= set(stages[-1]["diagnostics"]["average"])
    assert [t["stage"] for t in three_tasks["timings"][0]] == [0, 1, 2]


def test_partial_indexes_survive_a_checkpoint(three_tasks, tmp_path, monkeypatch):
    resume_training = interrupt_training(monkeypatch, at_call=3)
    with pytest.raises(KeyboardInterrupt):
        run(tiny(), tmp_path, progress=False)
    resume_training()
    run(tiny(), tmp_path, resume=True, progress=False)
    resumed = json.loads((tmp_path / "results.json").read_text())
    assert resumed["stages"] == three_tasks["stages"]


def test_report_and_plots_show_the_diagnostics_and_the_budget_curves(three_tasks, tmp_path):
    md = markdown_report(three_tasks, title="t")
    assert "## Why it forgets: drift diagnostics" in md and "## Budgeted partial reindexing" in md
    assert "| budget0.5_random | 15 | 0.50 |" in md  # 5 of 10 stored items after stage 1, 10 of 20 after stage 2
    assert "Evaluation cost per stage" in md
    per_stage = diagnostics_per_stage(three_tasks)
    assert math.isnan(per_stage["image_drift"][0])  # nothing was stored before the first stage
    assert per_stage["image_drift"][1] == three_tasks["stages"][1]["diagnostics"]["0"]["image_drift"]  # only the old task
    assert per_stage["i2t_cross_top10"] == [s["diagnostics"]["all"]["i2t_cross_top10"] for s in three_tasks["stages"]]
    final = three_tasks["final"]
    curve = budget_curve(three_tasks, "random", "i2t_r10", "all")
    assert curve[0] == (0.0, final["noreindex"]["all"]["i2t_r10"]) and curve[-1] == (1.0, final["reindex"]["all"]["i2t_r10"])
    assert (0.5, final["budget0.5_random"]["all"]["i2t_r10"]) in curve
    paths = [budget_curves([three_tasks], tmp_path / "b.png"), diagnostics_curves([three_tasks], tmp_path / "d.png")]
    assert all(p.stat().st_size > 10_000 for p in paths)


def test_seeded_budget_table_and_the_compatible_findings(three_tasks):
    """Two seeds of a fine-tuning and a `compatible` group (copies of one run with known shifts):
    every policy's row with its mean ± std [interval], and compatible - fine-tuning as a paired
    difference with a verdict under no reindex and each rule's 25 % budget (a policy the runs
    did not evaluate gives no row)."""
    import copy

    def variant(strategy, seed, shift):
        r = copy.deepcopy(three_tasks)
        r["config"] = {**r["config"], "seed": seed, "strategy": {**r["config"]["strategy"], "name": strategy}}
        for policy in r["final"].values():
            for scope in policy.values():
                scope.update({k: v + shift for k, v in scope.items() if isinstance(v, float)})
        return r

    runs = [variant("finetune", 0, 0.0), variant("finetune", 1, 2.0), variant("compatible", 0, 1.0), variant("compatible", 1, 4.0)]
    md = comparison_report(runs)
    value = three_tasks["final"]["budget0.5_random"]["average"]["i2t_r10"]
    row = next(line for line in md.splitlines() if line.startswith("| finetune (2 seeds) | 50% budget, random | 0.50 |"))
    assert f"| {value + 1.0:.1f} ± 1.4 [" in row  # mean of value + 0 and value + 2, std sqrt(2)
    assert "| compatible (2 seeds) | 4-item budget, oldest first |" in md and "| finetune (2 seeds) | reindex | 1.00 |" in md
    drift = diagnostics_per_stage(three_tasks)["image_drift"][-1]  # the same in both seeds (only final values shifted)
    assert f"| image drift: cos(stored, current) | {drift:.3f} ± 0.000 [{drift:.3f}, {drift:.3f}] | {drift:.3f} ± 0.000" in md
    verdicts = {(v.finding.name, v.direction): v for v in check_findings(runs)}
    v = verdicts[("compatible training beats fine-tuning (no reindex)", "i2t")]
    assert v.differences == (1.0, 2.0) and v.verdict == "inconclusive"  # mean 1.5, t interval of 2 values spans 0
    assert not any("budget" in name for name, _ in verdicts)  # these runs have no 25 % budget
    assert policy_title("budget0.25_most_drifted_first") == "25% budget, most drifted first"
