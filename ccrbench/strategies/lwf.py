"""LwF-style cross-modal distillation: the model of the previous task is the teacher of the
in-batch similarity structure.

For a batch of B image-caption pairs, S = image_emb @ text_emb.T / temperature is a B x B
matrix whose diagonal holds the positive pairs. The new model is pulled towards the
frozen old model's softmaxed rows (image->text) and columns (text->image):

    lam * (KL(softmax(S_old rows) || softmax(S_new rows)) + KL(... columns ...))

With `offdiagonal_only`, the diagonal is dropped before the softmax (as Mod-X does), so
only the relations to the negatives are distilled and the new task's positives are free.
With several processes, B is the global batch: both models' embeddings are gathered from
every process (`gather_with_grad`), as for the retrieval loss.
"""

from __future__ import annotations

import copy
from typing import Annotated, Any

import torch
import torch.nn.functional as F
from annotated_types import Ge, Gt
from torch import Tensor, nn

from ccrbench.distributed import gather_with_grad
from ccrbench.registry import register_strategy
from ccrbench.strategies.base import StrategyPlugin


def drop_diagonal(matrix: Tensor) -> Tensor:
    """[B, B] -> [B, B - 1]: each row without its diagonal entry."""
    b = matrix.shape[0]
    return matrix.masked_select(~torch.eye(b, dtype=torch.bool, device=matrix.device)).view(b, b - 1)


def row_kl(old_logits: Tensor, new_logits: Tensor) -> Tensor:
    """KL(softmax(old) || softmax(new)) of each row, averaged over rows."""
    return F.kl_div(F.log_softmax(new_logits, dim=1), F.log_softmax(old_logits, dim=1), log_target=True, reduction="batchmean")


def distillation_loss(old_logits: Tensor, new_logits: Tensor, *, offdiagonal_only: bool = False) -> Tensor:
    """KL(old || new) over the rows (image->text) plus over the columns (text->image).

    Args:
        old_logits: [B, B] similarities / temperature from the frozen old model, diagonal = positive pairs.
        new_logits: the same from the model being trained.
        offdiagonal_only: drop each row's (column's) positive pair before the softmax.
    """
    views = [(old_logits, new_logits), (old_logits.T, new_logits.T)]
    if offdiagonal_only:
        views = [(drop_diagonal(o), drop_diagonal(n)) for o, n in views]
    return row_kl(*views[0]) + row_kl(*views[1])


def frozen_copy(model: nn.Module) -> nn.Module:
    """A deep copy in eval mode with no gradients."""
    teacher = copy.deepcopy(model).eval()
    teacher.requires_grad_(False)
    return teacher


@register_strategy("lwf")
class LwF(StrategyPlugin):
    """Learning without Forgetting for retrieval: distils the previous model's in-batch
    similarity distributions in both directions (one frozen copy of the model in memory).

    Args:
        lam: weight of the distillation loss (default chosen on the built-in benchmark's validation split (results/paper_table/selection.md)).
        temperature: softmax temperature of the cosine similarities (default likewise).
        offdiagonal_only: distil only the similarities to the negatives (drop the positive
            pair from every row and column before the softmax, as Mod-X).
    """

    def __init__(
        self, *, lam: Annotated[float, Ge(0)] = 0.1, temperature: Annotated[float, Gt(0)] = 0.07, offdiagonal_only: bool = False
    ) -> None:
        super().__init__()
        self.lam = lam
        self.temperature = temperature
        self.offdiagonal_only = offdiagonal_only
        self.teacher: nn.Module | None = None
        self.restored: dict[str, Tensor] | None = None  # teacher weights from a checkpoint, until a model to copy is at hand

    def before_training_exp(self, strategy: Any, **kwargs: Any) -> None:
        if self.restored is not None:
            self.teacher = frozen_copy(strategy.model)
            self.teacher.load_state_dict(self.restored)
            self.restored = None

    def before_backward(self, strategy: Any, **kwargs: Any) -> None:
        if self.teacher is None or self.lam == 0:
            return
        t2i = strategy.mb_text_to_image  # caption j's image row: rows of S are the batch's pairs
        with torch.no_grad():
            old_image, old_text = self.teacher(strategy.mb_images, strategy.mb_text)
        new_image, new_text = strategy.mb_output
        old_image, old_text, new_image, new_text = gather_with_grad(old_image[t2i], old_text, new_image[t2i], new_text)  # [B, D] each
        old_logits = old_image @ old_text.T / self.temperature
        new_logits = new_image @ new_text.T / self.temperature
        distill = distillation_loss(old_logits, new_logits, offdiagonal_only=self.offdiagonal_only)
        self.add_loss_term(strategy, "LwF distillation", self.lam * distill)

    def after_training_exp(self, strategy: Any, **kwargs: Any) -> None:
        self.teacher = frozen_copy(strategy.model)

    def state_dict(self) -> dict[str, Any]:
        """The teacher's weights (not the module, whose code may change between versions)."""
        return {"teacher": self.teacher.state_dict() if self.teacher is not None else self.restored}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.teacher, self.restored = None, state["teacher"]
