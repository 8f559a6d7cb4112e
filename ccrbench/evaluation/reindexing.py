"""Budgeted partial reindexing: policies between the paper's "reindex" and "no reindex".

After each stage a policy re-embeds only a budget of the items stored before it (an item
is one image with its captions), chosen by a rule, and keeps the other items' embeddings
as they were. Budget 0 is "no reindex", budget 1 (every item) is "reindex". Rules:

- `oldest_first`: the items whose stored embedding is the oldest (ties: task, then row order);
  with a constant budget this cycles through the database.
- `random`: a uniform sample (seeded by the run seed and the stage; a larger budget's sample
  contains a smaller one's).
- `most_drifted_first`: a probe set (`probe`, a fraction of every task's items, at least one)
  is re-embedded at every stage and remembered; the drift of any other item is estimated
  without re-embedding it, as the mean drift of its `PROBE_NEIGHBOURS` most similar probe items
  between the stage the item was last embedded and now (in the embedding space of that
  stage; images and captions separately, the item's drift being the mean of both). The
  probe items are part of the budget (written to the database too; when they outnumber the
  budget all of them are still re-embedded and counted); the rest of the budget goes to the
  highest estimates. This orders re-embedding by estimated drift as FastFill (Jaeckle et
  al., ICLR 2023) orders its backfilling, with a nearest-probe estimate instead of a learned
  uncertainty.

Re-embedding an item here means taking the embedding the current encoders already computed
for the evaluation; its cost is counted all the same (items per stage).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor

from ccrbench.evaluation.keys import RULES, IndexingPolicy
from ccrbench.evaluation.protocol import TaskEmbeddings

PROBE_NEIGHBOURS = 5


def policy_name(budget: float, rule: str) -> str:
    """E.g. budget0.25_random (a fraction of the stored items) or budget100items_random (a count)."""
    return IndexingPolicy("budget", budget, rule).format()


def budget_items(budget: float, eligible: int) -> int:
    """Items to re-embed out of `eligible`: a float is a fraction, an int a count."""
    return min(eligible, round(budget * eligible) if isinstance(budget, float) else budget)


def knn_drift(stored: Tensor, probe_then: Tensor, probe_now: Tensor, *, k: int = PROBE_NEIGHBOURS) -> Tensor:
    """Estimated drift (1 - cosine) of items from that of their nearest probe items.

    Args:
        stored: [N, D] the items' embeddings, computed at some earlier stage.
        probe_then: [P, D] the probe items' embeddings at that same stage.
        probe_now: [P, D] the probe items' embeddings now.
        k: probe neighbours averaged (at most P).

    Returns:
        [N] the mean drift of each item's k most similar probe items.
    """
    probe_drift = 1 - F.cosine_similarity(probe_then, probe_now, dim=1)  # [P]
    neighbours = (F.normalize(stored, dim=1) @ F.normalize(probe_then, dim=1).T).topk(min(k, probe_then.shape[0]), dim=1).indices
    return probe_drift[neighbours].mean(1)  # [N]


def select_items(rule: str, count: int, ages: Tensor, *, generator: torch.Generator, estimates: Tensor | None = None, forced: Tensor | None = None) -> Tensor:
    """Indices of the items to re-embed, out of E eligible ones.

    Args:
        rule: one of RULES.
        count: how many (at most E).
        ages: LongTensor [E], the stage each item was last embedded at.
        generator: the random rule's source of randomness.
        estimates: most_drifted_first: [E] estimated drift.
        forced: most_drifted_first: indices always taken (the probe items).
    """
    if rule == "oldest_first":
        return torch.argsort(ages, stable=True)[:count]
    if rule == "random":
        return torch.randperm(ages.shape[0], generator=generator)[:count]
    if rule != "most_drifted_first":
        raise ValueError(f"unknown reindex rule {rule!r}; expected one of {RULES}")
    order = torch.argsort(estimates.index_fill(0, forced, math.inf), descending=True, stable=True)
    return order[: max(count, forced.numel())]


def refresh(stored: TaskEmbeddings, current: TaskEmbeddings, items: Tensor) -> TaskEmbeddings:
    """`stored` with the given image rows and all their captions taken from `current`."""
    image, text = stored.image.clone(), stored.text.clone()
    image[items] = current.image[items]
    captions = torch.isin(stored.text_to_image, items)
    text[captions] = current.text[captions]
    return TaskEmbeddings(image, text, stored.text_to_image)


class BudgetedIndexes:
    """The databases of every (budget, rule) policy, evolving stage by stage.

    Args:
        budgets: fractions of the stored items (floats in [0, 1]) or item counts (ints).
        rules: selection rules (see RULES).
        seed: seeds the random rule and the probe sets.
        probe: most_drifted_first: fraction of every task's items in its probe set.
    """

    def __init__(self, *, budgets: Sequence[float], rules: Sequence[str], seed: int = 0, probe: float = 0.05) -> None:
        self.policies = {policy_name(b, r): (b, r) for b in budgets for r in rules}
        self.seed = seed
        self.probe = probe
        self.databases: dict[str, dict[int, TaskEmbeddings]] = {name: {} for name in self.policies}
        self.ages: dict[str, dict[int, Tensor]] = {name: {} for name in self.policies}
        self.probes: dict[int, Tensor] = {}  # task -> probe image rows
        self.history: dict[int, dict[int, TaskEmbeddings]] = {}  # task -> stage -> probe embeddings then

    @property
    def probing(self) -> bool:
        return any(rule == "most_drifted_first" and budget != 0 for budget, rule in self.policies.values())

    def state_dict(self) -> dict[str, Any]:
        return {"databases": self.databases, "ages": self.ages, "probes": self.probes, "history": self.history}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.databases, self.ages, self.probes, self.history = (state[k] for k in ("databases", "ages", "probes", "history"))

    def index(self, task: int, emb: TaskEmbeddings, stage: int) -> None:
        """Stores a newly learned task's database in every policy (embedded at `stage`)."""
        for name in self.policies:
            self.databases[name][task] = emb
            self.ages[name][task] = torch.full((emb.image.shape[0],), stage)
        if self.probing:
            n = emb.image.shape[0]
            g = torch.Generator().manual_seed(self.seed * 1_000_003 + task)
            self.probes[task] = torch.randperm(n, generator=g)[: max(1, math.ceil(self.probe * n))].sort().values
            self.history[task] = {stage: _rows(emb, self.probes[task])}

    def reindex(self, stage: int, current: dict[int, TaskEmbeddings], old_tasks: Sequence[int]) -> tuple[int, dict[str, int]]:
        """Re-embeds each policy's budget among the items of `old_tasks` (indexed before `stage`).

        Returns:
            The number of eligible items and, per policy, how many it re-embedded.
        """
        old_tasks = sorted(old_tasks)
        sizes = [current[t].image.shape[0] for t in old_tasks]
        eligible = sum(sizes)
        if self.probing:
            for t in old_tasks:
                self.history[t][stage] = _rows(current[t], self.probes[t])
        spent = {}
        for name, (budget, rule) in self.policies.items():
            count = budget_items(budget, eligible)
            if count == 0:
                spent[name] = 0
                continue
            ages = torch.cat([self.ages[name][t] for t in old_tasks])  # count > 0: some task is old
            estimates = forced = None
            if rule == "most_drifted_first":
                estimates = torch.cat([self._estimate(name, t, stage) for t in old_tasks])
                offsets = [sum(sizes[:i]) for i in range(len(sizes))]
                forced = torch.cat([self.probes[t] + o for t, o in zip(old_tasks, offsets)])
            generator = torch.Generator().manual_seed(self.seed * 1_000_003 + 7919 * stage)  # the same draw for every budget
            chosen = select_items(rule, count, ages, generator=generator, estimates=estimates, forced=forced)
            start = 0
            for t, size in zip(old_tasks, sizes):
                mine = chosen[(chosen >= start) & (chosen < start + size)] - start
                if mine.numel():
                    self.databases[name][t] = refresh(self.databases[name][t], current[t], mine)
                    self.ages[name][t] = self.ages[name][t].index_fill(0, mine, stage)
                start += size
            spent[name] = chosen.numel()
        return eligible, spent

    def _estimate(self, name: str, task: int, stage: int) -> Tensor:
        """Estimated drift [N] of every item of `task` in policy `name`'s database."""
        stored, ages = self.databases[name][task], self.ages[name][task]
        now = self.history[task][stage]
        image_drift = torch.zeros(ages.shape[0])
        text_drift = torch.zeros(stored.text.shape[0])
        caption_ages = ages[stored.text_to_image]
        for age in ages.unique().tolist():
            then = self.history[task][age]
            rows, captions = ages == age, caption_ages == age
            image_drift[rows] = knn_drift(stored.image[rows], then.image, now.image)
            text_drift[captions] = knn_drift(stored.text[captions], then.text, now.text)
        per_image = torch.zeros(ages.shape[0]).index_add_(0, stored.text_to_image, text_drift)
        counts = torch.bincount(stored.text_to_image, minlength=ages.shape[0]).clamp(min=1)
        return (image_drift + per_image / counts) / 2


def _rows(emb: TaskEmbeddings, images: Tensor) -> TaskEmbeddings:
    """The given image rows and their captions (caption links renumbered)."""
    captions = torch.isin(emb.text_to_image, images)
    remap = torch.full((emb.image.shape[0],), -1, dtype=torch.long).index_copy_(0, images, torch.arange(images.numel()))
    return TaskEmbeddings(emb.image[images], emb.text[captions], remap[emb.text_to_image[captions]])
