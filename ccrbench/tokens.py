"""Text pieces shared by the data and the model layers: word splitting and a batch of token ids.

Neutral ground below benchmarks, models and strategies, so none of them imports another.
"""

from __future__ import annotations

import re
from typing import NamedTuple

import torch
from torch import Tensor

_TOKEN = re.compile(r"[a-z0-9]+|[^\sa-z0-9]")


def split_words(text: str) -> list[str]:
    """Lower-cased words and punctuation marks."""
    return _TOKEN.findall(text.lower())


class TokenBatch(NamedTuple):
    """Padded token ids of a batch of captions.

    Attributes:
        ids: LongTensor [M, L], 0 = padding.
        mask: BoolTensor [M, L], True on real tokens.
    """

    ids: Tensor
    mask: Tensor

    def to(self, device: torch.device | str, non_blocking: bool = False) -> "TokenBatch":
        return TokenBatch(self.ids.to(device, non_blocking=non_blocking), self.mask.to(device, non_blocking=non_blocking))
