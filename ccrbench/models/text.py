"""Text side: tokenisation and the biGRU encoder."""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Sequence
from typing import NamedTuple

import torch
from torch import Tensor, nn
from torch.nn.utils.rnn import pack_padded_sequence

from ccrbench.registry import register_encoder

_TOKEN = re.compile(r"[a-z0-9]+|[^\sa-z0-9]")


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


def split_words(text: str) -> list[str]:
    """Lower-cased words and punctuation marks."""
    return _TOKEN.findall(text.lower())


class Vocabulary:
    """Word <-> id mapping; id 0 is padding, id 1 stands for any unknown word.

    Args:
        words: the known words, in id order (after the two special tokens).
    """

    PAD, UNK = "<pad>", "<unk>"

    def __init__(self, words: Sequence[str]) -> None:
        self.words = [self.PAD, self.UNK, *[w for w in words if w not in (self.PAD, self.UNK)]]
        self.index = {w: i for i, w in enumerate(self.words)}

    @classmethod
    def from_corpus(cls, corpus: Sequence[str], *, min_count: int = 1) -> "Vocabulary":
        """Words seen at least `min_count` times, most frequent first (ties alphabetical)."""
        counts = Counter(w for text in corpus for w in split_words(text))
        return cls([w for w, c in sorted(counts.items(), key=lambda kv: (-kv[1], kv[0])) if c >= min_count])

    def __len__(self) -> int:
        return len(self.words)

    def encode(self, text: str) -> list[int]:
        return [self.index.get(w, 1) for w in split_words(text)]


def pad_batch(sequences: Sequence[Sequence[int]], *, max_length: int) -> TokenBatch:
    """Right-pads id sequences (truncated to `max_length`, at least one token each)."""
    seqs = [list(s[:max_length]) or [1] for s in sequences]
    length = max(len(s) for s in seqs)
    ids = torch.zeros(len(seqs), length, dtype=torch.long)
    for i, s in enumerate(seqs):
        ids[i, : len(s)] = torch.tensor(s, dtype=torch.long)
    return TokenBatch(ids, ids != 0)


@register_encoder("bigru")
class BiGRUTextEncoder(nn.Module):
    """Bidirectional GRU over word embeddings; the caption is the final states of both directions.

    The vocabulary is built from the benchmark's training captions; unseen words map to <unk>.

    Args:
        word_dim: word embedding size.
        hidden_dim: GRU state size per direction (the output is 2 * hidden_dim).
        num_layers: stacked GRU layers.
        min_count: words rarer than this in the training captions become <unk>.
        max_length: captions are truncated to this many tokens.
        corpus: training captions (passed by the suite, not a config key).
    """

    modality = "text"

    def __init__(
        self,
        *,
        word_dim: int = 64,
        hidden_dim: int = 128,
        num_layers: int = 1,
        min_count: int = 1,
        max_length: int = 64,
        corpus: Sequence[str] = (),
    ) -> None:
        super().__init__()
        self.vocab = Vocabulary.from_corpus(corpus, min_count=min_count)
        self.max_length = max_length
        self.embed = nn.Embedding(len(self.vocab), word_dim, padding_idx=0)
        self.gru = nn.GRU(word_dim, hidden_dim, num_layers, batch_first=True, bidirectional=True)
        self.output_dim = 2 * hidden_dim

    def tokenize(self, captions: Sequence[str]) -> TokenBatch:
        return pad_batch([self.vocab.encode(c) for c in captions], max_length=self.max_length)

    def forward(self, text: TokenBatch) -> Tensor:
        lengths = text.mask.sum(1).cpu()  # [M]
        packed = pack_padded_sequence(self.embed(text.ids), lengths, batch_first=True, enforce_sorted=False)
        _, h = self.gru(packed)  # h: [2 * layers, M, H]
        return torch.cat([h[-2], h[-1]], dim=1)  # [M, 2H]

    def get_extra_state(self) -> dict:
        return {"vocab": self.vocab.words[2:]}

    def set_extra_state(self, state: dict) -> None:
        vocab = Vocabulary(state["vocab"])
        if len(vocab) != self.embed.num_embeddings:
            raise ValueError(
                f"checkpoint vocabulary has {len(vocab)} words but the model was built with "
                f"{self.embed.num_embeddings}: it was trained on other captions"
            )
        self.vocab = vocab
