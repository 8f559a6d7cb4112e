"""CONTRIBUTING.md's "Contributing a metric" cannot rot: its example, added to measures.py as the guide
says, reaches results, results.md, the comparison report, `--metric`, a tune criterion and TensorBoard."""

import __future__
import re
from pathlib import Path

import pytest
import torch

from ccrbench.evaluation import measures
from ccrbench.evaluation.keys import MetricKey
from ccrbench.evaluation.protocol import TaskEmbeddings, evaluate_stage
from ccrbench.reporting.comparison import comparison_report
from ccrbench.evaluation.continual import summarize
from ccrbench.reporting.run_report import markdown_report
from ccrbench.reporting.suite_report import choose_metric
from ccrbench.reporting.tensorboard.layout import scalars_layout
from ccrbench.tune import Criterion

GUIDE = (Path(__file__).resolve().parent.parent / "CONTRIBUTING.md").read_text()
SECTION = GUIDE[GUIDE.index("# Contributing a metric") :]


@pytest.fixture
def mrr():
    """The guide's example, run in the namespace of measures.py (as if added at its end), then removed."""
    (code,) = re.findall(r"```python\n(.*?)```", SECTION, re.S)
    namespace = dict(vars(measures))
    exec(compile(code, "CONTRIBUTING.md", "exec", flags=__future__.annotations.compiler_flag), namespace)  # measures.py's own future import
    yield namespace["mean_reciprocal_rank"]
    measures.MEASURES.pop("mrr")


def database(shift: float) -> TaskEmbeddings:
    """Three images with one caption each; `shift` moves the captions off their images."""
    image = torch.eye(3)
    text = torch.nn.functional.normalize(image + shift * image.roll(1, 0), dim=1)
    return TaskEmbeddings(image, text, torch.arange(3))


def fake_run(stages: list[dict], seed: int) -> dict:
    config = {"strategy": {"name": "finetune"}, "decoupled": False, "model": {"shared_layers": 0}, "seed": seed, "benchmark": {"name": "b"}}
    return {"complete": True, "config": config, "ks": [1], **summarize(stages, ["a", "b"])}


def test_the_guides_metric_reaches_every_place_the_guide_names(mrr):
    ranks = torch.tensor([0.0, 1.0, 3.0])
    assert mrr(ranks) == pytest.approx(100 * (1 + 1 / 2 + 1 / 4) / 3)
    key = MetricKey.parse("t2i_mrr")
    assert (key.direction, key.measure, key.k, key.higher_is_better, key.title, str(key)) == ("t2i", "mrr", None, True, "t2i MRR", "t2i_mrr")

    a, b = database(0.0), database(2.0)  # task b: every caption nearer another image
    stages = [
        {"stage": 0, "tasks": [0], "metrics": evaluate_stage({0: a}, {0: a}, ks=(1,))},
        {"stage": 1, "tasks": [0, 1], "metrics": evaluate_stage({0: b, 1: a}, {0: a, 1: a}, ks=(1,))},
    ]
    final = stages[-1]["metrics"]["reindex"]
    assert final["0"]["i2t_mrr"] < final["1"]["i2t_mrr"] == 100.0
    runs = [fake_run(stages, seed) for seed in (0, 1)]
    assert runs[0]["forgetting"]["reindex"]["i2t_mrr"] == pytest.approx((100 - final["0"]["i2t_mrr"]) / 1)
    assert "| task (mrr) | im2txt reindex |" in markdown_report(runs[0], title="t")
    assert choose_metric(runs, "mrr") == "mrr"
    assert "| i2t mrr | ft (reindex) | ft (no reindex) |" in comparison_report(runs, metric="mrr")
    assert Criterion(metric="mrr").score(runs[0]) == pytest.approx(sum(final_values(runs[0])) / 4)
    titles = [c.title for category in scalars_layout(stages[-1]).category for c in category.chart]
    assert "i2t MRR · reindex" in titles


def final_values(run: dict) -> list[float]:
    return [run["final"][p]["average"][f"{d}_mrr"] for d in ("i2t", "t2i") for p in ("reindex", "noreindex")]
