"""WiSE-FT and ZSCL's weight maths (strategies/weight_averaging.py) against naive references,
and what the wise_ft plugin does to a model."""

import pytest
import torch
from torch import nn

from ccrbench.config import from_dict
from ccrbench.registry import STRATEGIES, ConfigError
from ccrbench.strategies.weight_averaging import assign, floating_weights, interpolate, running_mean
from tests.training.test_template import tiny_strategy


def weights(seed):
    g = torch.Generator().manual_seed(seed)
    return {"w": torch.randn(3, 4, generator=g), "b": torch.randn(4, generator=g)}


@pytest.mark.parametrize("alpha", [0.0, 0.3, 1.0])
def test_interpolation_is_elementwise_one_minus_alpha_start_plus_alpha_end(alpha):
    start, end = weights(0), weights(1)
    out = interpolate(start, end, alpha)
    for k in start:
        naive = torch.tensor([(1 - alpha) * s + alpha * e for s, e in zip(start[k].flatten().tolist(), end[k].flatten().tolist())])
        assert torch.allclose(out[k].flatten(), naive, atol=1e-6)


def test_running_mean_equals_the_mean_of_every_sample():
    samples = [weights(s) for s in range(5)]
    mean = samples[0]
    for count, sample in enumerate(samples[1:], start=1):
        mean = running_mean(mean, sample, count)
    for k in mean:
        naive = sum(s[k] for s in samples) / len(samples)
        assert torch.allclose(mean[k], naive, atol=1e-6)


def test_floating_weights_copy_parameters_and_statistics_not_counters_and_assign_writes_in_place():
    model = nn.Sequential(nn.Linear(2, 3), nn.BatchNorm1d(3))
    copied = floating_weights(model)
    assert set(copied) == {"0.weight", "0.bias", "1.weight", "1.bias", "1.running_mean", "1.running_var"}
    param = model[0].weight
    assign(model, {k: torch.full_like(v, 2.0) for k, v in copied.items()})
    assert model[0].weight is param and torch.all(param == 2.0) and torch.all(model[1].running_var == 2.0)
    assert torch.all(copied["0.weight"] != 2.0)  # a copy, not a view


def test_wise_ft_interpolates_with_the_runs_start_after_every_task():
    bm, strategy, _ = tiny_strategy()
    plugin = STRATEGIES.build("wise_ft", {"alpha": 0.25})
    strategy.plugins.insert(0, plugin)
    start = floating_weights(strategy.model)
    trained = {}
    real = plugin.after_training_exp

    def spy(strategy, **kwargs):
        trained[strategy.clock.train_exp_counter] = floating_weights(strategy.model)
        real(strategy, **kwargs)

    plugin.after_training_exp = spy
    for task in (0, 1):
        strategy.train(bm.train_stream[task])
        now = floating_weights(strategy.model)
        expected = interpolate(start, trained[task], 0.25)
        assert all(torch.allclose(now[k], expected[k], atol=1e-6) for k in now)  # the start, never the previous task
        assert any(not torch.equal(now[k], trained[task][k]) for k in now)
    assert all(torch.equal(plugin.start[k], start[k]) for k in start)
    assert STRATEGIES.build("wise_ft", {}).state_dict() == {"start": None}


@pytest.mark.parametrize(
    "name, options, message",
    [
        ("wise_ft", {"alpha": 1.5}, "strategy.alpha: must be <= 1"),
        ("zscl", {"lam": -1}, "strategy.lam: must be >= 0"),
        ("zscl", {"we_every": -1}, "strategy.we_every: must be >= 0"),
        ("lora", {"rank": 0}, "strategy.rank: must be >= 1"),
        ("lora", {"dropout": 1.0}, "strategy.dropout: must be < 1"),
    ],
)
def test_numeric_options_of_the_pretrained_era_baselines_have_limits(name, options, message):
    with pytest.raises(ConfigError, match=message):
        from_dict({"strategy": {"name": name, **options}})  # checked when the config is loaded
