"""The two-branch retrieval model: modality encoders, projections, optional shared top layers."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Literal

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from ccrbench.registry import ConfigError
from ccrbench.tokens import TokenBatch

BRANCHES = ("image", "text")
LOGITS = ("logit_scale", "logit_bias")  # a loss's learnable temperature and bias, when the model holds them


def projection_head(in_dim: int, out_dim: int, kind: Literal["linear", "mlp", "identity"]) -> nn.Module:
    """Linear(in, out), with "mlp" Linear(in, in)-ReLU-Linear(in, out), with "identity" nothing (in == out)."""
    if kind == "identity":
        if in_dim != out_dim:
            raise ConfigError(f"model.projection: 'identity' needs model.embed_dim equal to the encoder's output ({in_dim}), got {out_dim}")
        return nn.Identity()
    if kind == "linear":
        return nn.Linear(in_dim, out_dim)
    if kind == "mlp":
        return nn.Sequential(nn.Linear(in_dim, in_dim), nn.ReLU(), nn.Linear(in_dim, out_dim))
    raise ValueError(f"projection must be 'linear', 'mlp' or 'identity', got {kind!r}")


class TwoBranchModel(nn.Module):
    """Embeds images and captions in one L2-normalised space.

    image -> image_encoder -> image_proj -> [shared] -> L2 norm
    text  -> text_encoder  -> text_proj  -> [shared] -> L2 norm

    Args:
        image_encoder: module with `output_dim`, images -> [N, F_img].
        text_encoder: module with `output_dim` and `tokenize`, TokenBatch -> [M, F_txt].
        embed_dim: size of the joint space.
        shared_layers: number of top layers (ReLU + Linear, embed_dim -> embed_dim) that are
            one module used by both branches; 0 gives the plain two-branch model.
        projection: the per-branch projection head: "linear" (one Linear layer), "mlp"
            (Linear-ReLU-Linear with a hidden layer as wide as the encoder's feature, as in SimCLR)
            or "identity" (none: the encoders' own joint space, e.g. CLIP's; embed_dim must match).

    A learnable temperature of the loss lives here as `logit_scale` (and `logit_bias`), added
    by `add_logit_parameters`, so the optimizer, clipping, regularisers and checkpoints see it.
    """

    def __init__(
        self,
        *,
        image_encoder: nn.Module,
        text_encoder: nn.Module,
        embed_dim: int = 256,
        shared_layers: int = 0,
        projection: Literal["linear", "mlp", "identity"] = "linear",
    ) -> None:
        super().__init__()
        self.image_encoder = image_encoder
        self.text_encoder = text_encoder
        self.image_proj = projection_head(image_encoder.output_dim, embed_dim, projection)
        self.text_proj = projection_head(text_encoder.output_dim, embed_dim, projection)
        layers: list[nn.Module] = []
        for _ in range(shared_layers):
            layers += [nn.ReLU(), nn.Linear(embed_dim, embed_dim)]
        self.shared = nn.Sequential(*layers)
        self.embed_dim = embed_dim

    def tokenize(self, captions: Sequence[str]) -> TokenBatch:
        return self.text_encoder.tokenize(captions)

    def pretrained_logits(self) -> dict[str, float]:
        """The encoders' own `logit_scale` / `logit_bias` ({} unless CLIP-family towers carry them)."""
        found: dict[str, float] = {}
        for encoder in (self.text_encoder, self.image_encoder):
            found.update(getattr(encoder, "pretrained_logits", {}))
        return found

    def add_logit_parameters(self, values: dict[str, float]) -> None:
        """Makes the loss's learnable logit scale / bias parameters of the model (names as in `LOGITS`)."""
        for name, value in values.items():
            if name not in LOGITS:
                raise ValueError(f"unknown logit parameter {name!r}; expected one of {LOGITS}")
            self.register_parameter(name, nn.Parameter(torch.tensor(float(value))))

    def logit_inputs(self) -> dict[str, Tensor]:
        """The loss's learnable logit parameters held here, as keyword arguments of the loss ({} if none)."""
        return {n: p for n, p in self.named_parameters(recurse=False) if n in LOGITS}

    def image_features(self, images: Tensor) -> Tensor:
        """Image embeddings before L2 normalisation, [N, D]."""
        return self.shared(self.image_proj(self.image_encoder(images)))

    def text_features(self, text: TokenBatch) -> Tensor:
        """Caption embeddings before L2 normalisation, [M, D]."""
        return self.shared(self.text_proj(self.text_encoder(text)))

    def forward(self, images: Tensor, text: TokenBatch) -> tuple[Tensor, Tensor]:
        """L2-normalised (image [N, D], caption [M, D]) embeddings."""
        return F.normalize(self.image_features(images), dim=-1), F.normalize(self.text_features(text), dim=-1)

    def branch_parameters(self, branch: str) -> dict[str, nn.Parameter]:
        """Named parameters of one branch ("image", "text" or "both"); shared layers belong to both,
        the loss's logit parameters to "both" only."""
        if branch not in (*BRANCHES, "both"):
            raise ValueError(f"branch must be one of image, text, both; got {branch!r}")
        prefixes = {"image": ("image_",), "text": ("text_",), "both": ("image_", "text_", *LOGITS)}[branch] + ("shared.",)
        return {n: p for n, p in self.named_parameters() if n.startswith(prefixes)}
