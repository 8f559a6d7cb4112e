"""LoRA for continual retrieval (Hu et al., ICLR 2022), with Hugging Face `peft`.

One adapter set per task, merged after it: before each task fresh low-rank adapters
(W x + (alpha / rank) * B A x, B = 0 at the start, so the model is unchanged) go on every
linear layer of both towers, projections and shared layers; everything else is frozen and
the optimizer trains the adapters alone (fresh Adam state per task). After the task the
adapters are merged into the weights (W <- W + (alpha / rank) * B A) and removed, so the
model between tasks, which is evaluated, checkpointed and the next task's start, has its
own architecture and parameter names (a checkpoint resumes, or starts another run through
`model.init_from`, like any other). Merging per task is the common continual choice (no
adapter to route to at query time, the next task starts from all that was learned); each
task's update has rank <= `rank`, the sum over tasks does not. A learnable temperature of
the loss is frozen with the rest.

Linear layers inside `nn.MultiheadAttention` get no adapter (that module reads its
projections' weights directly, so an adapter there would never be used); convolutions,
GRUs and embeddings get none either (peft adapts linear layers only here), so a small_cnn /
bigru model learns only through its linear layers: LoRA is meant for a pretrained start.
"""

from __future__ import annotations

from collections import defaultdict
from typing import Annotated, Any

from annotated_types import Ge, Gt, Interval
from torch import nn

from ccrbench.registry import ConfigError, register_strategy
from ccrbench.strategies.base import StrategyPlugin


def linear_layers(model: nn.Module) -> list[str]:
    """Names of the model's `nn.Linear` modules that run their own forward (not those of an
    `nn.MultiheadAttention`, which reads their weights directly)."""
    in_attention = {
        f"{name}.{child}" if name else child
        for name, module in model.named_modules()
        if isinstance(module, nn.MultiheadAttention)
        for child, _ in module.named_children()
    }
    return [name for name, module in model.named_modules() if isinstance(module, nn.Linear) and name not in in_attention]


@register_strategy("lora")
class LoRA(StrategyPlugin):
    """Low-rank adapters on the linear layers, base weights frozen; one adapter set per task,
    merged into the weights after it (Hugging Face `peft`, imported when the first task starts).

    Args:
        rank: rank of each adapter, >= 1 (default 8, the common choice; not tuned here).
        alpha: adapter scaling numerator, > 0: the update is (alpha / rank) * B A (default 16.0,
            i.e. 2 x rank, the common choice; LoRA usually wants a larger train.lr than full fine-tuning).
        dropout: dropout on the adapters' input, in [0, 1) (default 0.0).
    """

    def __init__(
        self,
        *,
        rank: Annotated[int, Ge(1)] = 8,
        alpha: Annotated[float, Gt(0)] = 16.0,
        dropout: Annotated[float, Interval(ge=0, lt=1)] = 0.0,
    ) -> None:
        super().__init__()
        self.rank, self.alpha, self.dropout = rank, alpha, dropout
        self.adapters: Any = None  # the task's peft LoraModel (between tasks: none)
        self.trainable: dict[str, bool] = {}  # each parameter's requires_grad as built
        self.params: list[nn.Parameter] = []  # the optimizer's parameters as built

    def before_training_exp(self, strategy: Any, **kwargs: Any) -> None:
        try:
            from peft import LoraConfig, LoraModel
        except ImportError as e:
            raise ConfigError("strategy lora needs the peft package (a ccrbench dependency): pip install 'peft>=0.10'") from e
        model, group = strategy.model, strategy.optimizer.param_groups[0]
        targets = linear_layers(model)
        if not targets:
            raise ConfigError("strategy lora: the model has no linear layer to adapt; choose another strategy")
        self.trainable = {n: p.requires_grad for n, p in model.named_parameters()}
        self.params = group["params"]
        config = LoraConfig(r=self.rank, lora_alpha=self.alpha, lora_dropout=self.dropout, target_modules=targets)
        self.adapters = LoraModel(model, config, "task")  # in place; freezes every other parameter
        self.train_only(strategy.optimizer, [p for p in model.parameters() if p.requires_grad])

    def after_training_exp(self, strategy: Any, **kwargs: Any) -> None:
        self.adapters.merge_and_unload(progressbar=False)  # in place: the model's own modules again
        self.adapters = None
        for name, p in strategy.model.named_parameters():
            p.requires_grad_(self.trainable[name])
        self.train_only(strategy.optimizer, self.params)  # as built, so a checkpoint matches a fresh optimizer

    @staticmethod
    def train_only(optimizer: Any, params: list[nn.Parameter]) -> None:
        """Makes `params` the optimizer's only parameters, with a fresh state (one parameter group)."""
        if len(optimizer.param_groups) != 1:
            raise ConfigError("strategy lora: the optimizer has several parameter groups; it needs one")
        optimizer.param_groups[0]["params"] = list(params)
        optimizer.state = defaultdict(dict)

    def state_dict(self) -> dict[str, Any]:
        """Nothing: between tasks (when checkpoints are written) the adapters are merged into the model."""
        return {}
