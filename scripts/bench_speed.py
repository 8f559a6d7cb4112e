"""Training speed: the Avalanche loop against a bare PyTorch loop, the demo's wall time, its
evaluation share, and the 3-seed paper grid estimated from them.

    python scripts/bench_speed.py [--quick] [--repeats 3] [--set KEY=VALUE ...]

- loop: one epoch of the demo's first task through `RetrievalTemplate.train` and through a
  bare PyTorch loop (same model, data, optimizer, loss and gradient clipping), alternated
  in the same process;
- demo: `ccrbench run --config configs/shapes_finetune.yaml` in a fresh process (set-up
  excluded: the runner's own stage clock), with the time spent in training, in evaluation
  (embedding the test sets, both policies, known and unknown task) and in the examples;
- grid: the no-sharing paper grid (9 configurations x 3 seeds, `--jobs 2`, one thread per
  run) estimated from the measured demo time at one thread and each configuration's
  training work relative to fine-tuning (counted, not measured; see GRID_WORK).

`--quick` skips the demo and the grid; `--set` times the demo's config with overrides (e.g. a
cheaper encoder: `--set model.image_encoder.width=12`). Prints `figure | goal | measured | ratio` lines
(`main()` returns them for `make bench`).
"""

from __future__ import annotations

import argparse
import copy
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from bench_format import print_table, stats  # scripts/ is on the path

REPO = Path(__file__).resolve().parents[1]
DEMO = REPO / "configs" / "shapes_finetune.yaml"
# Training work of each no-sharing grid configuration in fine-tuning runs (same steps = 1):
# joint trains on tasks 1, 1+2, 1+2+3 (6 task-epochs for 3); EWC/MAS add one importance pass
# (forward + backward) over each task (1 of its 6 epochs); LwF adds a teacher forward (about
# a third of a step); replay doubles the batches after the first task; decoupled trains two models.
GRID_WORK = {
    "joint": 2.0,
    "joint_no_ctnp": 2.0,
    "finetune": 1.0,
    "ewc": 1 + 1 / 6,
    "mas": 1 + 1 / 6,
    "lwf": 1 + 1 / 3,
    "replay": 1 + 2 / 3,
    "ewc decoupled": 2 * (1 + 1 / 6),
    "mas decoupled": 2 * (1 + 1 / 6),
}
# Run in a child process: the demo with its training / evaluation / examples time per stage.
TIMED_DEMO = """
import json, sys, time
import ccrbench.runner as runner
from ccrbench.cli import main
from ccrbench.training.template import RetrievalTemplate
spent = {"train": 0.0, "eval": 0.0, "examples": 0.0}
def timed(fn, key):
    def wrapper(*args, **kwargs):
        start = time.perf_counter()
        try:
            return fn(*args, **kwargs)
        finally:
            spent[key] += time.perf_counter() - start
    return wrapper
RetrievalTemplate.train = timed(RetrievalTemplate.train, "train")
RetrievalTemplate.eval = timed(RetrievalTemplate.eval, "eval")
runner.log_examples = timed(runner.log_examples, "examples")
code = main(sys.argv[1:])
print("SPENT " + json.dumps(spent))
sys.exit(code)
"""


def loop_vs_bare(repeats: int, overrides: list[str]) -> list[str]:
    """Seconds per epoch of the demo's first task: Avalanche template vs a bare loop."""
    import torch
    from torch.utils.data import DataLoader

    from ccrbench.config import load_config
    from ccrbench.registry import BENCHMARKS
    from ccrbench.build import build_learner, seed_everything
    from ccrbench.training.template import RetrievalCollate

    config = load_config(str(DEMO), [*overrides, "train.epochs=1"])
    seed_everything(0)
    benchmark = BENCHMARKS.build(config.benchmark.name, config.benchmark.options)
    from torch.utils.tensorboard import SummaryWriter

    tb_dir = tempfile.TemporaryDirectory()  # the learner's training curves, deleted at exit
    learner = build_learner(config, benchmark, SummaryWriter(tb_dir.name), directions=("i2t", "t2i"), progress=False)
    strategy = learner.strategy
    model, criterion, optimizer = strategy.model, strategy._criterion, strategy.optimizer
    state = copy.deepcopy((model.state_dict(), optimizer.state_dict()))
    experience = benchmark.train_stream[0]
    loader = DataLoader(
        experience.dataset, batch_size=config.train.batch_size, shuffle=True, drop_last=True, collate_fn=RetrievalCollate(model.tokenize)
    )

    def bare_epoch() -> None:
        model.train()
        for batch in loader:
            image_emb, text_emb = model(batch.images, batch.text)
            t2i = batch.text_to_image
            loss = criterion(image_emb[t2i], text_emb, batch.image_ids[t2i], **model.logit_inputs())
            optimizer.zero_grad()
            loss.backward()
            torch.nn.utils.clip_grad_norm_(model.parameters(), config.train.grad_clip, foreach=True)
            optimizer.step()

    times: dict[str, list[float]] = {"avalanche": [], "bare": []}
    for _ in range(repeats):
        for name, epoch in (("avalanche", lambda: strategy.train(experience)), ("bare", bare_epoch)):
            model.load_state_dict(state[0])
            optimizer.load_state_dict(state[1])
            start = time.perf_counter()
            epoch()
            times[name].append(time.perf_counter() - start)
    ratios = [a / b for a, b in zip(times["avalanche"], times["bare"])]
    steps = len(loader)
    return [
        f"training epoch, Avalanche loop ({steps} steps of {config.train.batch_size}) | - | {stats(times['avalanche'], 's')} | -",
        f"training epoch, bare PyTorch loop | - | {stats(times['bare'], 's')} | -",
        f"Avalanche loop / bare loop | about 1 | {stats(ratios, 'x', 2)} | {statistics.median(ratios):.2f}x",
        f"training step, Avalanche loop | - | {stats([1000 * t / steps for t in times['avalanche']], 'ms', 0)} | -",
    ]


def timed_demo(threads: int, overrides: list[str]) -> tuple[float, list[float], dict[str, float]]:
    """The demo in a fresh process: wall seconds without set-up, stage end times, time spent by part."""
    with tempfile.TemporaryDirectory() as out:
        args = ["run", "--config", str(DEMO), "--out", out, "--overwrite", "--set", f"threads={threads}"]
        args += [a for o in overrides for a in ("--set", o)]
        env = {**os.environ, "CCRBENCH_CACHE": os.environ.get("CCRBENCH_CACHE", str(Path.home() / ".cache" / "ccrbench"))}
        done = subprocess.run([sys.executable, "-c", TIMED_DEMO, *args], capture_output=True, text=True, env=env, check=False)
    if done.returncode != 0:
        raise SystemExit(f"demo failed:\n{done.stdout[-2000:]}\n{done.stderr[-2000:]}")
    stages = [float(line.split("(")[1].rstrip("s)")) for line in done.stdout.splitlines() if line.startswith("stage ")]
    spent = json.loads(done.stdout.split("SPENT ")[1].splitlines()[0])
    return stages[-1], stages, spent


def demo_and_grid(repeats: int, overrides: list[str]) -> list[str]:
    runs = [timed_demo(2, overrides) for _ in range(repeats)]
    walls = [r[0] for r in runs]
    eval_share = [100 * (r[2]["eval"] + r[2]["examples"]) / r[0] for r in runs]
    one_thread = timed_demo(1, overrides)[0]
    work = sum(GRID_WORK.values())
    grid_min = work * 3 * one_thread / 2 / 60  # two runs at a time, one thread each
    return [
        f"demo wall time, set-up excluded (2 threads) | <= 90 s | {stats(walls, 's')} | {statistics.median(walls) / 90:.2f} of goal",
        f"demo stage end times (median run) | - | {' / '.join(f'{s:.0f}' for s in runs[walls.index(statistics.median(walls))][1])} s | -"
        if repeats % 2 else f"demo stage end times (first run) | - | {' / '.join(f'{s:.0f}' for s in runs[0][1])} s | -",
        f"evaluation share of the demo (embedding, both policies, known+unknown task, examples) | <= 15 % | {stats(eval_share, '%')} | "
        f"{statistics.median(eval_share) / 15:.2f} of goal",
        f"demo wall time, 1 thread | - | {one_thread:.1f} s | -",
        f"3-seed no-sharing grid, --jobs 2 (estimate: {work:.1f} demo-equivalents x 3 seeds x 1-thread demo / 2) | <= 60 min | "
        f"{grid_min:.0f} min | {grid_min / 60:.2f} of goal",
    ]


def main(argv: list[str] | None = None) -> list[str]:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="skip the demo and the grid estimate (minutes)")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--set", action="append", default=[], metavar="KEY=VALUE", help="override of the demo's config (repeatable)")
    args = parser.parse_args(argv)
    lines = loop_vs_bare(args.repeats, args.set)
    if not args.quick:
        lines += demo_and_grid(args.repeats, args.set)
    return print_table(lines)


if __name__ == "__main__":
    main()
