"""TensorBoard scalars of a run: every metric of each stage, its diagnostics, and the final values.

Tags are chosen for TensorBoard's Time Series view, which groups cards by the tag's first
component and orders groups and cards by tag (digits and "/" first, then by character code,
so upper case before lower case): the headline recall's group, `R@10`, opens the page;
`diagnostics`, `examples`, `final`, the other metrics and `train` follow it. A card's title is
its whole tag, cut in the middle where it is wider than the card (the part after the last "/"
is kept): the forgetting group's tags fit a card at 1920 px. No tag holds "(" or ")": Custom
Scalars names a line `tag (run)` and takes the run from the first "(".
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any


from ccrbench.evaluation.keys import ALL_TASKS, AVERAGE, DIRECTIONS, POLICY_LABELS, parse_keys, split_model
from ccrbench.reporting.tensorboard.axis import write_axis_runs
from ccrbench.reporting.tensorboard.events import Writer

SCOPE_LABELS = {AVERAGE: "known task", ALL_TASKS: "all tasks"}  # the mean over tasks, each searched in its own database; the search in their union
CONTINUAL = ("forgetting", "plasticity", "bwt")  # results.json's per-run continual-learning summaries
DIAGNOSTICS_TAG = "diagnostics"  # the tag prefix of the drift diagnostics (after the forgetting group)


def tasks_learned(record: Mapping[str, Any]) -> int:
    """The step of a stage record: how many tasks the model has learned (seen) so far."""
    return len(record["tasks"])


def scope_label(scope: str, task_names: Sequence[str]) -> str:
    """`1 blocks` (the task's number, so tasks sort in learning order before the summaries),
    `all tasks` (unknown task: one search in every task's database) or `known task` (the
    mean over tasks, each searched in its own database)."""
    return f"{int(scope) + 1} {task_names[int(scope)]}" if scope.isdigit() else SCOPE_LABELS.get(scope, scope)


def scalar_tag(metric: str, policy: str, scope: str, task_names: Sequence[str]) -> str:
    """`i2t_r5/reindex/1 blocks`, `.../known task`, `.../all tasks`."""
    return f"{metric}/{policy}/{scope_label(scope, task_names)}"


def headline_metrics(metrics: Sequence[str]) -> list[str]:
    """The recall of the largest K in each direction (`i2t_r10`, `t2i_r10`): the forgetting group's metric."""
    keys = dict(zip(metrics, parse_keys(metrics)))
    recalls = [key for key in keys.values() if key.is_recall]
    if not recalls:
        return []
    k = max(key.k for key in recalls)
    return [m for m, key in keys.items() if key.is_recall and key.k == k]


def forgetting_prefix(metric: str, policy: str) -> str:
    """`R@10/i2t no reindex/`: the headline recall of one direction under a main policy. The
    group (`R@10`: upper case, so before every other group) is short because Time Series
    titles a card with its whole tag: `R@10/t2i no reindex/known task` fits a card at 1920 px
    with the settings pane open (about 31 characters), the policy near its start."""
    (key,) = parse_keys([metric])
    direction, measure = key.title.split(" ", 1)
    return f"{measure}/{direction} {POLICY_LABELS[policy]}/"


def forgetting_tag(metric: str, policy: str, scope: str, task_names: Sequence[str]) -> str:
    """`R@10/i2t reindex/1 blocks`: one card per direction, policy and task or summary."""
    return forgetting_prefix(metric, policy) + scope_label(scope, task_names)


def stage_tag(metric: str, policy: str, scope: str, task_names: Sequence[str], headline: Sequence[str]) -> str:
    """The forgetting group's tag for the headline recall under a main policy, else `scalar_tag`."""
    if metric in headline and policy in POLICY_LABELS:
        return forgetting_tag(metric, policy, scope, task_names)
    return scalar_tag(metric, policy, scope, task_names)


def logged_steps(results: Mapping[str, Any]) -> list[int]:
    """The steps a run's stage scalars hold: 0 (before training) when it was evaluated then, and
    every number of tasks learned up to its last stage's."""
    return [0] * ("start" in results) + list(range(1, tasks_learned(results["stages"][-1]) + 1))


def forgetting_tags(record: Mapping[str, Any], task_names: Sequence[str]) -> list[str]:
    """The forgetting group's tags of a stage record (the last one: every task learned)."""
    return [
        forgetting_tag(metric, policy, scope, task_names)
        for policy, scopes in record["metrics"].items()
        if policy in POLICY_LABELS
        for scope, values in scopes.items()
        for metric in headline_metrics(list(values))
    ]


def diagnostic_name(key: str) -> str:
    """A diagnostic's TensorBoard name, the same for coupled and decoupled runs where the model is
    implied by the direction (`i2t_model_i2t_margin` -> `i2t_margin`); a decoupled pair's
    direction-free ones name their model (`i2t_model_image_drift` -> `image_drift · i2t model`)."""
    model, name = split_model(key)
    if model is None or name.split("_", 1)[0] in DIRECTIONS:
        return name
    return f"{name} · {model} model"


def log_stage(writer: Writer, record: Mapping[str, Any], task_names: Sequence[str], *, prefix: str = "") -> None:
    """Every metric of one evaluation stage (every seen task and both summaries), and its
    diagnostics as `diagnostics/{name}/{task}`, ...; `prefix` before the metrics' tags."""
    step = tasks_learned(record)
    for policy, scopes in record["metrics"].items():
        for scope, values in scopes.items():
            headline = headline_metrics(list(values))
            for metric, value in values.items():
                writer.add_scalar(prefix + stage_tag(metric, policy, scope, task_names, headline), value, step)
    for scope, values in record.get("diagnostics", {}).items():
        for key, value in values.items():
            writer.add_scalar(f"{DIAGNOSTICS_TAG}/{diagnostic_name(key)}/{scope_label(scope, task_names)}", value, step)


def final_metrics(results: Mapping[str, Any]) -> dict[str, float]:
    """{`final/...` tag: value}: the summaries after the last task, and the forgetting,
    plasticity, backward transfer and (a run evaluated before training) forward transfer of
    every metric.

    A run of one stage (joint training, every task learned at once) has NaN forgetting and
    backward and forward transfer in results.json (no task was learned before the last stage);
    here they are 0, what its one-row matrices imply (no task has lost anything since it was learned),
    so that TensorBoard's HPARAMS keeps the run in every view (it drops a run missing a metric).
    """
    out = {
        "final/" + scalar_tag(metric, policy, scope, results["task_names"]): value
        for policy, scopes in results["final"].items()
        for scope in (AVERAGE, ALL_TASKS)
        for metric, value in scopes[scope].items()
    }
    one_stage = len(results["stages"]) == 1
    for name in (*CONTINUAL, "forward_transfer"):  # forward transfer: runs evaluated before training
        for policy, values in results.get(name, {}).items():
            for metric, v in values.items():
                if v is None or math.isnan(v):
                    if not (one_stage and name != "plasticity"):
                        continue
                    v = 0.0
                out[f"final/{name}/{metric}/{policy}"] = v
    return out


def log_final(writer: Writer, results: Mapping[str, Any]) -> None:
    """`final/...` scalars at the last step; the axis runs (`axis.write_axis_runs`) beside the
    run's folder, so that "ignore outliers" cannot cut a drop off the forgetting charts."""
    step = tasks_learned(results["stages"][-1])
    for tag, value in final_metrics(results).items():
        writer.add_scalar(tag, value, step)
    write_axis_runs(Path(writer.log_dir).parent, forgetting_tags(results["stages"][-1], results["task_names"]), logged_steps(results))
