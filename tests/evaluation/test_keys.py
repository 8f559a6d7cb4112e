"""The typed names of results.json: every key the evaluation writes parses back to itself,
every registered measure meets the contract, and bad names are refused."""

import math

import pytest
import torch

from ccrbench.evaluation.keys import RULES, IndexingPolicy, MetricKey, measure_keys
from ccrbench.evaluation.measures import MEASURES, measure
from ccrbench.evaluation.protocol import TaskEmbeddings, evaluate_stage
from ccrbench.evaluation.reindexing import policy_name


def stage_metrics(ks=(1, 3)):
    g = torch.Generator().manual_seed(0)
    db = {t: TaskEmbeddings(torch.randn(6, 4, generator=g), torch.randn(12, 4, generator=g), torch.arange(12) // 2) for t in range(2)}
    return evaluate_stage(db, db, ks=ks)


def test_every_key_the_evaluation_writes_parses_back_to_itself():
    keys = list(stage_metrics()["reindex"]["all"])
    assert keys[0] == "i2t_r1" and "rsum" in keys
    for text in keys:
        key = MetricKey.parse(text)
        assert str(key) == text and MetricKey.parse(str(key.with_direction(None))).direction is None
    assert MetricKey.parse("t2i_r3") == MetricKey("r", "t2i", 3)
    assert [str(k) for k in measure_keys([1, 3])] == ["r1", "r3", *(n for n, m in MEASURES.items() if not m.per_k)]


@pytest.mark.parametrize("name", list(MEASURES))
def test_every_measure_rewards_better_ranks_in_its_direction(name):
    m = MEASURES[name]
    args = [5] if m.per_k else []
    good, bad = (m.of_ranks(torch.tensor(r, dtype=torch.float64), *args) for r in ([0.0, 1.0, 2.0], [7.0, 9.0, 20.0]))
    assert math.isfinite(good) and math.isfinite(bad) and good != bad
    assert (good > bad) == m.higher_is_better == MetricKey(name, "i2t", 5 if m.per_k else None).higher_is_better
    assert "{k}" in m.title if m.per_k else "{k}" not in m.title


def test_ranks_are_lower_is_better_and_rsum_higher():
    assert not MetricKey.parse("i2t_medr").higher_is_better and not MetricKey.parse("meanr").higher_is_better
    assert MetricKey.parse("rsum").higher_is_better and MetricKey.parse("t2i_r10").higher_is_better
    assert [MetricKey.parse(k).title for k in ("i2t_r10", "t2i_medr", "rsum")] == ["i2t R@10", "t2i median rank", "rsum"]


@pytest.mark.parametrize("bad", ["i2t_", "r", "i2t_medr5", "x2y_r10", "i2t_rsum", "budget", "i2t_image_drift"])
def test_what_is_not_a_metric_key_is_refused(bad):
    with pytest.raises(ValueError, match="not a metric key"):
        MetricKey.parse(bad)


def test_a_measure_name_is_registered_once():
    with pytest.raises(ValueError, match="taken"):
        measure("medr", title="again")(lambda ranks: 0.0)
    with pytest.raises(ValueError, match="not ending in a digit"):
        measure("ndcg5", title="x")(lambda ranks: 0.0)


@pytest.mark.parametrize("budget", [0.25, 0.1, 1.0, 0.0, 100, 1])
def test_indexing_policies_round_trip(budget):
    for rule in RULES:
        name = policy_name(budget, rule)
        policy = IndexingPolicy.parse(name)
        assert (policy.kind, policy.budget, policy.rule, type(policy.budget)) == ("budget", budget, rule, type(budget))
        assert str(policy) == name
    assert IndexingPolicy.parse("noreindex").title == "no reindex" and str(IndexingPolicy.parse("reindex")) == "reindex"
    assert IndexingPolicy.parse("budget100items_random").title == "100-item budget, random"
    with pytest.raises(ValueError, match="not an indexing policy"):
        IndexingPolicy.parse("budget_random")
