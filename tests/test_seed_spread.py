import json
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).parents[1]


def write_run(folder: Path, strategy: str, seed: int, task1_after: list[float], all_tasks: float) -> None:
    """A results.json with what seed_spread.py reads: i2t/t2i R@10 of task 1 after each stage and of all tasks."""
    stages = [
        {"metrics": {p: {"0": {"i2t_r10": v, "t2i_r10": v}, "all": {"i2t_r10": all_tasks, "t2i_r10": all_tasks}} for p in ("reindex", "noreindex")}}
        for v in task1_after
    ]
    folder.mkdir(parents=True)
    (folder / "results.json").write_text(json.dumps({"config": {"strategy": {"name": strategy}}, "seed": seed, "stages": stages}))


def test_variants_are_compared_with_the_baseline_using_welch_intervals(tmp_path):
    before, after = tmp_path / "before", tmp_path / "after"
    for seed, forgotten in ((0, 50.0), (1, 60.0)):
        write_run(before / f"strategy-finetune__seed-{seed}", "finetune", seed, [90.0, 90.0 - forgotten], 30.0)
        write_run(before / f"strategy-joint__seed-{seed}", "joint", seed, [90.0, 88.0], 80.0)
        write_run(after / f"width-12__strategy-finetune__seed-{seed}", "finetune", seed, [80.0, 80.0 - forgotten - 10], 30.0)
        write_run(after / f"width-12__strategy-joint__seed-{seed}", "joint", seed, [80.0, 78.0], 70.0)
        # a strategy with "_" in its name is read from the run, never mistaken for joint
        write_run(after / f"width-12__strategy-joint_no_ctnp__seed-{seed}", "joint_no_ctnp", seed, [0.0, 0.0], 0.0)
    done = subprocess.run(
        [sys.executable, str(ROOT / "scripts" / "seed_spread.py"), str(after), "--before", str(before)], capture_output=True, text=True, check=True
    )
    out = done.stdout
    assert "## width-12" in out and "## default" not in out
    assert "| ft forgetting of task 1, i2t, reindex | 60.0 | 70.0 | 65.0 ± 7.1 |" in out
    assert "| joint - ft, all tasks, i2t (ft reindex) | 40.0 | 40.0 | 40.0 ± 0.0 |" in out
    # Welch interval of +10 with std 7.1 on both sides, 2 seeds each (df 2): 10 ± 4.303 * sqrt(50 / 2 + 50 / 2) = [-20.4, +40.4]
    assert "| ft forgetting of task 1, i2t, reindex | 55.0 ± 7.1 | 65.0 ± 7.1 | +10.0 [-20.4, +40.4] |" in out
    assert "| task 1 right after learning it, t2i (ft) | 90.0 ± 0.0 | 80.0 ± 0.0 |" in out


def test_folders_without_the_runs_it_reads_are_clear_errors(tmp_path):
    script = [sys.executable, str(ROOT / "scripts" / "seed_spread.py")]
    write_run(tmp_path / "s" / "strategy-ewc__seed-0", "ewc", 0, [90.0, 40.0], 30.0)
    done = subprocess.run([*script, str(tmp_path / "s")], capture_output=True, text=True)
    assert done.returncode != 0 and "no seed with both a finetune and a joint run" in done.stderr
    for strategy in ("finetune", "joint"):
        write_run(tmp_path / "v" / f"width-12__strategy-{strategy}__seed-0", strategy, 0, [90.0, 40.0], 30.0)
    done = subprocess.run([*script, str(tmp_path / "v"), "--before", str(tmp_path / "v")], capture_output=True, text=True)
    assert done.returncode != 0 and "no run without overrides" in done.stderr
