"""Builds a run from its config and executes train -> index -> query after every task."""

from __future__ import annotations

import dataclasses
import json
import math
import os
import platform
import random
import time
import warnings
from collections.abc import Sequence
from contextlib import nullcontext
from dataclasses import dataclass
from importlib.metadata import version
from pathlib import Path
from typing import Any

import numpy as np
import torch
import yaml
from avalanche.training.plugins import EvaluationPlugin
from torch import nn
from torch.utils.tensorboard import SummaryWriter

from ccrbench import distributed
from ccrbench.benchmarks.base import RetrievalBenchmark
from ccrbench.checkpoint import load_checkpoint, save_checkpoint
from ccrbench.config import RunConfig, to_dict
from ccrbench.evaluation.plugin import RetrievalMetrics
from ccrbench.evaluation.protocol import DIRECTIONS, merge_directions
from ccrbench.evaluation.report import markdown_report, summarize
from ccrbench.evaluation.tensorboard import (
    TrainingCurves,
    log_examples,
    log_experiment,
    log_final,
    log_layout,
    log_session_end,
    log_session_start,
    log_stage,
    tasks_learned,
)
from ccrbench.io import write_atomic
from ccrbench.models.base import GrowingVocabulary
from ccrbench.models.two_branch import TwoBranchModel
from ccrbench.registry import BENCHMARKS, ENCODERS, LOSSES, STRATEGIES, ConfigError
from ccrbench.run_dir import check_out, locked_run_dir, open_run, saved_stage_seconds
from ccrbench.strategies.base import StrategyPlugin
from ccrbench.strategies.progress import ProgressBar
from ccrbench.strategies.template import RetrievalTemplate
from ccrbench.strategies.throughput import DataWaitMeter


def seed_everything(seed: int) -> None:
    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)


def build_model(config: RunConfig, corpus: tuple[str, ...]) -> TwoBranchModel:
    """The two-branch model with registered encoders (text encoders may build vocabularies from `corpus`)."""
    encoders = {}
    for modality, spec in (("image", config.model.image_encoder), ("text", config.model.text_encoder)):
        try:
            encoders[modality] = ENCODERS.build(spec.name, spec.options, corpus=corpus)
        except ConfigError as e:
            raise ConfigError(f"model.{modality}_encoder: {e}") from e
    return TwoBranchModel(
        image_encoder=encoders["image"],
        text_encoder=encoders["text"],
        embed_dim=config.model.embed_dim,
        shared_layers=config.model.shared_layers,
        projection=config.model.projection,
    )


def learn_vocabulary(model: TwoBranchModel, captions: Sequence[str]) -> None:
    """Shows a text encoder with a growing vocabulary the training captions of the stage it starts."""
    if isinstance(model.text_encoder, GrowingVocabulary):
        model.text_encoder.learn_vocabulary(captions)


def _json_safe(x: Any) -> Any:
    if isinstance(x, float) and math.isnan(x):
        return None
    if isinstance(x, dict):
        return {k: _json_safe(v) for k, v in x.items()}
    if isinstance(x, (list, tuple)):
        return [_json_safe(v) for v in x]
    return x


def versions() -> dict[str, str]:
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


def write_results(
    out: Path,
    config: RunConfig,
    benchmark: RetrievalBenchmark,
    stages: list[dict],
    *,
    complete: bool,
    timings: list[list[dict]] = (),
    stage_seconds: Sequence[float] = (),
) -> dict:
    """Writes results.json and results.md (after every stage, so nothing computed is lost);
    `timings`: per model, the evaluation's seconds per stage (`RetrievalMetrics.timings`);
    `stage_seconds`: per stage, the wall seconds of its training and evaluation."""
    results = {
        "complete": complete,
        "config": to_dict(config),
        "seed": config.seed,
        "ks": list(config.eval.ks),
        "split": config.eval.split,
        "versions": versions(),
        "torch_threads": torch.get_num_threads(),
        "machine": machine(),
        "data_checksums": dict(benchmark.checksums),
        **summarize(stages, benchmark.task_names),
        "timings": list(timings),
        "stage_seconds": list(stage_seconds),
    }
    write_atomic(out / "results.json", lambda f: json.dump(_json_safe(results), f, indent=1))
    title = f"{config.strategy.name} on {config.benchmark.name} (seed {config.seed}, {config.eval.split} split)" + ("" if complete else " - INCOMPLETE")
    write_atomic(out / "results.md", lambda f: f.write(markdown_report(results, title=title)))
    return results


@dataclass
class Learner:
    """One model with its strategy, answering some retrieval directions."""

    strategy: RetrievalTemplate
    plugin: StrategyPlugin
    metrics: RetrievalMetrics


def refuse_batch_statistics(model: nn.Module) -> None:
    """Raises ConfigError when the model trains BatchNorm running statistics: with several
    processes each would keep its own (each sees only its part of the batch). They are refused
    rather than converted to SyncBatchNorm, which torch runs on GPUs only, so a CPU and a
    GPU launch would differ; GroupNorm has no running statistics to share."""
    model.train()  # frozen BatchNorm layers (pretrained backbones) stay in eval mode
    names = [name for name, m in model.named_modules() if isinstance(m, nn.modules.batchnorm._BatchNorm) and m.training and m.track_running_stats]
    if names:
        raise ConfigError(
            f"model: BatchNorm layers ({', '.join(names[:3])}{', ...' if len(names) > 3 else ''}) would keep different running "
            f"statistics on each of the {distributed.world_size()} processes; use model.image_encoder.norm=group, freeze them, "
            "or train on one process"
        )


def build_learner(
    config: RunConfig, benchmark: RetrievalBenchmark, writer: SummaryWriter | None, *, directions: tuple[str, ...], progress: bool, **strategy_options: Any
) -> Learner:
    """Model, loss, optimizer, strategy plugin and evaluator for one model of the run (its
    training curves go to `writer`, if any; the runner logs the evaluation)."""
    model = build_model(config, benchmark.train_captions)
    if distributed.world_size() > 1:
        refuse_batch_statistics(model)
    criterion = LOSSES.build(config.loss.name, config.loss.options)
    if hasattr(criterion, "logit_parameters"):  # a learnable temperature becomes a model parameter
        try:
            model.add_logit_parameters(criterion.logit_parameters(model.pretrained_logits()))
        except ValueError as e:
            raise ConfigError(f"loss {config.loss.name!r}: {e}") from e
    plugin = STRATEGIES.build(config.strategy.name, {**config.strategy.options, **strategy_options})
    params = [p for m in (model, criterion) for p in m.parameters() if p.requires_grad]
    # foreach on every device (PyTorch's default takes it on CUDA only): same values, bit for bit, fewer kernels
    optimizer = torch.optim.Adam(params, lr=config.train.lr, weight_decay=config.train.weight_decay, foreach=True)
    metrics = RetrievalMetrics(
        ks=config.eval.ks,
        directions=directions,
        reindex_budget=config.eval.reindex_budget,
        reindex_rules=config.eval.reindex_rules,
        reindex_probe=config.eval.reindex_probe,
        seed=config.seed,
    )
    with warnings.catch_warnings():  # no Avalanche logger: the runner writes TensorBoard itself
        warnings.filterwarnings("ignore", "No loggers specified")
        evaluator = EvaluationPlugin(metrics)
    strategy = RetrievalTemplate(
        model=model,
        optimizer=optimizer,
        criterion=criterion,
        train_mb_size=config.train.batch_size,
        train_epochs=config.train.epochs,
        eval_mb_size=config.eval.batch_size,
        device=distributed.device(config.device),
        plugins=[
            plugin,
            ProgressBar(enabled=progress),
            DataWaitMeter(enabled=progress),
            *([TrainingCurves(writer, prefix="" if len(directions) > 1 else f"{directions[0]} model/")] if writer is not None else []),
        ],
        evaluator=evaluator,
        grad_clip=config.train.grad_clip,
        num_workers=config.train.num_workers,
        seed=config.seed,
        precision=config.train.precision,
    )
    return Learner(strategy=strategy, plugin=plugin, metrics=metrics)


def build_learners(config: RunConfig, benchmark: RetrievalBenchmark, writer: SummaryWriter | None, *, progress: bool) -> list[Learner]:
    """One learner answering both directions; or, with `decoupled`, one per direction, each
    protecting only its query branch (image for image->text, text for text->image)."""
    if not config.decoupled:
        return [build_learner(config, benchmark, writer, directions=DIRECTIONS, progress=progress)]
    learners = []
    for direction, branch in (("i2t", "image"), ("t2i", "text")):
        seed_everything(config.seed)  # both models start from the same weights
        learners.append(build_learner(config, benchmark, writer, directions=(direction,), progress=progress, branches=branch))
    return learners


def run(
    config: RunConfig, out: str | Path, *, overwrite: bool = False, resume: bool = False, progress: bool = True, experiment: bool = True
) -> dict:
    """Trains on the benchmark's tasks, evaluating every seen task after each stage.

    Writes into `out`: config.yaml (fully resolved), results.json and results.md (after
    every stage), checkpoint.pt (after every stage) and TensorBoard event files under tb/
    (with `experiment`, its own HPARAMS experiment; a suite writes one for all its runs).
    With `resume`, continues from the last finished stage of `out`; the final metrics
    equal those of an uninterrupted run.

    Started by torchrun on several processes, they train the run together (see
    `ccrbench.distributed`: `train.batch_size` is the global batch); the main process alone
    holds and writes `out`, evaluates and logs, the others wait for it at the next stage.
    The checkpoint does not depend on the number of processes: a run resumes onto any.

    Returns:
        The results dict (also in results.json).

    Raises:
        NonFiniteLossError: the loss became NaN/inf; what was computed before stays on disk.
    """
    if resume and overwrite:
        raise ConfigError("--resume and --overwrite: choose one (continue the run, or replace it)")
    out = Path(out)
    distributed.init(config.device)
    config = resolve_threads(config)
    previous_threads = torch.get_num_threads()
    torch.set_num_threads(config.threads)
    try:
        return _run(config, out, overwrite=overwrite, resume=resume, progress=progress, experiment=experiment)
    finally:
        torch.set_num_threads(previous_threads)  # the next run in this process resolves `threads: 0` as before this one


def _run(config: RunConfig, out: Path, *, overwrite: bool, resume: bool, progress: bool, experiment: bool) -> dict:
    seed_everything(config.seed)
    benchmark = BENCHMARKS.build(config.benchmark.name, config.benchmark.options)  # its errors leave no run directory
    check_out(out, resume=resume)  # before the lock file: a folder that no run wrote gets nothing
    main = distributed.is_main()
    with locked_run_dir(out) if main else nullcontext():  # only the main process takes and writes the run directory
        resumed, results = distributed.from_main(open_run(out, config, overwrite=overwrite, resume=resume) if main else None)
        if results is not None:
            if main:
                print(f"{out} is already complete; nothing to do")
            return results
        with SummaryWriter(str(out / "tb")) if main else nullcontext() as writer:  # closed, so flushed, even when the run fails
            return _run_locked(config, out, benchmark, writer, resumed=resumed, progress=progress and main, experiment=experiment)


def resolve_threads(config: RunConfig) -> RunConfig:
    """`config` with `threads: 0` replaced by torch's current thread count (results depend on it)."""
    return config if config.threads else dataclasses.replace(config, threads=torch.get_num_threads())


def _run_locked(
    config: RunConfig, out: Path, benchmark: RetrievalBenchmark, writer: SummaryWriter | None, *, resumed: bool, progress: bool, experiment: bool
) -> dict:
    """The stages of the run; the processes other than the main one (no `writer`) only train."""
    main = distributed.is_main()
    learners = build_learners(config, benchmark, writer, progress=progress)
    if main:
        if experiment:
            log_experiment(writer, [to_dict(config)])
        log_session_start(writer, to_dict(config))
    if resumed:
        done = load_checkpoint(out, learners)
        stage_seconds = saved_stage_seconds(out)[:done] if main else []
    else:
        stage_seconds = []
        done = 0
        if main:
            write_atomic(out / "config.yaml", lambda f: yaml.safe_dump(to_dict(config), f, sort_keys=False))

    test = {exp.task_label: exp for exp in benchmark.eval_stream(config.eval.split)}
    schedule = learners[0].plugin.training_experiences(list(benchmark.train_stream))
    seen = {t for experience in schedule[:done] for t in experience.task_labels}
    stages = merge_directions([learner.metrics.stages for learner in learners])
    for index in range(done, len(schedule)):
        start = time.time()
        captions = [c for t in schedule[index].task_labels for c in benchmark.task_captions[t]]
        for learner in learners:
            learn_vocabulary(learner.strategy.model, captions)
            learner.strategy.train(schedule[index])
        seen |= set(schedule[index].task_labels)
        if not main:
            continue  # the others wait for the main process's evaluation when the next stage starts
        for learner in learners:
            learner.strategy.eval([test[t] for t in sorted(seen)])
        stages = merge_directions([learner.metrics.stages for learner in learners])
        stage_seconds.append(time.time() - start)
        write_results(
            out, config, benchmark, stages, complete=False, timings=[learner.metrics.timings for learner in learners], stage_seconds=stage_seconds
        )
        if index == done:
            log_layout(writer, stages[-1])
        log_stage(writer, stages[-1], benchmark.task_names)
        for learner in learners:
            for task, emb in learner.metrics.current.items():  # the same queries of every seen task, at every stage
                tag = f"examples/{benchmark.task_names[task]}" + (f"/{learner.metrics.directions[0]} model" if config.decoupled else "")
                log_examples(writer, test[task].dataset, emb, step=tasks_learned(stages[-1]), tag=tag)
        writer.flush()
        save_checkpoint(out, experiences_done=index + 1, learners=learners)
        if progress:
            print(f"stage {index} done ({sum(stage_seconds):.0f}s)", flush=True)  # training and evaluation since the first stage
    if not main:
        return distributed.from_main(None)
    timings = [learner.metrics.timings for learner in learners]
    results = write_results(out, config, benchmark, stages, complete=True, timings=timings, stage_seconds=stage_seconds)
    log_final(writer, results)
    log_session_end(writer)
    return distributed.from_main(results)
