"""How much one seed moves the demo's headline figures (fine-tuning vs joint, 3 seeds).

Reads a folder made by `ccrbench suite configs/suites/seed_spread.yaml --out DIR` and prints,
per seed and as mean ± std: fine-tuning's forgetting of task 1 (R@10 right after learning it
minus after the last task, reindex) and the joint − fine-tuning gap on the all-task search.

Usage: python scripts/seed_spread.py DIR
"""

from __future__ import annotations

import json
import statistics
import sys
from pathlib import Path


def main(root: Path) -> None:
    def load(strategy: str, seed: int) -> dict:
        return json.loads((root / f"strategy-{strategy}__seed-{seed}" / "results.json").read_text())

    def final(results: dict, policy: str, key: str, scope: str, stage: int) -> float:
        return results["stages"][stage]["metrics"][policy][scope][key]

    rows: dict[str, list[float]] = {}
    for seed in (0, 1, 2):
        ft, joint = load("finetune", seed), load("joint", seed)
        for d in ("i2t", "t2i"):
            key = f"{d}_r10"
            rows.setdefault(f"ft forgetting of task 1, {d}, reindex", []).append(
                final(ft, "reindex", key, "0", 0) - final(ft, "reindex", key, "0", -1)
            )
            for policy in ("reindex", "noreindex"):
                rows.setdefault(f"joint - ft, all tasks, {d} (ft {policy})", []).append(
                    final(joint, "reindex", key, "all", -1) - final(ft, policy, key, "all", -1)
                )
    print(f"| R@10 points | seed 0 | seed 1 | seed 2 | mean ± std |\n|---|---|---|---|---|")
    for name, v in rows.items():
        print(f"| {name} | " + " | ".join(f"{x:.1f}" for x in v) + f" | {statistics.mean(v):.1f} ± {statistics.stdev(v):.1f} |")


if __name__ == "__main__":
    main(Path(sys.argv[1]))
