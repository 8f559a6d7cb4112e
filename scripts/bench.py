"""`make bench`: every scripts/bench_*.py figure in one table (figure | goal | measured | ratio).

    python scripts/bench.py [--quick]

Each figure is measured in the same process as the one it is compared with (the Avalanche
loop and a bare PyTorch loop, the evaluation and a bare matrix product), min / median of 3.
`--quick` (`make bench QUICK=1`) skips the long ones: the demo runs and the grid estimate, the
COCO-scale data check, the ViT-B/32 step and the data-wait loops of images mode, and ranks only
1% of the 200K images of the 1M-caption database (2% without it; time extrapolated, linear in
the images), and times the commands that do not train (scripts/bench_cli.py) once instead of
3 times. The images-mode loader rows (scripts/bench_loader.py) run on the CPU; their GPU
rows: `python scripts/bench_loader.py --device cuda` on a GPU machine.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

import bench_cli  # noqa: E402
import bench_data  # noqa: E402
import bench_loader  # noqa: E402
import bench_metrics  # noqa: E402
import bench_speed  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="skip the figures that take minutes")
    args = parser.parse_args()
    quick = ["--quick"] if args.quick else []
    rows = bench_speed.main(quick) + bench_metrics.main(["--large-fraction", "0.01" if args.quick else "0.02"])
    rows += bench_loader.main(quick)
    rows += bench_cli.main(["--repeats", "1" if args.quick else "3"])
    if not args.quick:
        rows += [f"{line} | -" for line in bench_data.main(["--dataset", "coco"])]
    print("\n| figure | goal | measured | ratio |\n|---|---|---|---|")
    print("\n".join(f"| {row} |" for row in rows))


if __name__ == "__main__":
    main()
