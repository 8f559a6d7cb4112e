"""CONTRIBUTING.md cannot rot: its example is the file the tests run, its commands and suite lines work."""

import json
import re
from pathlib import Path

import pytest
import torch

from ccrbench.cli import main
from ccrbench.models.base import ImageEncoder
from ccrbench.options import check_options
from ccrbench.registry import BENCHMARKS, ENCODERS, ConfigError
from ccrbench.suite import expand_suite
from example_plugins.my_benchmark import colour_squares
from example_plugins.my_encoder import PooledPixels
from example_plugins.my_plugin import L2Anchor, l2_distance
from tests.contract import assert_documented_keyword_keys
from tests.training.test_template import tiny_strategy
from tests.tiny import TINY

ROOT = Path(__file__).resolve().parent.parent
GUIDE = (ROOT / "CONTRIBUTING.md").read_text()


@pytest.mark.parametrize("example", ["my_plugin.py", "my_benchmark.py", "my_encoder.py"])
def test_the_guides_examples_are_the_tested_files(example):
    source = (ROOT / "example_plugins" / example).read_text()
    assert f"```python\n{source}```" in GUIDE


def test_the_documented_command_loads_the_example_from_outside_the_package(tmp_path):
    command = re.search(r"ccrbench run (.*?)--out", GUIDE.replace("\\\n", " "), re.S).group(1).split()
    assert "strategy=example_plugins.my_plugin:L2Anchor" in command
    tiny = [a for item in [*TINY, "benchmark.tasks=[blocks, curves]"] for a in ("--set", item)]
    assert main(["run", "--quiet", *command, *tiny, "--out", str(tmp_path)]) == 0
    results = json.loads((tmp_path / "results.json").read_text())
    assert results["complete"] and results["config"]["strategy"] == {
        "name": "example_plugins.my_plugin:L2Anchor",
        "lam": 0.1,
        "branches": "both",
    }


def test_the_documented_suite_variant_and_baselines_suite_expand(tmp_path):
    variant = next(line for line in GUIDE.splitlines() if line.startswith("  - {strategy: example_plugins"))
    suite = tmp_path / "mine.yaml"
    suite.write_text(f"base: {ROOT / 'configs' / 'shapes_finetune.yaml'}\nvariants:\n{variant}\n")
    (run,) = expand_suite(suite)
    assert run.config.strategy.name == "example_plugins.my_plugin:L2Anchor" and run.config.strategy.options["lam"] == 0.1
    baselines = expand_suite(ROOT / "configs" / "suites" / "baselines.yaml")
    assert [r.config.strategy.name for r in baselines] == ["finetune", "ewc", "mas", "lwf", "replay"]


def test_l2_distance_is_the_squared_distance_to_the_anchors():
    anchors = {"w": torch.tensor([1.0, 2.0])}
    assert float(l2_distance(anchors, anchors)) == 0.0
    assert float(l2_distance({"w": torch.tensor([2.0, 0.0]), "other": torch.ones(3)}, anchors)) == pytest.approx(5.0)


def test_the_example_anchors_after_each_task_and_holds_the_weights_back():
    def drift_in_second_task(lam):
        bm, strategy, _ = tiny_strategy()
        plugin = L2Anchor(lam=lam, branches="image")
        strategy.plugins.insert(0, plugin)
        strategy.train(bm.train_stream[0])
        assert plugin.anchors.keys() == strategy.model.branch_parameters("image").keys()
        anchors = {n: a.clone() for n, a in plugin.anchors.items()}
        strategy.train(bm.train_stream[1])
        return float(l2_distance(strategy.model.branch_parameters("image"), anchors))

    assert drift_in_second_task(100.0) < drift_in_second_task(0.0)


def documented_run(section, tmp_path, *, drop=(), extra=()):
    """Runs the `ccrbench run` command of `section` of the guide on tiny settings (TINY, less the
    items that start with one of `drop`, plus `extra`); returns its results."""
    text = GUIDE[GUIDE.index(f"# {section}") :].replace("\\\n", " ")
    command = re.search(r"ccrbench run (.*?)--out", text, re.S).group(1).split()
    tiny = [a for item in [*TINY, *extra] if not item.startswith(drop) for a in ("--set", item)]
    assert main(["run", "--quiet", *command, *tiny, "--out", str(tmp_path)]) == 0
    return json.loads((tmp_path / "results.json").read_text())


def test_the_documented_benchmark_runs_and_keeps_the_benchmark_contract(tmp_path):
    name = "example_plugins.my_benchmark:colour_squares"
    assert_documented_keyword_keys(BENCHMARKS, name)
    results = documented_run("Contributing a benchmark", tmp_path)
    assert results["complete"] and results["config"]["benchmark"]["name"] == name
    assert results["config"]["benchmark"]["train_images"] == 24  # TINY's, after the guide's 100
    bm = colour_squares(train_images=3, test_images=2)
    assert bm.task_names == ("warm", "cool") and [exp.task_label for exp in bm.test_stream] == [0, 1]
    ids = [bm.test_stream[t].dataset[i][2] for t in range(2) for i in range(2)]
    assert len(set(ids)) == 4  # unique image ids across tasks
    with pytest.raises(ConfigError, match="image_size: must be >= 8, got 4"):
        check_options(colour_squares, {"image_size": 4}, where="benchmark")


def test_the_documented_encoder_runs_and_keeps_the_encoder_protocol(tmp_path):
    name = "example_plugins.my_encoder:PooledPixels"
    assert_documented_keyword_keys(ENCODERS, name)
    encoder = PooledPixels(grid=2, output_dim=5)
    assert isinstance(encoder, ImageEncoder) and encoder(torch.rand(3, 3, 16, 16)).shape == (3, 5)
    results = documented_run("Contributing an encoder", tmp_path, drop=("model.image_encoder",), extra=["benchmark.tasks=[blocks, curves]"])
    assert results["complete"] and results["config"]["model"]["image_encoder"] == {"name": name, "grid": 8, "output_dim": 64}
