"""Seeds aggregated for TensorBoard: one run per configuration holding the mean over its seeds
(under the same tags as the runs, so each strategy can be one line) and the spread (`seed std/...`)."""

from __future__ import annotations

import shutil
import statistics
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any


from ccrbench.reporting.tensorboard.pretrained import combine_held_out, log_held_out
from ccrbench.reporting.grouping import group_runs
from ccrbench.reporting.tensorboard.axis import write_axis_runs
from ccrbench.reporting.tensorboard.events import EventWriter
from ccrbench.reporting.tensorboard.hparams import log_session_end, log_session_start, trial_id, write_suite_experiment
from ccrbench.reporting.tensorboard.scalars import final_metrics, forgetting_tags, log_stage, logged_steps, tasks_learned

MEAN_RUN = "mean of {n} seeds · {label}"  # a mean run's name (no "(" or ")": Custom Scalars reads the run from them)
SPREAD = "seed std/"  # the tag prefix of the standard deviation over the seeds
MEAN_SEED = "mean"  # a mean run's seed in HPARAMS


def _combine(values: Sequence[Any], how: Any) -> Any:
    """Nested dicts of floats combined leaf by leaf with `how` (keys every run has)."""
    if isinstance(values[0], Mapping):
        return {k: _combine([v[k] for v in values], how) for k in values[0] if all(k in v for v in values)}
    return how(values)


def _stage(records: Sequence[Mapping[str, Any]], how: Any) -> dict[str, Any]:
    """One stage record whose metrics are `how` of the runs' (its tasks are the first run's)."""
    return {"tasks": records[0]["tasks"], "metrics": _combine([r["metrics"] for r in records], how)}


def write_seed_means(tensorboard: Path, results: Sequence[dict[str, Any]], names: Sequence[str]) -> list[Path]:
    """Writes, for every configuration run with two seeds or more, a run `mean of N seeds · label`
    into the suite's TensorBoard folder `tensorboard` (replacing older ones): the mean of every
    stage metric and final value under the runs' own tags, and their standard deviation under
    `seed std/...`. The seeds' own runs stay beside it. Each mean run is an HPARAMS session too
    (seed `mean`, trial id `ewc mean decoupled`), and the suite's HPARAMS experiment is rewritten
    with them. The axis runs (`axis`) are rewritten for every run's forgetting tags, with
    enough points for all the folder's runs.

    Returns:
        The mean runs' folders.
    """
    for old in tensorboard.glob(MEAN_RUN.format(n="*", label="*")):
        shutil.rmtree(old)
    written, configs = [], []
    for group in group_runs(results, names):
        runs = group.runs
        if len(runs) < 2:
            continue
        folder = tensorboard / MEAN_RUN.format(n=len(runs), label=group.label.replace(" (", " · ").replace("(", "").replace(")", ""))
        task_names = runs[0]["task_names"]
        config = {**runs[0]["config"], "seed": MEAN_SEED}
        with EventWriter(folder) as writer:
            log_session_start(writer, config, trial=trial_id(group.names[0], seed=MEAN_SEED))
            for records in zip(*(r["stages"] for r in runs)):
                log_held_out(writer, records[0], combine_held_out(runs, lambda ms: _combine(ms, statistics.fmean)), task_names)  # mean only
                log_stage(writer, _stage(records, statistics.fmean), task_names)
                log_stage(writer, _stage(records, statistics.stdev), task_names, prefix=SPREAD)
            finals = [final_metrics(r) for r in runs]
            step = tasks_learned(runs[0]["stages"][-1])
            for tag in finals[0]:
                if all(tag in f for f in finals):
                    writer.add_scalar(tag, statistics.fmean(f[tag] for f in finals), step)
                    writer.add_scalar(SPREAD + tag, statistics.stdev(f[tag] for f in finals), step)
            log_session_end(writer)
        written.append(folder)
        configs.append(config)
    if written:  # HPARAMS: the means beside the runs (a session whose seed is outside the experiment's values is not shown)
        write_suite_experiment(tensorboard, min(names), [r["config"] for r in results] + configs)
    tags = [tag for r in results for tag in forgetting_tags(r["stages"][-1], r["task_names"])]
    if tags:
        steps = sorted({step for r in results for step in logged_steps(r)})
        write_axis_runs(tensorboard, tags, steps, runs=len(results) + len(written))
    return written
