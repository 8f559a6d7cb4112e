"""Weights as data: interpolation and running means of a model's floating-point state, the
maths of WiSE-FT and of ZSCL's weight ensemble (pure functions on state dicts)."""

from __future__ import annotations

from collections.abc import Mapping

import torch
from torch import Tensor, nn

Weights = dict[str, Tensor]


def floating_weights(model: nn.Module) -> Weights:
    """A detached copy of the model's floating-point state (parameters and buffers such as
    BatchNorm statistics; integer buffers are left out: they are counters, not weights)."""
    return {k: v.detach().clone() for k, v in model.state_dict().items() if isinstance(v, Tensor) and v.is_floating_point()}


def interpolate(start: Mapping[str, Tensor], end: Mapping[str, Tensor], alpha: float) -> Weights:
    """(1 - alpha) * start + alpha * end, entry by entry (alpha = 0: start, 1: end); on `end`'s
    device (a start restored from a checkpoint is on the CPU)."""
    return {k: torch.lerp(start[k].to(end[k]), end[k], alpha) for k in end}


def running_mean(mean: Mapping[str, Tensor], new: Mapping[str, Tensor], count: int) -> Weights:
    """The mean of `count` weight samples (`mean`) with one more sample (`new`) added."""
    return {k: mean[k] + (new[k] - mean[k]) / (count + 1) for k in mean}


@torch.no_grad()
def assign(model: nn.Module, weights: Mapping[str, Tensor]) -> None:
    """Copies `weights` into the model's state in place (the optimizer keeps its parameters)."""
    state = model.state_dict()
    for k, v in weights.items():
        state[k].copy_(v)
