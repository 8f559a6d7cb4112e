"""Text side: tokenisation and the biGRU encoder."""

from __future__ import annotations

import warnings
from collections import Counter
from collections.abc import Iterable, Sequence
from typing import Annotated, Literal

import torch
from annotated_types import Ge
from torch import Tensor, nn
from torch.nn.utils.rnn import pack_padded_sequence

from ccrbench.registry import register_encoder
from ccrbench.tokens import TokenBatch, split_words


class Vocabulary:
    """Word <-> id mapping; id 0 is padding, id 1 stands for any unknown word.

    Args:
        words: the known words, in id order (after the two special tokens).
    """

    PAD, UNK = "<pad>", "<unk>"
    SPECIAL = (PAD, UNK)

    def __init__(self, words: Sequence[str]) -> None:
        self.words = [*self.SPECIAL, *[w for w in words if w not in self.SPECIAL]]
        self.index = {w: i for i, w in enumerate(self.words)}

    @classmethod
    def from_corpus(cls, corpus: Sequence[str], *, min_count: int = 1) -> "Vocabulary":
        """Words seen at least `min_count` times, most frequent first (ties alphabetical)."""
        return cls(frequent_words(word_counts(corpus), min_count=min_count))

    def __len__(self) -> int:
        return len(self.words)

    def encode(self, text: str) -> list[int]:
        return [self.index.get(w, 1) for w in split_words(text)]


def word_counts(corpus: Iterable[str]) -> Counter[str]:
    """How often each word occurs in the texts."""
    return Counter(w for text in corpus for w in split_words(text))


def frequent_words(counts: Counter[str], *, min_count: int) -> list[str]:
    """Words counted at least `min_count` times, most frequent first (ties alphabetical)."""
    return [w for w, c in sorted(counts.items(), key=lambda kv: (-kv[1], kv[0])) if c >= min_count]


def pad_batch(sequences: Sequence[Sequence[int]], *, max_length: int) -> TokenBatch:
    """Right-pads id sequences (truncated to `max_length`, at least one token each)."""
    seqs = [list(s[:max_length]) or [1] for s in sequences]
    length = max(len(s) for s in seqs)
    ids = torch.tensor([s + [0] * (length - len(s)) for s in seqs], dtype=torch.long)  # [M, L], one tensor made, not M
    return TokenBatch(ids, ids != 0)


@register_encoder("bigru")
class BiGRUTextEncoder(nn.Module):
    """Bidirectional GRU over word embeddings; the caption is the final states of both directions.

    Words outside the vocabulary map to <unk>. Which training captions build the vocabulary
    is part of the continual-learning protocol (`vocabulary`):

    - "all_tasks": built once from every task's training captions before task 1, so later
      tasks' word counts decide which early words are known (the common practice, and
      what the shipped configs use; the embedding has one row per word).
    - "seen_tasks": grows before each training stage with the words of the captions of
      the tasks about to be trained (`learn_vocabulary`, called by the runner); nothing
      of a future task is known. The embedding reserves `max_words` rows up front, so
      parameter shapes never change (optimizer state, EWC/MAS importances and LwF's old
      model stay valid); a new word takes the next free row. The vocabulary and the word
      counts are in the state dict, so a resumed run continues it exactly.

    Args:
        word_dim: word embedding size.
        hidden_dim: GRU state size per direction (the output is 2 * hidden_dim).
        num_layers: stacked GRU layers.
        min_count: words seen fewer times than this in the vocabulary's captions become <unk>.
        max_length: captions are truncated to this many tokens.
        vocabulary: "all_tasks" or "seen_tasks" (see above).
        max_words: with "seen_tasks", the number of words the vocabulary can grow to
            (words beyond it stay <unk>, with a warning); not used with "all_tasks".
        corpus: every task's training captions (passed by the suite, not a config key;
            read only with "all_tasks").
    """

    modality = "text"

    def __init__(
        self,
        *,
        word_dim: Annotated[int, Ge(1)] = 64,
        hidden_dim: Annotated[int, Ge(1)] = 128,
        num_layers: Annotated[int, Ge(1)] = 1,
        min_count: Annotated[int, Ge(1)] = 1,
        max_length: Annotated[int, Ge(1)] = 64,
        vocabulary: Literal["all_tasks", "seen_tasks"] = "all_tasks",
        max_words: Annotated[int, Ge(1)] = 10000,
        corpus: Sequence[str] = (),
    ) -> None:
        super().__init__()
        self.growing = vocabulary == "seen_tasks"
        self.min_count = min_count
        self.counts: Counter[str] = Counter()  # words of the captions learned so far ("seen_tasks")
        self.vocab = Vocabulary(()) if self.growing else Vocabulary.from_corpus(corpus, min_count=min_count)
        self.max_length = max_length
        rows = len(Vocabulary.SPECIAL) + max_words if self.growing else len(self.vocab)
        self.embed = nn.Embedding(rows, word_dim, padding_idx=0)
        self.gru = nn.GRU(word_dim, hidden_dim, num_layers, batch_first=True, bidirectional=True)
        self.output_dim = 2 * hidden_dim

    def tokenize(self, captions: Sequence[str]) -> TokenBatch:
        return pad_batch([self.vocab.encode(c) for c in captions], max_length=self.max_length)

    def learn_vocabulary(self, captions: Sequence[str]) -> None:
        """With "seen_tasks", adds the words of a task's training captions that are now seen
        `min_count` times (most frequent first, ties alphabetical); with "all_tasks", nothing."""
        if not self.growing:
            return
        self.counts.update(word_counts(captions))
        new = [w for w in frequent_words(self.counts, min_count=self.min_count) if w not in self.vocab.index]
        free = self.embed.num_embeddings - len(self.vocab)
        if len(new) > free:
            warnings.warn(
                f"bigru: the vocabulary is full ({free + len(self.vocab) - len(Vocabulary.SPECIAL)} words); "
                f"{len(new) - free} new words stay <unk>: raise model.text_encoder.max_words",
                stacklevel=2,
            )
        self.vocab = Vocabulary([*self.vocab.words[len(Vocabulary.SPECIAL) :], *new[:free]])

    def forward(self, text: TokenBatch) -> Tensor:
        lengths = text.mask.sum(1).cpu()  # [M]
        packed = pack_padded_sequence(self.embed(text.ids), lengths, batch_first=True, enforce_sorted=False)
        _, h = self.gru(packed)  # h: [2 * layers, M, H]
        return torch.cat([h[-2], h[-1]], dim=1)  # [M, 2H]

    def get_extra_state(self) -> dict:
        words = self.vocab.words[len(Vocabulary.SPECIAL) :]
        return {"vocab": words, "counts": dict(self.counts)} if self.growing else {"vocab": words}

    def set_extra_state(self, state: dict) -> None:
        vocab = Vocabulary(state["vocab"])
        if self.growing != ("counts" in state):
            raise ValueError(
                f"checkpoint vocabulary is {'growing' if 'counts' in state else 'built from all tasks'} but the model "
                f"was built with vocabulary {'seen_tasks' if self.growing else 'all_tasks'}"
            )
        if len(vocab) > self.embed.num_embeddings or (not self.growing and len(vocab) != self.embed.num_embeddings):
            raise ValueError(
                f"checkpoint vocabulary has {len(vocab)} words but the model was built with "
                f"{self.embed.num_embeddings}: it was trained on other captions"
            )
        self.vocab = vocab
        self.counts = Counter(state.get("counts", {}))
