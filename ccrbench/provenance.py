"""Provenance: what a run's results.json records beside its metrics (config, versions, machine,
data checksums, timings), so that numbers can be compared across machines and re-derived."""

from __future__ import annotations

import math
import os
import platform
from collections.abc import Mapping, Sequence
from importlib.metadata import version
from pathlib import Path
from typing import Any

import torch

from ccrbench.benchmarks.base import RetrievalBenchmark
from ccrbench.config import RunConfig
from ccrbench.evaluation.continual import summarize


def json_safe(x: Any) -> Any:
    """`x` with NaN floats as None (JSON has no NaN), inside dicts and lists too."""
    if isinstance(x, float) and math.isnan(x):
        return None
    if isinstance(x, dict):
        return {k: json_safe(v) for k, v in x.items()}
    if isinstance(x, (list, tuple)):
        return [json_safe(v) for v in x]
    return x


def versions() -> dict[str, str]:
    """The versions of Python and of the packages that decide a run's numbers."""
    return {
        "python": platform.python_version(),
        **{pkg: version(pkg) for pkg in ("torch", "torchvision", "avalanche-lib", "ccrbench")},
    }


def cpu_model() -> str:
    """The CPU's model name (Linux /proc/cpuinfo, else what `platform` knows)."""
    cpuinfo = Path("/proc/cpuinfo")
    if cpuinfo.exists():
        for line in cpuinfo.read_text().splitlines():
            if line.startswith("model name"):
                return line.partition(":")[2].strip()
    return platform.processor() or platform.machine()


def machine() -> dict[str, Any]:
    """What makes numbers comparable across machines: CPU, GPU, torch build and threads."""
    return {
        "cpu": cpu_model(),
        "cpu_count": os.cpu_count(),
        "gpu": torch.cuda.get_device_name() if torch.cuda.is_available() else None,
        "platform": platform.platform(),
        "torch_threads": torch.get_num_threads(),
        "torch_interop_threads": torch.get_num_interop_threads(),
        "mkl": torch.backends.mkl.is_available(),
        "mkldnn": torch.backends.mkldnn.is_available(),
        "openmp": torch.backends.openmp.is_available(),
        "cpu_capability": torch.backends.cpu.get_cpu_capability(),
        "torch_config": torch.__config__.show(),
    }




def results_record(
    config: RunConfig,
    config_dict: Mapping[str, Any],
    benchmark: RetrievalBenchmark,
    stages: list[dict],
    *,
    complete: bool,
    timings: Sequence[Sequence[dict]] = (),
    stage_seconds: Sequence[float] = (),
    unlearned: Sequence[dict] = (),
    retention: Sequence[dict] = (),
) -> dict:
    """What results.json holds: the run's provenance and its metrics (`summarize(stages)`).

    Args:
        config: the run's config; `config_dict` the same as a plain dict (`to_dict(config)`).
        benchmark: the benchmark run (its task names and data checksums are recorded).
        stages: the evaluation records, one per stage so far.
        complete: whether every stage has run.
        timings: per model, the evaluation's seconds per stage (`RetrievalMetrics.timings`).
        stage_seconds: per stage, the wall seconds of its training and evaluation.
        unlearned: the records of tasks evaluated before they were learned (the one of stage -1:
            before any training).
        retention: the records of the held-out retention sets, one per evaluation.
    """
    return {
        "complete": complete,
        "config": config_dict,
        "seed": config.seed,
        "ks": list(config.eval.ks),
        "split": config.eval.split,
        "versions": versions(),
        "torch_threads": torch.get_num_threads(),
        "machine": machine(),
        "data_checksums": dict(benchmark.checksums),
        **summarize(stages, benchmark.task_names, unlearned=unlearned, retention=retention),
        "timings": list(timings),
        "stage_seconds": list(stage_seconds),
    }
