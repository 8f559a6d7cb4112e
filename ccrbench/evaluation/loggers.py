"""Avalanche loggers for retrieval runs, chosen by name (a run config's `logging: [csv, text, tensorboard, wandb]`).

Avalanche's own `CSVLogger` writes fixed accuracy/loss columns (all 0 for retrieval), so `csv` is
`MetricCSVLogger`, one row per MetricValue; its `WandBLogger` sends every value at `step=x_plot`,
which W&B drops when a stage's x (tasks learned) comes after a larger one (training iterations),
so `wandb` is `RetrievalWandBLogger`, which plots each value against its own x (and starts its run
with today's wandb).
"""

from __future__ import annotations

import csv
import sys
from importlib.util import find_spec
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any, TextIO

from avalanche.logging import BaseLogger, TensorboardLogger, TextLogger, WandBLogger

LOGGERS = ("csv", "text", "tensorboard", "wandb")
COLUMNS = ("metric", "phase", "stream", "task", "x_plot", "value")


class MetricCSVLogger(BaseLogger):
    """Every numeric MetricValue as a row of `path` (appended to): metric, phase, stream, task (or
    scope: average, all_tasks), x_plot, value; e.g. `R@10_i2t_noreindex,eval,test,Task001,2,87.5`.

    Args:
        path: the CSV file (created with its header when missing).
    """

    def __init__(self, path: str | Path) -> None:
        super().__init__()
        self.path = Path(path)
        self.file: TextIO | None = None  # opened at the first value: a run that fails before leaves no file

    def log_single_metric(self, name: str, value: Any, x_plot: int) -> None:
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            return  # images, histograms: not for a table
        if self.file is None:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            new = not self.path.exists()
            self.file = self.path.open("a", newline="")
            self.writer = csv.writer(self.file)
            if new:
                self.writer.writerow(COLUMNS)
        metric, phase, stream, *scope = name.split("/") + ["", ""]
        self.writer.writerow([metric, phase.removesuffix("_phase"), stream.removesuffix("_stream"), "/".join(s for s in scope if s), x_plot, value])

    def log_metrics(self, metric_values: list[Any]) -> None:
        super().log_metrics(metric_values)
        if self.file is not None:
            self.file.flush()

    def close(self) -> None:
        if self.file is not None:
            self.file.close()


class RetrievalWandBLogger(WandBLogger):
    """Avalanche's WandBLogger with each value plotted against its own x: `tasks_learned` for
    evaluation values, `train_iterations` for training ones (W&B's step only grows)."""

    def before_run(self) -> None:
        """Starts the W&B run (Avalanche 0.6's calls `wandb.util.generate_id`, gone from wandb 0.19+;
        wandb makes the id itself, or takes WANDB_RUN_ID)."""
        self.wandb.init(**self.init_kwargs)
        self.defined: set[str] = set()

    def log_metrics(self, metric_values: list[Any]) -> None:
        """One `wandb.log` per x (a call per value costs a round trip to W&B's service process)."""
        rows: dict[tuple[str, int], dict[str, float]] = {}
        for m in metric_values:
            if isinstance(m.value, bool) or not isinstance(m.value, (int, float)):
                continue  # images, histograms
            x = "train_iterations" if "/train_phase/" in m.name else "tasks_learned"
            if m.name not in self.defined:  # W&B's define_metric takes no glob but a final "*"
                self.wandb.define_metric(m.name, step_metric=x)
                self.defined.add(m.name)
            rows.setdefault((x, m.x_plot), {x: m.x_plot})[m.name] = m.value
        for row in rows.values():
            self.wandb.log(row)

    def after_training_exp(self, strategy: Any, metric_values: list[Any], **kwargs: Any) -> None:
        """Avalanche's would log a `TrainingExperience` counter at a step of its own."""

    def close(self) -> None:
        self.wandb.finish()


def build_loggers(names: Sequence[str], out: str | Path, *, config: Mapping[str, Any] | None = None) -> list[BaseLogger]:
    """Avalanche loggers writing into run directory `out`: csv -> metrics.csv, text -> log.txt,
    tensorboard -> tb/avalanche (beside ccrbench's own event files in tb/), wandb -> a W&B run named
    after `out` (project "ccrbench", files under `out`; `WANDB_MODE=offline` keeps it local) with `config`.

    Raises:
        ImportError: wandb is asked for and not installed (naming the extra that installs it).
    """
    out = Path(out)
    loggers: list[BaseLogger] = []
    for name in names:
        if name == "csv":
            loggers.append(MetricCSVLogger(out / "metrics.csv"))
        elif name == "text":
            loggers.append(TextLogger(open(out / "log.txt", "a")))  # noqa: SIM115 - the logger keeps it open
        elif name == "tensorboard":
            loggers.append(TensorboardLogger(out / "tb" / "avalanche"))
        elif name == "wandb":
            if find_spec("wandb") is None:  # an optional extra (Avalanche's logger imports it)
                raise ImportError("logging: wandb needs the wandb package: pip install 'ccrbench[wandb]'")
            loggers.append(RetrievalWandBLogger(project_name="ccrbench", run_name=out.name, dir=str(out), config=dict(config or {}), save_code=False))
        else:
            raise ValueError(f"unknown logger {name!r}; expected one of {', '.join(LOGGERS)}")
    return loggers


def close_loggers(loggers: Sequence[BaseLogger]) -> None:
    """Closes the loggers that hold files or a W&B run (Avalanche's TextLogger leaves its file to the caller)."""
    for logger in loggers:
        if isinstance(logger, TextLogger):
            if logger.file not in (sys.stdout, sys.stderr):  # InteractiveLogger prints to stdout
                logger.file.close()
        elif hasattr(logger, "close"):
            logger.close()
        elif isinstance(logger, TensorboardLogger):
            logger.writer.close()
