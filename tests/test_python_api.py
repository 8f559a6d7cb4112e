"""The Python API: docs/python.md's script runs as written; every benchmark is a function."""

import re
from pathlib import Path

import pytest
import torch

from ccrbench import benchmarks, evaluation, models, strategies
from ccrbench.registry import BENCHMARKS, STRATEGIES, ConfigError

PAGE = Path(__file__).parents[1] / "docs" / "python.md"


def test_the_docs_script_runs_as_written(tmp_path, monkeypatch, capsys):
    (code,) = re.findall(r"```python\n(.*?)```", PAGE.read_text(), flags=re.S)
    assert len(code.splitlines()) <= 40
    monkeypatch.chdir(tmp_path)
    exec(compile(code, str(PAGE), "exec"), {"__name__": "__main__"})
    assert re.search(r"i2t R@10 after the last task: reindex \d+\.\d, no reindex \d+\.\d", capsys.readouterr().out)
    assert "R@10_i2t_noreindex,eval,test,Task002,3," in (tmp_path / "metrics.csv").read_text()
    assert "R@5_t2i_reindex/eval_phase/test_stream/all_tasks" in (tmp_path / "log.txt").read_text()


def test_every_registered_benchmark_is_a_function_of_the_package():
    for name in BENCHMARKS.names():
        assert getattr(benchmarks, name) is BENCHMARKS.get(name) and name in benchmarks.__all__
    bm = benchmarks.shapes(tasks=("signs",), train_images=4, test_images=2, image_size=16)
    assert isinstance(bm, benchmarks.RetrievalBenchmark) and len(bm.test_stream) == 1 and bm.task_names == ("signs",)


def test_every_registered_strategy_is_exported():
    exported = {getattr(strategies, name) for name in strategies.__all__}
    assert {STRATEGIES.get(name) for name in STRATEGIES.names()} <= exported
    assert evaluation.RetrievalMetrics.__module__ == "ccrbench.evaluation.plugin"


def test_build_model_checks_its_keys_as_a_config_does():
    with pytest.raises(ConfigError, match="embed_size"):
        models.build_model(corpus=("a red square",), embed_size=8)
    model = models.build_model(corpus=("a red square",), embed_dim=8, image_encoder={"name": "small_cnn", "width": 4})
    image_emb, text_emb = model(torch.rand(2, 3, 16, 16), model.tokenize(["a red square", "a square"]))
    assert image_emb.shape == (2, 8) and text_emb.shape == (2, 8)
