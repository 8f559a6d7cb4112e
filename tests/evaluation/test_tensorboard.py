"""What a suite writes for TensorBoard, read back from the event files."""

import json
import math
import re

import pytest
from tensorboard.backend.event_processing.event_accumulator import EventAccumulator
from tensorboard.backend.event_processing.event_file_loader import EventFileLoader
from tensorboard.plugins.custom_scalar import layout_pb2
from tensorboard.plugins.custom_scalar import metadata as layout_metadata
from tensorboard.plugins.hparams import api_pb2
from tensorboard.plugins.hparams import metadata as hparams_metadata

from ccrbench.reporting.tensorboard.axis import axis_copies
from ccrbench.reporting.tensorboard.hparams import hparam_infos, hparam_values, trial_id
from ccrbench.reporting.tensorboard.layout import scalars_layout
from ccrbench.reporting.tensorboard.means import write_seed_means
from ccrbench.suite import run_suite
from tests.tiny import TINY

JOINT, EWC = RUNS = ("strategy-joint", "strategy-ewc__decoupled-true__seed-1")
KNOWN, UNKNOWN = "known task", "all tasks"
FORGETTING = "R@10"  # the first group of Time Series
AXES = ("y-axis 0", "y-axis 100")  # the runs that hold the forgetting charts at 0-100
TITLE_CHARS = 31  # what a Time Series card title shows at 1920 px, settings open (Chromium: 213 px of 14 px Roboto)


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
    return EventAccumulator(str(suite / "tb" / run), size_guidance={"scalars": 0, "images": 0}).Reload()


def steps(events, tag):
    return [e.step for e in events.Scalars(tag)]


def test_run_names_are_the_runs_names_and_no_empty_run(suite):
    tb = suite / "tb"
    folders = {p.parent for p in tb.rglob("events*")}
    assert folders == {tb / run for run in RUNS + AXES}  # no event file at the root (TensorBoard's run "."), none in the run folders
    assert not list(suite.glob("*/tb"))


def test_short_tags_with_task_names_and_no_old_tags(suite):
    ewc = scalars(suite, EWC).Tags()["scalars"]
    for tag in (
        f"{FORGETTING}/i2t reindex/1 blocks",
        f"{FORGETTING}/t2i no reindex/{KNOWN}",
        f"{FORGETTING}/i2t reindex/{UNKNOWN}",
        f"t2i_r1/noreindex/{UNKNOWN}",
        f"rsum/noreindex/{KNOWN}",  # both models of a decoupled pair, summed
        f"final/rsum/reindex/{KNOWN}",
        f"final/t2i_r10/noreindex/{UNKNOWN}",
        "final/forgetting/i2t_r10/reindex",
        "train/i2t model/loss/total",
        "train/t2i model/loss/EWC penalty",  # a regulariser's penalty term
        "train/i2t model/lr",
    ):
        assert tag in ewc
    joint = scalars(suite, JOINT).Tags()["scalars"]
    assert {"train/loss/total", "train/lr", f"{FORGETTING}/i2t reindex/{UNKNOWN}"} <= set(joint)
    assert not [t for t in ewc + joint if t.startswith(("Retrieval_", "Task", "i2t_r10/reindex", "t2i_r10/noreindex"))]
    assert not [t for t in ewc + joint if "(" in t or ")" in t]  # Custom Scalars reads a line's run from its first "("


def test_decoupled_runs_share_the_others_tags(suite):
    """Diagnostics and examples of a decoupled pair under the tags of a single model: the model is the direction's."""
    ewc, joint = scalars(suite, EWC).Tags(), scalars(suite, JOINT).Tags()
    diagnostics = [t for t in ewc["scalars"] if t.startswith("diagnostics/")]
    assert "diagnostics/i2t_cross_miss_share/2 curves" in diagnostics and "diagnostics/t2i_margin/1 blocks" in diagnostics
    assert not [t for t in diagnostics if "_model_" in t]
    assert "diagnostics/image_drift · i2t model/1 blocks" in diagnostics  # one per model where no direction says which
    examples = {t for t in ewc["images"] if t.startswith("examples/")}
    assert examples == {t for t in joint["images"] if t.startswith("examples/")} == {
        f"examples/{task}/{d}" for task in ("1 blocks", "2 curves") for d in ("i2t", "t2i")
    }  # a few cards per task, the same for every strategy
    assert [e.step for e in scalars(suite, EWC).Images("examples/1 blocks/i2t")] == [1, 2]  # an old task at every stage
    text = values(suite / "tb" / EWC, "examples/2 curves/t2i/text_summary")[0]
    assert text.tensor.string_val[0].decode().startswith("**curves** · caption of image")  # headers name the task


def test_first_time_series_group_is_the_forgetting_comparison(suite):
    """Time Series orders cards by tag (TensorBoard 2.21: digits and "/" first, then by character
    code) and groups them by the tag's first component, in that order."""
    def sort_key(tag):  # TensorBoard's compareTagNames, enough for these tags: numbers by value
        return [(0, int(p), "") if p.isdigit() else (0 if p == "/" else 1, 0, p) for p in re.findall(r"\d+|.", tag)]

    for run in (JOINT, EWC):
        tags = sorted(scalars(suite, run).Tags()["scalars"], key=sort_key)
        groups = list(dict.fromkeys(t.split("/", 1)[0] for t in tags))
        assert groups[0] == FORGETTING and {"diagnostics", "final", "train"} - {JOINT: {"diagnostics"}}.get(run, set()) <= set(groups[1:])
        first = [t for t in tags if t.startswith(FORGETTING + "/")]
        cards = [f"{FORGETTING}/{d} {p}/{s}" for d in ("i2t", "t2i") for p in ("no reindex", "reindex") for s in ("1 blocks", "2 curves", UNKNOWN, KNOWN)]
        assert first == cards and len(first) <= 24  # per direction and policy: the tasks in learning order, then both summaries
        assert max(map(len, first)) <= TITLE_CHARS  # Time Series titles a card with its whole tag


def test_axis_runs_hold_the_forgetting_charts_at_0_to_100(suite):
    """"Ignore outliers" (on by default, kept in the browser) leaves out a chart's lowest and
    highest points: the axis runs put more points than it leaves out at 0 and at 100 in every
    card of the forgetting group (and so in every Custom Scalars forgetting chart)."""
    first = {t for t in scalars(suite, EWC).Tags()["scalars"] if t.startswith(FORGETTING + "/")}
    for axis, bound in zip(AXES, (0, 100)):
        events = scalars(suite, axis)
        assert set(events.Tags()["scalars"]) == first
        assert {(e.step, e.value) for t in first for e in events.Scalars(t)} == {(0, bound), (1, bound), (2, bound)}  # every step of a 2-task run
    for runs, steps in ((1, 2), (9, 3), (40, 3), (40, 10)):  # Time Series leaves out ceil(0.05 (n - 1)) of a card's n points at each end
        copies = axis_copies(runs, steps)
        assert copies * steps > math.ceil(0.05 * ((runs + 2 * copies) * steps - 1))
    assert axis_copies(9, 3) == 1 < axis_copies(40, 3)  # one run per bound for the screenshots' suite; more for a large one


def test_trial_ids_are_short_and_one_per_run(suite):
    """HPARAMS shows a run's trial id in a column of 10 em: a suite's run names, shortened."""
    ids = {}
    for run in RUNS:
        (start,) = values(suite / "tb" / run, hparams_metadata.SESSION_START_INFO_TAG)
        ids[run] = hparams_metadata.parse_session_start_info_plugin_data(start.metadata.plugin_data.content).group_name
    assert ids == {JOINT: "joint", EWC: "ewc s1 decoupled"}  # what tells runs apart first: the strategy, the seed
    assert trial_id("strategy-lwf__shared_layers-1__decoupled-false__seed-0") == "lwf s0 shared_layers=1 no decoupled"
    assert trial_id("demo") == "demo"  # a name no suite made: as it is


def test_every_strategy_logs_every_hparams_metric(suite):
    (value,) = [v for run in RUNS for v in values(suite / "tb" / run, hparams_metadata.EXPERIMENT_TAG)]
    experiment = hparams_metadata.parse_experiment_plugin_data(value.metadata.plugin_data.content)
    metrics = [m.name.tag for m in experiment.metric_infos]
    for run in RUNS:
        logged = scalars(suite, run).Tags()["scalars"]
        assert set(metrics) <= set(logged), run
    joint = scalars(suite, JOINT)
    assert [e.value for e in joint.Scalars("final/forgetting/rsum/reindex")] == [0.0]  # one stage: nothing learned earlier was lost


def test_custom_scalars_layout_puts_forgetting_first(suite):
    (value,) = values(suite / "tb" / EWC, layout_metadata.CONFIG_SUMMARY_TAG)
    layout = layout_pb2.Layout.FromString(value.tensor.string_val[0])
    first = layout.category[0]
    assert first.title.startswith("Forgetting") and not first.closed
    assert [c.title for c in first.chart] == ["i2t R@10 · reindex", "t2i R@10 · reindex", "i2t R@10 · no reindex", "t2i R@10 · no reindex"]
    pattern = first.chart[0].multiline.tag[0]
    tags = scalars(suite, EWC).Tags()["scalars"]
    assert sorted(t for t in tags if re.search(pattern, t)) == sorted(
        [f"{FORGETTING}/i2t reindex/{s}" for s in ("1 blocks", "2 curves", KNOWN, UNKNOWN)]
    )
    titles = [c.title for c in layout.category]
    assert "Training (per iteration)" in titles and all(c.closed for c in layout.category[2:])
    diagnostics = next(c for c in layout.category if c.title == "diagnostics")
    for chart in diagnostics.chart:
        assert [t for t in tags if re.search(chart.multiline.tag[0], t)], chart.title


def test_one_hparams_experiment_for_the_suite(suite):
    experiments = list(dict.fromkeys(p.parent for p in suite.rglob("events*") if values(p.parent, hparams_metadata.EXPERIMENT_TAG)))
    assert experiments == [suite / "tb" / min(RUNS)]  # in one run's folder, no root run
    (value,) = values(experiments[0], hparams_metadata.EXPERIMENT_TAG)
    experiment = hparams_metadata.parse_experiment_plugin_data(value.metadata.plugin_data.content)
    infos = {h.name: h for h in experiment.hparam_infos}
    assert set(infos) == {"strategy", "decoupled", "seed"} and all(h.differs for h in infos.values())  # constant keys left out
    assert [v.string_value for v in infos["strategy"].domain_discrete.values] == ["ewc", "joint"]
    assert infos["seed"].type == api_pb2.DATA_TYPE_STRING and [v.string_value for v in infos["seed"].domain_discrete.values] == ["0", "1"]
    assert infos["decoupled"].type == api_pb2.DATA_TYPE_BOOL
    metrics = [m.name.tag for m in experiment.metric_infos]
    assert metrics[:3] == ["final/forgetting/rsum/reindex", f"final/rsum/reindex/{KNOWN}", f"final/rsum/noreindex/{KNOWN}"]
    assert f"final/t2i_r10/noreindex/{UNKNOWN}" in metrics and "final/forgetting/i2t_r10/reindex" in metrics
    for run in RUNS:  # every run is a session with its values, and finished
        (start,) = values(suite / "tb" / run, hparams_metadata.SESSION_START_INFO_TAG)
        info = hparams_metadata.parse_session_start_info_plugin_data(start.metadata.plugin_data.content)
        assert info.hparams["strategy"].string_value == run.split("__")[0].removeprefix("strategy-")
        assert values(suite / "tb" / run, hparams_metadata.SESSION_END_INFO_TAG)


def _other_seed(results):
    """`results` as if run with seed 0 and every stage metric 1 lower."""
    stages = [{**r, "metrics": {p: {sc: {m: v - 1 for m, v in vs.items()} for sc, vs in scopes.items()} for p, scopes in r["metrics"].items()}} for r in results["stages"]]
    return {**results, "config": {**results["config"], "seed": 0}, "stages": stages}


def test_report_writes_a_mean_over_seeds_run(suite, tmp_path):
    ewc = json.loads((suite / EWC / "results.json").read_text())
    results = [ewc, _other_seed(ewc), json.loads((suite / JOINT / "results.json").read_text())]
    names = [EWC, "seed0", JOINT]
    write_seed_means(tmp_path, results, names)
    mean = tmp_path / "mean of 2 seeds · ewc · decoupled"  # one configuration with two seeds; joint has one
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted([mean.name, *AXES, min(names)])  # the experiment rides in a run's folder
    events = EventAccumulator(str(mean)).Reload()
    tag = f"{FORGETTING}/t2i reindex/1 blocks"
    seed1 = scalars(suite, EWC).Scalars(tag)
    assert [e.step for e in events.Scalars(tag)] == [e.step for e in seed1] == [0, 1, 2]  # step 0: before training
    assert events.Scalars(tag)[0].value == seed1[0].value  # _other_seed changes the stages only
    assert [e.value for e in events.Scalars(tag)[1:]] == pytest.approx([e.value - 0.5 for e in seed1[1:]])  # the mean of v and v - 1
    assert [e.value for e in events.Scalars("seed std/" + tag)] == pytest.approx([0.5**0.5] * 2)  # the spread, its own tag
    assert "final/forgetting/rsum/reindex" in events.Tags()["scalars"]
    (start,) = values(mean, hparams_metadata.SESSION_START_INFO_TAG)  # an HPARAMS session of its own
    info = hparams_metadata.parse_session_start_info_plugin_data(start.metadata.plugin_data.content)
    assert info.group_name == "ewc mean decoupled" and info.hparams["seed"].string_value == "mean"
    (value,) = values(tmp_path / min(names), hparams_metadata.EXPERIMENT_TAG)  # the experiment knows the seed "mean"
    infos = {h.name: h for h in hparams_metadata.parse_experiment_plugin_data(value.metadata.plugin_data.content).hparam_infos}
    assert [v.string_value for v in infos["seed"].domain_discrete.values] == ["0", "1", "mean"]
    write_seed_means(tmp_path, results, names)  # again: replaced, not doubled
    assert len(list(tmp_path.iterdir())) == 4 and len(list(tmp_path.glob("*/*.hparams"))) == 1


def test_hparam_domains_and_what_differs():
    configs = [{"seed": 0, "strategy": {"name": "ewc", "lam": 1.0}, "decoupled": False}, {"seed": 1, "strategy": {"name": "finetune"}, "decoupled": False}]
    assert hparam_values(configs[0]) == {"seed": "0", "strategy": "ewc", "strategy.lam": 1.0, "decoupled": False}
    infos = {h.name: h for h in hparam_infos([hparam_values(c) for c in configs])}
    assert infos["seed"].differs and infos["strategy"].differs and "decoupled" not in infos  # the same in both: left out
    assert "strategy.lam" not in infos  # present in one run only, with one value
    single = {h.name: h for h in hparam_infos([hparam_values(configs[0])])}
    assert single["strategy.lam"].type == api_pb2.DATA_TYPE_FLOAT64
    assert single["strategy"].differs and single["strategy.lam"].differs and single["decoupled"].differs  # what a comparison is about


def test_layout_follows_the_record():
    record = {"tasks": [0], "metrics": {"reindex": {"0": {"i2t_r1": 1.0, "i2t_r5": 2.0}}, "noreindex": {"0": {"i2t_r1": 1.0, "i2t_r5": 2.0}}}}
    layout = scalars_layout(record)
    assert [c.title for c in layout.category[0].chart] == ["i2t R@5 · reindex", "i2t R@5 · no reindex"]
    assert any(c.title == "i2t R@1" for c in layout.category)


def test_a_suite_grown_later_sees_no_false_difference(suite, tmp_path):
    """Runs already on disk saved their resolved `threads`; the new ones' must count the same, or HPARAMS shows a constant key."""
    from ccrbench.suite import expand_spec, plan_runs

    out = tmp_path / "out"
    (out / "old").mkdir(parents=True)
    (out / "old" / "config.yaml").write_text((suite / JOINT / "config.yaml").read_text())
    (tmp_path / "base.yaml").write_text("strategy: finetune\n")
    runs = expand_spec({"base": "base.yaml", "set": [*TINY, "benchmark.tasks=[blocks, curves]", "seed=3"]}, tmp_path / "suite.yaml")
    plan_runs(runs, out, skip_existing=False)
    (path,) = (out / "tb").glob("*/events*.hparams")
    (value,) = values(path.parent, hparams_metadata.EXPERIMENT_TAG)
    experiment = hparams_metadata.parse_experiment_plugin_data(value.metadata.plugin_data.content)
    assert {h.name for h in experiment.hparam_infos} == {"strategy", "seed"}
