import dataclasses
import re

import pytest

from ccrbench.config import RunConfig, apply_overrides, from_dict, load_benchmark, load_config, to_dict
from ccrbench.registry import STRATEGIES, ConfigError


def test_defaults_are_fully_resolved():
    config = from_dict({})
    assert isinstance(config, RunConfig)
    assert config.strategy.name == "finetune"
    assert config.benchmark.options["train_images"] == 1000  # the benchmark's own default, filled in
    assert to_dict(config)["model"]["text_encoder"]["name"] == "bigru"


def test_config_is_frozen():
    config = from_dict({})
    with pytest.raises(dataclasses.FrozenInstanceError):
        config.seed = 3  # type: ignore[misc]
    with pytest.raises(TypeError):  # component options are read-only too
        config.loss.options["temperature"] = 1.0  # type: ignore[index]


@pytest.mark.parametrize(
    "data, message",
    [
        ({"trian": {}}, "unknown key.*trian.*valid keys"),
        ({"train": {"epoch": 3}}, r"train: unknown key\(s\) epoch"),
        ({"train": {"epochs": "three"}}, "train.epochs: expected int"),
        ({"train": {"lr": True}}, "train.lr: expected float"),
        ({"eval": {"ks": [1, "x"]}}, r"eval.ks\[1\]: expected int"),
        ({"strategy": "sgd"}, "unknown strategy 'sgd'; registered: .*finetune"),
        ({"loss": {"name": "infonce", "temp": 0.1}}, "loss: unknown key.*temp.*valid keys: temperature"),
        ({"model": {"image_encoder": {"name": "small_cnn", "width": 1.5}}}, "model.image_encoder.width: expected int"),
        ({"model": {"text_encoder": {"name": "bigru", "corpus": ["x"]}}}, "unknown key.*corpus"),
        ({"benchmark": 3}, "expected a benchmark name"),
    ],
)
def test_bad_configs_are_clear_errors(data, message):
    with pytest.raises(ConfigError, match=message):
        from_dict(data)


def test_int_is_accepted_for_float():
    assert from_dict({"train": {"lr": 1}}).train.lr == 1.0


def test_overrides_reach_nested_and_component_keys():
    data = apply_overrides({"strategy": "finetune"}, ["train.epochs=3", "loss.temperature=0.1", "strategy.name=joint"])
    config = from_dict(data)
    assert config.train.epochs == 3
    assert config.loss.name == "infonce" and config.loss.options["temperature"] == 0.1
    assert config.strategy.name == "joint"
    with pytest.raises(ConfigError, match="key=value"):
        apply_overrides({}, ["train.epochs"])


def test_load_config_names_the_file(tmp_path):
    bad = tmp_path / "bad.yaml"
    bad.write_text("train:\n  epochz: 1\n")
    with pytest.raises(ConfigError, match="bad.yaml: train: unknown key"):
        load_config(bad)
    with pytest.raises(ConfigError, match="does not exist"):
        load_config(tmp_path / "missing.yaml")
    broken = tmp_path / "broken.yaml"
    broken.write_text("train: [\n")
    with pytest.raises(ConfigError, match="broken.yaml: not valid YAML"):
        load_config(broken)


def test_shipped_configs_load():
    from pathlib import Path

    configs = sorted((Path(__file__).parents[1] / "configs").glob("*.yaml"))
    assert configs
    for path in configs:
        load_config(path)


def test_base_configs_are_merged(tmp_path):
    (tmp_path / "base.yaml").write_text("train: {epochs: 4, lr: 0.1}\nloss: {name: infonce, temperature: 0.2}\n")
    (tmp_path / "child.yaml").write_text("base: base.yaml\ntrain: {epochs: 2}\nloss: max_hinge\n")
    config = load_config(tmp_path / "child.yaml")
    assert config.train.epochs == 2 and config.train.lr == 0.1
    assert config.loss.name == "max_hinge" and dict(config.loss.options) == {"margin": 0.2, "warmup_steps": 0}
    (tmp_path / "loop.yaml").write_text("base: loop.yaml\n")
    with pytest.raises(ConfigError, match="loops"):
        load_config(tmp_path / "loop.yaml")


def test_load_benchmark_checks_the_benchmark_section_only(tmp_path):
    path = tmp_path / "c.yaml"
    path.write_text("benchmark: {name: shapes, train_images: 50}\nstrategy: {name: not_read_here}\n")
    benchmark = load_benchmark(path, ["benchmark.test_images=20"])
    assert (benchmark.name, benchmark.options["train_images"], benchmark.options["test_images"]) == ("shapes", 50, 20)
    assert load_benchmark(None).name == RunConfig().benchmark.name
    with pytest.raises(ConfigError, match=r"c.yaml: benchmark: .*train_imagez"):
        load_benchmark(path, ["benchmark.train_imagez=5"])
    with pytest.raises(ConfigError, match=r"c.yaml: unknown key\(s\) trian; valid keys: seed"):
        load_benchmark(path, ["trian.epochs=1"])


@pytest.mark.parametrize(
    "data, message",
    [
        ({"strategy": {"name": "ewc", "lam": -1}}, "strategy.lam: must be >= 0, got -1"),
        ({"strategy": {"name": "replay", "memory_size": -5}}, "strategy.memory_size: must be >= 0, got -5"),
        ({"strategy": {"name": "mas", "decay": 1.5}}, "strategy.decay: must be <= 1, got 1.5"),
        ({"loss": {"name": "infonce", "temperature": 0}}, "loss.temperature: must be > 0, got 0"),
        ({"loss": {"name": "infonce", "temperature": "hot"}}, "loss.temperature: expected float | one of 'pretrained', got 'hot'"),
        ({"eval": {"reindex_budget": [2.5]}}, "eval.reindex_budget[0]: must be <= 1, got 2.5"),
        ({"model": {"image_encoder": {"name": "small_cnn", "dropout": 1.0}}}, "model.image_encoder.dropout: must be < 1, got 1.0"),
        ({"seed": -1}, "seed: must be >= 0, got -1"),
    ],
)
def test_every_numeric_option_has_its_limits(data, message):
    with pytest.raises(ConfigError, match=re.escape(message)):
        from_dict(data)


def test_options_are_checked_at_load_and_built_as_loaded():
    config = from_dict({"strategy": {"name": "ewc", "lam": "1e2", "importance_batches": 3}})
    assert dict(config.strategy.options) == {"lam": 100.0, "branches": "both", "decay": 1.0, "importance_batches": 3}
    plugin = STRATEGIES.build(config.strategy.name, config.strategy.options)
    assert (plugin.lam, plugin.importance_batches) == (100.0, 3)


def test_the_new_benchmarks_options_have_their_limits():
    with pytest.raises(ConfigError, match=re.escape("benchmark.test_fraction: must be > 0, got 0.0")):
        from_dict({"benchmark": {"name": "image_captions", "test_fraction": 0.0}})
    with pytest.raises(ConfigError, match=re.escape("benchmark.captions_per_image: must be >= 1, got 0")):
        from_dict({"benchmark": {"name": "flickr30k", "captions_per_image": 0}})
    config = from_dict({"benchmark": {"name": "image_captions", "task_by": "time", "period_boundaries": [2014, "2020-01-01"]}})
    assert config.benchmark.options["period_boundaries"] == (2014, "2020-01-01")  # years as YAML writes them
