"""Typed names of what results.json stores: metric keys and indexing policies.

Metric keys: `i2t_r10` (direction, measure, K), `t2i_medr`, `rsum` (the sum of every R@K of
both directions), and without a direction the measure a report is about (`r10`, `medr`).
Indexing policies: `reindex`, `noreindex`, and partial reindexing `budget0.25_random` (a
fraction of the stored items) or `budget100items_oldest_first` (a count) with its selection
rule. Their string forms are those of results.json and of the TensorBoard tags; only this
module takes them apart.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass, replace

from ccrbench.evaluation.measures import MEASURES

DIRECTIONS = ("i2t", "t2i")
POLICIES = ("reindex", "noreindex")
POLICY_LABELS = {"reindex": "reindex", "noreindex": "no reindex"}  # how reports and TensorBoard name them
RSUM = "rsum"
ALL_TASKS = "all"  # the stage records' key of the search over every task's database (unknown task)
AVERAGE = "average"  # ... and of the mean over tasks, each searched in its own database (known task)
RULES = ("oldest_first", "random", "most_drifted_first")  # partial reindexing's selection rules
# The drift diagnostics of evaluation/diagnostics.py: results.json key and how reports name it.
DIAGNOSTICS = (
    ("image_drift", "image drift: cos(stored, current)"),
    ("text_drift", "caption drift: cos(stored, current)"),
    ("pair_sim", "true-pair similarity, current encoders"),
    ("i2t_pair_sim_noreindex", "true-pair similarity, current image vs stored caption"),
    ("t2i_pair_sim_noreindex", "true-pair similarity, stored image vs current caption"),
    ("i2t_margin", "i2t margin over the hardest in-task negative"),
    ("t2i_margin", "t2i margin over the hardest in-task negative"),
    ("i2t_margin_noreindex", "i2t margin, no-reindex pairing"),
    ("t2i_margin_noreindex", "t2i margin, no-reindex pairing"),
    ("i2t_cross_top10", "i2t top-10 from other tasks (all-task search)"),
    ("t2i_cross_top10", "t2i top-10 from other tasks (all-task search)"),
    ("i2t_cross_miss_share", "i2t all-task misses (R@10) caused by other tasks"),
    ("t2i_cross_miss_share", "t2i all-task misses (R@10) caused by other tasks"),
)
MODEL_SEPARATOR = "_model_"  # a decoupled run's diagnostics carry their model: "i2t_model_image_drift"


@dataclass(frozen=True)
class MetricKey:
    """A metric of results.json, e.g. `i2t_r10` = MetricKey("r", "i2t", 10).

    Attributes:
        measure: a name of `measures.MEASURES`, or "rsum".
        direction: "i2t", "t2i", or None (rsum; a measure not tied to a direction yet).
        k: the K of a per-K measure (R@K), else None.
    """

    measure: str
    direction: str | None = None
    k: int | None = None

    @classmethod
    def parse(cls, text: str) -> MetricKey:
        """`i2t_r10`, `t2i_medr`, `rsum`, `r10`, `meanr` as a key; ValueError when `text` is none."""
        direction, _, rest = text.partition("_") if text.partition("_")[0] in DIRECTIONS else (None, "", text)
        if rest == RSUM and direction is None:
            return cls(RSUM)
        name, digits = re.fullmatch(r"(.*?)(\d*)", rest).groups()
        m = MEASURES.get(name)
        if m is None or m.per_k != bool(digits):
            known = ", ".join(f"{n}K" if v.per_k else n for n, v in MEASURES.items())
            raise ValueError(f"{text!r} is not a metric key: expected [i2t_|t2i_] followed by one of {known}, or {RSUM}")
        return cls(name, direction, int(digits) if digits else None)

    def format(self) -> str:
        """The string form (results.json's key)."""
        return (f"{self.direction}_" if self.direction else "") + self.measure + ("" if self.k is None else str(self.k))

    __str__ = format

    @property
    def higher_is_better(self) -> bool:
        return True if self.measure == RSUM else MEASURES[self.measure].higher_is_better

    @property
    def is_recall(self) -> bool:
        """An R@K."""
        return self.measure == "r"

    @property
    def title(self) -> str:
        """`i2t R@10`, `t2i median rank`, `rsum`."""
        name = RSUM if self.measure == RSUM else MEASURES[self.measure].title.format(k=self.k)
        return f"{self.direction or ''} {name}".strip()

    def with_direction(self, direction: str | None) -> MetricKey:
        """This measure in `direction` (None: without a direction, e.g. `r10`)."""
        return replace(self, direction=direction)


def measure_keys(ks: Iterable[int]) -> list[MetricKey]:
    """Every registered measure without a direction, a per-K one for each K: r1, r5, r10, medr, meanr."""
    ks = list(ks)
    return [MetricKey(name, None, k) for name, m in MEASURES.items() for k in (ks if m.per_k else [None])]


def model_diagnostic(direction: str, key: str) -> str:
    """The key of diagnostic `key` of the model answering `direction` in a decoupled run: "i2t_model_image_drift"."""
    return f"{direction}{MODEL_SEPARATOR}{key}"


def split_model(key: str) -> tuple[str | None, str]:
    """"i2t_model_image_drift" -> ("i2t", "image_drift"); "image_drift" -> (None, "image_drift")."""
    model, _, base = key.rpartition(MODEL_SEPARATOR)
    return model or None, base


def parse_keys(keys: Iterable[str]) -> list[MetricKey]:
    """Each of `keys` as a MetricKey, in order."""
    return [MetricKey.parse(k) for k in keys]


@dataclass(frozen=True)
class IndexingPolicy:
    """How the database is kept after each stage, e.g. `budget0.25_random` = IndexingPolicy("budget", 0.25, "random").

    Attributes:
        kind: "reindex" (every item re-embedded), "noreindex" (none), or "budget" (some).
        budget: a fraction of the stored items (float) or an item count (int); budget only.
        rule: which items a budget re-embeds (`reindexing.RULES`); budget only.
    """

    kind: str
    budget: float | int | None = None
    rule: str | None = None

    @classmethod
    def parse(cls, text: str) -> IndexingPolicy:
        """`reindex`, `noreindex`, `budget0.25_random`, `budget100items_oldest_first`; ValueError otherwise."""
        if text in POLICIES:
            return cls(text)
        found = re.fullmatch(r"budget(\d+items|[0-9.e+-]+)_(\w+)", text)
        if found is None:
            raise ValueError(f"{text!r} is not an indexing policy: expected {', '.join(POLICIES)} or budget<fraction|Nitems>_<rule>")
        size, rule = found.groups()
        return cls("budget", int(size.removesuffix("items")) if size.endswith("items") else float(size), rule)

    def format(self) -> str:
        """The string form (results.json's key): a float budget is a fraction, an int a count."""
        if self.kind != "budget":
            return self.kind
        size = f"{self.budget:g}" if isinstance(self.budget, float) else f"{self.budget}items"
        return f"budget{size}_{self.rule}"

    __str__ = format

    @property
    def title(self) -> str:
        """`no reindex`, `25% budget, most drifted first`, `100-item budget, random`."""
        if self.kind != "budget":
            return POLICY_LABELS[self.kind]
        size = f"{self.budget:.0%} budget" if isinstance(self.budget, float) else f"{self.budget}-item budget"
        return f"{size}, {self.rule.replace('_', ' ')}"
