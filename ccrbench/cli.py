"""Command line: `ccrbench run`, `ccrbench list`."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from ccrbench.registry import BENCHMARKS, ENCODERS, LOSSES, STRATEGIES, ConfigError, describe


def _run(args: argparse.Namespace) -> int:
    from ccrbench.config import load_config
    from ccrbench.evaluation.report import paper_table, stage_table
    from ccrbench.runner import run

    config = load_config(args.config, args.set)
    out = Path(args.out or Path("runs") / (Path(args.config).stem if args.config else "default"))
    results = run(config, out, overwrite=args.overwrite, progress=not args.quiet)
    print(f"\n{config.strategy.name} on {config.benchmark.name}: Recall@10 after the last task\n")
    print(paper_table(results, metric="r10"))
    if len(results["stages"]) > 1:
        print("\nRecall@10 of each task after each stage (image->text, reindex | no reindex)\n")
        print(stage_table(results, policy="reindex", key="i2t_r10"))
        print()
        print(stage_table(results, policy="noreindex", key="i2t_r10"))
        f = results["forgetting"]
        print(
            "\naverage forgetting of R@10 (points): "
            + ", ".join(f"{p} i2t {f[p]['i2t_r10']:.1f} / t2i {f[p]['t2i_r10']:.1f}" for p in ("reindex", "noreindex"))
        )
    print(f"\nresults: {out}/results.md, {out}/results.json; TensorBoard: tensorboard --logdir {out}/tb")
    return 0


def _report(args: argparse.Namespace) -> int:
    import json

    from ccrbench.evaluation.report import comparison_report

    runs_dir = Path(args.runs_dir)
    files = sorted(runs_dir.glob("*/results.json"))
    if not files:
        raise ConfigError(f"no */results.json under {runs_dir}: run `ccrbench run --out {runs_dir}/NAME` first")
    results = []
    for f in files:
        r = json.loads(f.read_text())
        if not r.get("complete"):
            print(f"skipping {f.parent.name}: incomplete run", file=sys.stderr)
            continue
        results.append(r)
    text = f"# Comparison of {len(results)} runs in {runs_dir} ({args.metric})\n\n" + comparison_report(results, metric=args.metric)
    (runs_dir / "report.md").write_text(text)
    print(text)
    print(f"written to {runs_dir / 'report.md'}")
    return 0


def _list(args: argparse.Namespace) -> int:
    for registry in (BENCHMARKS, STRATEGIES, ENCODERS, LOSSES):
        print(f"{registry.plural}:")
        for name in registry.names():
            obj = registry.get(name)
            modality = getattr(obj, "modality", None)
            print(f"  {name}" + (f" ({modality})" if modality else ""))
            if args.details:
                for line in describe(obj, skip=registry.context).splitlines():
                    print(f"      {line}")
    return 0


def main(argv: list[str] | None = None) -> int:
    import ccrbench  # noqa: F401 - fills the registries

    parser = argparse.ArgumentParser(prog="ccrbench", description="Continual cross-modal retrieval benchmarks")
    sub = parser.add_subparsers(dest="command", required=True)
    p = sub.add_parser("run", help="train and evaluate one config")
    p.add_argument("--config", help="YAML config (default: every default, the built-in benchmark)")
    p.add_argument("--set", action="append", default=[], metavar="KEY=VALUE", help="override a config key, e.g. train.epochs=3")
    p.add_argument("--out", help="run directory (default: runs/<config name>)")
    p.add_argument("--overwrite", action="store_true", help="replace an existing run directory")
    p.add_argument("--quiet", action="store_true", help="no progress bars")
    p.set_defaults(func=_run)
    p = sub.add_parser("report", help="compare finished runs in the paper's table layout")
    p.add_argument("runs_dir", help="folder whose sub-folders are run directories")
    p.add_argument("--metric", default="r10", help="r1, r5, r10, medr or meanr (default r10)")
    p.set_defaults(func=_report)
    p = sub.add_parser("list", help="list benchmarks, strategies, encoders and losses")
    p.add_argument("--details", action="store_true", help="also list each one's config keys")
    p.set_defaults(func=_list)
    args = parser.parse_args(argv)
    try:
        return args.func(args)
    except (ConfigError, FileExistsError) as e:
        print(f"error: {e}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
