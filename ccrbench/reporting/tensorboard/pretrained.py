"""TensorBoard scalars of the pretrained era: the evaluation before any training at step 0 under
the stage tags (so that every task's curve and both summaries start before training), the tasks
not learned yet at each stage under the same tags (each task's curve holds its whole row of the
full matrix), and the held-out retention sets in their own groups: `retention/{set}/{metric}/{policy}`
and `retention change/{set}/{metric}/{policy}`, the change since before training (ranks
sign-flipped, so negative always means that something of the start was lost)."""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import Any

from ccrbench.evaluation.continual import START, retention_summary
from ccrbench.reporting.tensorboard.events import Writer
from ccrbench.reporting.tensorboard.scalars import log_stage

RETENTION_GROUP = "retention"
CHANGE_GROUP = "retention change"


def retention_tag(group: str, label: str, metric: str, policy: str) -> str:
    """`retention/pretraining/i2t_r10/reindex`, `retention change/pretraining/i2t_r10/noreindex`."""
    return f"{group}/{label}/{metric}/{policy}"


def log_retention(writer: Writer, records: Sequence[Mapping[str, Any]]) -> None:
    """The retention sets' metrics of the last of `records` (a run's retention records so far, first
    evaluation first) and their change since the first, at that record's step (tasks learned)."""
    last, step = records[-1]["metrics"], records[-1]["tasks_learned"]
    change = retention_summary(records)["retention"]
    for policy, by_label in last.items():
        for label, values in by_label.items():
            for metric, value in values.items():
                writer.add_scalar(retention_tag(RETENTION_GROUP, label, metric, policy), value, step)
                writer.add_scalar(retention_tag(CHANGE_GROUP, label, metric, policy), change[policy][label][metric], step)


def log_held_out(writer: Writer, record: Mapping[str, Any], held_out: Mapping[str, Sequence[dict]], task_names: Sequence[str]) -> None:
    """What the run evaluated beside the stage `record` just finished (`held_out`: the run's
    `unlearned` and `retention` records so far): at its first stage, the evaluation before training
    at step 0; the tasks not learned yet after this stage; the retention sets. Called before
    `log_stage` of the same record, so that every tag's steps increase."""
    stage = record["stage"]
    for u in held_out.get("unlearned", ()):
        if u["stage"] == START and stage == 0:
            log_stage(writer, {"tasks": [], "metrics": u["metrics"]}, task_names)  # step 0
        elif u["stage"] == stage:
            log_stage(writer, {"tasks": record["tasks"], "metrics": u["metrics"]}, task_names)
    retention = list(held_out.get("retention", ()))
    for i, r in enumerate(retention):
        if r["stage"] == stage or (r["stage"] == START and stage == 0):
            log_retention(writer, retention[: i + 1])


def held_out_records(results: Mapping[str, Any]) -> dict[str, list[dict]]:
    """A run's held-out records from its results as the runner passes them to `log_held_out`:
    `unlearned` (the evaluation before training first) and `retention`."""
    start = [{"stage": START, "tasks_learned": 0, "metrics": results["start"]}] if "start" in results else []
    return {"unlearned": [*start, *results.get("unlearned", [])], "retention": list(results.get("retention", {}).get("stages", []))}


def combine_held_out(runs: Sequence[Mapping[str, Any]], combine: Callable[[list[dict]], dict]) -> dict[str, list[dict]]:
    """The held-out records of the seeds of one configuration (`runs`' results) with their metrics
    combined by `combine` (the seeds' metrics -> one, e.g. their mean), stages the first run's."""
    per_run = [held_out_records(r) for r in runs]
    return {
        name: [{**records[0], "metrics": combine([r["metrics"] for r in records])} for records in zip(*(h[name] for h in per_run))]
        for name in ("unlearned", "retention")
    }
