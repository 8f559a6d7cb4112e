"""Suites: a base config crossed with a grid of overrides, run as many named runs.

A suite file:

    base: ../shapes_finetune.yaml        # path relative to the suite file
    set: [train.epochs=6]                # overrides applied to every run (optional)
    axes:                                # crossed with every variant (optional)
      model.shared_layers: [0, 1]
      seed: [0, 1, 2]
    variants:                            # each one a set of overrides; lists expand
      - {strategy: [joint, joint_no_ctnp, finetune, ewc, mas]}
      - {strategy: [ewc, mas], decoupled: true}
    selection: ../../results/paper_table/selection.json   # optional: settings chosen by `ccrbench tune`

Run names are built from the overrides, in file order, so they are stable and readable
(e.g. `strategy-ewc__decoupled-true__shared_layers-1__seed-0`).
"""

from __future__ import annotations

import hashlib
import itertools
import json
import os
import signal
import threading
import time
import traceback
from collections.abc import Sequence
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import yaml

from ccrbench.config import RunConfig, apply_overrides, from_dict, read_yaml, to_dict
from ccrbench.io import read_json
from ccrbench.registry import ConfigError
from ccrbench.run_dir import LOCK, lock_holder


TENSORBOARD = "tb"  # the suite's TensorBoard folder: a folder per run, named as the run (`tensorboard --logdir <suite>/tb`)
SUITE_KEYS = ("base", "set", "axes", "variants", "selection", "launcher")  # launcher: ccrbench/launch.py


@dataclass(frozen=True)
class SuiteRun:
    """One run of a suite: its name and its fully checked config."""

    name: str
    config: RunConfig


def grid_points(mapping: dict[str, Any]) -> list[list[tuple[str, Any]]]:
    """Every combination of a {key: value or list of values} mapping, as (key, value) lists."""
    keys = list(mapping)
    values = [v if isinstance(v, list) else [v] for v in mapping.values()]
    return [list(zip(keys, combo)) for combo in itertools.product(*values)]


def _format(value: Any) -> str:
    return yaml.safe_dump(value, default_flow_style=True).strip().removesuffix("...").strip()


MAX_VALUE_NAME = 100  # characters of one value in a run's name; longer ones (a whole benchmark section) go by their hash


def run_name(overrides: Sequence[tuple[str, Any]]) -> str:
    """Stable, file-system safe name of a run from its overrides; a value whose text is longer than
    `MAX_VALUE_NAME` is named by the first 10 hex digits of its SHA-1 (file names end at 255 bytes)."""
    parts = []
    for key, value in overrides:
        text = _format(value)
        if len(text) > MAX_VALUE_NAME:
            text = "sha1-" + hashlib.sha1(text.encode()).hexdigest()[:10]
        parts.append(f"{key.split('.')[-1]}-{text}")
    name = "__".join(parts) or "base"
    return "".join(c if c.isalnum() or c in "-_.=" else "_" for c in name)


def read_suite(path: str | Path, keys: Sequence[str] = SUITE_KEYS) -> dict[str, Any]:
    """A suite-like YAML file as a dict, checked to hold only `keys` at the top level."""
    path = Path(path)
    if not path.exists():
        raise ConfigError(f"suite file {path} does not exist; see configs/suites/")
    spec = yaml.safe_load(path.read_text()) or {}
    if not isinstance(spec, dict):
        raise ConfigError(f"{path}: expected a mapping with keys {', '.join(keys)}")
    unknown = sorted(set(spec) - set(keys))
    if unknown:
        raise ConfigError(f"{path}: unknown key(s) {', '.join(unknown)}; valid keys: {', '.join(keys)}")
    return spec


def load_selection(path: Path) -> dict[str, dict[str, Any]]:
    """{strategy name: {override key: chosen value}} from a selection file written by `ccrbench tune`."""
    if not path.exists():
        raise ConfigError(f"selection file {path} does not exist; write it with `ccrbench tune` (see configs/suites/tune_*.yaml)")
    try:
        return {name: dict(entry["winner"]) for name, entry in read_json(path)["strategies"].items()}
    except (KeyError, TypeError, AttributeError) as e:
        raise ConfigError(f"{path}: not a selection file written by `ccrbench tune` ({e})") from e


def expand_suite(path: str | Path) -> list[SuiteRun]:
    """Reads a suite file and returns its runs (configs checked, names unique).

    Raises:
        ConfigError: naming the suite file and the offending key or run.
    """
    path = Path(path)
    return expand_spec(read_suite(path), path)


def expand_spec(spec: dict[str, Any], path: Path) -> list[SuiteRun]:
    """The runs of a suite given as a dict (`path`: the file it came from, for relative paths
    and messages). With `selection`, each run of a tuned strategy gets the chosen values.

    Axis points outermost: every variant of the first point (e.g. every strategy of seed 0
    without sharing) comes before the next point, so a long suite stopped halfway holds
    whole seeds of whole comparisons."""
    base = read_yaml(path.parent / spec["base"]) if "base" in spec else {}
    selection = load_selection(path.parent / spec["selection"]) if "selection" in spec else {}
    common = list(spec.get("set", []))
    variants = [grid_points(v) for v in spec.get("variants", [{}])]
    axes = grid_points(spec.get("axes", {}))
    runs: dict[str, SuiteRun] = {}
    for axis in axes:
        for variant in itertools.chain.from_iterable(variants):
            overrides = [*variant, *axis]
            name = run_name(overrides)
            items = [*common, *(f"{k}={json.dumps(v)}" for k, v in overrides)]
            try:
                config = from_dict(apply_overrides(base, items))
                chosen = selection.get(config.strategy.name, {})
                if chosen:  # after the run's own overrides, so a variant naming the strategy keeps them
                    config = from_dict(apply_overrides(base, [*items, *(f"{k}={json.dumps(v)}" for k, v in chosen.items())]))
            except ConfigError as e:
                raise ConfigError(f"{path}: run {name}: {e}") from e
            if name in runs:
                raise ConfigError(f"{path}: two runs are named {name}; make the variants differ")
            runs[name] = SuiteRun(name=name, config=config)
    return list(runs.values())


def run_status(out: Path) -> str:
    """'done', 'running' (a live process holds it), 'partial' (started, not finished) or 'new'."""
    results = out / "results.json"
    if results.exists() and read_json(results).get("complete"):
        return "done"
    if lock_holder(out) is not None:
        return "running"
    return "partial" if out.exists() and any(p.name != LOCK for p in out.iterdir()) else "new"


def share_threads(config: RunConfig, jobs: int) -> RunConfig:
    """`config` with `threads: 0` set to its share of the cores when `jobs` runs go in parallel (the
    threads are part of the config since results depend on them; one job: resolved when the run starts)."""
    if jobs <= 1 or config.threads:
        return config
    return replace(config, threads=max(1, (os.cpu_count() or 1) // jobs))


def plan_runs(runs: Sequence[SuiteRun], out: str | Path, *, skip_existing: bool) -> tuple[list[tuple[str, dict, str, bool]], dict[str, str | None]]:
    """Prepares suite directory `out` (its TensorBoard HPARAMS experiment) and sorts the runs.

    Returns:
        (todo, outcome): todo holds (name, config as a dict, run directory, resume) of each run to
        start or resume; outcome {name: None (finished, skipped) or the error} of the others.
    """
    from ccrbench.reporting.tensorboard import write_suite_experiment
    from ccrbench.runner import resolve_threads

    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    configs = {path.parent.name: yaml.safe_load(path.read_text()) for path in sorted(out.glob("*/config.yaml"))}
    every = {**configs, **{r.name: to_dict(resolve_threads(r.config)) for r in runs}}  # threads as the runs save it
    write_suite_experiment(out / TENSORBOARD, min(every), list(every.values()))  # HPARAMS: every run here
    todo, outcome = [], {}
    for r in runs:
        status = run_status(out / r.name)
        if status == "done" and skip_existing:
            print(f"skip {r.name}: finished", flush=True)
            outcome[r.name] = None
        elif status == "running":  # never twice at once: another suite (or run) has it
            outcome[r.name] = f"run directory {out / r.name} is in use by process {lock_holder(out / r.name)}; run the suite again with --skip-existing once it has ended"
        elif status != "new" and not skip_existing:
            outcome[r.name] = f"run directory {out / r.name} exists; pass --skip-existing to skip or resume it"
        else:
            todo.append((r.name, to_dict(r.config), str(out / r.name), status == "partial"))
    return todo, outcome


def run_tensorboard(run_dir: str | Path) -> Path:
    """Where a suite's run writes its event files: `<suite>/tb/<run name>`."""
    return Path(run_dir).parent / TENSORBOARD / Path(run_dir).name


def _run_one(name: str, config: dict[str, Any], out: str, resume: bool) -> tuple[str, str | None]:
    """Runs one suite member (its config as a plain dict, to cross process boundaries);
    returns (name, error or None)."""
    from ccrbench.runner import run

    try:
        # the suite has one experiment; its runs' event files side by side in its TensorBoard folder
        run(from_dict(config), out, resume=resume, progress=False, experiment=False, tensorboard=run_tensorboard(out))
        return name, None
    except Exception as e:  # one failing run is reported, the others go on
        return name, f"{type(e).__name__}: {e}\n{traceback.format_exc(limit=3)}"


def _exit_with_parent(parent: int) -> None:
    """Initializer of a suite's worker processes: a daemon thread ends the worker at once
    (`os._exit`; its run keeps its last checkpoint and resumes with --skip-existing) when its
    parent `parent` is gone, however it ended (kill -9 included), instead of the worker
    finishing the queued runs as an orphan and then waiting forever.

    The parent alone handles Ctrl-C (the workers ignore SIGINT) and SIGTERM kills a worker:
    inheriting the command line's handlers, a worker turned either signal into a failed run and
    went on with the next queued one (a `pkill` or a scheduler signalling the whole job started
    new runs while the suite stopped)."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.signal(signal.SIGTERM, signal.SIG_DFL)

    def watch() -> None:
        while os.getppid() == parent:
            time.sleep(0.2)
        os._exit(1)

    threading.Thread(target=watch, name="exit-with-parent", daemon=True).start()


def run_suite(path: str | Path, out: str | Path, *, jobs: int = 1, skip_existing: bool = False) -> dict[str, str | None]:
    """Runs every run of a suite into out/<run name>; returns {name: error or None}.

    Finished runs are skipped and unfinished ones resumed when `skip_existing`; otherwise an
    existing run directory is an error for that run (results are never overwritten).
    """
    return run_runs(expand_suite(path), out, jobs=jobs, skip_existing=skip_existing)


def run_runs(runs: Sequence[SuiteRun], out: str | Path, *, jobs: int = 1, skip_existing: bool = False) -> dict[str, str | None]:
    """Runs suite runs into out/<run name>, as `run_suite` does; returns {name: error or None}."""
    todo, outcome = plan_runs([replace(r, config=share_threads(r.config, jobs)) for r in runs], out, skip_existing=skip_existing)
    if jobs <= 1:
        results = (_run_one(*t) for t in todo)
        for name, error in results:
            outcome[name] = error
            print(f"{'FAILED' if error else 'done  '} {name}", flush=True)
    else:
        pool = ProcessPoolExecutor(max_workers=jobs, initializer=_exit_with_parent, initargs=(os.getpid(),))
        try:
            for name, error in pool.map(_run_one, *zip(*todo)) if todo else []:
                outcome[name] = error
                print(f"{'FAILED' if error else 'done  '} {name}", flush=True)
        except BaseException:  # Ctrl-C or SIGTERM: the running runs stop too (each keeps its last checkpoint)
            for process in list(pool._processes.values()):  # no public API stops a busy worker
                process.terminate()
            raise
        finally:
            pool.shutdown(cancel_futures=True)
    return outcome
