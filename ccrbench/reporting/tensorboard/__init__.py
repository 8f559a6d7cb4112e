"""What a run writes for TensorBoard, and the dashboards' layout: scalars (`scalars`), the Custom
Scalars layout (`layout`), the HPARAMS experiment and sessions (`hparams`), retrieval example
cards (`cards`), the runs that hold the forgetting charts' axis at 0-100 (`axis`).

Event files: a run's in `<run>/tb/<run name>` (`tensorboard --logdir <run>/tb` names it as
the run); a suite's runs side by side in `<suite>/tb/<run name>`, its HPARAMS experiment in
the first run's folder, `ccrbench report`'s mean-over-seeds runs beside them (`means`), and
the axis runs `y-axis 0` and `y-axis 100` (TensorBoard's "ignore outliers", on by default and
kept only in the browser, would cut a drop off the axis).
Scalars, at step = the number of tasks learned (joint, trained once on all tasks, logs at the
last step, beside the other runs' final values):
    `R@10/i2t reindex/1 blocks`, `.../all tasks` (unknown task), `.../known task` (the mean
    over tasks, each searched in its own database): the largest R@K per direction and main
    policy, the first group of TensorBoard's Time Series, each tag short enough to be a
    card's whole title at 1920 px; every other metric as `{metric}/{policy}/{task or
    summary}`; `diagnostics/{name}/...`; `final/...` the same after the last task and
    `final/forgetting/{metric}/{policy}`: one point per run, exact whatever the smoothing;
    `train/loss/total`, `train/loss/<penalty>` and `train/lr` every few iterations
    (`TrainingCurves`, a training plugin).
Custom Scalars: one chart per (metric, direction, policy) with every task and both
summaries, the forgetting charts first. HPARAMS: one experiment (per suite, or per run)
listing the keys that differ; each run is a session with its values and final metrics,
named by a short trial id (`ewc s0 decoupled`), the mean runs too (`ewc mean decoupled`).
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
