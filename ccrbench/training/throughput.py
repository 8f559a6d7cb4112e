"""Is training GPU-bound? The fraction of training step time spent waiting for data, and the
peak GPU memory, per experience."""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any

import torch
from avalanche.core import SupervisedPlugin
from tqdm.auto import tqdm


@dataclass(frozen=True)
class DataWait:
    """One experience's training loop timing.

    Attributes:
        experience: the experience's index in the training stream.
        steps: training iterations.
        seconds: wall time of all iterations, each from the end of the previous one (data waits included).
        waiting: the part spent between iterations: fetching the next batch from the
            DataLoader (decoding, collating, tokenising) and copying it to the device.
        peak_gib: peak CUDA memory allocated during the experience, GiB (None off CUDA).
    """

    experience: int
    steps: int
    seconds: float
    waiting: float
    peak_gib: float | None = None

    @property
    def fraction(self) -> float:
        return self.waiting / self.seconds if self.seconds > 0 else 0.0

    def __str__(self) -> str:
        return (
            f"experience {self.experience}: {100 * self.fraction:.0f}% of training time waiting for data "
            f"({self.steps} steps, {1000 * self.seconds / max(self.steps, 1):.0f} ms per step"
            + ("" if self.peak_gib is None else f", peak GPU memory {self.peak_gib:.1f} GiB")
            + ")"
        )


class DataWaitMeter(SupervisedPlugin):
    """Measures, and with `enabled` prints after each training experience, the share of the
    training loop's wall time spent waiting for the next batch.

    A GPU-bound run waits little (the DataLoader workers prepare batches while the GPU
    computes; the host blocks on the GPU inside the step); a high share means the input
    pipeline is the bottleneck: raise train.num_workers.

    Args:
        enabled: print the figure after each training experience.
    """

    def __init__(self, *, enabled: bool = True) -> None:
        super().__init__()
        self.enabled = enabled
        self.history: list[DataWait] = []
        self._last = self._seconds = self._waiting = 0.0
        self._steps = 0

    def before_training_exp(self, strategy: Any, **kwargs: Any) -> None:
        self._seconds, self._waiting, self._steps = 0.0, 0.0, 0
        if strategy.device.type == "cuda":
            torch.cuda.reset_peak_memory_stats(strategy.device)

    def before_training_epoch(self, strategy: Any, **kwargs: Any) -> None:
        self._last = time.perf_counter()  # the first batch's wait includes starting the workers

    def before_training_iteration(self, strategy: Any, **kwargs: Any) -> None:
        self._waiting += time.perf_counter() - self._last  # called after the batch was fetched and moved

    def after_training_iteration(self, strategy: Any, **kwargs: Any) -> None:
        now = time.perf_counter()
        self._seconds += now - self._last
        self._last = now
        self._steps += 1

    def after_training_exp(self, strategy: Any, **kwargs: Any) -> None:
        peak = torch.cuda.max_memory_allocated(strategy.device) / 2**30 if strategy.device.type == "cuda" else None
        self.history.append(DataWait(strategy.experience.current_experience, self._steps, self._seconds, self._waiting, peak))
        if self.enabled:
            tqdm.write(str(self.history[-1]))
