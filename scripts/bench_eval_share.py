"""How much of a run's time goes to evaluation, now that every stage evaluates every task (learned
or not), the model is evaluated before training and retention sets after every stage.

    python scripts/bench_eval_share.py [--config shapes_finetune] [--set KEY=VALUE ...]

Runs the config once (a temporary run directory), timing every `strategy.train` and every
experience's evaluation (embedding its test set), split into tasks learned / not learned yet /
retention sets, and the metric computation; prints `figure | seconds | share of the run` lines
(goal of the pretrained-era issue: evaluation <= 15 % of the demo run).
"""

from __future__ import annotations

import argparse
import tempfile
import time
from collections import defaultdict

from ccrbench.config import load_config
from ccrbench.evaluation.plugin import RETENTION_STREAM
from ccrbench.runner import run
from ccrbench.training.template import RetrievalTemplate


def main() -> list[str]:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--config", default="shapes_finetune")
    parser.add_argument("--set", action="append", default=[], metavar="KEY=VALUE")
    args = parser.parse_args()
    config = load_config(args.config, args.set)
    seconds: dict[str, float] = defaultdict(float)
    train, eval_exp, eval_all = RetrievalTemplate.train, RetrievalTemplate._eval_exp, RetrievalTemplate.eval

    def timed(part, function):
        def wrapper(self, *a, **k):
            start = time.perf_counter()
            try:
                return function(self, *a, **k)
            finally:
                seconds[part(self) if callable(part) else part] += time.perf_counter() - start

        return wrapper

    def kind(strategy) -> str:
        metrics = strategy.evaluator.metrics[0]
        if strategy.experience.origin_stream.name == RETENTION_STREAM:
            return "embed retention sets"
        return "embed learned tasks" if strategy.experience.task_label in metrics.learned else "embed tasks not learned yet"

    RetrievalTemplate.train = timed("train", train)
    RetrievalTemplate._eval_exp = timed(kind, eval_exp)
    RetrievalTemplate.eval = timed("evaluation (all)", eval_all)
    with tempfile.TemporaryDirectory() as out:
        start = time.perf_counter()
        run(config, out, progress=False)
        total = time.perf_counter() - start
    seconds["metrics and diagnostics"] = seconds["evaluation (all)"] - sum(v for k, v in seconds.items() if k.startswith("embed"))
    lines = [f"{'figure':<30} | seconds | share of the run", f"{'run (wall)':<30} | {total:7.1f} | 100.0 %"]
    for part in ("train", "evaluation (all)", "embed learned tasks", "embed tasks not learned yet", "embed retention sets", "metrics and diagnostics"):
        lines.append(f"{part:<30} | {seconds[part]:7.1f} | {100 * seconds[part] / total:5.1f} %")
    print("\n".join(lines))
    return lines


if __name__ == "__main__":
    main()
