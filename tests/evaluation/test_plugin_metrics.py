"""RetrievalMetrics through Avalanche's evaluation system: MetricValues every logger receives,
full-stream evaluation (tasks not learned yet) and repeated evaluation within a stage."""

import csv
import io

import torch
from avalanche.logging import TextLogger
from avalanche.training.plugins import EvaluationPlugin

from ccrbench import benchmarks, models
from ccrbench.evaluation import MetricCSVLogger, RetrievalMetrics, TrainingLoss, retention_stream
from ccrbench.evaluation.plugin import metric_label, scope_label, task_forgetting
from ccrbench.strategies import EWC, RetrievalTemplate


def tiny(loggers=(), plugins=(), retention=()):
    torch.manual_seed(0)
    bm = benchmarks.shapes(train_images=24, test_images=10, image_size=32)
    model = models.build_model(
        corpus=bm.train_captions,
        image_encoder={"name": "small_cnn", "width": 8, "output_dim": 16},
        text_encoder={"name": "bigru", "word_dim": 16, "hidden_dim": 16},
        embed_dim=16,
    )
    metrics = RetrievalMetrics(ks=(1, 10), retention=retention)
    strategy = RetrievalTemplate(
        model=model,
        optimizer=torch.optim.Adam(model.parameters(), lr=1e-2),
        criterion=models.InfoNCELoss(),
        train_mb_size=16,
        train_epochs=1,
        eval_mb_size=8,
        plugins=list(plugins),
        evaluator=EvaluationPlugin(metrics, TrainingLoss(), loggers=list(loggers)),
    )
    return bm, strategy, metrics


def test_csv_and_text_loggers_record_per_task_recall_of_both_policies(tmp_path):
    text = io.StringIO()
    csv_logger = MetricCSVLogger(tmp_path / "metrics.csv")
    bm, strategy, metrics = tiny([csv_logger, TextLogger(text)], plugins=[EWC(lam=1.0)])
    for experience in bm.train_stream[:2]:
        strategy.train(experience)
        strategy.eval(bm.test_stream[:2])
    csv_logger.close()
    rows = list(csv.DictReader((tmp_path / "metrics.csv").open()))
    value = {(r["metric"], r["task"], int(r["x_plot"])): float(r["value"]) for r in rows if r["phase"] == "eval"}
    final = metrics.stages[-1]["metrics"]
    for policy in ("reindex", "noreindex"):
        for task in ("0", "1"):
            assert value[(f"R@10_i2t_{policy}", f"Task00{task}", 2)] == final[policy][task]["i2t_r10"]
        assert value[(f"R@10_t2i_{policy}", "all_tasks", 2)] == final[policy]["all"]["t2i_r10"]
        assert value[(f"rsum_{policy}", "average", 2)] == final[policy]["average"]["rsum"]
        assert (f"Forgetting_R@10_i2t_{policy}", "Task000", 2) in value and (f"Forgetting_R@10_i2t_{policy}", "Task001", 2) not in value
    assert {r["metric"] for r in rows if r["phase"] == "train"} == {"Loss_Epoch", "Loss_Epoch_EWC penalty"}
    assert not any("Acc" in r["metric"] for r in rows)  # no classification metric
    printed = text.getvalue()
    assert "R@10_i2t_noreindex/eval_phase/test_stream/Task001 = " in printed and "medr_t2i_reindex/eval_phase/test_stream/all_tasks" in printed


def test_full_stream_evaluation_records_unlearned_tasks_apart():
    bm, strategy, metrics = tiny()
    strategy.eval(bm.test_stream)  # before any training: all three unlearned
    strategy.train(bm.train_stream[0])
    strategy.eval(bm.test_stream)
    assert [s["tasks"] for s in metrics.stages] == [[0]]  # the stage records hold learned tasks only
    scopes = [(u["stage"], u["tasks_learned"], sorted(u["metrics"]["reindex"])) for u in metrics.unlearned]
    assert scopes == [(-1, 0, ["0", "1", "2", "all", "average"]), (0, 1, ["1", "2"])]  # before training: the whole row 0
    assert all(u["metrics"]["reindex"] == u["metrics"]["noreindex"] for u in metrics.unlearned)  # both policies agree before indexing
    assert set(metrics.stored) == {0} and not metrics.pending  # unlearned tasks are not indexed
    strategy.train(bm.train_stream[1])
    strategy.eval(bm.test_stream)
    strategy.eval(bm.test_stream)  # again in the same stage: both records replaced
    assert set(metrics.stored) == {0, 1} and [s["tasks"] for s in metrics.stages] == [[0], [0, 1]]
    assert [(u["stage"], sorted(u["metrics"]["reindex"])[:3]) for u in metrics.unlearned] == [(-1, ["0", "1", "2"]), (0, ["1", "2"]), (1, ["2"])]


def test_retention_sets_are_measured_apart_against_the_database_of_their_first_evaluation():
    held_out = benchmarks.shapes(train_images=1, test_images=10, image_size=32, seed=1, colour_shift=0.0)
    stream = retention_stream([held_out.test_stream, held_out.test_stream[:1]])
    bm, strategy, metrics = tiny(retention=("pretraining", "blocks"))
    strategy.eval(bm.test_stream)
    strategy.eval(stream)
    start = metrics.retention[-1]["metrics"]
    assert metrics.current and len(metrics.unlearned) == 1  # the tasks' last evaluation is kept
    keys = {f"{d}_{m}" for d in ("i2t", "t2i") for m in ("r1", "r10", "medr", "meanr")} | {"rsum"}
    assert {label: set(v) for label, v in start["reindex"].items()} == {"pretraining": keys, "blocks": keys}
    assert start["reindex"] == start["noreindex"]  # indexed by the model it first meets
    stored = metrics.retention_stored[0]
    assert stored.image.shape[0] == 30 and metrics.retention_stored[1].image.shape[0] == 10  # every task of the set, as one database
    strategy.train(bm.train_stream[0])
    strategy.eval(stream)
    assert metrics.retention_stored[0] is stored  # never re-indexed
    later = metrics.retention[-1]
    assert (later["stage"], later["tasks_learned"]) == (0, 1) and later["metrics"]["reindex"] != later["metrics"]["noreindex"]
    last = strategy.evaluator.get_last_metrics()
    change = last["Retention_R@10_i2t_reindex/eval_phase/retention_stream/pretraining"]
    assert change == later["metrics"]["reindex"]["pretraining"]["i2t_r10"] - start["reindex"]["pretraining"]["i2t_r10"]
    assert "R@10_t2i_noreindex/eval_phase/retention_stream/blocks" in last


def test_a_second_evaluation_in_a_stage_replaces_its_record_and_keeps_the_stored_databases():
    bm, strategy, metrics = tiny()
    strategy.train(bm.train_stream[0])
    strategy.eval(bm.test_stream[:1])
    strategy.train(bm.train_stream[1])
    strategy.eval(bm.test_stream[:2])
    first_of_task_1, stored_0 = metrics.stored[1], metrics.stored[0]
    strategy.eval(bm.test_stream[:2])
    assert metrics.stored[1] is first_of_task_1 and metrics.stored[0] is stored_0  # stored once, at the first evaluation
    assert metrics.current[1] is not first_of_task_1
    assert [s["stage"] for s in metrics.stages] == [0, 1] and len(metrics.timings) == 2


def test_the_default_evaluator_has_no_classification_metric():
    bm, strategy, _ = tiny()
    default = RetrievalTemplate(
        model=strategy.model, optimizer=strategy.optimizer, criterion=models.InfoNCELoss(), train_mb_size=16, train_epochs=1, eval_mb_size=8
    )
    assert default.evaluator.metrics == []


def test_metric_names_follow_avalanche():
    assert metric_label("i2t_r10", "noreindex") == "R@10_i2t_noreindex"
    assert metric_label("t2i_medr", "reindex") == "medr_t2i_reindex"
    assert metric_label("rsum", "budget0.25_random") == "rsum_budget0.25_random"
    assert [scope_label(s) for s in ("1", "average", "all")] == ["Task001", "average", "all_tasks"]


def test_stage_forgetting_against_its_definition():
    stages = [
        {"reindex": {"0": {"i2t_r10": 50.0, "i2t_medr": 3.0}}},
        {"reindex": {"0": {"i2t_r10": 70.0, "i2t_medr": 2.0}, "1": {"i2t_r10": 60.0, "i2t_medr": 4.0}}},
        {"reindex": {"0": {"i2t_r10": 40.0, "i2t_medr": 9.0}, "1": {"i2t_r10": 65.0, "i2t_medr": 5.0}, "2": {"i2t_r10": 1.0, "i2t_medr": 1.0}}},
    ]
    out = task_forgetting(stages)["reindex"]
    assert out["0"] == {"i2t_r10": 30.0, "i2t_medr": 7.0}  # best earlier 70 -> 40; lowest earlier rank 2 -> 9
    assert out["1"] == {"i2t_r10": -5.0, "i2t_medr": 1.0}
    assert "2" not in out and out["average"] == {"i2t_r10": 12.5, "i2t_medr": 4.0}
    assert task_forgetting(stages[:1]) == {}
