"""ZSCL for retrieval (Zheng et al., ICCV 2023, "Preventing Zero-Shot Transfer Degradation in
Continual Learning of Vision-Language Models"), its two parts:

- Distillation on a reference set no task contains: every iteration, `reference_batch` reference
  items' N images and M captions are embedded by the model being trained and by the frozen
  STARTING model (the run's start: pretrained towers or `model.init_from`, never refreshed); the
  new N x M similarity distribution is pulled towards the start's, rows (image->text) and columns
  (text->image): lam * (KL(softmax(S_start rows) || softmax(S_new rows)) + KL(columns)), S = cos / temperature.
- Weight ensemble: the weights are averaged over the task's start, every `we_every`-th iteration
  and its end (a running mean); the average becomes the model after the task (evaluated, and
  the next task's start), as ZSCL's averaged model is.

The reference set is the `reference_split` of the benchmark that `reference` configures (a
`benchmark:` section; it must give the model's input format). For the built-in benchmark the
default is the shapes generator with another seed: other scenes and captions of the same
domains (closer to the tasks than ZSCL's ImageNet + Conceptual Captions are to its tasks); a
held-out domain (`tasks: [signs]` when the run learns blocks and curves) or the pretraining set
of the run's start is stricter. Several processes draw the same reference items (same loss).
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

import torch
from annotated_types import Ge, Gt
from torch import Tensor
from torch.utils.data import ConcatDataset, Dataset

from ccrbench.options import check_options
from ccrbench.registry import BENCHMARKS, ConfigError, register_strategy
from ccrbench.strategies.base import StrategyPlugin
from ccrbench.strategies.lwf import distillation_loss, frozen_copy
from ccrbench.strategies.weight_averaging import Weights, assign, floating_weights, running_mean

DEFAULT_REFERENCE = {"name": "shapes", "seed": 1, "train_images": 100, "test_images": 1}


def similarity_distillation(old: tuple[Tensor, Tensor], new: tuple[Tensor, Tensor], *, temperature: float) -> Tensor:
    """KL of the image->text rows plus the text->image columns of the N x M similarity matrices.

    Args:
        old: (images [N, D], captions [M, D]) embedded by the frozen starting model.
        new: the same embedded by the model being trained.
        temperature: softmax temperature of the cosine similarities.
    """
    return distillation_loss(old[0] @ old[1].T / temperature, new[0] @ new[1].T / temperature)


def reference_options(reference: dict[str, Any]) -> tuple[str, dict[str, Any]]:
    """The benchmark name and checked options (defaults filled in) of a `reference` section."""
    name, options = str(reference.get("name")), {k: v for k, v in reference.items() if k != "name"}
    try:
        return name, check_options(BENCHMARKS.get(name), options, where="options", skip=BENCHMARKS.context)
    except ConfigError as e:
        raise ConfigError(f"strategy zscl: reference: {e}") from e


def reference_data(reference: dict[str, Any], split: str) -> Dataset:
    """Every task's items of `split` of the benchmark that `reference` configures, as one dataset."""
    name, options = reference_options(reference)
    try:
        benchmark = BENCHMARKS.build(name, options)
        stream = benchmark.train_stream if split == "train" else benchmark.eval_stream(split)
    except (ConfigError, ValueError) as e:
        raise ConfigError(f"strategy zscl: reference: {e}") from e
    return ConcatDataset([experience.dataset for experience in stream])


@register_strategy("zscl")
class ZSCL(StrategyPlugin):
    """Distils the starting model's image-caption similarities on a reference set and averages
    the weights within each task (one frozen copy of the start in memory and in checkpoints).

    Args:
        lam: weight of the reference distillation, >= 0 (default 1.0: ZSCL's equal weighting
            of the task loss and the distillation, not tuned here; choose it on validation).
        temperature: softmax temperature of the cosine similarities, > 0 (default 0.07, as lwf).
        reference: the reference set, a `benchmark:` section (name and options); default: the
            built-in shapes generator with seed 1 and 100 images per domain (see the module text).
        reference_split: which split of it: "train" (image-caption pairs), "test" or "val"
            (images with all their captions).
        reference_batch: reference items drawn per iteration, >= 2 (default 32).
        we_every: sample the weights for the ensemble every this many iterations of a task
            (plus the task's start and end); 0 turns the weight ensemble off (default 20,
            about ten samples per task of the built-in benchmark's default training).
    """

    def __init__(
        self,
        *,
        lam: Annotated[float, Ge(0)] = 1.0,
        temperature: Annotated[float, Gt(0)] = 0.07,
        reference: dict = DEFAULT_REFERENCE,
        reference_split: Literal["train", "test", "val"] = "train",
        reference_batch: Annotated[int, Ge(2)] = 32,
        we_every: Annotated[int, Ge(0)] = 20,
    ) -> None:
        super().__init__()
        self.lam, self.temperature, self.we_every = lam, temperature, we_every
        self.reference, self.reference_split, self.reference_batch = dict(reference), reference_split, reference_batch
        reference_options(reference)  # its keys, checked before any training
        self.data: Dataset | None = None  # built at the first task (seconds): not when the config is checked
        self.teacher: torch.nn.Module | None = None
        self.restored: dict[str, Tensor] | None = None  # the start's weights from a checkpoint
        self.average: Weights | None = None
        self.samples = self.iterations = 0  # weight samples in `average`, iterations of the task

    def before_training_exp(self, strategy: Any, **kwargs: Any) -> None:
        if self.data is None:
            self.data = reference_data(self.reference, self.reference_split)
        if self.teacher is None:
            self.teacher = frozen_copy(strategy.model)
            if self.restored is not None:
                self.teacher.load_state_dict(self.restored)
        self.average, self.samples, self.iterations = floating_weights(strategy.model), 1, 0

    def before_backward(self, strategy: Any, **kwargs: Any) -> None:
        if self.lam == 0:
            return
        picks = torch.randint(len(self.data), (self.reference_batch,)).tolist()
        batch = strategy.collate([self.data[i] for i in picks]).to(strategy.device)
        with torch.no_grad():
            old = self.teacher(batch.images, batch.text)  # ([N, D], [M, D])
        new = strategy.model(batch.images, batch.text)
        self.add_loss_term(strategy, "ZSCL distillation", self.lam * similarity_distillation(old, new, temperature=self.temperature))

    def after_training_iteration(self, strategy: Any, **kwargs: Any) -> None:
        self.iterations += 1
        if self.we_every and self.iterations % self.we_every == 0:
            self.add_sample(strategy.model)

    def after_training_exp(self, strategy: Any, **kwargs: Any) -> None:
        if not self.we_every:
            return
        if self.iterations % self.we_every:  # the end, unless just sampled
            self.add_sample(strategy.model)
        assign(strategy.model, self.average)

    def add_sample(self, model: torch.nn.Module) -> None:
        self.average = running_mean(self.average, floating_weights(model), self.samples)
        self.samples += 1

    def state_dict(self) -> dict[str, Any]:
        """The start's weights (checkpoints are written between tasks: no ensemble is under way)."""
        return {"teacher": self.teacher.state_dict() if self.teacher is not None else self.restored}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.teacher, self.restored = None, state["teacher"]
