"""The encoder contract: what `TwoBranchModel` and the runner rely on in a registered encoder.

An encoder is registered with `@register_encoder(name)` on a class whose keyword-only,
type-hinted constructor parameters are its config keys (plus the context the suite
passes: `corpus`, every task's training captions). tests/models/test_every_encoder.py
checks every registered encoder against these protocols.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any, Literal, Protocol, runtime_checkable

from torch import Tensor

from ccrbench.tokens import TokenBatch


@runtime_checkable
class Encoder(Protocol):
    """An `nn.Module` turning a batch of one modality into features.

    Attributes:
        modality: "image" or "text": the branch it can be used in.
        output_dim: F, the width of the features it returns.
    """

    modality: Literal["image", "text"]
    output_dim: int

    def __call__(self, inputs: Any) -> Tensor:
        """Features [N, output_dim] of a batch of N inputs."""
        ...

    def state_dict(self, *args: Any, **kwargs: Any) -> Mapping[str, Any]:
        """Everything needed to restore it (a freshly built encoder with the same options
        loads it and then gives the same outputs)."""
        ...


@runtime_checkable
class ImageEncoder(Encoder, Protocol):
    """An image-side encoder: images [N, 3, H, W] in [0, 1] (or, for feature encoders,
    precomputed features [N, input_dim]) -> [N, output_dim]."""

    modality: Literal["image"]


@runtime_checkable
class TextEncoder(Encoder, Protocol):
    """A text-side encoder with its own tokenizer: captions -> TokenBatch -> [M, output_dim]."""

    modality: Literal["text"]

    def tokenize(self, captions: Sequence[str]) -> TokenBatch:
        """Token ids [M, L] and mask [M, L] of M captions (padding where the mask is False)."""
        ...


@runtime_checkable
class GrowingVocabulary(Protocol):
    """A text encoder whose vocabulary may grow with the tasks seen (see `bigru`'s `vocabulary`)."""

    def learn_vocabulary(self, captions: Sequence[str]) -> None:
        """Takes in the words of a task's training captions before training on it."""
        ...
