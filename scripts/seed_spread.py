"""How much one seed moves the demo's headline figures, and whether an encoder change moves them more.

Reads a folder made by `ccrbench suite configs/suites/seed_spread.yaml --out DIR` (or any suite
of fine-tuning and joint runs over seeds, e.g. configs/suites/cheaper_encoders.yaml: the runs
that differ only in `strategy` and `seed` make one variant) and prints, per variant, per seed
and as mean ± std: task 1's R@10 right after learning it (fine-tuning), fine-tuning's
forgetting of task 1 (R@10 right after learning it minus after the last task, reindex) and the
joint − fine-tuning gap on the all-task search.

With `--before DIR2` (the same suite on the encoders to compare with), each figure's change:
after − before, with the 95 % Welch interval of the difference of the means; an interval
that contains 0 means the two cannot be told apart at these seeds.

Usage: python scripts/seed_spread.py DIR [--before DIR2]
"""

from __future__ import annotations

import argparse
import json
import re
import statistics
from pathlib import Path

from scipy.stats import ttest_ind

Figures = dict[str, list[float]]  # figure -> one value per seed, in seed order


def variants(root: Path) -> dict[str, Figures]:
    """The figures of every variant of a suite folder, by variant name ("default": no override)."""
    runs: dict[str, dict[tuple[str, int], dict]] = {}
    for path in sorted(root.glob("*/results.json")):
        name = path.parent.name
        strategy, seed = re.search(r"strategy-([^_]+)", name), re.search(r"seed-(\d+)", name)
        if strategy is None or seed is None:
            raise SystemExit(f"{path.parent}: a run name without strategy-... and seed-...: not a seed-spread suite")
        variant = re.sub(r"(__)?(strategy-[^_]+|seed-\d+)", "", name).strip("_") or "default"
        runs.setdefault(variant, {})[strategy.group(1), int(seed.group(1))] = json.loads(path.read_text())
    if not runs:
        raise SystemExit(f"{root}: no */results.json; run `ccrbench suite configs/suites/seed_spread.yaml --out {root}` first")
    return {variant: figures(by_run) for variant, by_run in runs.items()}


def figures(runs: dict[tuple[str, int], dict]) -> Figures:
    """The headline figures of one variant's fine-tuning and joint runs, seed by seed."""

    def value(results: dict, policy: str, key: str, scope: str, stage: int) -> float:
        return results["stages"][stage]["metrics"][policy][scope][key]

    seeds = sorted(seed for strategy, seed in runs if strategy == "finetune" and ("joint", seed) in runs)
    rows: Figures = {}
    for seed in seeds:
        ft, joint = runs["finetune", seed], runs["joint", seed]
        for d in ("i2t", "t2i"):
            key = f"{d}_r10"
            rows.setdefault(f"task 1 right after learning it, {d} (ft)", []).append(value(ft, "reindex", key, "0", 0))
            rows.setdefault(f"ft forgetting of task 1, {d}, reindex", []).append(
                value(ft, "reindex", key, "0", 0) - value(ft, "reindex", key, "0", -1)
            )
            for policy in ("reindex", "noreindex"):
                rows.setdefault(f"joint - ft, all tasks, {d} (ft {policy})", []).append(
                    value(joint, "reindex", key, "all", -1) - value(ft, policy, key, "all", -1)
                )
    return rows


def spread_table(rows: Figures) -> str:
    n = len(next(iter(rows.values())))
    head = "| R@10 points | " + " | ".join(f"seed {i}" for i in range(n)) + " | mean ± std |\n" + "|---" * (n + 2) + "|"
    lines = [f"| {name} | " + " | ".join(f"{x:.1f}" for x in v) + f" | {statistics.mean(v):.1f} ± {statistics.stdev(v):.1f} |" for name, v in rows.items()]
    return "\n".join([head, *lines])


def change_table(after: Figures, before: Figures) -> str:
    lines = ["| R@10 points | before: mean ± std | after: mean ± std | after − before [95 % Welch CI] |", "|---|---|---|---|"]
    for name, a in after.items():
        b = before[name]
        low, high = ttest_ind(a, b, equal_var=False).confidence_interval(0.95)
        lines.append(
            f"| {name} | {statistics.mean(b):.1f} ± {statistics.stdev(b):.1f} | {statistics.mean(a):.1f} ± {statistics.stdev(a):.1f} "
            f"| {statistics.mean(a) - statistics.mean(b):+.1f} [{low:+.1f}, {high:+.1f}] |"
        )
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("root", type=Path, help="the suite's output folder")
    parser.add_argument("--before", type=Path, help="the same figures' folder for the encoders to compare with")
    args = parser.parse_args(argv)
    before = variants(args.before)["default"] if args.before else None
    for variant, rows in variants(args.root).items():
        print(f"## {variant}\n\n{spread_table(rows)}\n")
        if before is not None:
            print(f"{change_table(rows, before)}\n")


if __name__ == "__main__":
    main()
