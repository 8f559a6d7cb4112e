"""The contract of a strategy, checked for every registered one (a new strategy is covered by
registering it) and for the example plugin of CONTRIBUTING.md. Each runs with its defaults
on two tiny tasks of the built-in benchmark."""

import inspect
import json
import math
import typing

import pytest
import torch
from avalanche.training.plugins import EvaluationPlugin

import ccrbench  # noqa: F401 - fills the registries
import ccrbench.strategies.template as template
from ccrbench.config import apply_overrides, from_dict, to_dict
from ccrbench.evaluation.plugin import RetrievalMetrics
from ccrbench.registry import BENCHMARKS, LOSSES, STRATEGIES, ConfigError, _arg_docs, describe
from ccrbench.runner import build_model, run, seed_everything
from ccrbench.strategies import RetrievalTemplate, StrategyPlugin
from tests.tiny import TINY

EXAMPLE = "example_plugins.my_plugin:L2Anchor"
NAMES = [*STRATEGIES.names(), EXAMPLE]
TWO_TASKS = [*TINY, "benchmark.tasks=[blocks, curves]"]


def tiny_config(name, *extra):
    return from_dict(apply_overrides({"strategy": name}, [*TWO_TASKS, *extra]))


def results_of(out):
    return json.loads((out / "results.json").read_text())


@pytest.fixture(scope="module")
def uninterrupted(tmp_path_factory):
    """name -> (results.json of one uninterrupted run, config as a dict before, after it); run once per module."""
    runs = {}

    def get(name):
        if name not in runs:
            config, out = tiny_config(name), tmp_path_factory.mktemp("full")
            before = to_dict(config)
            run(config, out, progress=False)
            runs[name] = results_of(out), before, to_dict(config)
        return runs[name]

    return get


@pytest.mark.parametrize("name", NAMES)
def test_trains_two_tasks_end_to_end(name, uninterrupted):
    results, _, _ = uninterrupted(name)
    assert results["complete"] and results["config"]["strategy"]["name"] == name
    assert 1 <= len(results["stages"]) <= 2  # one per task, or one for strategies that merge the tasks
    assert results["stages"][-1]["tasks"] == [0, 1]
    values = [v for policy in results["final"].values() for scope in policy.values() for v in scope.values()]
    assert values and all(isinstance(v, float) and math.isfinite(v) for v in values)


@pytest.mark.parametrize("name", NAMES)
def test_state_survives_a_checkpoint(name, uninterrupted, tmp_path, monkeypatch):
    """Interrupted in its last stage (for one-stage strategies: before anything was saved) and
    resumed, a run ends with the uninterrupted run's metrics; resuming a finished run trains nothing."""
    full, _, _ = uninterrupted(name)
    config = tiny_config(name)
    real_train = template.RetrievalTemplate.train
    calls = []

    def crash_in_last_stage(self, *args, **kwargs):
        calls.append(1)
        if len(calls) == len(full["stages"]):
            raise KeyboardInterrupt("simulated crash")
        return real_train(self, *args, **kwargs)

    monkeypatch.setattr(template.RetrievalTemplate, "train", crash_in_last_stage)
    with pytest.raises(KeyboardInterrupt):
        run(config, tmp_path, progress=False)
    monkeypatch.setattr(template.RetrievalTemplate, "train", real_train)
    run(config, tmp_path, resume=True, progress=False)
    assert results_of(tmp_path)["stages"] == full["stages"]

    def no_training(self, *args, **kwargs):
        raise AssertionError("a finished run was trained again")

    monkeypatch.setattr(template.RetrievalTemplate, "train", no_training)
    run(config, tmp_path, resume=True, progress=False)
    assert results_of(tmp_path)["stages"] == full["stages"]


@pytest.mark.parametrize("name", NAMES)
def test_is_a_plugin_whose_keys_are_keyword_only_typed_and_documented(name):
    obj = STRATEGIES.get(name)
    assert isinstance(STRATEGIES.build(name, {}), StrategyPlugin)
    params = inspect.signature(obj).parameters.values()
    assert all(p.kind is p.KEYWORD_ONLY for p in params), "config keys must be keyword-only"
    hints = typing.get_type_hints(obj.__init__)
    keys = STRATEGIES.parameters(name)
    assert not [k for k in keys if k not in hints], "every config key needs a type hint"
    docs = _arg_docs(inspect.getdoc(obj) or "")
    assert not [k for k in keys if not docs.get(k)], "every config key needs an entry under Args: in the class docstring"
    listed = describe(obj).splitlines()  # what `ccrbench list --details` prints
    assert [line.split(":")[0] for line in listed] == list(keys)
    assert all(line.endswith(docs[k]) for line, k in zip(listed, keys))


@pytest.mark.parametrize("name", NAMES)
def test_running_leaves_the_callers_config_unchanged(name, uninterrupted):
    _, before, after = uninterrupted(name)
    assert after == before


@pytest.mark.parametrize("name", NAMES)
def test_training_leaves_the_callers_plugin_list_unchanged(name):
    config = tiny_config(name)
    seed_everything(0)
    bm = BENCHMARKS.build("shapes", config.benchmark.options)
    plugin = STRATEGIES.build(name, config.strategy.options)
    plugins = [plugin]
    model = build_model(config, bm.train_captions)
    strategy = RetrievalTemplate(
        model=model,
        optimizer=torch.optim.Adam(model.parameters(), lr=1e-3),
        criterion=LOSSES.build("infonce", {}),
        train_mb_size=config.train.batch_size,
        train_epochs=1,
        eval_mb_size=config.eval.batch_size,
        plugins=plugins,
        evaluator=EvaluationPlugin(RetrievalMetrics(), loggers=[]),
    )
    for experience in plugin.training_experiences(list(bm.train_stream)):
        strategy.train(experience)
    assert len(plugins) == 1 and plugins[0] is plugin


@pytest.mark.parametrize("name", NAMES)
def test_decoupled_mode_needs_and_uses_a_branches_option(name, tmp_path):
    config = tiny_config(name, "decoupled=true")
    if "branches" not in STRATEGIES.parameters(name):
        with pytest.raises(ConfigError, match="no 'branches' option"):
            run(config, tmp_path, progress=False)
        return
    results = run(config, tmp_path, progress=False)
    assert results["complete"] and results["stages"][-1]["tasks"] == [0, 1]
    assert {"i2t_r1", "t2i_r1"} <= set(results["final"]["reindex"]["all"])  # one model per direction, merged
