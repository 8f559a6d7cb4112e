"""The pretrained era in what a researcher reads: results.md and the console summary (row 0, the
upper triangle, forward transfer and ZSCL's metrics, the retention sets), the suite report and its
findings, and TensorBoard (step 0, the tasks not learned yet, the retention groups)."""

import copy
import json
from pathlib import Path

import pytest
from tensorboard.backend.event_processing.event_accumulator import EventAccumulator
from torch.utils.tensorboard import SummaryWriter

from ccrbench.evaluation.continual import START, summarize
from ccrbench.reporting.comparison import comparison_csv, comparison_report
from ccrbench.reporting.findings import findings_table
from ccrbench.reporting.run_report import markdown_report, refresh_results_md, run_summary
from ccrbench.reporting.tensorboard.pretrained import log_held_out
from ccrbench.reporting.tensorboard.scalars import final_metrics, headline_metrics, log_stage, stage_tag

NAMES = ["a", "b"]
REPO = Path(__file__).resolve().parents[2]
NEW_KEYS = ("start", "unlearned", "full_matrices", "forward_transfer", "transfer", "avg", "last", "retention")


def values(v: float) -> dict:
    return {"i2t_r1": v / 2, "i2t_r10": v, "t2i_r1": v / 4, "t2i_r10": v - 5, "i2t_medr": 100 - v}


def scopes(tasks: dict, *, every: bool = False) -> dict:
    """Known-task scopes of `tasks` ({task: R@10}), their average and the all-task search (10 below it)."""
    out = {str(t): values(v) for t, v in tasks.items()}
    mean = sum(tasks.values()) / len(tasks)
    return {**out, "average": values(mean), "all": values(mean - 10)} if every else out


def fake_run(strategy: str, seed: int, *, shift: float = 0.0, lost: float = 10.0) -> dict:
    """A two-task run evaluated before training, with one retention set ("pretraining") that loses
    `lost` points of R@10 (half of it under no reindex) over the two stages."""
    s = seed + shift
    stages = [
        {"stage": 0, "tasks": [0], "metrics": {p: scopes({0: 80 + s}, every=True) for p in ("reindex", "noreindex")}},
        {"stage": 1, "tasks": [0, 1], "metrics": {p: scopes({0: 60 + s, 1: 90 + s}, every=True) for p in ("reindex", "noreindex")}},
    ]
    unlearned = [
        {"stage": START, "tasks_learned": 0, "metrics": {p: scopes({0: 30 + s, 1: 20 + s}, every=True) for p in ("reindex", "noreindex")}},
        {"stage": 0, "tasks_learned": 1, "metrics": {p: scopes({1: 40 + s}) for p in ("reindex", "noreindex")}},
    ]
    retention = [
        {"stage": st, "tasks_learned": st + 1, "metrics": {p: {"pretraining": values(50 - f * lost * (st + 1) / 2)} for p, f in (("reindex", 1), ("noreindex", 0.5))}}
        for st in (START, 0, 1)
    ]
    config = {"strategy": {"name": strategy, "branches": "both"}, "benchmark": {"name": "shapes"}, "decoupled": False, "model": {"shared_layers": 0}, "seed": seed}
    results = summarize(stages, NAMES, unlearned=unlearned, retention=retention)
    return {"complete": True, "config": config, "ks": [1, 10], **results}


def without_new_keys(results: dict) -> dict:
    return {k: v for k, v in copy.deepcopy(results).items() if k not in NEW_KEYS}


def table(text: str, head: str) -> list[str]:
    """The lines of the markdown table whose head starts with `head`."""
    lines = text.splitlines()
    start = next(i for i, line in enumerate(lines) if line.startswith(f"| {head}"))
    end = next((i for i in range(start, len(lines)) if not lines[i].startswith("|")), len(lines))
    return lines[start:end]


def test_results_md_gains_row_0_the_upper_triangle_and_the_new_sections():
    md = markdown_report(fake_run("finetune", 0), title="t")
    assert table(md, "reindex i2t_r10")[2:] == [
        "| before training | (30.0) | (20.0) | (25.0) | (15.0) |",
        "| after a | 80.0 | (40.0) | 80.0 | 70.0 |",
        "| after b | 60.0 | 90.0 | 75.0 | 65.0 |",
    ]
    metrics = table(md[md.index("## Pretrained-era metrics") :], "metric")
    assert "| forward transfer | reindex | 10.0 | 20.0 | 5.0 | 20.0 |" in metrics  # task b: 40 just before learning it - 20 before training
    assert "| Transfer | reindex | 20.0 | 40.0 | 10.0 | 35.0 |" in metrics and "| Last | noreindex | 37.5 | 75.0 | 18.8 | 70.0 |" in metrics
    assert "| Avg | reindex | 33.8 | 67.5 | 16.9 | 62.5 |" in metrics  # mean of rows 1 and 2: (80 + 40) / 2, (60 + 90) / 2
    assert table(md, "pretraining r10")[2:] == [
        "| before training | 50.0 | 50.0 | 45.0 | 45.0 |",
        "| after a | 45.0 | 47.5 | 40.0 | 42.5 |",
        "| after b | 40.0 | 45.0 | 35.0 | 40.0 |",
        "| change since before training | -10.0 | -5.0 | -10.0 | -5.0 |",
    ]
    assert "## Retention sets" in md and md.index("## Pretrained-era metrics") < md.index("## Retention sets")


def test_results_md_of_a_run_without_the_new_keys_has_none_of_them():
    md = markdown_report(without_new_keys(fake_run("finetune", 0)), title="t")
    assert table(md, "reindex i2t_r10")[2:] == ["| after a | 80.0 | - | 80.0 | 70.0 |", "| after b | 60.0 | 90.0 | 75.0 | 65.0 |"]
    assert not any(s in md for s in ("before training", "| (", "Pretrained-era", "Retention", "forward"))


@pytest.mark.parametrize("run", ["paper_table/strategy-ewc__shared_layers-0__seed-0", "reindexing/strategy-compatible__seed-0"])
def test_committed_results_md_are_what_the_report_writes(run):
    """Runs of before the pretrained era (no evaluation before training) keep their results.md to the byte."""
    results = json.loads((REPO / "results" / run / "results.json").read_text())
    committed = (REPO / "results" / run / "results.md").read_text()
    title = committed.splitlines()[0].removeprefix("# ")
    assert markdown_report(results, title=title) == committed


def test_refresh_rewrites_an_older_results_md_keeping_its_title(tmp_path):
    results = fake_run("finetune", 0)
    (tmp_path / "results.md").write_text(markdown_report(without_new_keys(results), title="finetune on shapes (seed 0)"))
    assert refresh_results_md(tmp_path, results)
    text = (tmp_path / "results.md").read_text()
    assert text == markdown_report(results, title="finetune on shapes (seed 0)") and "## Retention sets" in text
    assert not refresh_results_md(tmp_path, results)  # already current: left as it is
    assert not refresh_results_md(tmp_path / "none", results) and not (tmp_path / "none").exists()  # no results.md: nothing written


def test_console_summary_prints_row_0_forward_transfer_and_retention():
    text = run_summary(fake_run("finetune", 0))
    assert "| before training | (30.0) | (20.0) | (25.0) | (15.0) |" in text
    assert "forward_transfer of R@10 (points): reindex i2t 20.0 / t2i 20.0, noreindex i2t 20.0 / t2i 20.0" in text
    assert "last of R@10: reindex i2t 75.0 / t2i 70.0, noreindex i2t 75.0 / t2i 70.0" in text  # a recall, not a difference
    assert "retention of R@10 on pretraining (points since before training): reindex i2t -10.0 / t2i -10.0, noreindex i2t -5.0 / t2i -5.0" in text
    assert "forward_transfer" not in run_summary(without_new_keys(fake_run("finetune", 0)))


def suite_runs():
    """Fine-tuning and WiSE-FT, three seeds each; WiSE-FT transfers 2 points more and loses 4 points less."""
    return [fake_run("finetune", s, lost=10 + s) for s in range(3)] + [fake_run("wise_ft", s, shift=2, lost=6 + s) for s in range(3)]


def test_suite_report_tables_over_seeds():
    text = comparison_report(suite_runs(), metric="r10", names=[f"r{i}" for i in range(6)])
    fwt = table(text[text.index("Forward transfer (just before learning") :], "run")
    assert fwt[2] == "| finetune (3 seeds) |" + " 20.0 ± 0.0 [20.0, 20.0] |" * 4 and fwt[3].startswith("| wise_ft (3 seeds) | 20.0")
    change = table(text[text.index("Retention on pretraining"):], "run | i2t reindex")
    assert change[2].startswith("| finetune (3 seeds) | -11.0 ± 1.0 [") and change[3].startswith("| wise_ft (3 seeds) | -7.0 ± 1.0 [")
    values_table = table(text[text.index("Retention set pretraining"):], "run | i2t before training")
    assert values_table[2].startswith("| finetune (3 seeds) | 50.0 ± 0.0")
    csv = comparison_csv(suite_runs(), metric="r10").splitlines()
    assert any(line.startswith('0,"wise_ft",i2t,reindex,retention pretraining,r10,-7.000,1.000,3,') for line in csv)
    assert any(line.startswith('0,"finetune",t2i,noreindex,forward_transfer,r10,20.000,0.000,3,') for line in csv)
    old = [without_new_keys(r) for r in suite_runs()]
    assert "Forward transfer" not in comparison_report(old, metric="r10") and "forward_transfer" not in comparison_csv(old, metric="r10")


def test_findings_compare_retention_with_fine_tuning():
    rows = [line for line in findings_table(suite_runs(), metric="r10").splitlines() if "retains more of the start" in line]
    reindex = [r for r in rows if "wise_ft (reindex) retention on pretraining > finetune (reindex) retention on pretraining" in r]
    assert len(reindex) == 2 and all("| 4.0 |" in r and r.endswith("| holds |") for r in reindex)  # -7 - -11, every seed
    ranks = [line for line in findings_table(suite_runs(), metric="medr").splitlines() if "wise_ft (reindex) retention" in line]
    assert ranks and all(r.endswith("| holds |") for r in ranks)  # retention is signed already: not flipped again for ranks
    assert not [line for line in findings_table([without_new_keys(r) for r in suite_runs()], metric="r10").splitlines() if "retains" in line]


def test_tensorboard_starts_every_curve_before_training_and_logs_retention(tmp_path):
    results = fake_run("finetune", 0)
    held_out = {"unlearned": [], "retention": []}
    all_unlearned = [{"stage": START, "tasks_learned": 0, "metrics": results["start"]}, *results["unlearned"]]
    with SummaryWriter(str(tmp_path)) as writer:
        for record in results["stages"]:  # as the runner: the records so far, before log_stage
            held_out["unlearned"] = [u for u in all_unlearned if u["stage"] <= record["stage"]]
            held_out["retention"] = [r for r in results["retention"]["stages"] if r["stage"] <= record["stage"]]
            log_held_out(writer, record, held_out, NAMES)
            log_stage(writer, record, NAMES)
    events = EventAccumulator(str(tmp_path), size_guidance={"scalars": 0}).Reload()

    def curve(tag):
        return [(e.step, e.value) for e in events.Scalars(tag)]

    def stage_curve(metric, policy, scope):  # under the tag log_stage gives it
        return curve(stage_tag(metric, policy, scope, NAMES, headline_metrics(list(values(0.0)))))

    assert stage_curve("i2t_r10", "reindex", "1") == [(0, 20.0), (1, 40.0), (2, 90.0)]  # before training, not learned yet, learned
    assert stage_curve("i2t_r10", "reindex", "average") == [(0, 25.0), (1, 80.0), (2, 75.0)]
    assert stage_curve("i2t_medr", "noreindex", "0") == [(0, 70.0), (1, 20.0), (2, 40.0)]
    assert curve("retention/pretraining/i2t_r10/noreindex") == [(0, 50.0), (1, 47.5), (2, 45.0)]
    assert curve("retention change/pretraining/i2t_r10/reindex") == [(0, 0.0), (1, -5.0), (2, -10.0)]
    assert curve("retention change/pretraining/i2t_medr/reindex") == [(0, 0.0), (1, -5.0), (2, -10.0)]  # ranks: negative = lost
    assert final_metrics(results)["final/forward_transfer/i2t_r10/reindex"] == 20.0
