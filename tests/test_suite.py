import json
import os
import shutil
import signal
from pathlib import Path

import pytest
from submitit.core.utils import cloudpickle_dump

from ccrbench.cli import main
from ccrbench.launch import JOBS, launch_suite, slurm_options, suite_status
from ccrbench.registry import ConfigError
from ccrbench.run_dir import LOCK, lock_holder, locked_run_dir
from ccrbench.suite import expand_suite, run_name, run_suite
from tests.probes import wait_for
from tests.tiny import TINY

ROOT = Path(__file__).resolve().parents[1]


def write_suite(tmp_path, variants, axes=None):
    base = tmp_path / "base.yaml"
    base.write_text("strategy: finetune\n")
    suite = tmp_path / "suite.yaml"
    spec = {"base": "base.yaml", "set": [*TINY, "threads=1"], "variants": variants}  # the same threads in every process
    if axes:
        spec["axes"] = axes
    suite.write_text(json.dumps(spec))
    return suite


def test_grid_expansion_and_stable_names(tmp_path):
    suite = write_suite(
        tmp_path,
        [{"strategy": ["finetune", "ewc"]}, {"strategy": "mas", "decoupled": True}],
        axes={"model.shared_layers": [0, 1], "seed": [3]},
    )
    runs = expand_suite(suite)
    names = [r.name for r in runs]
    assert names == [
        "strategy-finetune__shared_layers-0__seed-3",  # axis points outermost: whole comparisons first
        "strategy-ewc__shared_layers-0__seed-3",
        "strategy-mas__decoupled-true__shared_layers-0__seed-3",
        "strategy-finetune__shared_layers-1__seed-3",
        "strategy-ewc__shared_layers-1__seed-3",
        "strategy-mas__decoupled-true__shared_layers-1__seed-3",
    ]
    assert names == [r.name for r in expand_suite(suite)]  # stable
    mas = runs[-1].config
    assert mas.decoupled and mas.model.shared_layers == 1 and mas.seed == 3 and mas.train.epochs == 1
    assert run_name([("strategy.lam", 0.5)]) == "lam-0.5"
    section = {"name": "image_captions", "root": "data/" + "x" * 200}  # a whole benchmark section as a value
    long_name = run_name([("strategy.reference", section), ("seed", 0)])
    assert len(long_name) < 60 and long_name.startswith("reference-sha1-") and long_name.endswith("__seed-0")
    assert long_name == run_name([("strategy.reference", dict(section)), ("seed", 0)]) != run_name([("strategy.reference", {**section, "root": "y"}), ("seed", 0)])


def test_bad_suite_names_the_run(tmp_path):
    suite = write_suite(tmp_path, [{"strategy": ["finetune", "nope"]}])
    with pytest.raises(ConfigError, match="suite.yaml: run strategy-nope: .*unknown strategy 'nope'"):
        expand_suite(suite)


def test_standard_suites_expand():
    assert len(expand_suite("configs/suites/baselines.yaml")) == 5  # paper_table.yaml: tests/test_tune.py (it reads a selection)
    assert len(expand_suite("configs/suites/smoke.yaml")) == 6


@pytest.fixture(scope="module")
def sequential(tmp_path_factory):
    """(suite file, its output) of a finetune + joint suite run one run after the other, once per module."""
    folder = tmp_path_factory.mktemp("sequential")
    suite = write_suite(folder, [{"strategy": ["finetune", "joint"]}])
    assert run_suite(suite, folder / "out") == {"strategy-finetune": None, "strategy-joint": None}
    return suite, folder / "out"


def copy_of(sequential, tmp_path):
    """A copy of the sequential suite's output, for tests that change it."""
    return shutil.copytree(sequential[1], tmp_path / "out")


def test_skip_existing_and_failures_do_not_stop_the_suite(sequential, tmp_path, monkeypatch):
    suite, out = sequential[0], copy_of(sequential, tmp_path)
    first = (out / "strategy-joint" / "results.json").read_text()
    # without --skip-existing, existing runs are errors, never overwritten
    outcome = run_suite(suite, out)
    assert all("exists" in outcome[n] for n in outcome)
    assert (out / "strategy-joint" / "results.json").read_text() == first

    import ccrbench.runner

    calls = []
    real_run = ccrbench.runner.run

    def failing_run(config, out_dir, **kwargs):
        calls.append(config.strategy.name)
        if config.strategy.name == "finetune":
            raise RuntimeError("boom")
        return real_run(config, out_dir, **kwargs)

    monkeypatch.setattr(ccrbench.runner, "run", failing_run)
    (out / "strategy-joint" / "results.json").unlink()  # joint looks unfinished now
    outcome = run_suite(suite, out, skip_existing=True)
    assert calls == ["joint"]  # finished finetune skipped, unfinished joint resumed
    assert outcome["strategy-joint"] is None and outcome["strategy-finetune"] is None

    suite2 = write_suite(tmp_path, [{"strategy": ["finetune", "joint"], "seed": 5}])
    outcome = run_suite(suite2, tmp_path / "out2")
    assert "boom" in outcome["strategy-finetune__seed-5"] and outcome["strategy-joint__seed-5"] is None


def test_parallel_jobs_give_the_sequential_results(sequential, tmp_path):
    suite, out = sequential
    assert run_suite(suite, tmp_path / "par", jobs=2) == {"strategy-finetune": None, "strategy-joint": None}
    for name in ("strategy-finetune", "strategy-joint"):
        parallel, alone = (json.loads((d / name / "results.json").read_text()) for d in (tmp_path / "par", out))
        assert parallel["config"] == alone["config"] and parallel["stages"] == alone["stages"]


def test_suite_cli_reports_failures(sequential, tmp_path, capsys):
    suite, out = sequential[0], copy_of(sequential, tmp_path)
    assert main(["suite", str(suite), "--out", str(out)]) == 1
    assert "FAILED strategy-finetune" in capsys.readouterr().err
    assert main(["suite", str(suite), "--out", str(out), "--skip-existing"]) == 0


def test_slurm_launcher_resumes_a_preempted_job_and_gives_the_local_results(sequential, tmp_path, monkeypatch):
    """Through submitit's local executor (real subprocesses, pickled jobs): a three-stage fine-tuning
    run waits at a gate after its first stage's checkpoint (tests/probes.py) while its job gets
    Slurm's preemption/timeout signal (USR2), so the signal always reaches a live run mid-way; submitit
    requeues the job, which resumes from that checkpoint (experiences 1 and 2 only) and ends with the
    local launcher's fine-tuning results."""
    monkeypatch.setenv("PYTHONPATH", os.pathsep.join([str(ROOT), os.environ.get("PYTHONPATH", "")]))  # the job imports tests.probes
    gate = tmp_path / "gate"
    gate.mkdir()
    suite = write_suite(tmp_path, [{}])
    (tmp_path / "base.yaml").write_text(json.dumps({"strategy": {"name": "tests.probes:Gated", "gate": str(gate), "at": 1}}))
    out = tmp_path / "slurm"
    jobs, outcome = launch_suite(suite, out, cluster="local")
    assert outcome == {} and sorted(jobs) == ["base"]
    run_dir = out / "base"
    wait_for(lambda: any(gate.glob("waiting-*")) or jobs["base"].done(), "the run at its gate")
    first = lock_holder(run_dir)
    assert not jobs["base"].done() and (gate / f"waiting-{first}").exists()  # the live run, held after its first checkpoint
    os.kill(first, signal.SIGUSR2)  # what Slurm sends a job before preempting it
    assert jobs["base"].result() == "base"
    log = jobs["base"].stdout()
    assert "this job is preempted" in log and "Requeued job" in log and log.count("Loading pickle") == 2
    started = [line.split() for line in (gate / "log").read_text().splitlines()]
    second = started[-1][0]
    assert started == [[str(first), "0"], [str(first), "1"], [second, "1"], [second, "2"]] and second != str(first)  # resumed, not restarted
    assert lock_holder(run_dir) is None and (run_dir / LOCK).read_text() == ""  # no PID left to signal
    launched, alone = (json.loads((d / name / "results.json").read_text()) for d, name in ((out, "base"), (sequential[1], "strategy-finetune")))
    assert launched["complete"] and launched["stages"] == alone["stages"]
    assert [row[1] for row in suite_status(suite, out)] == ["done"]
    again, skipped = launch_suite(suite, out, cluster="local", skip_existing=True)
    assert again == {} and skipped == {"base": None}


def test_status_lists_done_running_failed_missing(sequential, tmp_path, capsys):
    suite, out = sequential[0], copy_of(sequential, tmp_path)
    shutil.rmtree(out / "strategy-joint")
    finetune = out / "strategy-finetune"
    results = json.loads((finetune / "results.json").read_text())
    (finetune / "results.json").write_text(json.dumps({**results, "complete": False}))
    with locked_run_dir(finetune):  # as a running run holds it
        assert [row[1] for row in suite_status(suite, out)] == ["running", "missing"]
    assert suite_status(suite, out)[0][1:] == ("failed", "stopped after 3 stage(s); resume with --skip-existing")
    # a job that failed before its run directory held anything: its result pickle says why
    (out / JOBS).mkdir()
    (out / JOBS / "jobs.json").write_text(json.dumps({"strategy-joint": {"job_id": "42", "cluster": "local"}}))
    cloudpickle_dump(("error", "Traceback (most recent call last):\nValueError: boom"), out / JOBS / "42_0_result.pkl")
    assert suite_status(suite, out)[1][1] == "failed" and "ValueError: boom" in suite_status(suite, out)[1][2]
    assert main(["suite", str(suite), "--out", str(out), "--status"]) == 0
    printed = capsys.readouterr().out
    assert "strategy-joint     failed" in printed and "2 runs in" in printed and "0 done, 0 running, 2 failed, 0 missing" in printed


def test_slurm_options_come_from_the_suite_and_flags(tmp_path, sequential, capsys):
    path = tmp_path / "suite.yaml"
    options = slurm_options({"partition": "gpu", "gpus": 1, "time_min": 60}, path, time_min=30, cpus=None)
    assert (options.partition, options.gpus, options.time_min, options.cpus) == ("gpu", 1, 30, 4)
    with pytest.raises(ConfigError, match="suite.yaml: launcher: unknown key.*gpu; valid keys"):
        slurm_options({"gpu": 1}, path)
    with pytest.raises(ConfigError, match=r"launcher.time_min: -5 is not valid"):
        slurm_options({}, path, time_min=-5)
    out = copy_of(sequential, tmp_path)  # existing run directories are never overwritten: nothing is submitted
    jobs, outcome = launch_suite(sequential[0], out, cluster="local")
    assert jobs == {} and all("exists; pass --skip-existing" in e for e in outcome.values())
    assert main(["suite", str(sequential[0]), "--out", str(out), "--launcher", "slurm", "--gpus", "1"]) == 1  # no sbatch needed
    assert "NOT SUBMITTED strategy-joint: run directory" in capsys.readouterr().err
    assert main(["suite", str(sequential[0]), "--out", str(out), "--gpus", "1"]) == 2
    assert "--gpus: Slurm options; add --launcher slurm" in capsys.readouterr().err


def test_suite_help_shows_the_launcher_and_status(capsys):
    with pytest.raises(SystemExit):
        main(["suite", "--help"])
    printed = capsys.readouterr().out
    assert "--launcher {local,slurm}" in printed and "--status" in printed and "--array-parallelism" in printed
