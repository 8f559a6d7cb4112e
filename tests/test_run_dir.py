"""The run directory: one process at a time, and a resolved thread count that --resume compares."""

import multiprocessing
import os

import torch
import yaml

from ccrbench.cli import main
from ccrbench.config import load_config
from ccrbench.run_dir import LOCK, locked_run_dir
from ccrbench.suite import share_threads
from tests.tiny import TINY, run_args


def test_a_second_run_into_a_locked_directory_names_the_holder(tmp_path, capsys):
    out = tmp_path / "run"
    with locked_run_dir(out):
        assert main(run_args(out)) == 2
        assert f"run directory {out} is in use by process {os.getpid()}" in capsys.readouterr().err
        assert not (out / "config.yaml").exists()
    with locked_run_dir(out):  # released when the holder is done
        pass


def _hold_lock(out, locked, release):
    with locked_run_dir(out):
        locked.set()
        release.wait(60)


def test_the_lock_holds_across_processes_and_dies_with_its_holder(tmp_path, capsys):
    out = tmp_path / "run"
    fork = multiprocessing.get_context("fork")  # the child shares this process's imports: starts at once
    locked, release = fork.Event(), fork.Event()
    holder = fork.Process(target=_hold_lock, args=(out, locked, release))
    holder.start()
    try:
        assert locked.wait(60)
        assert main(run_args(out)) == 2
        assert f"in use by process {holder.pid}" in capsys.readouterr().err
    finally:
        holder.kill()  # like kill -9: no clean-up in the holder
        holder.join()
    with locked_run_dir(out):  # a killed holder leaves no stale lock
        assert (out / LOCK).read_text().strip() == str(os.getpid())


def test_threads_are_resolved_recorded_and_compared_on_resume(tmp_path, capsys):
    out = tmp_path / "run"
    previous = torch.get_num_threads()
    try:
        torch.set_num_threads(1)
        assert main(run_args(out, "threads=0", "benchmark.tasks=[blocks]")) == 0  # 0: torch's count, here 1
        assert yaml.safe_load((out / "config.yaml").read_text())["threads"] == 1
        (out / "results.json").write_text('{"complete": false}')  # as if interrupted
        assert main(run_args(out, "threads=2", "benchmark.tasks=[blocks]", flags=["--resume"])) == 2
        assert "threads (saved 1, given 2)" in capsys.readouterr().err
    finally:
        torch.set_num_threads(previous)


def test_parallel_suite_jobs_set_threads_in_each_config():
    config = load_config(None, TINY)
    assert share_threads(config, 1).threads == 0  # resolved when the run starts
    assert share_threads(config, 2).threads == max(1, (os.cpu_count() or 1) // 2)
    assert share_threads(load_config(None, ["threads=3"]), 2).threads == 3  # the config's own choice wins
