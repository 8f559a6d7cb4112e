"""Backward-compatible training for retrieval, in the spirit of BCT (Shen et al., CVPR 2020,
"Towards Backward-Compatible Representation Learning").

While task t is learned, the new query encoders are kept compatible with the embeddings of
the previous model (one frozen copy, as LwF keeps), so that a database indexed earlier and
never re-embedded (no reindex) still answers the new model's queries as it answered the old
model's. On the current batch, a cross-model term searches the OLD model's embeddings (the
database as it was indexed) with the NEW query embeddings, and asks for the ranking the old
queries produced there, in both directions:

    lam * [KL(softmax(old_image @ old_text.T / t) || softmax(new_image @ old_text.T / t))
         + KL(softmax(old_text @ old_image.T / t) || softmax(new_text @ old_image.T / t))]

(rows: image queries over the old caption embeddings, caption queries over the old image
embeddings; with several processes, the embeddings of the global batch). Unlike LwF, which distils the new model's own similarities (a reindexed
database), the database side here stays the old model's. The loss is zero when the new
queries equal the old ones, so a large `lam` keeps the query encoders where they were; a
soft target rather than BCT's hard one keeps a weak previous model from pushing the new
queries away. With `branches: image` or `text` only that modality's queries are constrained
(decoupled models: one per direction).
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

import torch
from annotated_types import Ge, Gt
from torch import Tensor

from ccrbench.distributed import gather_with_grad
from ccrbench.registry import register_strategy
from ccrbench.strategies.lwf import LwF, row_kl


def compatibility_loss(new_queries: Tensor, old_queries: Tensor, old_database: Tensor, *, temperature: float) -> Tensor:
    """KL(old queries' softmax over the old database || new queries' softmax over it), mean over queries.

    Args:
        new_queries: [Q, D] queries embedded by the model being trained.
        old_queries: [Q, D] the same queries embedded by the frozen previous model.
        old_database: [B, D] the batch's other modality embedded by the previous model.
        temperature: softmax temperature of the similarities.
    """
    return row_kl(old_queries @ old_database.T / temperature, new_queries @ old_database.T / temperature)


@register_strategy("compatible")
class Compatible(LwF):
    """Backward-compatible training: new query embeddings must rank the previous model's
    embeddings of the batch as the previous queries did (one frozen copy of the model in memory).

    Args:
        lam: weight of the compatibility loss (default chosen on the built-in benchmark's validation split (results/paper_table/selection.md)).
        temperature: softmax temperature of the cross-model similarities.
        branches: whose queries are kept compatible: "both", "image" (image queries over the
            old caption embeddings) or "text" (caption queries over the old image embeddings).
    """

    def __init__(
        self,
        *,
        lam: Annotated[float, Ge(0)] = 0.1,
        temperature: Annotated[float, Gt(0)] = 0.07,
        branches: Literal["both", "image", "text"] = "both",
    ) -> None:
        super().__init__(lam=lam, temperature=temperature)
        self.branches = branches

    def before_backward(self, strategy: Any, **kwargs: Any) -> None:
        if self.teacher is None or self.lam == 0:
            return
        with torch.no_grad():
            old_image, old_text = self.teacher(strategy.mb_images, strategy.mb_text)
        new_image, old_image = gather_with_grad(strategy.mb_output[0], old_image)  # [N, D]: every process's images
        new_text, old_text = gather_with_grad(strategy.mb_output[1], old_text)  # [M, D]
        pairs = {"image": (new_image, old_image, old_text), "text": (new_text, old_text, old_image)}
        terms = [
            compatibility_loss(new, old, database, temperature=self.temperature)
            for modality, (new, old, database) in pairs.items()
            if self.branches in ("both", modality)
        ]
        self.add_loss_term(strategy, "compatibility", self.lam * sum(terms))
