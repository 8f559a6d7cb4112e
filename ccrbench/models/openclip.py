"""CLIP-family towers from `open_clip`: the image tower (`open_clip_image`) and the text tower
(`open_clip_text`) of an open_clip model, each with the model's own preprocessing and tokenizer.

The model is an open_clip architecture name with a pretrained tag (e.g. "ViT-B-32" +
"laion2b_s34b_b79k", downloaded on demand into the Hugging Face / open_clip cache as
open_clip does; offline: from the cache only), an "hf-hub:org/repo" name, or
"local-dir:PATH" (a folder holding open_clip_config.json and, optionally, the weights:
works offline). Each tower keeps the model's `logit_scale` (and SigLIP's `logit_bias`) in
`pretrained_logits`, which a loss uses with `temperature: pretrained`.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from ccrbench.models.hub import OFFLINE_VARIABLES, offline
from ccrbench.registry import ConfigError, register_encoder
from ccrbench.tokens import TokenBatch

DEFAULT_MODEL = "ViT-B-32"


def import_open_clip() -> Any:
    """The `open_clip` package (slow import: only when used), or a ConfigError naming the extra."""
    try:
        import open_clip
    except ImportError as e:
        raise ConfigError("the open_clip encoders need the open_clip_torch package: pip install 'ccrbench[open_clip]'") from e
    return open_clip


def load_open_clip(key: str, model: str, pretrained: str) -> Any:
    """`open_clip.create_model(model, pretrained)`; "" loads no weights (random, or a local-dir's own).

    Raises:
        ConfigError: an unknown model or tag, or weights that cannot be loaded (offline and not
            cached, or the download failed), naming the fix.
    """
    open_clip = import_open_clip()

    if pretrained and model.startswith("local-dir:"):
        raise ConfigError(f"{key}: {model!r} brings its own weights (or none: random); drop pretrained={pretrained!r}")
    try:
        return open_clip.create_model(
            model, pretrained=pretrained or None, load_weights=bool(pretrained) or model.startswith("local-dir:"), require_pretrained=bool(pretrained)
        )
    except RuntimeError as e:
        if "not found" in str(e).lower() or "unknown" in str(e).lower():
            raise ConfigError(f"{key}: {e}; `python -c 'import open_clip; print(open_clip.list_pretrained())'` lists names and tags") from e
        raise ConfigError(f"{key}: {model!r} / {pretrained!r} could not be loaded ({e})") from e
    except (OSError, ValueError) as e:
        how = f"downloads are off ({' / '.join(OFFLINE_VARIABLES)} set)" if offline() else f"loading them failed ({e})"
        raise ConfigError(
            f"{key}: the weights of {model!r} ({pretrained or 'its own'}) are not cached and {how}: load them once on a "
            f"connected machine (open_clip.create_model({model!r}, pretrained={pretrained!r})) and copy the cache, or "
            f"pass model: local-dir:PATH (open_clip_config.json + weights) or pretrained: /path/to/weights.pt"
        ) from e


def logits_of(full: nn.Module) -> dict[str, float]:
    """The model's own logit scale (log-scale) and, for SigLIP models, bias."""
    return {n: float(getattr(full, n).detach()) for n in ("logit_scale", "logit_bias") if getattr(full, n, None) is not None}


class OpenCLIPTower(nn.Module):
    """Shared behaviour of both towers: freezing, and frozen towers stay in eval mode."""

    frozen: bool

    def freeze(self, freeze: bool) -> None:
        self.frozen = freeze
        if freeze:
            self.tower.requires_grad_(False)
        self.train()

    def train(self, mode: bool = True) -> "OpenCLIPTower":
        """Sets the training mode; a frozen tower stays in eval mode (no dropout)."""
        super().train(mode)
        if self.frozen:
            self.tower.eval()
        return self


@register_encoder("open_clip_image")
class OpenCLIPImageEncoder(OpenCLIPTower):
    """The image tower of an open_clip model (its projected image embedding).

    Input: float images [N, 3, H, W] in [0, 1]; resized (bicubic) to the tower's image size and
    normalised with its preprocessing mean/std here.

    Args:
        model: an open_clip architecture ("ViT-B-32", "RN50", "ViT-SO400M-14-SigLIP", ...),
            "hf-hub:org/repo" or "local-dir:PATH".
        pretrained: a pretrained tag of that architecture (e.g. "openai", "laion2b_s34b_b79k"),
            a local checkpoint file, or "" (no weights: random, or a local-dir's own).
        freeze: freeze the whole tower (only model.projection trains).
    """

    modality = "image"

    def __init__(self, *, model: str = DEFAULT_MODEL, pretrained: str = "", freeze: bool = False) -> None:
        super().__init__()
        full = load_open_clip("open_clip_image.model", model, pretrained)
        self.pretrained_logits = logits_of(full)
        self.tower = full.visual
        with torch.no_grad():
            size = self.tower.image_size
            self.image_size = tuple(size) if isinstance(size, (tuple, list)) else (size, size)
            self.output_dim = int(self.tower(torch.zeros(1, 3, *self.image_size)).shape[-1])
        cfg = getattr(self.tower, "preprocess_cfg", {})
        self.register_buffer("mean", torch.tensor(cfg.get("mean", self.tower.image_mean)).view(1, 3, 1, 1), persistent=False)
        self.register_buffer("std", torch.tensor(cfg.get("std", self.tower.image_std)).view(1, 3, 1, 1), persistent=False)
        self.freeze(freeze)

    def forward(self, images: Tensor) -> Tensor:
        if tuple(images.shape[-2:]) != self.image_size:
            images = F.interpolate(images, size=self.image_size, mode="bicubic", antialias=True, align_corners=False)
        return self.tower((images - self.mean) / self.std)  # [N, output_dim]


@register_encoder("open_clip_text")
class OpenCLIPTextEncoder(OpenCLIPTower):
    """The text tower of an open_clip model (its projected text embedding) with its own tokenizer.

    Captions are tokenized to the model's full context length (its positional embedding has
    that length); the mask marks the real tokens.

    Args:
        model: an open_clip architecture, "hf-hub:org/repo" or "local-dir:PATH" (see open_clip_image).
        pretrained: a pretrained tag, a local checkpoint file, or "" (no weights).
        freeze: freeze the whole tower (only model.projection trains).
    """

    modality = "text"

    def __init__(self, *, model: str = DEFAULT_MODEL, pretrained: str = "", freeze: bool = False) -> None:
        super().__init__()
        full = load_open_clip("open_clip_text.model", model, pretrained)
        self.pretrained_logits = logits_of(full)
        self.tokenizer = import_open_clip().get_tokenizer(model)
        full.visual = nn.Identity()  # the image tower is the other encoder's
        self.tower = full
        with torch.no_grad():
            self.output_dim = int(full.encode_text(self.tokenizer(["a"])).shape[-1])
        self.pad_id = int(getattr(self.tokenizer, "pad_id", 0) or 0)
        self.freeze(freeze)

    def tokenize(self, captions: Sequence[str]) -> TokenBatch:
        """The model's tokenizer, padded to its context length; mask = not padding."""
        ids = self.tokenizer(list(captions)).long()  # [M, context_length]
        return TokenBatch(ids, ids != self.pad_id)

    def forward(self, text: TokenBatch) -> Tensor:
        return self.tower.encode_text(text.ids)  # [M, output_dim]
