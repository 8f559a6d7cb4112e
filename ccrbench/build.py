"""Building a run's parts from its config: seeding, the model, and the learners (model, loss,
optimizer, strategy plugin and evaluator), one per model of the run."""

from __future__ import annotations

import random
import warnings
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
from avalanche.training.plugins import EvaluationPlugin
from torch import nn
from torch.utils.tensorboard import SummaryWriter

from ccrbench import distributed
from ccrbench.benchmarks.base import RetrievalBenchmark
from ccrbench.checkpoint import init_from
from ccrbench.config import RunConfig
from ccrbench.evaluation.plugin import RetrievalMetrics, retention_stream
from ccrbench.evaluation.protocol import DIRECTIONS
from ccrbench.evaluation.training_loss import TrainingLoss
from ccrbench.models.base import GrowingVocabulary
from ccrbench.models.build import model_from_config
from ccrbench.models.two_branch import TwoBranchModel
from ccrbench.registry import BENCHMARKS, LOSSES, STRATEGIES, ConfigError
from ccrbench.strategies.base import StrategyPlugin
from ccrbench.training.curves import TrainingCurves
from ccrbench.training.progress import ProgressBar
from ccrbench.training.template import RetrievalTemplate
from ccrbench.training.throughput import DataWaitMeter


def seed_everything(seed: int) -> None:
    """Seeds Python's, numpy's and torch's global generators (model initialisation, batch order)."""
    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)


def learn_vocabulary(model: TwoBranchModel, captions: Sequence[str]) -> None:
    """Shows a text encoder with a growing vocabulary the training captions of the stage it starts."""
    if isinstance(model.text_encoder, GrowingVocabulary):
        model.text_encoder.learn_vocabulary(captions)


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
    config: RunConfig,
    benchmark: RetrievalBenchmark,
    writer: SummaryWriter | None,
    *,
    directions: tuple[str, ...],
    progress: bool,
    loggers: Sequence[Any] = (),
    **strategy_options: Any,
) -> Learner:
    """Model, loss, optimizer, strategy plugin and evaluator for one model of the run (its
    training curves go to `writer`, if any; the runner logs the evaluation to it; the evaluator
    sends every metric to the Avalanche `loggers`)."""
    model = model_from_config(config.model, benchmark.train_captions)
    if distributed.world_size() > 1:
        refuse_batch_statistics(model)
    criterion = LOSSES.build(config.loss.name, config.loss.options)
    if hasattr(criterion, "logit_parameters"):  # a learnable temperature becomes a model parameter
        try:
            model.add_logit_parameters(criterion.logit_parameters(model.pretrained_logits()))
        except ValueError as e:
            raise ConfigError(f"loss {config.loss.name!r}: {e}") from e
    init_from(model, config.model.init_from)  # a trained start (its learnable temperature included)
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
        retention=tuple(s.label for s in config.eval.retention),
    )
    with warnings.catch_warnings():  # without Avalanche loggers the runner still writes TensorBoard itself
        warnings.filterwarnings("ignore", "No loggers specified")
        evaluator = EvaluationPlugin(metrics, TrainingLoss(prefix="" if len(directions) > 1 else f"{directions[0]}_model_"), loggers=list(loggers))
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


def build_learners(
    config: RunConfig, benchmark: RetrievalBenchmark, writer: SummaryWriter | None, *, progress: bool, loggers: Sequence[Any] = ()
) -> list[Learner]:
    """One learner answering both directions; or, with `decoupled`, one per direction, each
    protecting only its query branch (image for image->text, text for text->image); all send
    their metrics to the same Avalanche `loggers`."""
    if not config.decoupled:
        return [build_learner(config, benchmark, writer, directions=DIRECTIONS, progress=progress, loggers=loggers)]
    learners = []
    for direction, branch in (("i2t", "image"), ("t2i", "text")):
        seed_everything(config.seed)  # both models start from the same weights
        learners.append(build_learner(config, benchmark, writer, directions=(direction,), progress=progress, loggers=loggers, branches=branch))
    return learners




def retention_sets(config: RunConfig) -> Any:
    """The held-out retention sets of `eval.retention` as the metric plugin's `retention_stream`
    (each set: its benchmark's `eval.split` items, every task's)."""
    streams = []
    for i, held_out in enumerate(config.eval.retention):
        try:
            streams.append(BENCHMARKS.build(held_out.benchmark.name, held_out.benchmark.options).eval_stream(config.eval.split))
        except ConfigError as e:
            raise ConfigError(f"eval.retention[{i}] ({held_out.label}): {e}") from e
    return retention_stream(streams)
