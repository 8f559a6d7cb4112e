"""Builds a run from its config and executes train -> index -> query after every task."""

from __future__ import annotations

import json
import math
import platform
import random
import shutil
import time
from dataclasses import dataclass
from importlib.metadata import version
from pathlib import Path
from typing import Any

import numpy as np
import torch
import yaml
from avalanche.logging import TensorboardLogger
from avalanche.training.plugins import EvaluationPlugin
from torch.utils.tensorboard import SummaryWriter

from ccrbench.benchmarks.base import RetrievalBenchmark
from ccrbench.checkpoint import load_checkpoint, save_checkpoint
from ccrbench.config import RunConfig, from_dict, to_dict
from ccrbench.evaluation.plugin import RetrievalMetrics
from ccrbench.evaluation.protocol import DIRECTIONS, merge_directions
from ccrbench.evaluation.report import markdown_report, summarize
from ccrbench.evaluation.tensorboard import log_examples, log_hparams
from ccrbench.io import write_atomic
from ccrbench.models.two_branch import TwoBranchModel
from ccrbench.registry import BENCHMARKS, ENCODERS, LOSSES, STRATEGIES, ConfigError
from ccrbench.strategies.base import StrategyPlugin
from ccrbench.strategies.progress import ProgressBar
from ccrbench.strategies.template import RetrievalTemplate


def seed_everything(seed: int) -> None:
    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)


def build_model(config: RunConfig, corpus: tuple[str, ...]) -> TwoBranchModel:
    """The two-branch model with registered encoders (text encoders may build vocabularies from `corpus`)."""
    encoders = {}
    for modality, spec in (("image", config.model.image_encoder), ("text", config.model.text_encoder)):
        encoder = ENCODERS.build(spec.name, spec.options, corpus=corpus)
        if getattr(encoder, "modality", None) != modality:
            raise ConfigError(f"model.{modality}_encoder: {spec.name!r} is not an {modality} encoder")
        encoders[modality] = encoder
    return TwoBranchModel(
        image_encoder=encoders["image"],
        text_encoder=encoders["text"],
        embed_dim=config.model.embed_dim,
        shared_layers=config.model.shared_layers,
        projection=config.model.projection,
    )


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


def write_results(out: Path, config: RunConfig, task_names: tuple[str, ...], stages: list[dict], *, complete: bool) -> dict:
    """Writes results.json and results.md (after every stage, so nothing computed is lost)."""
    results = {
        "complete": complete,
        "config": to_dict(config),
        "seed": config.seed,
        "versions": versions(),
        "torch_threads": torch.get_num_threads(),
        **summarize(stages, task_names),
    }
    write_atomic(out / "results.json", lambda f: json.dump(_json_safe(results), f, indent=1))
    title = f"{config.strategy.name} on {config.benchmark.name} (seed {config.seed})" + ("" if complete else " - INCOMPLETE")
    write_atomic(out / "results.md", lambda f: f.write(markdown_report(results, title=title)))
    return results


@dataclass
class Learner:
    """One model with its strategy, answering some retrieval directions."""

    strategy: RetrievalTemplate
    plugin: StrategyPlugin
    metrics: RetrievalMetrics


def build_learner(
    config: RunConfig, benchmark: RetrievalBenchmark, tb_dir: Path, *, directions: tuple[str, ...], progress: bool, **strategy_options: Any
) -> Learner:
    """Model, loss, optimizer, strategy plugin and evaluator for one model of the run."""
    model = build_model(config, benchmark.train_captions)
    criterion = LOSSES.build(config.loss.name, config.loss.options)
    plugin = STRATEGIES.build(config.strategy.name, {**config.strategy.options, **strategy_options})
    params = [p for m in (model, criterion) for p in m.parameters() if p.requires_grad]
    optimizer = torch.optim.Adam(params, lr=config.train.lr, weight_decay=config.train.weight_decay)
    metrics = RetrievalMetrics(ks=config.eval.ks, directions=directions)
    strategy = RetrievalTemplate(
        model=model,
        optimizer=optimizer,
        criterion=criterion,
        train_mb_size=config.train.batch_size,
        train_epochs=config.train.epochs,
        eval_mb_size=config.eval.batch_size,
        device=config.device,
        plugins=[plugin, ProgressBar(enabled=progress)],
        evaluator=EvaluationPlugin(metrics, loggers=[TensorboardLogger(tb_dir)]),
        grad_clip=config.train.grad_clip,
        num_workers=config.train.num_workers,
    )
    return Learner(strategy=strategy, plugin=plugin, metrics=metrics)


def build_learners(config: RunConfig, benchmark: RetrievalBenchmark, tb_dir: Path, *, progress: bool) -> list[Learner]:
    """One learner answering both directions; or, with `decoupled`, one per direction, each
    protecting only its query branch (image for image->text, text for text->image)."""
    if not config.decoupled:
        return [build_learner(config, benchmark, tb_dir, directions=DIRECTIONS, progress=progress)]
    if "branches" not in STRATEGIES.parameters(config.strategy.name):
        raise ConfigError(f"decoupled: strategy {config.strategy.name!r} has no 'branches' option to restrict to a query branch")
    learners = []
    for direction, branch in (("i2t", "image"), ("t2i", "text")):
        seed_everything(config.seed)  # both models start from the same weights
        learners.append(build_learner(config, benchmark, tb_dir, directions=(direction,), progress=progress, branches=branch))
    return learners


def open_run_dir(out: Path, config: RunConfig, *, overwrite: bool, resume: bool) -> None:
    """Creates the run directory, or checks that a resumed one was made by the same config.

    Raises:
        FileExistsError: results exist and neither `resume` nor `overwrite` was asked for.
        ConfigError: `resume` with a config that differs from the saved one.
    """
    saved = out / "config.yaml"
    if resume and saved.exists():
        if from_dict(yaml.safe_load(saved.read_text())) != config:  # keys added later take defaults
            raise ConfigError(f"--resume: {saved} was written by another config; resume with the same config")
        return
    if out.exists() and any(out.iterdir()):
        if not overwrite:
            raise FileExistsError(
                f"run directory {out} already holds results; pass --resume to continue it, --overwrite to replace it, "
                "or choose another --out"
            )
        shutil.rmtree(out)
    out.mkdir(parents=True, exist_ok=True)
    saved.write_text(yaml.safe_dump(to_dict(config), sort_keys=False))


def run(config: RunConfig, out: str | Path, *, overwrite: bool = False, resume: bool = False, progress: bool = True) -> dict:
    """Trains on the benchmark's tasks, evaluating every seen task after each stage.

    Writes into `out`: config.yaml (fully resolved), results.json and results.md (after
    every stage), checkpoint.pt (after every stage) and TensorBoard event files under tb/.
    With `resume`, continues from the last finished stage of `out`; the final metrics
    equal those of an uninterrupted run.

    Returns:
        The results dict (also in results.json).

    Raises:
        NonFiniteLossError: the loss became NaN/inf; what was computed before stays on disk.
    """
    out = Path(out)
    open_run_dir(out, config, overwrite=overwrite, resume=resume)
    if config.threads > 0:
        torch.set_num_threads(config.threads)
    seed_everything(config.seed)
    benchmark = BENCHMARKS.build(config.benchmark.name, config.benchmark.options)
    learners = build_learners(config, benchmark, out / "tb", progress=progress)
    done = load_checkpoint(out, learners) if resume else 0

    test = {exp.task_label: exp for exp in benchmark.test_stream}
    schedule = learners[0].plugin.training_experiences(list(benchmark.train_stream))
    seen = {t for experience in schedule[:done] for t in experience.task_labels}
    stages = merge_directions([learner.metrics.stages for learner in learners])
    start = time.time()
    for index in range(done, len(schedule)):
        for learner in learners:
            learner.strategy.train(schedule[index])
        seen |= set(schedule[index].task_labels)
        for learner in learners:
            learner.strategy.eval([test[t] for t in sorted(seen)])
        stages = merge_directions([learner.metrics.stages for learner in learners])
        write_results(out, config, benchmark.task_names, stages, complete=False)
        newest = max(schedule[index].task_labels)
        for learner in learners:
            tag = f"examples/{benchmark.task_names[newest]}" + (f"/{learner.metrics.directions[0]}_model" if config.decoupled else "")
            log_examples(_writer(learner), test[newest].dataset, learner.metrics.current[newest], step=index, tag=tag)
        save_checkpoint(out, experiences_done=index + 1, learners=learners)
        if progress:
            print(f"stage {index} done ({time.time() - start:.0f}s)", flush=True)
    results = write_results(out, config, benchmark.task_names, stages, complete=True)
    log_hparams(_writer(learners[0]), results["config"], results["final"], config.eval.ks)
    for learner in learners:
        _writer(learner).flush()
    return results


def _writer(learner: Learner) -> SummaryWriter:
    """The SummaryWriter of a learner's TensorBoard logger."""
    (logger,) = learner.strategy.evaluator.loggers
    return logger.writer
