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
from pathlib import Path

from scipy.stats import ttest_ind

from ccrbench.evaluation.keys import DIRECTIONS, MetricKey
from ccrbench.markdown import markdown_table
from ccrbench.reporting.statistics import mean_std

Figures = dict[str, list[float]]  # figure -> one value per seed, in seed order


def variants(root: Path) -> dict[str, Figures]:
    """The figures of every variant of a suite folder that has fine-tuning and joint runs of the
    same seeds, by variant name ("default": no override)."""
    runs: dict[str, dict[tuple[str, int], dict]] = {}
    for path in sorted(root.glob("*/results.json")):
        results = json.loads(path.read_text())
        # the run's name is the suite's overrides joined by "__" (ccrbench.suite.run_name): the others make the variant
        parts = [p for p in path.parent.name.split("__") if not p.startswith(("strategy-", "seed-"))]
        runs.setdefault("__".join(parts) or "default", {})[results["config"]["strategy"]["name"], results["seed"]] = results
    found = {variant: figures(by_run) for variant, by_run in runs.items()}
    found = {variant: rows for variant, rows in found.items() if rows}  # {}: no seed with both a finetune and a joint run
    if not found:
        raise SystemExit(f"{root}: no seed with both a finetune and a joint run; run `ccrbench suite configs/suites/seed_spread.yaml --out {root}` first")
    return found


def figures(runs: dict[tuple[str, int], dict]) -> Figures:
    """The headline figures of one variant's fine-tuning and joint runs, seed by seed."""

    def value(results: dict, policy: str, key: str, scope: str, stage: int) -> float:
        return results["stages"][stage]["metrics"][policy][scope][key]

    seeds = sorted(seed for strategy, seed in runs if strategy == "finetune" and ("joint", seed) in runs)
    rows: Figures = {}
    for seed in seeds:
        ft, joint = runs["finetune", seed], runs["joint", seed]
        for d in DIRECTIONS:
            key = str(MetricKey("r", d, 10))
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
    rows = [[name, *(f"{x:.1f}" for x in v), "{:.1f} ± {:.1f}".format(*mean_std(v)[:2])] for name, v in rows.items()]
    return "\n".join(markdown_table(["R@10 points", *(f"seed {i}" for i in range(n)), "mean ± std"], rows))


def change_table(after: Figures, before: Figures) -> str:
    rows = []
    for name, a in after.items():
        b = before[name]
        (mean_a, std_a, _), (mean_b, std_b, _) = mean_std(a), mean_std(b)
        low, high = ttest_ind(a, b, equal_var=False).confidence_interval(0.95)
        rows.append([name, f"{mean_b:.1f} ± {std_b:.1f}", f"{mean_a:.1f} ± {std_a:.1f}", f"{mean_a - mean_b:+.1f} [{low:+.1f}, {high:+.1f}]"])
    return "\n".join(markdown_table(["R@10 points", "before: mean ± std", "after: mean ± std", "after − before [95 % Welch CI]"], rows))


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("root", type=Path, help="the suite's output folder")
    parser.add_argument("--before", type=Path, help="the same figures' folder for the encoders to compare with")
    args = parser.parse_args(argv)
    before = variants(args.before).get("default") if args.before else None
    if args.before and before is None:
        raise SystemExit(f"--before {args.before}: no run without overrides (strategy-...__seed-... folders)")
    for variant, rows in variants(args.root).items():
        print(f"## {variant}\n\n{spread_table(rows)}\n")
        if before is not None:
            print(f"{change_table(rows, before)}\n")


if __name__ == "__main__":
    main()
