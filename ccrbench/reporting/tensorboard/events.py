"""A TensorBoard event writer without torch, for what reports write (mean-over-seeds runs, the
HPARAMS experiment): the part of `torch.utils.tensorboard.SummaryWriter` they use, on
TensorBoard's own `EventFileWriter` (importing torch's writer takes seconds; this, a fraction).
Training runs keep torch's `SummaryWriter` (images, text); both write the same events."""

from __future__ import annotations

import time
from pathlib import Path
from types import TracebackType
from typing import Any, Protocol

from tensorboard.compat.proto.event_pb2 import Event
from tensorboard.compat.proto.summary_pb2 import Summary
from tensorboard.summary.writer.event_file_writer import EventFileWriter


class Writer(Protocol):
    """What the logging functions need of a writer: torch's `SummaryWriter` (runs) or `EventWriter` (reports)."""

    log_dir: Any

    def add_scalar(self, tag: str, value: float, global_step: int | None = None) -> Any: ...

    def _get_file_writer(self) -> Any: ...


class EventWriter:
    """Scalars and summaries into an event file in `log_dir` (created), as `SummaryWriter` writes them.

    Args:
        log_dir: the run's folder.
        filename_suffix: appended to the event file's name (e.g. ".hparams").
    """

    def __init__(self, log_dir: str | Path, *, filename_suffix: str = "") -> None:
        self.log_dir = str(log_dir)
        Path(self.log_dir).mkdir(parents=True, exist_ok=True)
        # a queue that never fills: a report writes thousands of scalars, and a full queue made each wait for the file
        self._writer = EventFileWriter(self.log_dir, max_queue_size=1 << 20, filename_suffix=filename_suffix)

    def add_summary(self, summary: Summary, global_step: int | None = None) -> None:
        """Writes one summary (at `global_step`, if any) now."""
        event = Event(summary=summary, wall_time=time.time())
        if global_step is not None:
            event.step = int(global_step)
        self._writer.add_event(event)

    def add_scalar(self, tag: str, value: float, global_step: int | None = None) -> None:
        """A scalar under `tag` (a `simple_value`, as `SummaryWriter.add_scalar` writes it)."""
        self.add_summary(Summary(value=[Summary.Value(tag=tag, simple_value=float(value))]), global_step)

    def _get_file_writer(self) -> EventWriter:  # SummaryWriter's name for the object with add_summary
        return self

    def flush(self) -> None:
        self._writer.flush()

    def close(self) -> None:
        self._writer.close()

    def __enter__(self) -> EventWriter:
        return self

    def __exit__(self, kind: type[BaseException] | None, error: BaseException | None, trace: TracebackType | None) -> None:
        self.close()
