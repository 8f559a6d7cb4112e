"""CLIP-family towers from transformers: the image tower (`hf_clip_image`) and the text tower
(`hf_clip_text`) of a CLIP or SigLIP model, each with the model's own preprocessing.

The model is a hub name (downloaded on demand into the Hugging Face cache unless offline,
see `models.hub`) or a local directory saved with `save_pretrained` (the model, its image
processor and its tokenizer). Each tower keeps the model's `logit_scale` (and SigLIP's
`logit_bias`) in `pretrained_logits`, which a loss uses with `temperature: pretrained`.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Annotated, Any

import torch
import torch.nn.functional as F
from annotated_types import Ge
from torch import Tensor, nn

from ccrbench.models.hf_text import load_pretrained
from ccrbench.registry import ConfigError, register_encoder
from ccrbench.tokens import TokenBatch

FAMILIES = ("clip", "siglip")
DEFAULT_MODEL = "openai/clip-vit-base-patch32"


def load_clip(key: str, model: str, *extra: Any) -> list[Any]:
    """The pretrained CLIP/SigLIP model (AutoModel) followed by the `extra` loaders' results.

    Raises:
        ConfigError: it cannot be loaded, or it is not a CLIP or SigLIP model.
    """
    from transformers import AutoModel  # slow import: only when used

    loaded = load_pretrained(key, model, AutoModel, *extra)
    if loaded[0].config.model_type not in FAMILIES:
        raise ConfigError(f"{key}: {model!r} is a {loaded[0].config.model_type!r} model; expected one of {', '.join(FAMILIES)}")
    return loaded


def logits_of(full: nn.Module) -> dict[str, float]:
    """The model's own logit scale (a log-scale, as CLIP stores it) and, for SigLIP, bias."""
    return {n: float(getattr(full, n).detach()) for n in ("logit_scale", "logit_bias") if getattr(full, n, None) is not None}


def freeze_tower(encoder: nn.Module, *, freeze: bool, train_top_blocks: int | None, key: str) -> None:
    """Freezes the encoder, or everything up to (excluding) its top `train_top_blocks` transformer
    layers: embeddings, pre-norm and lower layers freeze; the top layers and what sits on them
    (final norm, pooling head, projection) train. None trains everything."""
    layers = next(m for n, m in encoder.named_modules() if n.endswith("encoder.layers"))
    if train_top_blocks is not None and not 0 <= train_top_blocks <= len(layers):
        raise ConfigError(f"{key}.train_top_blocks: expected 0 to {len(layers)}, got {train_top_blocks}")
    if freeze and train_top_blocks:
        raise ConfigError(f"{key}: freeze freezes every block; use train_top_blocks alone to train the top ones")
    if freeze:
        encoder.requires_grad_(False)
    elif train_top_blocks is not None:
        params = list(encoder.parameters())  # in registration order: embeddings, (pre-norm), layers, norm, head
        index = {id(p): i for i, p in enumerate(params)}
        boundary = len(layers) - train_top_blocks
        if boundary < len(layers):
            start = index[id(next(layers[boundary].parameters()))]
        else:  # no layer trains: only what sits on the layers
            start = max(index[id(p)] for p in layers[-1].parameters()) + 1
        for i, p in enumerate(params):
            p.requires_grad_(i >= start)


class CLIPTower(nn.Module):
    """Shared behaviour of both towers: frozen towers stay in eval mode while the run trains."""

    frozen: bool

    def train(self, mode: bool = True) -> "CLIPTower":
        """Sets the training mode; a frozen tower stays in eval mode (no dropout)."""
        super().train(mode)
        if self.frozen:
            self.tower.eval()
        return self


@register_encoder("hf_clip_image")
class CLIPImageEncoder(CLIPTower):
    """The image tower of a CLIP or SigLIP model: CLIP's projected pooled output, SigLIP's pooling head.

    Input: float images [N, 3, H, W] in [0, 1]; they are resized (bicubic) to the tower's image
    size and normalised with its image processor's mean/std here.

    Args:
        model: a hub name (e.g. "openai/clip-vit-base-patch32", "google/siglip-base-patch16-224")
            or a local directory with the model and its image processor.
        freeze: freeze the whole tower, its own projection included (only model.projection trains).
        train_top_blocks: train only the top N transformer layers (and the final norm, pooling
            head and projection above them); None trains everything.
    """

    modality = "image"

    def __init__(self, *, model: str = DEFAULT_MODEL, freeze: bool = False, train_top_blocks: Annotated[int, Ge(0)] | None = None) -> None:
        super().__init__()
        from transformers import AutoImageProcessor  # slow import: only when used

        full, processor = load_clip("hf_clip_image.model", model, AutoImageProcessor)
        self.family = full.config.model_type
        self.pretrained_logits = logits_of(full)
        self.tower = full.vision_model
        self.projection = getattr(full, "visual_projection", None) or nn.Identity()  # SigLIP has none
        self.output_dim = full.config.projection_dim if self.family == "clip" else full.config.vision_config.hidden_size
        self.image_size = full.config.vision_config.image_size
        self.register_buffer("mean", torch.tensor(processor.image_mean).view(1, 3, 1, 1), persistent=False)
        self.register_buffer("std", torch.tensor(processor.image_std).view(1, 3, 1, 1), persistent=False)
        self.frozen = freeze
        freeze_tower(self, freeze=freeze, train_top_blocks=train_top_blocks, key="hf_clip_image")
        self.train()

    def forward(self, images: Tensor) -> Tensor:
        if images.shape[-2:] != (self.image_size, self.image_size):
            images = F.interpolate(images, size=(self.image_size, self.image_size), mode="bicubic", antialias=True, align_corners=False)
        pixels = (images - self.mean) / self.std  # [N, 3, S, S]
        return self.projection(self.tower(pixel_values=pixels).pooler_output)  # [N, output_dim]


@register_encoder("hf_clip_text")
class CLIPTextEncoder(CLIPTower):
    """The text tower of a CLIP or SigLIP model with its own tokenizer: CLIP's projected end-of-text
    state (attention mask used), SigLIP's pooled last state (padded to its full length, as trained).

    Args:
        model: a hub name or a local directory with the model and its tokenizer.
        freeze: freeze the whole tower, its own projection included (only model.projection trains).
        train_top_blocks: train only the top N transformer layers (and the final norm, head and
            projection above them); None trains everything.
        max_length: captions are truncated to this many tokens (at most the tower's length).
    """

    modality = "text"

    def __init__(
        self, *, model: str = DEFAULT_MODEL, freeze: bool = False, train_top_blocks: Annotated[int, Ge(0)] | None = None, max_length: Annotated[int, Ge(1)] = 77
    ) -> None:
        super().__init__()
        from transformers import AutoTokenizer  # slow import: only when used

        full, self.tokenizer = load_clip("hf_clip_text.model", model, AutoTokenizer)
        self.family = full.config.model_type
        self.pretrained_logits = logits_of(full)
        self.tower = full.text_model
        self.projection = getattr(full, "text_projection", None) or nn.Identity()
        self.output_dim = full.config.projection_dim if self.family == "clip" else full.config.text_config.hidden_size
        self.max_length = min(max_length, full.config.text_config.max_position_embeddings)
        self.frozen = freeze
        freeze_tower(self, freeze=freeze, train_top_blocks=train_top_blocks, key="hf_clip_text")
        self.train()

    def tokenize(self, captions: Sequence[str]) -> TokenBatch:
        """The model's tokenizer; CLIP pads to the longest caption, SigLIP to `max_length`."""
        padding = "max_length" if self.family == "siglip" else True
        enc = self.tokenizer(list(captions), padding=padding, truncation=True, max_length=self.max_length, return_tensors="pt")
        ids = enc["input_ids"]  # [M, L]
        mask = enc["attention_mask"].bool() if "attention_mask" in enc else torch.ones_like(ids, dtype=torch.bool)
        return TokenBatch(ids, mask)

    def forward(self, text: TokenBatch) -> Tensor:
        mask = text.mask.long() if self.family == "clip" else None  # SigLIP was trained without one
        return self.projection(self.tower(input_ids=text.ids, attention_mask=mask).pooler_output)  # [M, output_dim]
