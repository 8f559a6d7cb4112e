"""Start-up time of the commands that do not train, against their goals (issue 24): `ccrbench list
--details` (goal <= 1.5 s; its first call lists the registries and fills the cache, later calls read
it) and `ccrbench report` on the 54 runs of results/paper_table (goal <= 5 s; on a copy of their
results.json files: report writes report.md, report.csv and plots). Min / median of 3 runs each.

Usage:
    python scripts/bench_cli.py                   # this checkout's ccrbench
    python scripts/bench_cli.py --root /work/main # another checkout's (e.g. main, for a before/after)
"""

from __future__ import annotations

import argparse
import os
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parents[1]


def timed(args: list[str], *, root: Path, cwd: Path, cache: Path) -> tuple[float, float]:
    """Wall and CPU (user + system) seconds of `python -m ccrbench ARGS` with `root` on PYTHONPATH
    (output discarded); on a busy machine the CPU seconds say more than the wall ones."""
    env = {**os.environ, "PYTHONPATH": str(root), "CCRBENCH_CACHE": str(cache)}
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    start = time.perf_counter()
    subprocess.run([sys.executable, "-m", "ccrbench", *args], cwd=cwd, env=env, check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    wall = time.perf_counter() - start
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    return wall, (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)


def row(name: str, times: list[tuple[float, float]], goal: float) -> str:
    wall, cpu = [w for w, _ in times], [c for _, c in times]
    mid = statistics.median(wall)
    return f"| {name} | {min(wall):.2f} | {mid:.2f} | {min(cpu):.2f} | {statistics.median(cpu):.2f} | {goal:g} | {'yes' if mid <= goal else 'no'} |"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--root", type=Path, default=HERE, help="checkout whose ccrbench is timed")
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        runs = tmp / "paper_table"
        for results in sorted((HERE / "results" / "paper_table").glob("*/results.json")):
            (runs / results.parent.name).mkdir(parents=True)
            shutil.copy(results, runs / results.parent.name)
        count = len(list(runs.iterdir()))
        cold = []
        for i in range(args.repeats):
            cold.append(timed(["list", "--details"], root=args.root, cwd=tmp, cache=tmp / f"cache{i}"))  # an empty cache each time
        warm = [timed(["list", "--details"], root=args.root, cwd=tmp, cache=tmp / "cache0") for _ in range(args.repeats)]
        report = [timed(["report", str(runs)], root=args.root, cwd=tmp, cache=tmp / "cache0") for _ in range(args.repeats)]
    print(f"ccrbench from {args.root}; {os.cpu_count()} cores, load average {os.getloadavg()[0]:.1f} (1 min) at the end\n")
    print("| command | wall min s | wall median s | CPU min s | CPU median s | goal s (wall) | median meets it |")
    print("|---|---|---|---|---|---|---|")
    print(row("list --details (first call, empty cache)", cold, 1.5))
    print(row("list --details (cached)", warm, 1.5))
    print(row(f"report ({count} runs)", report, 5.0))


if __name__ == "__main__":
    main()
