"""Retrieval losses over a batch of (image, caption) pairs.

Every loss takes L2-normalised image_emb [B, D] and text_emb [B, D] (row i of each is
a positive pair) and image_ids [B]; pairs that share an image are positives of each
other and are never used as negatives (Barlow Twins uses no negatives at all).
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


def barlow_twins_loss(
    image_emb: Tensor, text_emb: Tensor, image_ids: Tensor, *, lambda_offdiag: float = 5e-3, eps: float = 1e-5
) -> Tensor:
    """Barlow Twins between the two modalities (Zbontar et al., 2021).

    z^I, z^T are the embeddings standardised per dimension over the batch
    ((z - mean) / sqrt(var + eps), biased variance, like BatchNorm1d without affine);
    C = (z^I)^T z^T / B is their [D, D] cross-correlation and

    loss = sum_d (1 - C_dd)^2 + lambda_offdiag * sum_d sum_{e != d} C_de^2

    Barlow Twins has no negatives, so nothing is masked: every (image, caption) row is
    one positive sample of the cross-correlation, and an image with several captions in
    the batch is simply several samples (its row repeated, each with one of its
    captions). `image_ids` is accepted for the common loss signature and is not used.
    """
    z_img = (image_emb - image_emb.mean(0)) / (image_emb.var(0, unbiased=False) + eps).sqrt()  # [B, D]
    z_txt = (text_emb - text_emb.mean(0)) / (text_emb.var(0, unbiased=False) + eps).sqrt()  # [B, D]
    c = z_img.T @ z_txt / len(image_emb)  # [D, D]
    on_diag = (1 - c.diagonal()).pow(2).sum()
    off_diag = c.pow(2).sum() - c.diagonal().pow(2).sum()
    return on_diag + lambda_offdiag * off_diag


@register_loss("max_hinge")
class MaxHingeLoss(nn.Module):
    """VSE++ hardest-negative triplet loss, optionally after a sum-of-hinges warm-up.

    Trained from scratch, the hardest negative alone can collapse the embedding (on the
    built-in benchmark it stays at chance level); starting with the sum of hinges over
    all negatives and switching to the hardest one once the embedding is organised
    avoids that. The warm-up counts training batches (calls in train mode with gradients
    enabled; evaluation and EWC's importance pass do not count) over the whole run, not per
    experience; the count is part of the loss's state, so a resumed run continues it.

    Args:
        margin: the hinge margin.
        warmup_steps: use the sum of hinges for this many training batches, then the
            hardest negative (0: hardest negative from the start, plain VSE++).
    """

    def __init__(self, *, margin: float = 0.2, warmup_steps: int = 0) -> None:
        super().__init__()
        self.margin = margin
        self.warmup_steps = warmup_steps
        self.register_buffer("steps", torch.zeros((), dtype=torch.long))

    def forward(self, image_emb: Tensor, text_emb: Tensor, image_ids: Tensor) -> Tensor:
        loss = sum_hinge_loss if int(self.steps) < self.warmup_steps else max_hinge_loss
        if self.training and torch.is_grad_enabled():
            self.steps += 1
        return loss(image_emb, text_emb, image_ids, margin=self.margin)


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


@register_loss("barlow_twins")
class BarlowTwinsLoss(nn.Module):
    """Barlow Twins redundancy reduction between image and caption embeddings (no negatives).

    Args:
        lambda_offdiag: weight of the off-diagonal (redundancy) term; 5e-3 as in the
            Barlow Twins paper.
    """

    def __init__(self, *, lambda_offdiag: float = 5e-3) -> None:
        super().__init__()
        self.lambda_offdiag = lambda_offdiag

    def forward(self, image_emb: Tensor, text_emb: Tensor, image_ids: Tensor) -> Tensor:
        return barlow_twins_loss(image_emb, text_emb, image_ids, lambda_offdiag=self.lambda_offdiag)
