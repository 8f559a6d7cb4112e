"""Weight regularisation against forgetting (EWC, MAS): the maths as pure functions, plus
the shared plugin that applies a quadratic penalty to one or both branches.

Penalty: lambda * sum_i Omega_i * (theta_i - theta*_i)^2 over the selected parameters.
Memory is constant in the number of tasks: one accumulated importance Omega and one
anchor theta* per parameter. After task t, Omega <- decay * Omega + Omega_t and
theta* <- theta after task t (decay = 1 sums the importances of all tasks, as MAS does
and as online EWC does with gamma = 1; decay < 1 is online EWC's forgetting factor).

With several processes, an importance pass sees the same global batches as one process:
each process embeds its part of a batch, the objective is computed on the gathered
embeddings and the per-batch gradients are averaged over the processes before the
statistic (the square or the absolute value) is taken, so every process holds the
one-process importances.
"""

# No `from __future__ import annotations`: a dataclass subclass's __init__ (EWC's, MAS's) carries
# these fields' types, which must be objects, not strings to be resolved in another module.

from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Annotated, Any, Literal

import torch
from annotated_types import Ge, Interval
from torch import Tensor, nn

from ccrbench.distributed import average_gradients, gather_with_grad
from ccrbench.strategies.base import StrategyPlugin
from ccrbench.training.template import RetrievalBatch, global_loss

Params = dict[str, Tensor]


def quadratic_penalty(params: Params, anchors: Params, importances: Params) -> Tensor:
    """sum_i Omega_i * (theta_i - theta*_i)^2 over the names in `importances`."""
    terms = [(importances[n] * (params[n] - anchors[n]).pow(2)).sum() for n in importances]
    return torch.stack(terms).sum() if terms else torch.zeros(())


def accumulate(old: Params | None, new: Params, *, decay: float) -> Params:
    """decay * old + new (new alone for the first task)."""
    return new if old is None else {n: decay * old[n] + new[n] for n in new}


def mean_gradient_statistic(
    params: Params, batches: Iterable[Any], objective: Callable[[Any], Tensor], statistic: Callable[[Tensor], Tensor]
) -> Params:
    """Mean over batches of statistic(d objective / d theta) for every parameter in `params`
    (with several processes, of the gradient averaged over them: see `gather_with_grad`)."""
    totals = {n: torch.zeros_like(p) for n, p in params.items()}
    count = 0
    for batch in batches:
        grads = torch.autograd.grad(objective(batch), list(params.values()), allow_unused=True)
        average_gradients(grads)
        for n, g in zip(params, grads):
            if g is not None:
                totals[n] += statistic(g.detach())
        count += 1
    return {n: t / max(count, 1) for n, t in totals.items()}


def ewc_importance(model: torch.nn.Module, criterion: Callable[..., Tensor], params: Params, batches: Iterable[RetrievalBatch]) -> Params:
    """Empirical Fisher of the retrieval loss: mean over mini-batches of the squared gradient.

    The retrieval loss is defined on a batch (its negatives are the other pairs), so the
    gradient is taken per mini-batch, as Avalanche's EWC does for classification.
    """

    def loss(batch: RetrievalBatch) -> Tensor:
        return global_loss(criterion, model, *model(batch.images, batch.text), batch)

    return mean_gradient_statistic(params, batches, loss, lambda g: g.pow(2))


def mas_importance(model: torch.nn.Module, params: Params, batches: Iterable[RetrievalBatch]) -> Params:
    """MAS: mean absolute gradient of the squared L2 norm of both branches' embeddings.

    The embeddings are taken before the final L2 normalisation (the norm of a normalised
    embedding is constant and would give zero importance everywhere).
    """

    def squared_norm(batch: RetrievalBatch) -> Tensor:
        (image,) = gather_with_grad(model.image_features(batch.images))  # [N, D], every process's images
        (text,) = gather_with_grad(model.text_features(batch.text))  # [M, D]
        return image.pow(2).sum(1).mean() + text.pow(2).sum(1).mean()

    return mean_gradient_statistic(params, batches, squared_norm, torch.abs)


@contextmanager
def importance_mode(*modules: nn.Module) -> Iterator[None]:
    """Eval mode for an importance pass (no dropout, no BatchNorm statistics, no loss warm-up step),
    except for RNN modules: cuDNN has no RNN backward in eval mode, so they run in train mode with
    their dropout set to 0, which computes what eval mode computes (as Avalanche's EWC, made
    deterministic). Every submodule's mode and every RNN's dropout are restored afterwards.
    """
    submodules = [m for module in modules for m in module.modules()]
    modes = [m.training for m in submodules]
    rnns = [m for m in submodules if isinstance(m, nn.RNNBase)]
    dropouts = [rnn.dropout for rnn in rnns]
    for module in modules:
        module.eval()
    for rnn in rnns:
        rnn.train()
        rnn.dropout = 0.0
    try:
        yield
    finally:
        for m, mode in zip(submodules, modes):
            m.training = mode
        for rnn, dropout in zip(rnns, dropouts):
            rnn.dropout = dropout


@dataclass(kw_only=True, eq=False)
class WeightRegularizer(StrategyPlugin):
    """Quadratic penalty towards the parameters of previous tasks, weighted by importance.

    Subclasses are dataclasses too: they define `importance(strategy, params, batches)` and
    redeclare `lam` with their default.

    Args:
        lam: penalty strength lambda.
        branches: which branch is protected: "both", "image" or "text" (shared top
            layers belong to both).
        decay: importance accumulation factor across tasks (see the module docstring).
        importance_batches: mini-batches of the task's training data used to estimate
            importances (0: all of them).
    """

    lam: Annotated[float, Ge(0)]
    branches: Literal["both", "image", "text"] = "both"
    decay: Annotated[float, Interval(ge=0, le=1)] = 1.0
    importance_batches: Annotated[int, Ge(0)] = 0

    def __post_init__(self) -> None:
        super().__init__()
        self.importances: Params | None = None
        self.anchors: Params | None = None

    def importance(self, strategy: Any, params: Params, batches: Iterable[RetrievalBatch]) -> Params:
        raise NotImplementedError

    def before_training_exp(self, strategy: Any, **kwargs: Any) -> None:
        """Importances and anchors go where the model is (a checkpoint loads them on the CPU)."""
        if self.importances is not None:
            self.importances = {n: t.to(strategy.device) for n, t in self.importances.items()}
            self.anchors = {n: t.to(strategy.device) for n, t in self.anchors.items()}

    def before_backward(self, strategy: Any, **kwargs: Any) -> None:
        if self.importances is not None and self.lam > 0:
            params = strategy.model.branch_parameters(self.branches)
            self.add_loss_term(strategy, f"{type(self).__name__} penalty", self.lam * quadratic_penalty(params, self.anchors, self.importances))

    def after_training_exp(self, strategy: Any, **kwargs: Any) -> None:
        params = {n: p for n, p in strategy.model.branch_parameters(self.branches).items() if p.requires_grad}
        loader = strategy.train_loader(strategy.experience.dataset)  # train_generator: decoupled models sample the same batches
        limit = self.importance_batches or len(loader)
        batches = (b.to(strategy.device) for _, b in zip(range(limit), loader))
        with importance_mode(strategy.model, strategy._criterion):  # an importance pass is no training step
            new = self.importance(strategy, params, batches)
        self.importances = accumulate(self.importances, new, decay=self.decay)
        self.anchors = {n: p.detach().clone() for n, p in params.items()}
