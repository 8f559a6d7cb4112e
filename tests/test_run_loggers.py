"""`logging:` in a run config sends every metric of a CLI run to the Avalanche loggers it names."""

import csv

import pytest
from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

from ccrbench.cli import main
from tests.tiny import run_args


def test_a_run_logs_its_metrics_to_csv_text_tensorboard_and_wandb_offline(tmp_path, monkeypatch):
    pytest.importorskip("wandb")  # the optional `wandb` extra
    monkeypatch.setenv("WANDB_MODE", "offline")
    monkeypatch.setenv("WANDB_SILENT", "true")
    out = tmp_path / "run"
    assert main(run_args(out, "benchmark.tasks=[blocks,curves]", "logging=[csv,text,tensorboard,wandb]")) == 0
    rows = list(csv.DictReader((out / "metrics.csv").open()))
    got = {(r["metric"], r["task"], r["x_plot"]) for r in rows}
    for policy in ("reindex", "noreindex"):
        assert {(f"R@10_i2t_{policy}", "Task000", "2"), (f"R@10_i2t_{policy}", "all_tasks", "2"), (f"Forgetting_R@10_t2i_{policy}", "average", "2")} <= got
    assert not any("Acc" in r["metric"] for r in rows)
    assert "R@10_t2i_noreindex/eval_phase/test_stream/Task001 = " in (out / "log.txt").read_text()
    events = EventAccumulator(str(out / "tb" / "avalanche")).Reload()
    assert "R@10_i2t_noreindex/eval_phase/test_stream/Task000" in events.Tags()["scalars"]
    assert [e.step for e in events.Scalars("R@10_i2t_noreindex/eval_phase/test_stream/all_tasks")] == [0, 1, 2]  # 0: before training
    assert list(out.glob("tb/run/events.out.tfevents.*"))  # ccrbench's own run (named as the run) stays beside it
    assert list(out.glob("wandb/offline-run-*/run-*.wandb"))
