import os
import subprocess
import sys
from pathlib import Path

from ccrbench.config import load_config
from ccrbench.reporting.run_report import loss_table
from tests.tiny import TINY

ROOT = Path(__file__).parents[2]


def fake_results(value):
    keys = ["r1", "r5", "r10", "medr", "meanr"]
    metrics = {f"{d}_{k}": value + i for d in ("i2t", "t2i") for i, k in enumerate(keys)}
    return {"final": {p: {"all": dict(metrics, rsum=0.0), "0": {}} for p in ("reindex", "noreindex")}}


def test_loss_table_has_one_row_per_run_in_the_study_layout():
    table = loss_table({"sum_hinge": fake_results(10.0), "infonce": fake_results(20.0)}).splitlines()
    assert table[0] == (
        "| run (all, reindex) | i2t R@1 | i2t R@5 | i2t R@10 | i2t meanr | i2t medr "
        "| t2i R@1 | t2i R@5 | t2i R@10 | t2i meanr | t2i medr |"
    )
    assert table[2] == "| sum_hinge | 10.0 | 11.0 | 12.0 | 14.0 | 13.0 | 10.0 | 11.0 | 12.0 | 14.0 | 13.0 |"
    assert table[3].startswith("| infonce | 20.0 |") and len(table) == 4


def test_the_comparison_config_trains_jointly():
    config = load_config(ROOT / "configs" / "shapes_loss_comparison.yaml")
    assert config.strategy.name == "joint" and config.benchmark.name == "shapes"


def script(out, *args, **env):
    """Runs scripts/loss_comparison.sh for barlow_twins into `out` on one task of the tiny benchmark."""
    tinier = [*TINY, "benchmark.tasks=[blocks]", "benchmark.train_images=8", "benchmark.test_images=5"]
    env = {**os.environ, "OUT": str(out), "LOSSES": "barlow_twins", "PYTHON": sys.executable, "OMP_NUM_THREADS": "1", **env}
    command = ["bash", str(ROOT / "scripts" / "loss_comparison.sh"), *(a for item in tinier for a in ("--set", item)), *args]
    return subprocess.run(command, env=env, capture_output=True, text=True)


def test_script_runs_each_loss_and_prints_the_table(tmp_path):
    done = script(tmp_path)
    assert done.returncode == 0, done.stderr
    assert "barlow_twins: done" in done.stdout and "| barlow_twins | " in done.stdout
    assert (tmp_path / "barlow_twins" / "results.json").exists() and (tmp_path / "barlow_twins.log").exists()


def test_script_stops_at_a_failed_run_with_its_log(tmp_path):
    """A run that fails (here: a Python that exits 1 at once; ccrbench's own refusals are tested
    with the CLI) stops the script with exit 1 and names the log."""
    failed = script(tmp_path, PYTHON="false")
    assert failed.returncode == 1 and f"barlow_twins: failed, see {tmp_path}/barlow_twins.log" in failed.stderr
    assert "barlow_twins: done" not in failed.stdout and "|" not in failed.stdout  # no table of missing runs
