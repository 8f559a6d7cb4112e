"""Command line: `ccrbench run | suite | tune | report | list | data check | data prepare | features | config`."""

from __future__ import annotations

import argparse
import shlex
import signal
import sys
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from ccrbench.registry import ConfigError

# Commands import what they need (torch, Avalanche: seconds) inside their function, so that
# `--help`, `report` and the like start at once; the registries fill themselves on first use.


def _run(args: argparse.Namespace) -> int:
    from ccrbench.config import load_config
    from ccrbench.distributed import is_main
    from ccrbench.reporting.run_report import run_summary
    from ccrbench.runner import run

    config = load_config(args.config, args.set)
    out = Path(args.out or Path("runs") / (Path(args.config).stem if args.config else "default"))
    args.run_dir = out  # for the message on Ctrl-C
    results = run(config, out, overwrite=args.overwrite, resume=args.resume, progress=not args.quiet)
    if not is_main():  # under torchrun, the main process reports
        return 0
    print(run_summary(results))
    print(f"\nresults: {out}/results.md, {out}/results.json; TensorBoard: tensorboard --logdir {out}/tb")
    return 0


def _suite(args: argparse.Namespace) -> int:
    from ccrbench.suite import run_suite

    out = Path(args.out or Path("runs") / "suites" / Path(args.suite).stem)
    if args.status:
        return _suite_status(args.suite, out)
    if args.launcher == "slurm":
        return _suite_slurm(args, out)
    given = [f"--{k.replace('_', '-')}" for k in SLURM_FLAGS if getattr(args, k) is not None]
    if given:
        raise ConfigError(f"{', '.join(given)}: Slurm options; add --launcher slurm, or leave them out to run here")
    outcome = run_suite(args.suite, out, jobs=args.jobs, skip_existing=args.skip_existing)
    failed = {name: error for name, error in outcome.items() if error}
    print(f"\n{len(outcome) - len(failed)} of {len(outcome)} runs finished in {out}")
    for name, error in failed.items():
        print(f"FAILED {name}: {error}", file=sys.stderr)
    print(f"compare them: ccrbench report {out}")
    return 1 if failed else 0


SLURM_FLAGS = ("partition", "time_min", "gpus", "cpus", "mem_gb", "array_parallelism")  # launch.SlurmOptions' fields


def _suite_status(suite: str, out: Path) -> int:
    from collections import Counter

    from ccrbench.launch import suite_status

    rows = suite_status(suite, out)
    width = max(len(name) for name, _, _ in rows)
    for name, status, detail in rows:
        print(f"{name:<{width}}  {status:<8} {detail}")
    counts = Counter(status for _, status, _ in rows)
    print(f"\n{len(rows)} runs in {out}: " + ", ".join(f"{counts[s]} {s}" for s in ("done", "running", "failed", "missing")))
    return 0


def _suite_slurm(args: argparse.Namespace, out: Path) -> int:
    from ccrbench.launch import launch_suite

    jobs, outcome = launch_suite(args.suite, out, skip_existing=args.skip_existing, **{k: getattr(args, k) for k in SLURM_FLAGS})
    for name, error in outcome.items():
        if error:
            print(f"NOT SUBMITTED {name}: {error}", file=sys.stderr)
    print(f"{len(jobs)} jobs submitted ({', '.join(sorted({j.job_id.partition('_')[0] for j in jobs.values()}))}), "
          f"{sum(e is None for e in outcome.values())} finished runs skipped; "
          f"follow them: ccrbench suite {args.suite} --out {out} --status")
    return 1 if any(outcome.values()) else 0


def _tune(args: argparse.Namespace) -> int:
    from ccrbench.tune import tune

    out = Path(args.out or Path("runs") / "tune" / Path(args.suite).stem)
    outcome, selection = tune(args.suite, out, jobs=args.jobs, skip_existing=args.skip_existing)
    failed = {name: error for name, error in outcome.items() if error}
    for name, error in failed.items():
        print(f"FAILED {name}: {error}", file=sys.stderr)
    if selection is None:
        print(f"\n{len(outcome) - len(failed)} of {len(outcome)} validation runs finished in {out}; nothing selected yet: "
              f"rerun `ccrbench tune {args.suite} --skip-existing` to finish the grid", file=sys.stderr)
        return 1
    print(selection.with_suffix(".md").read_text())
    print(f"selection: {selection} (and {selection.with_suffix('.md')}); suites read it with `selection: <path>`")
    return 0


def _finished_runs(runs_dir: Path) -> tuple[list[dict], list[str]]:
    """The results of the finished runs under `runs_dir` and their names; others are skipped with a warning."""
    from ccrbench.io import read_json

    files = sorted(runs_dir.glob("*/results.json"))
    if not files:
        raise ConfigError(f"no */results.json under {runs_dir}: run `ccrbench run --out {runs_dir}/NAME` first")
    results, names = [], []
    for f in files:
        try:
            r = read_json(f)
        except ConfigError as e:
            print(f"skipping {e}", file=sys.stderr)
            continue
        if not isinstance(r, dict) or not r.get("complete") or not isinstance(r.get("final"), dict):
            print(f"skipping {f}: not a finished run", file=sys.stderr)
            continue
        results.append(r)
        names.append(f.parent.name)
    if not results:
        raise ConfigError(f"no finished run under {runs_dir} ({len(files)} skipped, see above): finish them with `ccrbench run --resume`")
    return results, names


def _report(args: argparse.Namespace) -> int:
    from ccrbench.reporting.run_report import refresh_results_md
    from ccrbench.reporting.suite_report import choose_metric, write_report
    from ccrbench.reporting.tensorboard import write_seed_means

    runs_dir = Path(args.runs_dir)
    results, names = _finished_runs(runs_dir)
    refreshed = [name for r, name in zip(results, names) if refresh_results_md(runs_dir / name, r)]  # written by an older ccrbench
    args.metric = choose_metric(results, args.metric)
    text, plots = write_report(runs_dir, results, names, metric=args.metric)
    means = write_seed_means(runs_dir / "tb", results, names)
    print(text)
    print(f"written: {runs_dir / 'report.md'}, {runs_dir / 'report.csv'}, {len(plots)} plots in {runs_dir / 'plots'}")
    print(f"TensorBoard: {len(means)} mean-over-seeds runs in {runs_dir / 'tb'} (tensorboard --logdir {runs_dir / 'tb'})")
    if refreshed:
        print(f"rewritten with the current report: {', '.join(f'{n}/results.md' for n in refreshed)}")
    return 0


def _data_check(args: argparse.Namespace) -> int:
    from ccrbench.config import load_benchmark, load_component
    from ccrbench.registry import FILE_BENCHMARKS

    benchmark = load_benchmark(args.config, args.set)  # the data only: no strategy, so no Avalanche to import
    data = FILE_BENCHMARKS.build(benchmark.name, benchmark.options)
    if benchmark.options.get("mode") == "features":  # the width the image encoder is built for (else only the run finds out)
        encoder = load_component(args.config, args.set, "model.image_encoder")
        width, expected = len(data.train[0].images[0]), encoder.options.get("input_dim")
        if expected is not None and expected != width:
            raise ConfigError(
                f"{args.config}: model.image_encoder.input_dim is {expected} but the precomputed features are {width} wide "
                f"(benchmark.features_dir); set model.image_encoder.input_dim={width}"
            )
    print(f"{benchmark.name}: {len(data.task_names)} tasks, data OK\n")
    print(data.summary())
    from ccrbench.benchmarks.files.prepared import describe_sources

    print("\n".join(["", *describe_sources({split: getattr(data, split) for split in ("train", "val", "test")})]))
    return 0


def _data_prepare(args: argparse.Namespace) -> int:
    from ccrbench.benchmarks.files.prepared import Preparing, preparing
    from ccrbench.config import load_benchmark
    from ccrbench.registry import FILE_BENCHMARKS

    if args.workers < 0:
        raise ConfigError(f"--workers: expected 0 or more processes, got {args.workers}")
    benchmark = load_benchmark(args.config, args.set)
    if benchmark.options.get("mode") != "images":
        raise ConfigError(f"{args.config}: benchmark.mode is {benchmark.options.get('mode')!r}; prepared images serve mode images (add --set benchmark.mode=images)")
    with preparing(Preparing(workers=args.workers, progress=not args.quiet)) as done:
        data = FILE_BENCHMARKS.build(benchmark.name, benchmark.options)
    if not done.stores:
        raise ConfigError(f"benchmark {benchmark.name!r} has no prepared images (no prepared_dir option)")
    print(f"{benchmark.name}: {len(data.task_names)} tasks; prepared images in {', '.join(map(str, done.stores))}")
    print(f"runs of this config (same image_size) read them; check: ccrbench data check --config {args.config}")
    return 0


def _features(args: argparse.Namespace) -> int:
    from ccrbench.features import extract_features, features_config

    config = features_config(args.config, args.set, args.encoder)
    outcome = extract_features(config, args.out, chunk_images=args.chunk_images, progress=not args.quiet)
    for split in (s for s in outcome if s != "out"):
        print(f"{split}: {outcome[split]}")
    print(f"features of {args.encoder} in {outcome['out']}; read them with benchmark.mode=features")
    return 0


def _list(args: argparse.Namespace) -> int:
    from ccrbench.catalog import SourceError, listing, registered_members

    try:
        text = listing(details=args.details)  # read from the sources: no torch, no Avalanche
    except SourceError as e:  # a construct the reader does not evaluate (tests/test_cli_imports.py would fail)
        print(f"note: listing from the imported modules (seconds): {e}", file=sys.stderr)
        text = listing(registered_members(), details=args.details)
    print(text, end="")
    return 0


def _config(args: argparse.Namespace) -> int:
    from ccrbench.packaged import copy_packaged, packaged_file, packaged_names

    if args.config_command == "list":
        for kind in ("config", "suite"):
            print(f"{kind}s: {', '.join(packaged_names(kind))}")
        print("use a name where a path goes (ccrbench run --config shapes_finetune, ccrbench suite smoke); "
              "edit a copy: ccrbench config copy NAME DEST")
    elif args.config_command == "show":
        print(packaged_file(args.name).read_text(), end="")
    else:
        print(f"written: {copy_packaged(args.name, args.dest)}")
    return 0


def _interrupted(args: argparse.Namespace, argv: list[str]) -> str:
    """The one line printed on Ctrl-C or SIGTERM: what is kept and the command that continues."""
    from ccrbench.io import read_json

    if args.command in ("suite", "tune"):
        again = shlex.join(["ccrbench", *argv, *([] if args.skip_existing else ["--skip-existing"])])
        return f"interrupted: finished runs are kept; continue with: {again}"
    if args.command != "run" or not hasattr(args, "run_dir"):
        return "interrupted"
    try:
        results = read_json(args.run_dir / "results.json")
        kept = [results["task_names"][max(stage["tasks"])] for stage in results["stages"]]
    except (ConfigError, KeyError, TypeError, ValueError):
        kept = []
    stages = f"the stages after {', '.join(kept)} are kept" if kept else "no stage had finished"
    again = shlex.join(["ccrbench", *(a for a in argv if a != "--overwrite"), *([] if args.resume else ["--resume"])])
    return f"interrupted: {stages} in {args.run_dir}; continue with: {again}"


def _failed_hook(error: BaseException) -> str | None:
    """"plugin <module.Class>, hook <event>" when `error` was raised in a plugin hook that Avalanche
    called (its `trigger_plugins` frame holds the plugin and the event); else None."""
    found, tb = None, error.__traceback__
    while tb is not None:  # the innermost call wins
        frame = tb.tb_frame
        if frame.f_code.co_name == "trigger_plugins" and {"p", "event"} <= frame.f_locals.keys():
            plugin = type(frame.f_locals["p"])
            found = f"plugin {plugin.__module__}.{plugin.__qualname__}, hook {frame.f_locals['event']},"
        tb = tb.tb_next
    return found


class Terminated(KeyboardInterrupt):
    """SIGTERM (`kill`, a scheduler stopping the job), handled as Ctrl-C is."""


@contextmanager
def _sigterm_as_interrupt() -> Iterator[None]:
    """Raises Terminated on SIGTERM while the block runs, unless another handler than the default
    is installed (e.g. submitit's) or this is not the main thread."""
    if threading.current_thread() is not threading.main_thread() or signal.getsignal(signal.SIGTERM) is not signal.SIG_DFL:
        yield
        return

    def terminate(signum: int, frame: Any) -> None:
        raise Terminated(f"signal {signum}")

    signal.signal(signal.SIGTERM, terminate)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, signal.SIG_DFL)


def _add_grid_options(p: argparse.ArgumentParser) -> None:
    """Options of the commands that run many runs (suite, tune)."""
    p.add_argument("--jobs", type=int, default=1, help="runs in parallel (each gets cores/jobs threads)")
    p.add_argument("--skip-existing", action="store_true", help="skip finished runs and resume unfinished ones")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="ccrbench", description="Continual cross-modal retrieval benchmarks")
    sub = parser.add_subparsers(dest="command", required=True)
    p = sub.add_parser("run", help="train and evaluate one config")
    p.add_argument("--config", help="YAML config or packaged config name, e.g. shapes_finetune (default: every default, the built-in benchmark)")
    p.add_argument("--set", action="append", default=[], metavar="KEY=VALUE", help="override a config key, e.g. train.epochs=3")
    p.add_argument("--out", help="run directory (default: runs/<config name>)")
    p.add_argument("--overwrite", action="store_true", help="replace an existing run directory")
    p.add_argument("--resume", action="store_true", help="continue a run directory from its last finished stage")
    p.add_argument("--quiet", action="store_true", help="no progress bars")
    p.set_defaults(func=_run)
    p = sub.add_parser("suite", help="run a suite: a base config crossed with a grid")
    p.add_argument("suite", help="suite YAML or packaged suite name, e.g. paper_table or configs/suites/paper_table.yaml")
    p.add_argument("--out", help="suite directory (default: runs/suites/<suite name>)")
    _add_grid_options(p)
    p.add_argument("--status", action="store_true", help="list each run as done / running / failed / missing, run nothing")
    p.add_argument("--launcher", choices=("local", "slurm"), default="local",
                   help="local: processes on this machine (--jobs); slurm: one Slurm job per run through submitit")
    g = p.add_argument_group("slurm launcher (default: the suite's `launcher:` block, else ccrbench/launch.py SlurmOptions)")
    g.add_argument("--partition", help="Slurm partition")
    g.add_argument("--time-min", type=int, help="time limit per job in minutes (a job that reaches it resumes when requeued)")
    g.add_argument("--gpus", type=int, help="GPUs per job")
    g.add_argument("--cpus", type=int, help="CPU cores per job")
    g.add_argument("--mem-gb", type=float, help="memory per job in GB")
    g.add_argument("--array-parallelism", type=int, help="jobs of the array running at the same time")
    p.set_defaults(func=_suite)
    p = sub.add_parser("tune", help="choose each strategy's hyper-parameters on the validation split")
    p.add_argument("suite", help="tune suite YAML or packaged suite name, e.g. tune_shapes")
    p.add_argument("--out", help="folder of the validation runs (default: runs/tune/<suite name>)")
    _add_grid_options(p)
    p.set_defaults(func=_tune)
    p = sub.add_parser("report", help="compare finished runs in the paper's table layout (and rewrite each run's results.md with the current report)")
    p.add_argument("runs_dir", help="folder whose sub-folders are run directories")
    p.add_argument("--metric", help="r1, r5, r10 (any K the runs measured), medr or meanr (default r10, else the largest K)")
    p.set_defaults(func=_report)
    p = sub.add_parser("list", help="list benchmarks, strategies, encoders and losses")
    p.add_argument("--details", action="store_true", help="also list each one's config keys")
    p.set_defaults(func=_list)
    p = sub.add_parser("data", help="inspect the data of a file benchmark (secoco, sevige, flickr30k, image_captions)")
    data_sub = p.add_subparsers(dest="data_command", required=True)
    p = data_sub.add_parser("check", help="read every file, print per-task counts, exclusions and vocabulary overlap")
    p.add_argument("--config", required=True, help="YAML config of a file benchmark")
    p.add_argument("--set", action="append", default=[], metavar="KEY=VALUE", help="override a config key")
    p.set_defaults(func=_data_check)
    p = data_sub.add_parser("prepare", help="decode every image once at the run's size into a memory-mapped store that runs read")
    p.add_argument("--config", required=True, help="YAML config of a file benchmark in mode images")
    p.add_argument("--set", action="append", default=[], metavar="KEY=VALUE", help="override a config key")
    p.add_argument("--workers", type=int, default=0, help="decoding processes (default 0: this one)")
    p.add_argument("--quiet", action="store_true", help="no progress bar")
    p.set_defaults(func=_data_prepare)
    p = sub.add_parser("features", help="extract image features of a file benchmark into the precomp layout")
    p.add_argument("--config", required=True, help="YAML config of a file benchmark")
    p.add_argument("--encoder", required=True, help="a registered image encoder, e.g. small_cnn or resnet152")
    p.add_argument("--set", action="append", default=[], metavar="KEY=VALUE", help="override a key, e.g. model.image_encoder.width=8")
    p.add_argument("--out", help="output folder (default: the benchmark's features_dir under its root)")
    p.add_argument("--chunk-images", type=int, default=1024, help="images per saved chunk (resumption unit)")
    p.add_argument("--quiet", action="store_true", help="no progress bar")
    p.set_defaults(func=_features)
    p = sub.add_parser("config", help="list, print or copy the configs and suites shipped with ccrbench")
    config_sub = p.add_subparsers(dest="config_command", required=True)
    config_sub.add_parser("list", help="the packaged configs and suites")
    config_sub.add_parser("show", help="print a packaged config or suite").add_argument("name", help="e.g. shapes_finetune or paper_table")
    p_copy = config_sub.add_parser("copy", help="copy a packaged config or suite to edit it (its base/selection paths made absolute)")
    p_copy.add_argument("name", help="e.g. shapes_finetune or smoke")
    p_copy.add_argument("dest", help="file or folder to write it to")
    p.set_defaults(func=_config)
    args = parser.parse_args(argv)
    if getattr(args, "suite", None) is not None:  # a packaged suite's name, from any directory
        from ccrbench.packaged import resolve

        args.suite = str(resolve(args.suite, "suite"))
    try:
        with _sigterm_as_interrupt():
            return args.func(args)
    except KeyboardInterrupt as e:
        print(_interrupted(args, sys.argv[1:] if argv is None else argv), file=sys.stderr)
        return 128 + signal.SIGTERM if isinstance(e, Terminated) else 130
    except (ConfigError, FileExistsError) as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    except OSError as e:  # e.g. a full or read-only disk
        print(f"error: {e.filename}: {e.strerror}" if e.filename else f"error: {e}", file=sys.stderr)
        return 2
    except Exception as e:
        non_finite = (("ccrbench.training.template", "NonFiniteLossError"), ("ccrbench.evaluation.retrieval", "NonFiniteEmbeddingError"))
        kinds = [getattr(sys.modules.get(module), name, None) for module, name in non_finite]  # imported by a run that raised one
        if any(kind is not None and isinstance(e, kind) for kind in kinds):  # the run's numbers went non-finite
            print(f"error: {e}\nthe stages finished before it are kept in the run directory", file=sys.stderr)
            return 3
        hook = _failed_hook(e)
        if hook is not None:  # a bug in a plugin: named before the traceback
            print(f"error: {hook} raised {type(e).__name__}: {e} (traceback below)", file=sys.stderr)
        raise


if __name__ == "__main__":
    sys.exit(main())
