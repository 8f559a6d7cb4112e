"""What a suite writes for TensorBoard, read back from the event files."""

import json
import re

import pytest
from tensorboard.backend.event_processing.event_accumulator import EventAccumulator
from tensorboard.backend.event_processing.event_file_loader import EventFileLoader
from tensorboard.plugins.custom_scalar import layout_pb2
from tensorboard.plugins.custom_scalar import metadata as layout_metadata
from tensorboard.plugins.hparams import api_pb2
from tensorboard.plugins.hparams import metadata as hparams_metadata

from ccrbench.reporting.tensorboard.hparams import hparam_infos, hparam_values
from ccrbench.reporting.tensorboard.layout import scalars_layout
from ccrbench.suite import run_suite
from tests.tiny import TINY

JOINT, EWC = RUNS = ("strategy-joint", "strategy-ewc__decoupled-true__seed-1")
KNOWN, UNKNOWN = "average (known task)", "all tasks (unknown task)"


@pytest.fixture(scope="module")
def suite(tmp_path_factory):
    """A tiny two-task suite (joint; decoupled EWC with another seed), run once."""
    root = tmp_path_factory.mktemp("tb_suite")
    (root / "base.yaml").write_text("strategy: finetune\n")
    spec = {
        "base": "base.yaml",
        "set": [*TINY, "benchmark.tasks=[blocks, curves]"],
        "variants": [{"strategy": "joint"}, {"strategy": "ewc", "decoupled": True, "seed": 1}],
    }
    (root / "suite.yaml").write_text(json.dumps(spec))
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("CCRBENCH_CACHE", str(tmp_path_factory.getbasetemp() / "cache"))
        assert run_suite(root / "suite.yaml", root / "out") == {name: None for name in RUNS}
    return root / "out"


def values(directory, tag):
    """Every summary value with this tag in the event files directly in `directory`."""
    return [v for f in sorted(directory.glob("events*")) for e in EventFileLoader(str(f)).Load() for v in e.summary.value if v.tag == tag]


def scalars(suite, run):
    return EventAccumulator(str(suite / run / "tb"), size_guidance={"scalars": 0, "images": 0}).Reload()


def steps(events, tag):
    return [e.step for e in events.Scalars(tag)]


def test_short_tags_with_task_names_and_no_old_tags(suite):
    ewc = scalars(suite, EWC).Tags()["scalars"]
    for tag in (
        "i2t_r10/reindex/blocks",
        f"i2t_r10/reindex/{KNOWN}",
        f"t2i_r1/noreindex/{UNKNOWN}",
        f"rsum/noreindex/{KNOWN}",  # both models of a decoupled pair, summed
        f"final/rsum/reindex/{KNOWN}",
        f"final/t2i_r10/noreindex/{UNKNOWN}",
        "final/forgetting/i2t_r10/reindex",
        "train/i2t model/loss/total",
        "train/t2i model/loss/EWC penalty",  # a regulariser's penalty term
        "train/i2t model/lr",
        "Diagnostics/i2t_model_image_drift/blocks",  # the causes of forgetting (decoupled: per model)
        "Diagnostics/t2i_model_t2i_cross_top10/curves",
    ):
        assert tag in ewc
    joint = scalars(suite, JOINT).Tags()["scalars"]
    assert {"train/loss/total", "train/lr", f"i2t_r10/reindex/{UNKNOWN}"} <= set(joint)
    assert not [t for t in ewc + joint if t.startswith(("Retrieval_", "Task"))]


def test_step_is_tasks_learned_for_joint_and_continual_runs(suite):
    ewc, joint = scalars(suite, EWC), scalars(suite, JOINT)
    assert steps(ewc, "i2t_r10/reindex/blocks") == [1, 2]
    assert steps(ewc, "i2t_r10/reindex/curves") == [2]
    assert steps(joint, "i2t_r10/reindex/blocks") == [2]  # trained once on both tasks: beside the others' final values
    for events in (ewc, joint):
        assert steps(events, f"final/i2t_r10/reindex/{KNOWN}") == [2]
    assert "final/forgetting/i2t_r10/reindex" not in joint.Tags()["scalars"]  # no forgetting to speak of
    final = ewc.Scalars(f"final/t2i_r5/noreindex/{UNKNOWN}")[0].value
    assert final == ewc.Scalars(f"t2i_r5/noreindex/{UNKNOWN}")[-1].value
    assert {"examples/blocks/i2t model/i2t_query0", "examples/curves/t2i model/t2i_query2"} <= set(ewc.Tags()["images"])
    assert [e.step for e in ewc.Images("examples/blocks/i2t model/i2t_query0")] == [1, 2]  # an old task at every stage


def test_custom_scalars_layout_puts_forgetting_first(suite):
    (value,) = values(suite / EWC / "tb", layout_metadata.CONFIG_SUMMARY_TAG)
    layout = layout_pb2.Layout.FromString(value.tensor.string_val[0])
    first = layout.category[0]
    assert first.title.startswith("Forgetting") and not first.closed
    assert [c.title for c in first.chart] == ["i2t R@10 · reindex", "t2i R@10 · reindex", "i2t R@10 · no reindex", "t2i R@10 · no reindex"]
    pattern = first.chart[0].multiline.tag[0]
    tags = scalars(suite, EWC).Tags()["scalars"]
    assert sorted(t for t in tags if re.search(pattern, t)) == sorted(
        ["i2t_r10/reindex/blocks", "i2t_r10/reindex/curves", f"i2t_r10/reindex/{KNOWN}", f"i2t_r10/reindex/{UNKNOWN}"]
    )
    titles = [c.title for c in layout.category]
    assert "Training (per iteration)" in titles and all(c.closed for c in layout.category[2:])


def test_one_hparams_experiment_for_the_suite(suite):
    experiments = [p for p in suite.rglob("events*") if values(p.parent, hparams_metadata.EXPERIMENT_TAG)]
    assert [p.parent for p in experiments] == [suite]  # at the suite root, none in the runs
    (value,) = values(suite, hparams_metadata.EXPERIMENT_TAG)
    experiment = hparams_metadata.parse_experiment_plugin_data(value.metadata.plugin_data.content)
    infos = {h.name: h for h in experiment.hparam_infos}
    assert {n for n, h in infos.items() if h.differs} == {"strategy", "decoupled", "seed"}
    assert [v.string_value for v in infos["strategy"].domain_discrete.values] == ["ewc", "joint"]
    assert infos["seed"].type == api_pb2.DATA_TYPE_STRING and [v.string_value for v in infos["seed"].domain_discrete.values] == ["0", "1"]
    assert infos["decoupled"].type == api_pb2.DATA_TYPE_BOOL
    metrics = [m.name.tag for m in experiment.metric_infos]
    assert metrics[:2] == [f"final/rsum/reindex/{KNOWN}", f"final/rsum/noreindex/{KNOWN}"]
    assert f"final/t2i_r10/noreindex/{UNKNOWN}" in metrics and "final/forgetting/i2t_r10/reindex" in metrics
    for run in RUNS:  # every run is a session with its values, and finished
        (start,) = values(suite / run / "tb", hparams_metadata.SESSION_START_INFO_TAG)
        info = hparams_metadata.parse_session_start_info_plugin_data(start.metadata.plugin_data.content)
        assert info.hparams["strategy"].string_value == run.split("__")[0].removeprefix("strategy-")
        assert values(suite / run / "tb", hparams_metadata.SESSION_END_INFO_TAG)


def test_hparam_domains_and_what_differs():
    configs = [{"seed": 0, "strategy": {"name": "ewc", "lam": 1.0}, "decoupled": False}, {"seed": 1, "strategy": {"name": "finetune"}, "decoupled": False}]
    assert hparam_values(configs[0]) == {"seed": "0", "strategy": "ewc", "strategy.lam": 1.0, "decoupled": False}
    infos = {h.name: h for h in hparam_infos([hparam_values(c) for c in configs])}
    assert infos["seed"].differs and infos["strategy"].differs and not infos["decoupled"].differs
    assert not infos["strategy.lam"].differs  # present in one run only, with one value
    assert infos["strategy.lam"].type == api_pb2.DATA_TYPE_FLOAT64
    single = {h.name: h for h in hparam_infos([hparam_values(configs[0])])}
    assert single["strategy"].differs and single["strategy.lam"].differs and single["decoupled"].differs  # what a comparison is about


def test_layout_follows_the_record():
    record = {"tasks": [0], "metrics": {"reindex": {"0": {"i2t_r1": 1.0, "i2t_r5": 2.0}}, "noreindex": {"0": {"i2t_r1": 1.0, "i2t_r5": 2.0}}}}
    layout = scalars_layout(record)
    assert [c.title for c in layout.category[0].chart] == ["i2t R@5 · reindex", "i2t R@5 · no reindex"]
    assert any(c.title == "i2t R@1" for c in layout.category)
