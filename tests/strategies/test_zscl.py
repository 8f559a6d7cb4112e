"""ZSCL: the similarity distillation against a naive reference, the reference set, the frozen
start as teacher and the weight ensemble."""

import math

import pytest
import torch

from ccrbench.registry import STRATEGIES, ConfigError
from ccrbench.strategies.weight_averaging import floating_weights
from ccrbench.strategies.zscl import reference_data, similarity_distillation
from tests.training.test_template import tiny_strategy

SMALL_REFERENCE = {"name": "shapes", "seed": 1, "train_images": 4, "test_images": 2, "image_size": 32}


def unit_rows(n, d, seed):
    return torch.nn.functional.normalize(torch.randn(n, d, generator=torch.Generator().manual_seed(seed)), dim=1)


def naive_kl(p_logits, q_logits):
    """KL(softmax(p) || softmax(q)) of two lists of logits."""
    p = [math.exp(x) / sum(math.exp(y) for y in p_logits) for x in p_logits]
    q = [math.exp(x) / sum(math.exp(y) for y in q_logits) for x in q_logits]
    return sum(a * math.log(a / b) for a, b in zip(p, q))


def test_distillation_matches_a_naive_row_and_column_kl_of_an_n_by_m_matrix():
    old, new = (unit_rows(3, 5, 0), unit_rows(4, 5, 1)), (unit_rows(3, 5, 2), unit_rows(4, 5, 3))
    t = 0.5
    s_old = [[sum(a * b for a, b in zip(i, c)) / t for c in old[1].tolist()] for i in old[0].tolist()]  # [3][4]
    s_new = [[sum(a * b for a, b in zip(i, c)) / t for c in new[1].tolist()] for i in new[0].tolist()]
    rows = sum(naive_kl(o, n) for o, n in zip(s_old, s_new)) / 3
    columns = sum(naive_kl([r[j] for r in s_old], [r[j] for r in s_new]) for j in range(4)) / 4
    assert float(similarity_distillation(old, new, temperature=t)) == pytest.approx(rows + columns, rel=1e-5)
    assert float(similarity_distillation(old, old, temperature=t)) == pytest.approx(0, abs=1e-6)


def test_reference_set_is_another_benchmark_and_bad_ones_are_named():
    data = reference_data(SMALL_REFERENCE, "train")
    assert len(data) == 3 * 4 * 5  # three domains, four images, five captions each
    assert len(reference_data(SMALL_REFERENCE, "test")) == 3 * 2
    with pytest.raises(ConfigError, match="strategy zscl: reference.*unknown key.*colour"):
        STRATEGIES.build("zscl", {"reference": {"name": "shapes", "colour": 1}})
    with pytest.raises(ConfigError, match="strategy zscl: reference: unknown benchmark 'nope'"):
        STRATEGIES.build("zscl", {"reference": {"name": "nope"}})


def test_distils_towards_the_frozen_start_and_ensembles_the_weights():
    bm, strategy, _ = tiny_strategy()
    plugin = STRATEGIES.build("zscl", {"reference": SMALL_REFERENCE, "reference_batch": 4, "we_every": 3})
    strategy.plugins.insert(0, plugin)
    start = floating_weights(strategy.model)
    samples, real_add = [], plugin.add_sample
    plugin.add_sample = lambda model: (samples.append(floating_weights(model)), real_add(model))
    strategy.train(bm.train_stream[0])
    iterations = strategy.clock.train_exp_iterations
    assert float(strategy.loss_terms["ZSCL distillation"]) > 0
    assert len(samples) == iterations // 3 + (iterations % 3 > 0)  # every third iteration and the end
    now = floating_weights(strategy.model)
    mean = {k: (start[k] + sum(s[k] for s in samples)) / (1 + len(samples)) for k in start}
    assert all(torch.allclose(now[k], mean[k], atol=1e-5) for k in now)
    strategy.train(bm.train_stream[1])
    teacher = dict(plugin.teacher.state_dict())
    assert all(torch.equal(teacher[k], start[k]) for k in start)  # the run's start, never refreshed
    assert all(not p.requires_grad for p in plugin.teacher.parameters())
    assert set(plugin.state_dict()) == {"teacher"}
