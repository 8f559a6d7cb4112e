"""The contract of a strategy, checked for every registered one (a new strategy is covered by
registering it) and for the example plugin of CONTRIBUTING.md. Each runs with its defaults
on two tiny tasks of the built-in benchmark."""

import json
from collections import defaultdict
import math

import pytest

import ccrbench  # noqa: F401 - fills the registries
import ccrbench.training.template as template
from ccrbench.config import apply_overrides, from_dict, to_dict
from ccrbench.docstrings import describe
from ccrbench.registry import STRATEGIES, ConfigError
from ccrbench.runner import run
from ccrbench.strategies import StrategyPlugin
from tests.contract import assert_documented_keyword_keys
from tests.tiny import TINY, interrupt_training

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
    assert results["start"]["reindex"].keys() == {"0", "1", "average", "all"}  # evaluated before training
    values = [v for policy in results["final"].values() for scope in policy.values() for v in scope.values()]
    assert values and all(isinstance(v, float) and math.isfinite(v) for v in values)


@pytest.mark.parametrize("name", NAMES)
def test_state_survives_a_checkpoint(name, uninterrupted, tmp_path, monkeypatch):
    """Interrupted in its last stage (for one-stage strategies: before anything was saved) and
    resumed, a run ends with the uninterrupted run's metrics; resuming a finished run trains nothing."""
    full, _, _ = uninterrupted(name)
    config = tiny_config(name)
    resume_training = interrupt_training(monkeypatch, at_call=len(full["stages"]))
    with pytest.raises(KeyboardInterrupt):
        run(config, tmp_path, progress=False)
    resume_training()
    run(config, tmp_path, resume=True, progress=False)
    evaluated = ("stages", "start", "unlearned", "full_matrices")  # row 0 and the upper triangle come from the checkpoint too
    assert {k: results_of(tmp_path)[k] for k in evaluated} == {k: full[k] for k in evaluated}

    def no_training(self, *args, **kwargs):
        raise AssertionError("a finished run was trained again")

    monkeypatch.setattr(template.RetrievalTemplate, "train", no_training)
    run(config, tmp_path, resume=True, progress=False)
    assert results_of(tmp_path)["stages"] == full["stages"]


@pytest.mark.parametrize("name", NAMES)
def test_is_a_plugin_whose_keys_are_keyword_only_typed_and_documented(name):
    obj = STRATEGIES.get(name)
    assert isinstance(STRATEGIES.build(name, {}), StrategyPlugin)
    keys, docs = assert_documented_keyword_keys(STRATEGIES, name)
    listed = describe(obj).splitlines()  # what `ccrbench list --details` prints
    assert [line.split(":")[0] for line in listed] == list(keys)
    assert all(line.endswith(docs[k]) for line, k in zip(listed, keys))


@pytest.mark.parametrize("name", NAMES)
def test_running_leaves_the_callers_config_unchanged(name, uninterrupted):
    _, before, after = uninterrupted(name)
    assert after == before


@pytest.mark.parametrize("name", NAMES)
def test_decoupled_mode_needs_and_uses_a_branches_option(name, tmp_path, monkeypatch):
    """Both models of a decoupled run see the same batches, in training and in any importance pass."""
    if "branches" not in STRATEGIES.parameters(name):
        with pytest.raises(ConfigError, match="no 'branches' option"):
            tiny_config(name, "decoupled=true")
        return
    config = tiny_config(name, "decoupled=true")
    trained, passes = defaultdict(list), defaultdict(list)
    real_unpack, cls = template.RetrievalTemplate._unpack_minibatch, STRATEGIES.get(name)

    def record_batch(self):
        real_unpack(self)
        if self.is_training:
            trained[id(self)].append(self.mbatch.image_ids.tolist())

    monkeypatch.setattr(template.RetrievalTemplate, "_unpack_minibatch", record_batch)
    if hasattr(cls, "importance"):
        real_importance = cls.importance

        def record_importance(self, strategy, params, batches):
            batches = list(batches)
            passes[id(strategy)].append([b.image_ids.tolist() for b in batches])
            return real_importance(self, strategy, params, iter(batches))

        monkeypatch.setattr(cls, "importance", record_importance)
    results = run(config, tmp_path, progress=False)
    assert results["complete"] and results["stages"][-1]["tasks"] == [0, 1]
    assert {"i2t_r1", "t2i_r1"} <= set(results["final"]["reindex"]["all"])  # one model per direction, merged
    image_model, text_model = trained.values()
    assert len(image_model) > 2 and image_model == text_model
    if hasattr(cls, "importance"):
        image_passes, text_passes = passes.values()
        assert len(image_passes) == 2 and image_passes == text_passes
