"""Real-scale data loading: `ccrbench data check` time and peak memory on synthetic COCO-2014 / VG trees.

    python scripts/bench_data.py [--dataset coco|vg] [--scale 1.0] [--root DIR] [--repeats 3] [--keep]

Writes the tree with scripts/make_synthetic_{coco,vg}.py (unless `--root` already
holds one), then runs, each in a fresh process (min / median of `--repeats`):

- the first `ccrbench data check` (empty index cache: the annotation JSON is parsed);
- a repeated one (the cached per-image index is read instead);
- the time from process start to the first training step in features mode (benchmark
  built from the cached index, first batch of 128 pairs through a feature MLP, backward);
- the imports alone (cli, config, benchmarks), the part of every figure that is not data loading.

Prints `figure | goal | measured` lines (`main()` returns them for `make bench`).
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from bench_format import print_table, stats  # scripts/ is on the path

REPO = Path(__file__).resolve().parents[1]
FIRST_STEP = """
import sys, time
t0 = time.perf_counter()
import torch
from torch.utils.data import DataLoader
from ccrbench.config import load_config
from ccrbench.registry import BENCHMARKS, ENCODERS
config = load_config(sys.argv[1], [])
bm = BENCHMARKS.build(config.benchmark.name, config.benchmark.options)
loader = DataLoader(bm.train_stream[0].dataset, batch_size=128, shuffle=True)
images, captions, ids, tasks = next(iter(loader))
encoder = ENCODERS.build("feature_mlp", {"input_dim": images.shape[1]}, corpus=())
encoder(images).pow(2).mean().backward()
print(f"{time.perf_counter() - t0:.3f}")
"""


def run_measured(args: list[str], env: dict[str, str]) -> tuple[float, float, str, float]:
    """Wall seconds, peak RSS (GiB), stdout and CPU seconds (user + system) of one child process."""
    start = time.perf_counter()
    wrapper = [sys.executable, "-c", "import resource, subprocess, sys; r = subprocess.run(sys.argv[1:]); "
               "u = resource.getrusage(resource.RUSAGE_CHILDREN); "
               "print(u.ru_utime + u.ru_stime, u.ru_maxrss, file=sys.stderr); sys.exit(r.returncode)"]
    done = subprocess.run(wrapper + args, env=env, capture_output=True, text=True, check=False)
    wall = time.perf_counter() - start
    if done.returncode != 0:
        raise SystemExit(f"{' '.join(args)} failed:\n{done.stdout}\n{done.stderr}")
    cpu, peak_kib = done.stderr.strip().splitlines()[-1].split()
    return wall, int(peak_kib) / 2**20, done.stdout, float(cpu)


def main(argv: list[str] | None = None) -> list[str]:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--dataset", choices=("coco", "vg"), default="coco")
    parser.add_argument("--scale", type=float, default=1.0, help="fraction of the real dataset's size (default 1)")
    parser.add_argument("--root", type=Path, help="an existing synthetic tree (default: write one in a temp folder)")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--keep", action="store_true", help="keep the tree written here")
    args = parser.parse_args(argv)
    work = Path(tempfile.mkdtemp(prefix="ccrbench_bench_data_"))
    root = args.root or work / args.dataset
    config = root / ("secoco_features.yaml" if args.dataset == "coco" else "sevige_features.yaml")
    if not config.is_file():
        script = REPO / "scripts" / f"make_synthetic_{args.dataset}.py"
        subprocess.run([sys.executable, str(script), str(root), "--scale", str(args.scale)], check=True)
    config = str(config)
    check = [str(Path(sys.executable).parent / "ccrbench"), "data", "check", "--config", config]
    first, repeated, step, imports = [], [], [], []
    try:
        for r in range(args.repeats):
            env = {**os.environ, "CCRBENCH_CACHE": str(work / f"cache{r}")}
            first.append(run_measured(check, env))
            repeated.append(run_measured(check, env))
            step.append(run_measured([sys.executable, "-c", FIRST_STEP, config], env))
            imports.append(run_measured([sys.executable, "-c", "import ccrbench.cli, ccrbench.config, ccrbench.benchmarks"], env))
    finally:
        for r in range(args.repeats):
            shutil.rmtree(work / f"cache{r}", ignore_errors=True)
        if not args.keep and args.root is None:
            shutil.rmtree(work, ignore_errors=True)

    scale = f"{'COCO-2014' if args.dataset == 'coco' else 'Visual Genome'} x{args.scale:g}"
    coco = args.dataset == "coco"
    lines = [
        f"data check, first ({scale}) | {'<= 30 s' if coco else '-'} | {stats([r[0] for r in first], 's', cpu=[r[3] for r in first])}",
        f"data check, first, peak RSS ({scale}) | {'<= 2 GiB' if coco else '< 24 GiB with room'} | {stats([r[1] for r in first], 'GiB')}",
        f"data check, repeated ({scale}) | a few s | {stats([r[0] for r in repeated], 's', cpu=[r[3] for r in repeated])}",
        f"data check, repeated, peak RSS ({scale}) | - | {stats([r[1] for r in repeated], 'GiB')}",
        f"features mode, start to first training step ({scale}) | - | {stats([float(r[2].split()[-1]) for r in step], 's', cpu=[r[3] for r in step])}",
        f"features mode, first step peak RSS ({scale}) | - | {stats([r[1] for r in step], 'GiB')}",
        f"of which: python + imports alone | - | {stats([r[0] for r in imports], 's', cpu=[r[3] for r in imports])}",
        f"of which: python + imports alone, peak RSS | - | {stats([r[1] for r in imports], 'GiB')}",
    ]
    return print_table(lines, "figure | goal | measured")


if __name__ == "__main__":
    main()
