"""Fine-tuning strategies that let tests act on a run at a known point.

`strategy: {name: "tests.probes:Gated", gate: DIR, at: 1}`: before training experience `at`
the run writes DIR/waiting-<pid> and waits until DIR/open exists; with `once`, only the first
run to reach the gate waits (a resumed run goes through). Every experience a process starts
is appended to DIR/log as "<pid> <experience>". `tests.probes:Failing` raises in a hook.
"""

from __future__ import annotations

import os
import time
from pathlib import Path
from typing import Any

from ccrbench.strategies.finetune import Finetune


class Gated(Finetune):
    """Finetune, waiting at a gate before training experience `at`."""

    def __init__(self, *, gate: str, at: int = 1, once: bool = True) -> None:
        super().__init__()
        self.gate, self.at, self.once = gate, at, once

    def before_training_exp(self, strategy: Any, **kwargs: Any) -> None:
        gate, exp = Path(self.gate), strategy.clock.train_exp_counter
        with (gate / "log").open("a") as log:
            log.write(f"{os.getpid()} {exp}\n")
        if exp != self.at or (self.once and any(gate.glob("waiting-*"))):
            return
        (gate / f"waiting-{os.getpid()}").touch()
        while not (gate / "open").exists():
            time.sleep(0.05)


class Failing(Finetune):
    """Finetune whose `after_training_exp` hook raises (a bug in a user's plugin)."""

    def after_training_exp(self, strategy: Any, **kwargs: Any) -> None:
        raise ZeroDivisionError("a bug in the plugin")


def wait_for(condition: Any, what: str, *, timeout: float = 300) -> Any:
    """Polls `condition()` until it returns a true value (returned); fails after `timeout` seconds."""
    deadline = time.time() + timeout
    while not (value := condition()):
        assert time.time() < deadline, f"gave up waiting for {what}"
        time.sleep(0.02)
    return value
