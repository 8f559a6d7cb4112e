"""CONTRIBUTING.md cannot rot: its example is the file the tests run, its commands and suite lines work."""

import json
import re
from pathlib import Path

import pytest
import torch

from ccrbench.cli import main
from ccrbench.suite import expand_suite
from example_plugins.my_plugin import L2Anchor, l2_distance
from tests.strategies.test_template import tiny_strategy
from tests.tiny import TINY

ROOT = Path(__file__).resolve().parent.parent
GUIDE = (ROOT / "CONTRIBUTING.md").read_text()


def test_the_guides_example_is_the_tested_file():
    source = (ROOT / "example_plugins" / "my_plugin.py").read_text()
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
