"""A run's stage loop: train -> index -> query after every task, results written after every stage
(the parts come from `ccrbench.build`, the records beside the metrics from `ccrbench.provenance`)."""

from __future__ import annotations

import dataclasses
import json
import time
from collections.abc import Mapping, Sequence
from contextlib import nullcontext
from pathlib import Path
from typing import Any

import torch
import yaml
from torch.utils.tensorboard import SummaryWriter

from ccrbench import distributed
from ccrbench.benchmarks.base import RetrievalBenchmark
from ccrbench.build import Learner, build_learners, learn_vocabulary, retention_sets, seed_everything
from ccrbench.checkpoint import load_checkpoint, save_checkpoint
from ccrbench.config import RunConfig, to_dict
from ccrbench.evaluation.loggers import build_loggers, close_loggers
from ccrbench.evaluation.protocol import merge_directions
from ccrbench.io import write_atomic
from ccrbench.provenance import json_safe, results_record
from ccrbench.registry import BENCHMARKS, ConfigError
from ccrbench.reporting import markdown_report
from ccrbench.reporting.tensorboard.pretrained import log_held_out
from ccrbench.reporting.tensorboard import (
    log_examples,
    log_experiment,
    log_final,
    log_layout,
    log_session_end,
    log_session_start,
    log_stage,
    scope_label,
    tasks_learned,
)
from ccrbench.run_dir import check_out, locked_run_dir, open_run, saved_stage_seconds


def evaluate(learners: Sequence[Learner], test: Sequence[Any], retention: Sequence[Any]) -> None:
    """Every learner evaluates every task's test experience, learned or not (full-stream evaluation),
    then the held-out retention sets (the metric plugin records each apart)."""
    for learner in learners:
        learner.strategy.eval(test)
        if retention:
            learner.strategy.eval(retention)


def evaluation_records(learners: Sequence[Learner]) -> dict[str, Any]:
    """What results.json records beside the stages: evaluation timings, and the records of unlearned
    tasks and retention sets (one per stage, the models of a decoupled run merged)."""
    return {
        "timings": [learner.metrics.timings for learner in learners],
        "unlearned": merge_directions([learner.metrics.unlearned for learner in learners]),
        "retention": merge_directions([learner.metrics.retention for learner in learners]),
    }


def write_results(
    out: Path,
    config: RunConfig,
    config_dict: Mapping[str, Any],
    benchmark: RetrievalBenchmark,
    stages: list[dict],
    *,
    complete: bool,
    timings: Sequence[Sequence[dict]] = (),
    stage_seconds: Sequence[float] = (),
    **held_out: Sequence[dict],
) -> dict:
    """Writes results.json and results.md (after every stage, so nothing computed is lost);
    the record is `provenance.results_record`'s (`config_dict`: `to_dict(config)`; `held_out`:
    its `unlearned` and `retention` records)."""
    results = results_record(config, config_dict, benchmark, stages, complete=complete, timings=timings, stage_seconds=stage_seconds, **held_out)
    write_atomic(out / "results.json", lambda f: json.dump(json_safe(results), f, indent=1))
    title = f"{config.strategy.name} on {config.benchmark.name} (seed {config.seed}, {config.eval.split} split)" + ("" if complete else " - INCOMPLETE")
    write_atomic(out / "results.md", lambda f: f.write(markdown_report(results, title=title)))
    return results


def run(
    config: RunConfig,
    out: str | Path,
    *,
    overwrite: bool = False,
    resume: bool = False,
    progress: bool = True,
    experiment: bool = True,
    tensorboard: str | Path | None = None,
) -> dict:
    """Trains on the benchmark's tasks, evaluating every seen task after each stage.

    Writes into `out`: config.yaml (fully resolved), results.json and results.md (after
    every stage), checkpoint.pt (after every stage) and TensorBoard event files into
    `tensorboard` (default `out/tb/<name of out>`, so that `tensorboard --logdir out/tb` names
    the run as `out`; a suite puts its runs side by side in its own folder), with
    `experiment` its own HPARAMS experiment (a suite writes one for all its runs).
    With `resume`, continues from the last finished stage of `out`; the final metrics
    equal those of an uninterrupted run.

    Started by torchrun on several processes, they train the run together (see
    `ccrbench.distributed`: `train.batch_size` is the global batch); the main process alone
    holds and writes `out`, evaluates and logs, the others wait for it at the next stage.
    The checkpoint does not depend on the number of processes: a run resumes onto any.

    Returns:
        The results dict (also in results.json).

    Raises:
        NonFiniteLossError: the loss became NaN/inf; what was computed before stays on disk.
    """
    if resume and overwrite:
        raise ConfigError("--resume and --overwrite: choose one (continue the run, or replace it)")
    out = Path(out)
    distributed.init(config.device)
    config = resolve_threads(config)
    previous_threads = torch.get_num_threads()
    torch.set_num_threads(config.threads)
    try:
        tb = Path(tensorboard) if tensorboard is not None else out / "tb" / out.resolve().name
        return _run(config, out, tb, overwrite=overwrite, resume=resume, progress=progress, experiment=experiment)
    finally:
        torch.set_num_threads(previous_threads)  # the next run in this process resolves `threads: 0` as before this one


def _run(config: RunConfig, out: Path, tb: Path, *, overwrite: bool, resume: bool, progress: bool, experiment: bool) -> dict:
    seed_everything(config.seed)
    benchmark = BENCHMARKS.build(config.benchmark.name, config.benchmark.options)  # its errors leave no run directory
    check_out(out, resume=resume)  # before the lock file: a folder that no run wrote gets nothing
    main = distributed.is_main()
    with locked_run_dir(out) if main else nullcontext():  # only the main process takes and writes the run directory
        resumed, results = distributed.from_main(open_run(out, config, overwrite=overwrite, resume=resume) if main else None)
        if results is not None:
            if main:
                print(f"{out} is already complete; nothing to do")
            return results
        loggers = build_loggers(config.logging, out, config=to_dict(config)) if main else []
        try:
            with SummaryWriter(str(tb)) if main else nullcontext() as writer:  # closed, so flushed, even when the run fails
                return _run_locked(config, out, benchmark, writer, loggers, resumed=resumed, progress=progress and main, experiment=experiment)
        finally:
            close_loggers(loggers)


def resolve_threads(config: RunConfig) -> RunConfig:
    """`config` with `threads: 0` replaced by torch's current thread count (results depend on it)."""
    return config if config.threads else dataclasses.replace(config, threads=torch.get_num_threads())


def _run_locked(
    config: RunConfig,
    out: Path,
    benchmark: RetrievalBenchmark,
    writer: SummaryWriter | None,
    loggers: Sequence[Any],
    *,
    resumed: bool,
    progress: bool,
    experiment: bool,
) -> dict:
    """The stages of the run; the processes other than the main one (no `writer`, no `loggers`) only train."""
    main = distributed.is_main()
    learners = build_learners(config, benchmark, writer, progress=progress, loggers=loggers)
    config_dict = to_dict(config)  # once: for TensorBoard, config.yaml and every results.json
    if main:
        if experiment:
            log_experiment(writer, [config_dict])
        log_session_start(writer, config_dict)
    if resumed:
        done = load_checkpoint(out, learners)
        stage_seconds = saved_stage_seconds(out)[:done] if main else []
    else:
        stage_seconds = []
        done = 0
        if main:
            write_atomic(out / "config.yaml", lambda f: yaml.safe_dump(config_dict, f, sort_keys=False))

    test = {exp.task_label: exp for exp in benchmark.eval_stream(config.eval.split)}
    retention = retention_sets(config) if config.eval.retention else []
    schedule = learners[0].plugin.training_experiences(list(benchmark.train_stream))
    seen = {t for experience in schedule[:done] for t in experience.task_labels}
    stages = merge_directions([learner.metrics.stages for learner in learners])
    if done == 0 and main:  # before any training: the matrices' row 0 and the retention sets' start
        evaluate(learners, list(test.values()), retention)
    for index in range(done, len(schedule)):
        start = time.time()
        captions = [c for t in schedule[index].task_labels for c in benchmark.task_captions[t]]
        for learner in learners:
            learn_vocabulary(learner.strategy.model, captions)
            learner.strategy.train(schedule[index])
        seen |= set(schedule[index].task_labels)
        if not main:
            continue  # the others wait for the main process's evaluation when the next stage starts
        evaluate(learners, list(test.values()), retention)
        stages = merge_directions([learner.metrics.stages for learner in learners])
        stage_seconds.append(time.time() - start)
        records = evaluation_records(learners)
        write_results(out, config, config_dict, benchmark, stages, complete=False, stage_seconds=stage_seconds, **records)
        if index == done:
            log_layout(writer, stages[-1])
        log_held_out(writer, stages[-1], records, benchmark.task_names)  # before log_stage: steps increase
        log_stage(writer, stages[-1], benchmark.task_names)
        for learner in learners:
            for task in sorted(seen):  # the same queries of every learned task, at every stage
                emb = learner.metrics.current[task]
                name = benchmark.task_names[task]  # the same tags for every strategy: a decoupled model logs its own direction
                tag = f"examples/{scope_label(str(task), benchmark.task_names)}"
                step = tasks_learned(stages[-1])
                log_examples(writer, test[task].dataset, emb, step=step, tag=tag, task=name, directions=learner.metrics.directions)
        writer.flush()
        save_checkpoint(out, experiences_done=index + 1, learners=learners)
        if progress:
            print(f"stage {index} done ({sum(stage_seconds):.0f}s)", flush=True)  # training and evaluation since the first stage
    if not main:
        return distributed.from_main(None)
    results = write_results(out, config, config_dict, benchmark, stages, complete=True, stage_seconds=stage_seconds, **evaluation_records(learners))
    log_final(writer, results)
    log_session_end(writer)
    return distributed.from_main(results)
