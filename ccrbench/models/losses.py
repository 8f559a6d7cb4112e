"""Retrieval losses over a batch of (image, caption) pairs.

Every loss takes L2-normalised image_emb [B, D] and text_emb [B, D] (row i of each is
a positive pair) and image_ids [B]; pairs that share an image are positives of each
other and are never used as negatives.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from ccrbench.registry import register_loss


def positive_mask(image_ids: Tensor) -> Tensor:
    """[B, B] bool, True where two pairs show the same image (diagonal included)."""
    return image_ids[:, None] == image_ids[None, :]


def max_hinge_loss(image_emb: Tensor, text_emb: Tensor, image_ids: Tensor, *, margin: float = 0.2) -> Tensor:
    """VSE++ max of hinges, mean over the batch.

    loss_i = max_{c' neg} [m + s(i, c') - s(i, c)]_+ + max_{i' neg} [m + s(i', c) - s(i, c)]_+
    """
    scores = image_emb @ text_emb.T  # [B, B]
    pos = scores.diag()  # [B]
    neg = ~positive_mask(image_ids)
    cost_t = ((margin + scores - pos[:, None]).clamp(min=0) * neg).amax(1)  # image -> hardest caption
    cost_i = ((margin + scores - pos[None, :]).clamp(min=0) * neg).amax(0)  # caption -> hardest image
    return (cost_t + cost_i).mean()


def sum_hinge_loss(image_emb: Tensor, text_emb: Tensor, image_ids: Tensor, *, margin: float = 0.2) -> Tensor:
    """Sum of hinges over all in-batch negatives, mean over the batch.

    loss_i = sum_{c' neg} [m + s(i, c') - s(i, c)]_+ + sum_{i' neg} [m + s(i', c) - s(i, c)]_+
    """
    scores = image_emb @ text_emb.T  # [B, B]
    pos = scores.diag()
    neg = ~positive_mask(image_ids)
    cost_t = ((margin + scores - pos[:, None]).clamp(min=0) * neg).sum(1)
    cost_i = ((margin + scores - pos[None, :]).clamp(min=0) * neg).sum(0)
    return (cost_t + cost_i).mean()


def infonce_loss(image_emb: Tensor, text_emb: Tensor, image_ids: Tensor, *, temperature: float | Tensor = 0.07) -> Tensor:
    """Symmetric InfoNCE (CLIP): mean of the image->text and text->image cross-entropies.

    loss = 1/2 [CE(s(i, .) / t, c) + CE(s(., c) / t, i)], other captions of the same image
    removed from the softmax denominators.
    """
    logits = image_emb @ text_emb.T / temperature  # [B, B]
    other_pos = positive_mask(image_ids) & ~torch.eye(len(image_ids), dtype=torch.bool, device=logits.device)
    logits = logits.masked_fill(other_pos, float("-inf"))
    target = torch.arange(len(image_ids), device=logits.device)
    return 0.5 * (F.cross_entropy(logits, target) + F.cross_entropy(logits.T, target))


@register_loss("max_hinge")
class MaxHingeLoss(nn.Module):
    """VSE++ hardest-negative triplet loss.

    Args:
        margin: the hinge margin.
    """

    def __init__(self, *, margin: float = 0.2) -> None:
        super().__init__()
        self.margin = margin

    def forward(self, image_emb: Tensor, text_emb: Tensor, image_ids: Tensor) -> Tensor:
        return max_hinge_loss(image_emb, text_emb, image_ids, margin=self.margin)


@register_loss("sum_hinge")
class SumHingeLoss(nn.Module):
    """Triplet loss summed over all in-batch negatives.

    Args:
        margin: the hinge margin.
    """

    def __init__(self, *, margin: float = 0.2) -> None:
        super().__init__()
        self.margin = margin

    def forward(self, image_emb: Tensor, text_emb: Tensor, image_ids: Tensor) -> Tensor:
        return sum_hinge_loss(image_emb, text_emb, image_ids, margin=self.margin)


@register_loss("infonce")
class InfoNCELoss(nn.Module):
    """Symmetric InfoNCE over the batch similarity matrix.

    Args:
        temperature: softmax temperature (initial value when learnable).
        learnable: learn the temperature (as CLIP's log-scale, capped at 100).
    """

    def __init__(self, *, temperature: float = 0.07, learnable: bool = False) -> None:
        super().__init__()
        log_scale = torch.tensor(math.log(1.0 / temperature))
        if learnable:
            self.log_scale = nn.Parameter(log_scale)
        else:
            self.register_buffer("log_scale", log_scale)

    def forward(self, image_emb: Tensor, text_emb: Tensor, image_ids: Tensor) -> Tensor:
        temperature = 1.0 / self.log_scale.clamp(max=math.log(100.0)).exp()
        return infonce_loss(image_emb, text_emb, image_ids, temperature=temperature)
