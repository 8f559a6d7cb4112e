"""Command line: `ccrbench run | suite | report | list | data check | features`."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from ccrbench.registry import BENCHMARKS, ENCODERS, LOSSES, STRATEGIES, ConfigError, describe
from ccrbench.strategies.template import NonFiniteLossError


def _run(args: argparse.Namespace) -> int:
    from ccrbench.config import load_config
    from ccrbench.evaluation.report import paper_table, stage_table
    from ccrbench.runner import run

    config = load_config(args.config, args.set)
    out = Path(args.out or Path("runs") / (Path(args.config).stem if args.config else "default"))
    results = run(config, out, overwrite=args.overwrite, resume=args.resume, progress=not args.quiet)
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


def _suite(args: argparse.Namespace) -> int:
    from ccrbench.suite import run_suite

    out = Path(args.out or Path("runs") / "suites" / Path(args.suite).stem)
    outcome = run_suite(args.suite, out, jobs=args.jobs, skip_existing=args.skip_existing)
    failed = {name: error for name, error in outcome.items() if error}
    print(f"\n{len(outcome) - len(failed)} of {len(outcome)} runs finished in {out}")
    for name, error in failed.items():
        print(f"FAILED {name}: {error}", file=sys.stderr)
    print(f"compare them: ccrbench report {out}")
    return 1 if failed else 0


def _report(args: argparse.Namespace) -> int:
    import json

    from ccrbench.evaluation.plots import plot_all
    from ccrbench.evaluation.report import comparison_csv, comparison_report

    runs_dir = Path(args.runs_dir)
    files = sorted(runs_dir.glob("*/results.json"))
    if not files:
        raise ConfigError(f"no */results.json under {runs_dir}: run `ccrbench run --out {runs_dir}/NAME` first")
    results, names = [], []
    for f in files:
        r = json.loads(f.read_text())
        if not r.get("complete"):
            print(f"skipping {f.parent.name}: incomplete run", file=sys.stderr)
            continue
        results.append(r)
        names.append(f.parent.name)
    plots = plot_all(results, names, runs_dir / "plots", metric=args.metric)
    text = (
        f"# {len(results)} runs in {runs_dir.name}: {args.metric}\n\n"
        "Final values after the last task; **bold**: best continual result of the row.\n\n"
        + comparison_report(results, metric=args.metric)
        + "\n## Plots\n\n"
        + "\n".join(f"![{p.stem}](plots/{p.name})" for p in plots)
        + "\n"
    )
    (runs_dir / "report.md").write_text(text)
    (runs_dir / "report.csv").write_text(comparison_csv(results, metric=args.metric))
    print(text)
    print(f"written: {runs_dir / 'report.md'}, {runs_dir / 'report.csv'}, {len(plots)} plots in {runs_dir / 'plots'}")
    return 0


def _data_check(args: argparse.Namespace) -> int:
    from ccrbench.benchmarks.files import FILE_BENCHMARKS
    from ccrbench.config import load_config

    config = load_config(args.config, args.set)
    data = FILE_BENCHMARKS.build(config.benchmark.name, config.benchmark.options)
    print(f"{config.benchmark.name}: {len(data.task_names)} tasks, data OK\n")
    print(data.summary())
    return 0


def _features(args: argparse.Namespace) -> int:
    from ccrbench.benchmarks.extract import extract_features, features_config

    config = features_config(args.config, args.set, args.encoder)
    outcome = extract_features(config, args.out, chunk_images=args.chunk_images, progress=not args.quiet)
    for split in ("train", "test"):
        print(f"{split}: {outcome[split]}")
    print(f"features of {args.encoder} in {outcome['out']}; read them with benchmark.mode=features")
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
    p.add_argument("--resume", action="store_true", help="continue a run directory from its last finished stage")
    p.add_argument("--quiet", action="store_true", help="no progress bars")
    p.set_defaults(func=_run)
    p = sub.add_parser("suite", help="run a suite: a base config crossed with a grid")
    p.add_argument("suite", help="suite YAML, e.g. configs/suites/paper_table.yaml")
    p.add_argument("--out", help="suite directory (default: runs/suites/<suite name>)")
    p.add_argument("--jobs", type=int, default=1, help="runs in parallel (each gets cores/jobs threads)")
    p.add_argument("--skip-existing", action="store_true", help="skip finished runs and resume unfinished ones")
    p.set_defaults(func=_suite)
    p = sub.add_parser("report", help="compare finished runs in the paper's table layout")
    p.add_argument("runs_dir", help="folder whose sub-folders are run directories")
    p.add_argument("--metric", default="r10", help="r1, r5, r10, medr or meanr (default r10)")
    p.set_defaults(func=_report)
    p = sub.add_parser("list", help="list benchmarks, strategies, encoders and losses")
    p.add_argument("--details", action="store_true", help="also list each one's config keys")
    p.set_defaults(func=_list)
    p = sub.add_parser("data", help="inspect the data of a file benchmark (secoco, sevige)")
    data_sub = p.add_subparsers(dest="data_command", required=True)
    p = data_sub.add_parser("check", help="read every file, print per-task counts, exclusions and vocabulary overlap")
    p.add_argument("--config", required=True, help="YAML config of a file benchmark")
    p.add_argument("--set", action="append", default=[], metavar="KEY=VALUE", help="override a config key")
    p.set_defaults(func=_data_check)
    p = sub.add_parser("features", help="extract image features of a file benchmark into the precomp layout")
    p.add_argument("--config", required=True, help="YAML config of a file benchmark")
    p.add_argument("--encoder", required=True, help="a registered image encoder, e.g. small_cnn or resnet152")
    p.add_argument("--set", action="append", default=[], metavar="KEY=VALUE", help="override a key, e.g. model.image_encoder.width=8")
    p.add_argument("--out", help="output folder (default: the benchmark's features_dir under its root)")
    p.add_argument("--chunk-images", type=int, default=1024, help="images per saved chunk (resumption unit)")
    p.add_argument("--quiet", action="store_true", help="no progress bar")
    p.set_defaults(func=_features)
    args = parser.parse_args(argv)
    try:
        return args.func(args)
    except (ConfigError, FileExistsError) as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    except NonFiniteLossError as e:
        print(f"error: {e}\nthe stages finished before it are kept in the run directory", file=sys.stderr)
        return 3


if __name__ == "__main__":
    sys.exit(main())
