"""The run directory: one process at a time, and a resolved thread count that --resume compares."""

import json
import multiprocessing
import os
import signal
import threading
from pathlib import Path

import pytest
import torch
import yaml

from ccrbench.cli import main
from ccrbench.config import load_config
from ccrbench.run_dir import LOCK, MARKER, lock_holder, locked_run_dir
from ccrbench.suite import run_suite, share_threads
from tests.probes import wait_for
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


def test_overwrite_empties_only_a_directory_a_run_wrote(tmp_path, capsys):
    checkout = tmp_path / "checkout"  # e.g. `--out .` in a git checkout
    (checkout / ".git").mkdir(parents=True)
    (checkout / "code.py").write_text("print()\n")
    for flags in (["--overwrite"], [], ["--resume"]):
        assert main(run_args(checkout, "benchmark.tasks=[blocks]", flags=flags)) == 2
        err = capsys.readouterr().err
        assert f"--out {checkout} holds files that no run wrote (.git, code.py; no {MARKER} marker)" in err, err
        assert sorted(p.name for p in checkout.iterdir()) == [".git", "code.py"]  # nothing deleted, no lock file left
    run = tmp_path / "run"
    assert main(run_args(run, "benchmark.tasks=[blocks]")) == 0 and (run / MARKER).exists()
    (run / "notes.txt").write_text("mine")
    assert main(run_args(run, "benchmark.tasks=[blocks]", flags=["--overwrite"])) == 0  # the run's own directory
    assert not (run / "notes.txt").exists() and (run / "results.json").exists() and (run / MARKER).exists()


def test_out_pointing_at_a_file_is_named(tmp_path, capsys):
    (tmp_path / "file").write_text("x")
    assert main(run_args(tmp_path / "file")) == 2
    assert f"--out {tmp_path / 'file'} is a file, not a directory" in capsys.readouterr().err


def test_sigterm_prints_the_resume_hint_like_ctrl_c(tmp_path, capsys):
    gate, out = tmp_path / "gate", tmp_path / "run"
    gate.mkdir()
    strategy = f"strategy={{name: tests.probes:Gated, gate: {gate}, at: 1}}"

    def terminate_at_the_gate():
        wait_for(lambda: any(gate.glob("waiting-*")), "the run at its gate")
        os.kill(os.getpid(), signal.SIGTERM)  # handled in the main thread, waiting at the gate

    killer = threading.Thread(target=terminate_at_the_gate)
    killer.start()
    try:
        assert main(run_args(out, strategy)) == 128 + signal.SIGTERM
    finally:
        (gate / "open").touch()
        killer.join()
    err = capsys.readouterr().err
    assert f"interrupted: the stages after blocks are kept in {out}; continue with: " in err and "--resume" in err
    assert signal.getsignal(signal.SIGTERM) is signal.SIG_DFL  # restored
    assert main(run_args(out, strategy, flags=["--resume"])) == 0


def _alive(pid):
    try:
        return Path(f"/proc/{pid}/stat").read_text().split(")")[-1].split()[0] != "Z"
    except FileNotFoundError:
        return False


@pytest.mark.parametrize("stop", [signal.SIGKILL, signal.SIGTERM])
def test_suite_workers_exit_with_their_parent_and_a_second_suite_does_not_run_their_runs(tmp_path, stop):
    """`suite --jobs 2` of three runs stopped (kill -9, or SIGTERM to every process, as `pkill` or a
    scheduler sends it) while two runs wait at a gate: a second suite meanwhile leaves the live runs
    alone, the workers exit (before, they outlived a killed parent forever) and the third run never
    starts (before, a worker turned SIGTERM into a failed run and started the next)."""
    gate, out = tmp_path / "gate", tmp_path / "out"
    gate.mkdir()
    (tmp_path / "base.yaml").write_text(json.dumps({"strategy": {"name": "tests.probes:Gated", "gate": str(gate), "at": 0, "once": False}}))
    suite = tmp_path / "suite.yaml"
    suite.write_text(json.dumps({"base": "base.yaml", "set": [*TINY, "threads=1"], "axes": {"seed": [0, 1, 2]}}))
    live = tmp_path / "live.yaml"  # the second suite: only the two live runs
    live.write_text(json.dumps({"base": "base.yaml", "set": [*TINY, "threads=1"], "axes": {"seed": [0, 1]}}))
    names = ["seed-0", "seed-1"]
    fork = multiprocessing.get_context("fork")  # the child shares this process's imports: starts at once
    parent = fork.Process(target=main, args=(["suite", str(suite), "--out", str(out), "--jobs", "2"],))
    parent.start()
    workers = set()
    try:
        wait_for(lambda: len(list(gate.glob("waiting-*"))) == 2, "both runs at the gate")
        workers = {lock_holder(out / n) for n in names}
        assert workers == {int(p.name.split("-")[1]) for p in gate.glob("waiting-*")}
        outcome = run_suite(live, out, skip_existing=True)
        assert all(f"run directory {out / n} is in use by process" in outcome[n] for n in names), outcome
        for pid in [parent.pid, *workers] if stop == signal.SIGTERM else [parent.pid]:
            os.kill(pid, stop)
        parent.join(60)
        assert parent.exitcode == (-signal.SIGKILL if stop == signal.SIGKILL else 0)  # SIGTERM: handled, the workers stopped
        wait_for(lambda: not any(_alive(w) for w in workers), "the workers to exit", timeout=60)
        started = sorted((gate / "log").read_text().splitlines())
        assert len(started) == 2 and {line.split()[0] for line in started} == {str(w) for w in workers}  # each run once, no third
        assert not (out / "seed-2").exists()
        assert all(lock_holder(out / n) is None for n in names)
    finally:
        for pid in [*workers, parent.pid]:
            if _alive(pid):
                os.kill(pid, signal.SIGKILL)
