"""TensorBoard scalars of a run: every metric of each stage, its diagnostics, and the final values."""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import Any

from torch.utils.tensorboard import SummaryWriter

from ccrbench.evaluation.keys import ALL_TASKS, AVERAGE

SCOPE_LABELS = {AVERAGE: "average (known task)", ALL_TASKS: "all tasks (unknown task)"}
CONTINUAL = ("forgetting", "plasticity", "bwt")  # results.json's per-run continual-learning summaries
DIAGNOSTICS_TAG = "Diagnostics"  # the tag prefix of the drift diagnostics


def tasks_learned(record: Mapping[str, Any]) -> int:
    """The step of a stage record: how many tasks the model has learned (seen) so far."""
    return len(record["tasks"])


def scope_label(scope: str, task_names: Sequence[str]) -> str:
    """A task's name, 'average (known task)' or 'all tasks (unknown task)'."""
    return task_names[int(scope)] if scope.isdigit() else SCOPE_LABELS.get(scope, scope)


def scalar_tag(metric: str, policy: str, scope: str, task_names: Sequence[str]) -> str:
    """`i2t_r10/reindex/blocks`, `.../average (known task)`, `.../all tasks (unknown task)`."""
    return f"{metric}/{policy}/{scope_label(scope, task_names)}"


def log_stage(writer: SummaryWriter, record: Mapping[str, Any], task_names: Sequence[str]) -> None:
    """Every metric of one evaluation stage (every seen task and both summaries), and its
    diagnostics as `Diagnostics/{name}/{task name}`, ..."""
    step = tasks_learned(record)
    for policy, scopes in record["metrics"].items():
        for scope, values in scopes.items():
            for metric, value in values.items():
                writer.add_scalar(scalar_tag(metric, policy, scope, task_names), value, step)
    for scope, values in record.get("diagnostics", {}).items():
        for name, value in values.items():
            writer.add_scalar(f"{DIAGNOSTICS_TAG}/{name}/{scope_label(scope, task_names)}", value, step)


def final_metrics(results: Mapping[str, Any]) -> dict[str, float]:
    """{`final/...` tag: value}: the summaries after the last task, and the forgetting,
    plasticity and backward transfer of every metric (NaN ones, e.g. joint training's
    forgetting, are left out)."""
    out = {
        "final/" + scalar_tag(metric, policy, scope, results["task_names"]): value
        for policy, scopes in results["final"].items()
        for scope in (AVERAGE, ALL_TASKS)
        for metric, value in scopes[scope].items()
    }
    for name in CONTINUAL:
        for policy, values in results.get(name, {}).items():
            out.update({f"final/{name}/{metric}/{policy}": v for metric, v in values.items() if v is not None and not math.isnan(v)})
    return out


def log_final(writer: SummaryWriter, results: Mapping[str, Any]) -> None:
    """`final/...` scalars at the last step."""
    step = tasks_learned(results["stages"][-1])
    for tag, value in final_metrics(results).items():
        writer.add_scalar(tag, value, step)
