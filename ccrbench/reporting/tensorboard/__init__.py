"""What a run writes for TensorBoard, and the dashboards' layout: scalars (`scalars`), the Custom
Scalars layout (`layout`), the HPARAMS experiment and sessions (`hparams`), retrieval example
cards (`cards`).

Scalars (one SummaryWriter per run, under `<run>/tb`):
    `{metric}/{policy}/{task name}`, `{metric}/{policy}/average (known task)` and
    `{metric}/{policy}/all tasks (unknown task)` (e.g. `i2t_r10/reindex/blocks`), at
    step = the number of tasks learned (joint, trained once on all tasks, logs at the
    last step, beside the other runs' final values);
    `final/...` the same after the last task and `final/forgetting/{metric}/{policy}`:
    one point per run, exact whatever the smoothing;
    `train/loss/total`, `train/loss/<penalty>` and `train/lr` every few iterations
    (`TrainingCurves`, a training plugin).
Custom Scalars: one chart per (metric, direction, policy) with every task and both
summaries, the forgetting charts first. HPARAMS: one experiment (per suite, or per run)
listing the keys that differ first; each run is a session with its values and final metrics.
Images/Text: a fixed few queries of every seen task after every stage, hits and misses marked.
"""

from ccrbench.reporting.tensorboard.cards import log_examples
from ccrbench.reporting.tensorboard.hparams import log_experiment, log_session_end, log_session_start, write_suite_experiment
from ccrbench.reporting.tensorboard.layout import log_layout
from ccrbench.reporting.tensorboard.scalars import log_final, log_stage, tasks_learned

__all__ = [
    "log_examples",
    "log_experiment",
    "log_final",
    "log_layout",
    "log_session_end",
    "log_session_start",
    "log_stage",
    "tasks_learned",
    "write_suite_experiment",
]
