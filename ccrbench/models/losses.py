"""Retrieval losses over a batch of (image, caption) pairs.

Every loss takes L2-normalised image_emb [B, D] and text_emb [B, D] (row i of each is
a positive pair) and image_ids [B]; pairs that share an image are positives of each
other and are never used as negatives (Barlow Twins uses no negatives at all).

Losses on scaled similarities (`infonce`, `siglip`) keep a fixed temperature as a buffer
of the loss; a learnable one is a parameter of the model (`TwoBranchModel.logit_scale`,
and `logit_bias` for SigLIP, as open_clip's `logit_scale`), so that the optimizer,
gradient clipping, the regularisers and checkpoints see it; the template passes it in.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Annotated, Literal

import torch
import torch.nn.functional as F
from annotated_types import Ge, Gt
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


def siglip_loss(image_emb: Tensor, text_emb: Tensor, image_ids: Tensor, *, scale: float | Tensor = 10.0, bias: float | Tensor = -10.0) -> Tensor:
    """Pairwise sigmoid loss (SigLIP, Zhai et al., 2023), summed over all B x B pairs, divided by B.

    loss = -1/B sum_{i, j} log sigmoid(z_ij (scale * s(i, j) + bias)), z_ij = +1 when pairs i and j
    show the same image (the diagonal and other captions of the same image), else -1.
    """
    logits = scale * (image_emb @ text_emb.T) + bias  # [B, B]
    signs = 2.0 * positive_mask(image_ids).to(logits.dtype) - 1.0  # [B, B]
    return -F.logsigmoid(signs * logits).sum() / len(image_ids)


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

    def __init__(self, *, margin: Annotated[float, Ge(0)] = 0.2, warmup_steps: Annotated[int, Ge(0)] = 0) -> None:
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

    def __init__(self, *, margin: Annotated[float, Ge(0)] = 0.2) -> None:
        super().__init__()
        self.margin = margin

    def forward(self, image_emb: Tensor, text_emb: Tensor, image_ids: Tensor) -> Tensor:
        return sum_hinge_loss(image_emb, text_emb, image_ids, margin=self.margin)


MAX_LOGIT_SCALE = math.log(100.0)  # CLIP's cap on the learnable log-scale


class ScaledLoss(nn.Module):
    """A loss on cosine similarities times a scale (1 / temperature), plus a bias for SigLIP.

    Fixed values are buffers of the loss. Learnable ones are created on the model by
    `logit_parameters` and passed to `forward` by the caller (the model's `logit_inputs()`).
    "pretrained" takes the value of a CLIP-family encoder's own `logit_scale` / `logit_bias`.
    """

    def __init__(self, *, temperature: float | str, bias: float | str | None, learnable: bool) -> None:
        super().__init__()
        self.learnable = learnable
        self.initial = {"logit_scale": temperature, "logit_bias": bias}
        if bias is None:
            del self.initial["logit_bias"]

    def logit_parameters(self, pretrained: Mapping[str, float]) -> dict[str, float]:
        """Resolves the initial values; returns those the model must own as parameters (learnable), else {}.

        Args:
            pretrained: the encoders' own values ("logit_scale" is a log-scale, "logit_bias" a bias).

        Raises:
            ValueError: "pretrained" was asked for and no encoder provides the value.
        """
        values = {}
        for name, value in self.initial.items():
            if value == "pretrained":
                if name not in pretrained:
                    raise ValueError(f"{name} 'pretrained' needs a CLIP-family encoder that has one (hf_clip_image / hf_clip_text)")
                values[name] = float(pretrained[name])
            elif name == "logit_scale":
                if value <= 0:
                    raise ValueError(f"temperature must be positive, got {value}")
                values[name] = math.log(1.0 / value)
            else:
                values[name] = float(value)
        if self.learnable:
            return values
        for name, value in values.items():
            self.register_buffer(name, torch.tensor(value))
        return {}

    def logits(self, logit_scale: Tensor | None, logit_bias: Tensor | None) -> tuple[Tensor, Tensor | None]:
        """(scale, bias) from the model's parameters when learnable, else from the loss's buffers."""
        if not self.learnable:
            logit_scale, logit_bias = self.logit_scale, getattr(self, "logit_bias", None)
        elif logit_scale is None:
            raise ValueError("learnable temperature: pass the model's logit_scale (model.logit_inputs())")
        return logit_scale.clamp(max=MAX_LOGIT_SCALE).exp(), logit_bias


@register_loss("infonce")
class InfoNCELoss(ScaledLoss):
    """Symmetric InfoNCE over the batch similarity matrix.

    Args:
        temperature: softmax temperature (initial value when learnable), or "pretrained":
            the CLIP-family encoder's own.
        learnable: learn the temperature (CLIP's log-scale, capped at 100), as a
            parameter of the model (`logit_scale`).
    """

    def __init__(self, *, temperature: Annotated[float, Gt(0)] | Literal["pretrained"] = 0.07, learnable: bool = False) -> None:
        super().__init__(temperature=temperature, bias=None, learnable=learnable)
        if temperature != "pretrained":
            self.logit_parameters({})  # a fixed temperature is a buffer from the start

    def forward(self, image_emb: Tensor, text_emb: Tensor, image_ids: Tensor, *, logit_scale: Tensor | None = None) -> Tensor:
        scale, _ = self.logits(logit_scale, None)
        return infonce_loss(image_emb, text_emb, image_ids, temperature=1.0 / scale)


@register_loss("siglip")
class SigLIPLoss(ScaledLoss):
    """SigLIP's pairwise sigmoid loss: every (image, caption) pair of the batch is a binary
    match / no-match decision, no softmax over the batch.

    Args:
        temperature: 1 / scale of the similarities (initial value when learnable; the paper
            starts at 0.1), or "pretrained": the SigLIP encoder's own.
        bias: the logit bias (initial value when learnable; the paper starts at -10), or
            "pretrained".
        learnable: learn the temperature and the bias, as parameters of the model
            (`logit_scale`, `logit_bias`).
    """

    def __init__(
        self, *, temperature: Annotated[float, Gt(0)] | Literal["pretrained"] = 0.1, bias: float | Literal["pretrained"] = -10.0, learnable: bool = True
    ) -> None:
        super().__init__(temperature=temperature, bias=bias, learnable=learnable)
        if "pretrained" not in (temperature, bias):
            self.logit_parameters({})  # fixed values are buffers from the start

    def forward(
        self, image_emb: Tensor, text_emb: Tensor, image_ids: Tensor, *, logit_scale: Tensor | None = None, logit_bias: Tensor | None = None
    ) -> Tensor:
        scale, bias = self.logits(logit_scale, logit_bias)
        return siglip_loss(image_emb, text_emb, image_ids, scale=scale, bias=bias)


@register_loss("barlow_twins")
class BarlowTwinsLoss(nn.Module):
    """Barlow Twins redundancy reduction between image and caption embeddings (no negatives).

    Args:
        lambda_offdiag: weight of the off-diagonal (redundancy) term; 5e-3 as in the
            Barlow Twins paper.
    """

    def __init__(self, *, lambda_offdiag: Annotated[float, Ge(0)] = 5e-3) -> None:
        super().__init__()
        self.lambda_offdiag = lambda_offdiag

    def forward(self, image_emb: Tensor, text_emb: Tensor, image_ids: Tensor) -> Tensor:
        return barlow_twins_loss(image_emb, text_emb, image_ids, lambda_offdiag=self.lambda_offdiag)
