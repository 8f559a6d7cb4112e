"""Data-parallel training on two CPU processes (gloo, torchrun) against one process: one step
with a global batch of 2 x B (uneven halves), EWC's and MAS's importances, and a tiny continual
replay run through the CLI (its results, files, replay memories, and its checkpoint resumed on
one process)."""

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from ccrbench.cli import main
from ccrbench.distributed import ShardedBatchSampler
from ccrbench.registry import ConfigError
from ccrbench.strategies.replay import Replay
from tests.distributed_worker import RUN, memory_recorder, one_step
from tests.tiny import TINY, run_args

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def two_processes(tmp_path_factory):
    """What `python -m torch.distributed.run --nproc_per_node 2 -m tests.distributed_worker` wrote (one launch
    for every test: each process spends seconds importing torch and Avalanche): the step's tensors of
    each rank, each rank's replay memories and the run directory run/."""
    out = tmp_path_factory.mktemp("ddp")
    env = {k: v for k, v in os.environ.items() if k not in ("WORLD_SIZE", "RANK", "LOCAL_RANK")}
    launch = subprocess.run(
        [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node", "2", "-m", "tests.distributed_worker", str(out)],
        cwd=ROOT, env=env, capture_output=True, text=True, timeout=300,
    )
    assert launch.returncode == 0, launch.stdout[-3000:] + launch.stderr[-3000:]
    return out


@pytest.fixture(scope="module")
def reference():
    """The same step on this (single) process."""
    return one_step()


def max_difference(a: dict, b: dict) -> float:
    assert a.keys() == b.keys()
    return max((a[n] - b[n]).abs().max().item() for n in a)


def test_two_processes_step_equals_one_process_with_the_global_batch(two_processes, reference):
    ranks = [torch.load(two_processes / f"step_rank{r}.pt") for r in (0, 1)]
    assert reference["pairs"] >= 2
    for r, step in enumerate(ranks):
        loss = (step["loss"] - reference["loss"]).abs().item()
        grads, params = max_difference(step["grads"], reference["grads"]), max_difference(step["params"], reference["params"])
        print(f"rank {r}: loss {step['loss'].item():.6f} vs {reference['loss'].item():.6f} (|diff| {loss:.2e}); "
              f"max |diff| gradients {grads:.2e}, parameters after the Adam step {params:.2e}")
        assert loss < 1e-5 and grads < 1e-5 and params < 1e-5
    assert max_difference(ranks[0]["params"], ranks[1]["params"]) == 0  # the processes hold one model


def test_importances_of_two_processes_equal_one_process(two_processes, reference):
    for r in (0, 1):
        step = torch.load(two_processes / f"step_rank{r}.pt")
        for name, key in (("EWC", "ewc"), ("MAS", "mas")):
            diff = max_difference(step[key], reference[key])
            scale = max(t.abs().max().item() for t in reference[key].values())
            print(f"rank {r}: {name} importance max |diff| {diff:.2e} (largest importance {scale:.2e})")
            assert diff <= 1e-5 * scale


def test_two_process_run_writes_what_one_process_writes(two_processes, tmp_path, monkeypatch):
    monkeypatch.setattr(Replay, "after_training_exp", memory_recorder(tmp_path / "memory.jsonl"))
    one_dir, two_dir = tmp_path / "run", two_processes / "run"
    assert main(run_args(one_dir, *RUN)) == 0
    one, two = (json.loads((d / "results.json").read_text()) for d in (one_dir, two_dir))
    assert two["complete"] and two.keys() == one.keys() and len(two["stages"]) == len(one["stages"]) == 2
    assert two["final"]["reindex"].keys() == one["final"]["reindex"].keys()
    files = {d: sorted(str(p.relative_to(d).parent if p.name.startswith("events") else p.relative_to(d)) for p in d.rglob("*")) for d in (one_dir, two_dir)}
    assert files[two_dir] == files[one_dir]  # the other process wrote nothing (one TensorBoard event file per folder)
    memories = [(tmp_path / "memory.jsonl").read_text(), *((two_processes / f"memory_rank{r}.jsonl").read_text() for r in (0, 1))]
    assert len(memories[0].splitlines()) == 2 and memories[1] == memories[2] == memories[0]  # after each task, on every process
    finals = [r["final"]["reindex"]["all"] for r in (one, two)]
    print("final R@10 (reindex, all tasks), one process vs two:", {k: (finals[0][k], finals[1][k]) for k in sorted(finals[0]) if k.endswith("r10")})


def test_two_process_checkpoint_resumes_on_one_process(two_processes, tmp_path):
    run_dir = shutil.copytree(two_processes / "run", tmp_path / "run")
    (run_dir / "results.json").unlink()  # as if stopped after the last checkpoint
    assert main(run_args(run_dir, *RUN, "threads=1", flags=["--resume"])) == 0  # torchrun ran each process on 1 thread
    resumed, original = (json.loads((d / "run" / "results.json").read_text()) for d in (tmp_path, two_processes))
    assert resumed["complete"] and resumed["stages"] == original["stages"] and resumed["final"] == original["final"]


def test_batches_are_split_between_processes(monkeypatch):
    batches = [[0, 1, 2, 3, 4], [5, 6, 7, 8, 9], [10]]
    monkeypatch.setenv("WORLD_SIZE", "2")
    parts = []
    for rank in ("0", "1"):
        monkeypatch.setenv("RANK", rank)
        parts.append(list(ShardedBatchSampler(batches)))
    assert parts == [[[0, 1], [5, 6]], [[2, 3, 4], [7, 8, 9]]]  # a batch of fewer pairs than processes is skipped


def test_batch_norm_is_refused_on_several_processes(monkeypatch):
    from ccrbench.config import load_config
    from ccrbench.evaluation.protocol import DIRECTIONS
    from ccrbench.registry import BENCHMARKS
    from ccrbench.build import build_learner

    config = load_config(None, [*TINY, "model.image_encoder.norm=batch"])
    benchmark = BENCHMARKS.build(config.benchmark.name, config.benchmark.options)
    monkeypatch.setenv("WORLD_SIZE", "2")
    with pytest.raises(ConfigError, match="BatchNorm layers .*image_encoder.norm=group"):
        build_learner(config, benchmark, None, directions=DIRECTIONS, progress=False)


def test_python_dash_m_ccrbench():
    assert subprocess.run([sys.executable, "-m", "ccrbench", "--help"], cwd=ROOT, capture_output=True).returncode == 0
