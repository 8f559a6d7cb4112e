"""Suites on a Slurm cluster through submitit, and the status of a suite's runs.

Each run of a suite becomes one Slurm job (submitted as one job array) running `runner.run`
into the same run directory as `ccrbench suite` would. When Slurm preempts a job or its time
runs out, submitit calls the job's `checkpoint` hook, which resubmits it with `resume`: the
requeued job continues from the last finished experience (the run's checkpoint.pt), never
starts over and never overwrites. Job records (submitit's pickles and logs, and jobs.json:
run name -> job id) live in <suite dir>/.submitit; `suite_status` reads them with the run
directories. A suite file may set the Slurm options in a `launcher:` block (keys: the fields
of `SlurmOptions`); command-line flags win over it.
"""

from __future__ import annotations

import dataclasses
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import submitit
from submitit.core.utils import pickle_load
from submitit.helpers import DelayedSubmission

from ccrbench.config import from_dict
from ccrbench.io import read_json, write_atomic
from ccrbench.registry import ConfigError
from ccrbench.run_dir import finished_results, lock_holder
from ccrbench.suite import SuiteRun, expand_spec, plan_runs, read_suite, run_status

JOBS = ".submitit"  # submitit's folder in the suite directory
RECORDS = "jobs.json"  # {run name: {"job_id": ..., "cluster": ...}}, the latest job of each run
ACTIVE = ("PENDING", "RUNNING", "REQUEUED", "REQUEUE_HOLD", "CONFIGURING", "COMPLETING", "SUSPENDED", "RESIZING")  # Slurm job states


@dataclass(frozen=True)
class SlurmOptions:
    """Resources of each run's Slurm job.

    Attributes:
        partition: Slurm partition (None: the cluster's default).
        time_min: time limit of one job in minutes; a job that reaches it is requeued and resumes.
        gpus: GPUs per job.
        cpus: CPU cores per job (also the run's torch threads when its config says `threads: 0`).
        mem_gb: memory per job in GB (None: the partition's default).
        array_parallelism: jobs of the suite's array running at the same time.
    """

    partition: str | None = None
    time_min: int = 240
    gpus: int = 0
    cpus: int = 4
    mem_gb: float | None = None
    array_parallelism: int = 64


def slurm_options(block: Any, path: Path, **flags: Any) -> SlurmOptions:
    """SlurmOptions from a suite's `launcher:` block, overridden by the flags that are not None.

    Raises:
        ConfigError: naming the suite file and the bad key.
    """
    fields = {f.name: f for f in dataclasses.fields(SlurmOptions)}
    block = {} if block is None else block
    if not isinstance(block, dict):
        raise ConfigError(f"{path}: launcher: expected a mapping with keys {', '.join(fields)}")
    unknown = sorted(set(block) - set(fields))
    if unknown:
        raise ConfigError(f"{path}: launcher: unknown key(s) {', '.join(unknown)}; valid keys: {', '.join(fields)}")
    values = {**block, **{k: v for k, v in flags.items() if v is not None}}
    for key, value in values.items():
        number = isinstance(value, (int, float)) and not isinstance(value, bool)
        ok = {
            "partition": value is None or isinstance(value, str),
            "gpus": number and isinstance(value, int) and value >= 0,
            "mem_gb": value is None or (number and value > 0),
        }.get(key, number and isinstance(value, int) and value > 0)  # time_min, cpus, array_parallelism
        if not ok:
            raise ConfigError(f"{path}: launcher.{key}: {value!r} is not valid; expected {fields[key].type} (see SlurmOptions in ccrbench/launch.py)")
    return SlurmOptions(**values)


class SuiteJob(submitit.helpers.Checkpointable):
    """One run of a suite as a submitit job (pickled into the job; the config travels as a dict)."""

    def __call__(self, name: str, config: dict[str, Any], out: str, resume: bool) -> str:
        from ccrbench.runner import run
        from ccrbench.suite import run_tensorboard

        run(from_dict(config), out, resume=resume, progress=False, experiment=False, tensorboard=run_tensorboard(out))  # the suite has one experiment
        return name

    def checkpoint(self, name: str, config: dict[str, Any], out: str, resume: bool) -> DelayedSubmission:
        """Called by submitit on preemption or timeout: the requeued job resumes the run directory."""
        return DelayedSubmission(self, name, config, out, True)


def launch_suite(
    path: str | Path, out: str | Path, *, cluster: str = "slurm", skip_existing: bool = False, **flags: Any
) -> tuple[dict[str, submitit.Job], dict[str, str | None]]:
    """Submits each run of a suite that is not finished as a job of one array into out/<run name>.

    Args:
        cluster: "slurm", or "local" (submitit's local executor: subprocesses, for tests).
        skip_existing: resume unfinished runs, skip finished ones; without it an existing run
            directory is an error for that run (never overwritten).
        flags: SlurmOptions fields overriding the suite's `launcher:` block (None: not given).

    Returns:
        ({run name: its job}, {run name: None (skipped) or the error} of the runs not submitted).
    """
    path, out = Path(path), Path(out)
    spec = read_suite(path)
    options = slurm_options(spec.get("launcher"), path, **flags)
    runs = [
        SuiteRun(name=r.name, config=r.config if r.config.threads else dataclasses.replace(r.config, threads=options.cpus))
        for r in expand_spec(spec, path)
    ]
    todo, outcome = plan_runs(runs, out, skip_existing=skip_existing)
    if not todo:
        return {}, outcome
    executor = submitit.AutoExecutor(folder=out / JOBS, cluster=cluster)
    executor.update_parameters(
        name=f"ccrbench-{path.stem}",
        timeout_min=options.time_min,
        gpus_per_node=options.gpus,
        cpus_per_task=options.cpus,
        mem_gb=options.mem_gb,
        slurm_partition=options.partition,
        slurm_array_parallelism=options.array_parallelism,
    )
    with executor.batch():
        submitted = [executor.submit(SuiteJob(), *t) for t in todo]
    jobs = {t[0]: job for t, job in zip(todo, submitted)}
    records = {**job_records(out), **{name: {"job_id": job.job_id, "cluster": cluster} for name, job in jobs.items()}}
    write_atomic(out / JOBS / RECORDS, lambda f: json.dump(records, f, indent=1))
    return jobs, outcome


def job_records(out: Path) -> dict[str, dict[str, str]]:
    """The suite directory's job records (empty when no job was submitted)."""
    return read_json(out / JOBS / RECORDS) if (out / JOBS / RECORDS).exists() else {}


def _job_status(out: Path, record: dict[str, str]) -> tuple[str, str] | None:
    """(status, detail) from a run's job record; None when it tells nothing."""
    job_cls = submitit.SlurmJob if record["cluster"] == "slurm" else submitit.LocalJob
    job = job_cls(folder=out / JOBS, job_id=record["job_id"])
    if job.paths.result_pickle.exists():
        outcome, value = pickle_load(job.paths.result_pickle)
        if outcome == "error":
            return "failed", f"job {job.job_id}: {str(value).strip().splitlines()[-1]} (log: {job.paths.stderr})"
        return None
    state = job.state if record["cluster"] == "slurm" else "UNKNOWN"  # sacct; a local job's process is gone
    return ("running", f"job {job.job_id} {state}") if state.split()[0] in ACTIVE else None


def suite_status(path: str | Path, out: str | Path) -> list[tuple[str, str, str]]:
    """(run name, status, detail) of each run of a suite: status is done (results complete), running
    (a process holds the run directory, or its Slurm job is queued or running), failed (its job
    failed, or the run stopped before its last experience and nothing runs it) or missing."""
    path, out = Path(path), Path(out)
    records = job_records(out)
    rows = []
    for r in expand_spec(read_suite(path), path):
        run_dir = out / r.name
        if (results := finished_results(run_dir)) is not None:
            rows.append((r.name, "done", f"{len(results['stages'])} stages"))
        elif (holder := lock_holder(run_dir)) is not None:
            rows.append((r.name, "running", f"process {holder}"))
        elif r.name in records and (job := _job_status(out, records[r.name])) is not None:
            rows.append((r.name, *job))
        elif run_status(run_dir) == "partial":
            stages = len(read_json(run_dir / "results.json")["stages"]) if (run_dir / "results.json").exists() else 0
            rows.append((r.name, "failed", f"stopped after {stages} stage(s); resume with --skip-existing"))
        else:
            rows.append((r.name, "missing", ""))
    return rows
