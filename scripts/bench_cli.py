"""Start-up time of the commands that do not train, against their goals (issue 24): `ccrbench
list` and `list --details` (goal <= 1.5 s), `--help`, `report` on the 54 runs of
results/paper_table (goal <= 5 s; on a copy of their results.json files: report writes
report.md, report.csv, plots/ and tb/) and `data check` on a small synthetic COCO tree in
features mode (scripts/make_synthetic_coco.py --scale 0.01: 1,233 images; the built-in shapes
benchmark is generated, not read from files, so `data check` does not take it).

Cold: the first call after a checkout or an edit, ccrbench's modules compiled from source (a
fresh copy of the package, no bytecode written) and an empty CCRBENCH_CACHE; warm: the calls
after it. Wall and CPU
(user + system) seconds of the process, min / median of `--repeats` calls; on a busy machine
the CPU seconds say more than the wall ones.

Usage:
    python scripts/bench_cli.py                    # this checkout's ccrbench
    python scripts/bench_cli.py --root /work/main  # another checkout's (e.g. main, for a before/after)
"""

from __future__ import annotations

import argparse
import os
import platform
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parents[1]
GOALS = {"list": 1.5, "list --details": 1.5, "report": 5.0}


def timed(args: list[str], *, root: Path, cwd: Path, env: dict[str, str]) -> tuple[float, float]:
    """Wall and CPU (user + system) seconds of `python -m ccrbench ARGS` with `root` on PYTHONPATH
    (output discarded; a failing command stops the benchmark)."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    start = time.perf_counter()
    subprocess.run([sys.executable, "-m", "ccrbench", *args], cwd=cwd, env={**os.environ, **env, "PYTHONPATH": str(root)},
                   check=True, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)  # fmt: skip
    wall = time.perf_counter() - start
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    return wall, (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)


def cell(times: list[tuple[float, float]]) -> str:
    """'wall min / median (CPU min / median)' seconds."""
    wall, cpu = [w for w, _ in times], [c for _, c in times]
    return f"{min(wall):.2f} / {statistics.median(wall):.2f} s (CPU {min(cpu):.2f} / {statistics.median(cpu):.2f})"


def main(argv: list[str] | None = None) -> list[str]:
    """Prints the table; returns its rows as `figure | goal | measured | ratio` for `make bench`."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--root", type=Path, default=HERE, help="checkout whose ccrbench is timed")
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args(argv)
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        runs = tmp / "paper_table"
        for results in sorted((HERE / "results" / "paper_table").glob("*/results.json")):
            (runs / results.parent.name).mkdir(parents=True)
            shutil.copy(results, runs / results.parent.name)
        subprocess.run([sys.executable, str(HERE / "scripts" / "make_synthetic_coco.py"), str(tmp / "coco"), "--scale", "0.01"],
                       check=True, stdout=subprocess.DEVNULL)  # fmt: skip
        commands = {
            "list": ["list"],
            "list --details": ["list", "--details"],
            "--help": ["--help"],
            f"report ({len(list(runs.iterdir()))} runs)": ["report", str(runs)],
            "data check (synthetic COCO x0.01, features)": ["data", "check", "--config", str(tmp / "coco" / "secoco_features.yaml")],
        }
        for name, command in commands.items():
            cold = []
            for i in range(args.repeats):  # a fresh copy of the package each time, its bytecode not kept
                source = tmp / f"cold-{i}"
                shutil.rmtree(source, ignore_errors=True)
                shutil.copytree(args.root / "ccrbench", source / "ccrbench", symlinks=True, ignore=shutil.ignore_patterns("__pycache__"))
                cold.append(timed(command, root=source, cwd=tmp, env={"PYTHONDONTWRITEBYTECODE": "1", "CCRBENCH_CACHE": str(tmp / f"cache-{name}-{i}")}))
            warm = [timed(command, root=args.root, cwd=tmp, env={"CCRBENCH_CACHE": str(tmp / "cache")}) for _ in range(args.repeats + 1)][1:]
            goal = GOALS.get(name.partition(" (")[0])
            meets = "-" if goal is None else f"warm median {statistics.median(w for w, _ in warm) / goal:.2f} of goal"
            rows.append(f"ccrbench {name}, cold | {'-' if goal is None else f'<= {goal:g} s'} | {cell(cold)} | -")
            rows.append(f"ccrbench {name}, warm | {'-' if goal is None else f'<= {goal:g} s'} | {cell(warm)} | {meets}")
    load = os.getloadavg()
    print(f"ccrbench from {args.root}; {platform.processor() or platform.machine()}, {os.cpu_count()} cores, "
          f"load average {load[0]:.1f} / {load[1]:.1f} (1 / 5 min) at the end; wall and CPU seconds min / median of {args.repeats}\n")  # fmt: skip
    print("| figure | goal | measured | ratio |\n|---|---|---|---|")
    print("\n".join(f"| {row} |" for row in rows))
    return rows


if __name__ == "__main__":
    main()
