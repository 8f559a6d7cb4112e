"""What tests/test_distributed.py runs on two processes (torchrun), and on one for reference."""

from __future__ import annotations

import json
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import torch
from avalanche.core import SupervisedPlugin

from tests.tiny import TINY, run_args

STEP = [*TINY, "benchmark.train_images=21", "loss.name=infonce", "strategy.name=ewc"]  # 105 pairs in task 1: 52 + 53
RUN = ["benchmark.tasks=[blocks, curves]", "strategy.name=replay", "strategy.memory_size=8", "strategy.replay_per_batch=4"]


class LastStep(SupervisedPlugin):
    """Keeps the loss and the (averaged) gradients of the last training iteration."""

    def after_training_iteration(self, strategy: Any, **kwargs: Any) -> None:
        self.loss = strategy.loss.detach().clone()
        self.grads = {n: p.grad.clone() for n, p in strategy.model.named_parameters() if p.grad is not None}


def memory_recorder(path: Path) -> Callable[..., None]:
    """A `Replay.after_training_exp` that also appends the image ids of the memory to `path` (a JSON list a line)."""
    from ccrbench.strategies.replay import Replay

    update = Replay.after_training_exp

    def after_training_exp(self: Replay, strategy: Any, **kwargs: Any) -> None:
        update(self, strategy, **kwargs)
        with path.open("a") as f:
            f.write(json.dumps([int(item[2]) for item in self.memory]) + "\n")

    return after_training_exp


def one_step() -> dict[str, Any]:
    """One training step of the tiny model on the first task (a global batch of all its pairs,
    InfoNCE), EWC's importance pass after it and a MAS pass: loss, gradients, parameters, importances."""
    from ccrbench import distributed
    from ccrbench.config import load_config
    from ccrbench.evaluation.protocol import DIRECTIONS
    from ccrbench.registry import BENCHMARKS
    from ccrbench.build import build_learner, seed_everything
    from ccrbench.strategies.regularization import importance_mode, mas_importance

    config = load_config(None, STEP)
    distributed.init(config.device)
    benchmark = BENCHMARKS.build(config.benchmark.name, config.benchmark.options)
    experience = benchmark.train_stream[0]
    config = load_config(None, [*STEP, f"train.batch_size={len(experience.dataset)}"])  # one step
    seed_everything(config.seed)
    learner = build_learner(config, benchmark, None, directions=DIRECTIONS, progress=False)
    strategy, last = learner.strategy, LastStep()
    strategy.plugins.append(last)
    strategy.train(experience)
    params = {n: p for n, p in strategy.model.branch_parameters("both").items() if p.requires_grad}
    with importance_mode(strategy.model):
        mas = mas_importance(strategy.model, params, strategy.train_loader(experience.dataset))
    return {
        "pairs": len(experience.dataset),
        "loss": last.loss,
        "grads": last.grads,
        "params": {n: p.detach().clone() for n, p in strategy.model.named_parameters()},
        "ewc": learner.plugin.importances,
        "mas": mas,
    }


if __name__ == "__main__":  # python -m torch.distributed.run --nproc_per_node 2 -m tests.distributed_worker OUT
    from ccrbench.cli import main
    from ccrbench.distributed import rank
    from ccrbench.strategies.replay import Replay

    out = Path(sys.argv[1])
    torch.save(one_step(), out / f"step_rank{rank()}.pt")
    Replay.after_training_exp = memory_recorder(out / f"memory_rank{rank()}.jsonl")
    sys.exit(main(run_args(out / "run", *RUN)))
