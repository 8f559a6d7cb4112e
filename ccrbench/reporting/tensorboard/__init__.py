"""What a run writes for TensorBoard, and the dashboards' layout: scalars (`scalars`), the Custom
Scalars layout (`layout`), the HPARAMS experiment and sessions (`hparams`), retrieval example
cards (`cards`).

Event files: a run's in `<run>/tb/<run name>` (`tensorboard --logdir <run>/tb` names it as
the run); a suite's runs side by side in `<suite>/tb/<run name>`, its HPARAMS experiment in
the first run's folder, `ccrbench report`'s mean-over-seeds runs beside them (`means`).
Scalars, at step = the number of tasks learned (joint, trained once on all tasks, logs at the
last step, beside the other runs' final values):
    `Forgetting R@10/i2t · reindex/1 blocks`, `.../average · known task`, `.../all tasks ·
    unknown task`: the largest R@K per direction and main policy, the first group of
    TensorBoard's Time Series; every other metric as `{metric}/{policy}/{task or summary}`;
    `diagnostics/{name}/...`; `final/...` the same after the last task and
    `final/forgetting/{metric}/{policy}`: one point per run, exact whatever the smoothing;
    `train/loss/total`, `train/loss/<penalty>` and `train/lr` every few iterations
    (`TrainingCurves`, a training plugin).
Custom Scalars: one chart per (metric, direction, policy) with every task and both
summaries, the forgetting charts first. HPARAMS: one experiment (per suite, or per run)
listing the keys that differ first; each run is a session with its values and final metrics.
Images/Text: `examples/{task}/{direction}`, one card holding a fixed few queries of the task,
after every stage, hits and misses marked; the same tags for every strategy.
"""

from typing import Any

from ccrbench.reporting.tensorboard.hparams import log_experiment, log_session_end, log_session_start, write_suite_experiment
from ccrbench.reporting.tensorboard.layout import log_layout
from ccrbench.reporting.tensorboard.means import write_seed_means
from ccrbench.reporting.tensorboard.scalars import log_final, log_stage, scope_label, tasks_learned

__all__ = [
    "log_examples",
    "log_experiment",
    "log_final",
    "log_layout",
    "log_session_end",
    "log_session_start",
    "log_stage",
    "scope_label",
    "tasks_learned",
    "write_seed_means",
    "write_suite_experiment",
]


def __getattr__(name: str) -> Any:
    """`log_examples` imported on first use: cards need torchvision (seconds), `ccrbench report` does not."""
    if name == "log_examples":
        from ccrbench.reporting.tensorboard.cards import log_examples

        return log_examples
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
