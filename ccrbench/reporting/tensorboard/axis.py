"""Two runs that hold the forgetting charts' y axis at 0-100, so that TensorBoard's "ignore
outliers in chart scaling" cannot cut a drop off.

That option is on by default and lives in the browser's local storage only (TensorBoard 2.21:
Time Series keeps it in `_tb_global_settings`, Scalars and Custom Scalars in `_ignoreYOutliers`,
both read with `useLocalStorage`; no URL parameter or server flag sets it). With it on, a chart's
y range spans only the values between the 5 % and the 95 % quantile of its points (Time Series:
`sorted[ceil(0.05 (n - 1))]` to `sorted[floor(0.95 (n - 1))]`, so the lowest and the highest of
up to 21 points are always left out): the one run whose recall falls is drawn off the axis. Runs
`y-axis 0` and `y-axis 100` log 0 and 100 under every tag of the forgetting group at every step
the runs log (0, before training, to T), more points at each bound than the quantiles leave out, so the range is 0-100 whatever
the option: every recall, a drop included, is on the axis.
"""

from __future__ import annotations

import math
import os
import shutil
import tempfile
import time
from collections.abc import Iterable, Sequence
from pathlib import Path

from tensorboard.compat.proto.event_pb2 import Event
from tensorboard.compat.proto.summary_pb2 import Summary
from tensorboard.summary.writer.record_writer import RecordWriter

BOUNDS = (0.0, 100.0)  # recall in percent
AXIS_RUN = "y-axis {bound:g}"  # sorts after the strategies' runs; no "(": Custom Scalars reads a line's run from it
EVENTS = "events.out.tfevents.0.axis"  # one fixed file, replaced whole


def axis_copies(runs: int, steps: int) -> int:
    """How many runs per bound keep the bound inside Time Series' quantiles in a card of `runs`
    runs with a point at each of `steps` steps: the points left out below are `ceil(0.05 (n - 1))`
    of the card's n; the bound's copies must be more."""
    copies = 1
    while copies * steps <= math.ceil(0.05 * ((runs + 2 * copies) * steps - 1)):
        copies += 1
    return copies


def axis_runs(tensorboard: Path) -> list[Path]:
    """The axis runs in a TensorBoard folder."""
    return sorted(p for bound in BOUNDS for p in tensorboard.glob(AXIS_RUN.format(bound=bound) + "*") if p.is_dir())


def _write_events(folder: Path, tags: Iterable[str], value: float, steps: Sequence[int]) -> None:
    """An event file with `value` under every tag at each of `steps`, written beside and moved
    into place (runs of a suite may write the same file at once)."""
    folder.mkdir(parents=True, exist_ok=True)
    handle, temporary = tempfile.mkstemp(dir=folder, prefix=".axis-")  # no "tfevents" in the name: TensorBoard skips it
    with os.fdopen(handle, "wb") as f:
        writer = RecordWriter(f)
        writer.write(Event(wall_time=time.time(), file_version="brain.Event:2").SerializeToString())
        for step in steps:
            summary = Summary(value=[Summary.Value(tag=tag, simple_value=value) for tag in tags])
            writer.write(Event(wall_time=time.time(), step=step, summary=summary).SerializeToString())
    os.replace(temporary, folder / EVENTS)


def write_axis_runs(tensorboard: Path, tags: Iterable[str], steps: Sequence[int], *, runs: int = 1) -> list[Path]:
    """Writes (replacing older ones) the axis runs into a TensorBoard folder: for each bound,
    `axis_copies(runs, len(steps))` runs logging the bound under `tags` at each of `steps`.

    Args:
        tensorboard: the folder TensorBoard is started on (each run a sub-folder).
        tags: the forgetting group's tags.
        steps: the steps the runs log (`scalars.logged_steps`).
        runs: how many runs the folder holds besides these.

    Returns:
        The axis runs' folders.
    """
    tags = sorted(set(tags))
    copies = axis_copies(runs, len(steps))
    folders = {tensorboard / (AXIS_RUN.format(bound=bound) + (f" · {i + 1}" if i else "")): bound for bound in BOUNDS for i in range(copies)}
    for old in axis_runs(tensorboard):
        if old not in folders:
            shutil.rmtree(old)
    for folder, bound in folders.items():
        _write_events(folder, tags, bound, steps)
    return list(folders)
