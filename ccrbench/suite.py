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

Run names are built from the overrides, in file order, so they are stable and readable
(e.g. `strategy-ewc__decoupled-true__shared_layers-1__seed-0`).
"""

from __future__ import annotations

import itertools
import json
import os
import traceback
from collections.abc import Sequence
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from ccrbench.config import RunConfig, apply_overrides, from_dict, read_yaml, to_dict
from ccrbench.registry import ConfigError


@dataclass(frozen=True)
class SuiteRun:
    """One run of a suite: its name and its fully checked config."""

    name: str
    config: RunConfig


def _expand(mapping: dict[str, Any]) -> list[list[tuple[str, Any]]]:
    keys = list(mapping)
    values = [v if isinstance(v, list) else [v] for v in mapping.values()]
    return [list(zip(keys, combo)) for combo in itertools.product(*values)]


def _format(value: Any) -> str:
    return yaml.safe_dump(value, default_flow_style=True).strip().removesuffix("...").strip()


def run_name(overrides: Sequence[tuple[str, Any]]) -> str:
    """Stable, file-system safe name of a run from its overrides."""
    parts = [f"{key.split('.')[-1]}-{_format(value)}" for key, value in overrides]
    name = "__".join(parts) or "base"
    return "".join(c if c.isalnum() or c in "-_.=" else "_" for c in name)


def expand_suite(path: str | Path) -> list[SuiteRun]:
    """Reads a suite file and returns its runs (configs checked, names unique).

    Raises:
        ConfigError: naming the suite file and the offending key or run.
    """
    path = Path(path)
    if not path.exists():
        raise ConfigError(f"suite file {path} does not exist; see configs/suites/")
    spec = yaml.safe_load(path.read_text()) or {}
    unknown = sorted(set(spec) - {"base", "set", "axes", "variants"})
    if unknown:
        raise ConfigError(f"{path}: unknown key(s) {', '.join(unknown)}; valid keys: base, set, axes, variants")
    base = read_yaml(path.parent / spec["base"]) if "base" in spec else {}
    common = list(spec.get("set", []))
    variants = [_expand(v) for v in spec.get("variants", [{}])]
    axes = _expand(spec.get("axes", {}))
    runs: dict[str, SuiteRun] = {}
    for variant in itertools.chain.from_iterable(variants):
        for axis in axes:
            overrides = [*variant, *axis]
            name = run_name(overrides)
            items = [*common, *(f"{k}={json.dumps(v)}" for k, v in overrides)]
            try:
                config = from_dict(apply_overrides(base, items))
            except ConfigError as e:
                raise ConfigError(f"{path}: run {name}: {e}") from e
            if name in runs:
                raise ConfigError(f"{path}: two runs are named {name}; make the variants differ")
            runs[name] = SuiteRun(name=name, config=config)
    return list(runs.values())


def run_status(out: Path) -> str:
    """'done', 'partial' (started, not finished) or 'new'."""
    results = out / "results.json"
    if results.exists() and json.loads(results.read_text()).get("complete"):
        return "done"
    return "partial" if out.exists() and any(out.iterdir()) else "new"


def _run_one(name: str, config: dict[str, Any], out: str, resume: bool, threads: int) -> tuple[str, str | None]:
    """Runs one suite member (its config as a plain dict, to cross process boundaries);
    returns (name, error or None)."""
    import torch

    from ccrbench.runner import run

    if threads > 0:
        torch.set_num_threads(threads)
    try:
        run(from_dict(config), out, resume=resume, progress=False)
        return name, None
    except Exception as e:  # one failing run is reported, the others go on
        return name, f"{type(e).__name__}: {e}\n{traceback.format_exc(limit=3)}"


def run_suite(path: str | Path, out: str | Path, *, jobs: int = 1, skip_existing: bool = False) -> dict[str, str | None]:
    """Runs every run of a suite into out/<run name>; returns {name: error or None}.

    Finished runs are skipped and unfinished ones resumed when `skip_existing`; otherwise an
    existing run directory is an error for that run (results are never overwritten).
    """
    out = Path(out)
    runs = expand_suite(path)
    out.mkdir(parents=True, exist_ok=True)
    threads = max(1, (os.cpu_count() or 1) // jobs) if jobs > 1 else 0  # 0: torch's default
    todo, outcome = [], {}
    for r in runs:
        status = run_status(out / r.name)
        if status == "done" and skip_existing:
            print(f"skip {r.name}: finished", flush=True)
            outcome[r.name] = None
        elif status != "new" and not skip_existing:
            outcome[r.name] = f"run directory {out / r.name} exists; pass --skip-existing to skip or resume it"
        else:
            todo.append((r.name, to_dict(r.config), str(out / r.name), status == "partial", threads))
    if jobs <= 1:
        results = (_run_one(*t) for t in todo)
        for name, error in results:
            outcome[name] = error
            print(f"{'FAILED' if error else 'done  '} {name}", flush=True)
    else:
        with ProcessPoolExecutor(max_workers=jobs) as pool:
            for name, error in pool.map(_run_one, *zip(*todo)) if todo else []:
                outcome[name] = error
                print(f"{'FAILED' if error else 'done  '} {name}", flush=True)
    return outcome
