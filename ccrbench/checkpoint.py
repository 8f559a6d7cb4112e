"""Checkpoints after every experience: everything needed to continue a run exactly.

A checkpoint holds, per learner, the model, optimizer and loss state, the strategy
plugin's state (e.g. EWC/MAS importances and anchors), the metric plugin's state
(stored no-reindex databases, metrics so far), Avalanche's clock and the state of its
batch-order generator; plus the global RNG states, so a resumed run draws the same
batches as an uninterrupted one.
"""

from __future__ import annotations

import random
import textwrap
from pathlib import Path
from typing import Any

import numpy as np
import torch

from ccrbench.io import write_atomic
from ccrbench.registry import ConfigError

CHECKPOINT = "checkpoint.pt"


def rng_state() -> dict[str, Any]:
    return {"torch": torch.get_rng_state(), "numpy": np.random.get_state(), "python": random.getstate()}


def set_rng_state(state: dict[str, Any]) -> None:
    torch.set_rng_state(state["torch"])
    np.random.set_state(state["numpy"])
    random.setstate(state["python"])


def learner_state(learner: Any) -> dict[str, Any]:
    strategy = learner.strategy
    return {
        "model": strategy.model.state_dict(),
        "optimizer": strategy.optimizer.state_dict(),
        "criterion": strategy._criterion.state_dict(),
        "scaler": strategy.scaler.state_dict(),  # fp16's loss scale ({} for other precisions)
        "plugin": learner.plugin.state_dict(),
        "metrics": learner.metrics.state_dict(),
        "clock": dict(vars(strategy.clock)),
        "batch_order": strategy.train_generator.get_state(),
    }


def load_learner_state(learner: Any, state: dict[str, Any]) -> None:
    strategy = learner.strategy
    strategy.model.load_state_dict(state["model"])
    strategy.optimizer.load_state_dict(state["optimizer"])
    strategy._criterion.load_state_dict(state["criterion"])
    if state.get("scaler"):  # saved by fp16 runs only (the precision is part of the compared config)
        strategy.scaler.load_state_dict(state["scaler"])
    learner.plugin.load_state_dict(state["plugin"])
    learner.metrics.load_state_dict(state["metrics"])
    vars(strategy.clock).update(state["clock"])
    strategy.train_generator.set_state(state["batch_order"])


def save_checkpoint(out: Path, *, experiences_done: int, learners: list[Any]) -> None:
    """Writes out/checkpoint.pt atomically (temp file + rename)."""
    state = {
        "experiences_done": experiences_done,
        "learners": [learner_state(learner) for learner in learners],
        "rng": rng_state(),
    }
    write_atomic(out / CHECKPOINT, lambda f: torch.save(state, f), binary=True)


def load_checkpoint(out: Path, learners: list[Any]) -> int:
    """Restores a checkpoint into freshly built learners; returns the experiences done (0 if none)."""
    path = out / CHECKPOINT
    if not path.exists():
        return 0
    try:
        state = torch.load(path, map_location="cpu", weights_only=False)  # any device's checkpoint; load_state_dict moves it
        saved = state["learners"]
    except Exception as e:  # torch.load fails in many ways on a damaged file (EOFError, RuntimeError, ...)
        raise ConfigError(
            f"--resume: {path} is damaged ({type(e).__name__}: {textwrap.shorten(str(e), 100)}); "
            "start the run again with --overwrite"
        ) from e
    if len(saved) != len(learners):
        raise ConfigError(f"--resume: {path} holds {len(saved)} model(s), the config builds {len(learners)}")
    for learner, learner_saved in zip(learners, saved):
        load_learner_state(learner, learner_saved)
    set_rng_state(state["rng"])
    return state["experiences_done"]


def start_weights(source: str | Path) -> dict[str, Any]:
    """The model state dict that `model.init_from: source` names: a run directory (its
    checkpoint.pt, i.e. the model after its last finished stage), a ccrbench checkpoint file,
    or a file holding a plain `model.state_dict()`.

    Raises:
        ConfigError: naming the key and the path, when it is missing, unreadable or holds no model.
    """
    path = Path(source)
    file = path / CHECKPOINT if path.is_dir() else path
    if not file.is_file():
        where = f"the run directory {path} has no {CHECKPOINT} (has the run finished a stage?)" if path.is_dir() else f"{path} does not exist"
        raise ConfigError(f"model.init_from: {where}; give a run directory or a checkpoint file")
    try:
        state = torch.load(file, map_location="cpu", weights_only=False)  # our own checkpoints hold numpy RNG states
    except Exception as e:  # damaged or not a torch file
        raise ConfigError(f"model.init_from: {file} is not a readable checkpoint ({type(e).__name__}: {textwrap.shorten(str(e), 100)})") from e
    if isinstance(state, dict) and "learners" in state:
        if len(state["learners"]) != 1:
            raise ConfigError(f"model.init_from: {file} holds {len(state['learners'])} models (a decoupled run); start from a run with one model")
        state = state["learners"][0]["model"]
    if not isinstance(state, dict) or not all(isinstance(k, str) for k in state):
        raise ConfigError(f"model.init_from: {file} holds no model state dict (got {type(state).__name__})")
    return state


def init_from(model: torch.nn.Module, source: str | Path | None) -> None:
    """Loads the weights named by `model.init_from` into a freshly built `model` (nothing when None).

    Raises:
        ConfigError: the source is bad (`start_weights`), or its model's architecture differs
            from the config's: naming the first missing, unexpected or differently shaped parameter.
    """
    if source is None:
        return
    state, own = start_weights(source), model.state_dict()
    problems = [f"{k!r} is missing from it" for k in own if k not in state]
    problems += [f"it has {k!r}, which this model lacks" for k in state if k not in own]
    problems += [
        f"{k!r} has shape {list(v.shape)} there but {list(own[k].shape)} here"
        for k, v in state.items()
        if k in own and isinstance(v, torch.Tensor) and v.shape != own[k].shape
    ]
    if problems:
        raise ConfigError(
            f"model.init_from: {source} is another architecture than this config's model: {problems[0]}"
            f"{f' (and {len(problems) - 1} more)' if len(problems) > 1 else ''}; use the model section of the run it comes from "
            "(a bigru vocabulary of other captions: vocabulary: seen_tasks in both runs)"
        )
    try:
        model.load_state_dict(state)
    except (RuntimeError, ValueError) as e:  # e.g. a text encoder's vocabulary (extra state) of other captions
        raise ConfigError(f"model.init_from: {source}: {' '.join(str(e).split())}") from e
