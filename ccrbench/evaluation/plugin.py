"""Retrieval metrics as an Avalanche evaluation-plugin metric.

Indexing happens here: the first time a task is evaluated after it was learned, its
test database embeddings are stored; later stages query that stored database under
the no-reindex policy, and a freshly embedded one under the reindex policy. Budgeted
partial-reindexing policies keep databases of their own that evolve stage by stage
(`reindexing.py`), and every stage also records the drift diagnostics (`diagnostics.py`).
Ranks and diagnostics are computed on the strategy's device (a GPU's matrix products);
stored databases live in CPU memory (bounded GPU memory, device-free checkpoints).
"""

from __future__ import annotations

import time
from typing import Any

from avalanche.evaluation.metric_definitions import PluginMetric

from ccrbench.evaluation.diagnostics import stage_diagnostics
from ccrbench.evaluation.protocol import DIRECTIONS, TaskEmbeddings, concat_tasks, metrics_from_ranks, stage_ranks
from ccrbench.evaluation.reindexing import RULES, BudgetedIndexes


class RetrievalMetrics(PluginMetric[dict]):
    """Known/unknown-task retrieval metrics under both indexing policies, after every stage.

    Args:
        ks: the K of Recall@K.
        directions: the directions this model answers ("i2t", "t2i" or both).
        reindex_budget: budgeted partial reindexing: per stage, fractions of the stored items
            (floats) or item counts (ints) to re-embed, one policy per budget and rule.
        reindex_rules: which items a budget re-embeds (see `evaluation/reindexing.py`).
        reindex_probe: fraction of every task's items probed by `most_drifted_first`.
        seed: seeds the random reindexing rule and the probe sets.
    """

    def __init__(
        self,
        *,
        ks: tuple[int, ...] = (1, 5, 10),
        directions: tuple[str, ...] = DIRECTIONS,
        reindex_budget: tuple[float, ...] = (),
        reindex_rules: tuple[str, ...] = RULES,
        reindex_probe: float = 0.05,
        seed: int = 0,
    ) -> None:
        super().__init__()
        self.ks = ks
        self.directions = directions
        self.budgeted = BudgetedIndexes(budgets=reindex_budget, rules=reindex_rules, seed=seed, probe=reindex_probe)
        self.timings: list[dict[str, float]] = []  # seconds per stage (results.json "timings", not in the stages)
        self._indexed_now: set[int] = set()
        self._embed_seconds, self._started = 0.0, 0.0
        self.stored: dict[int, TaskEmbeddings] = {}
        self.pending: set[int] = set()
        self.stages: list[dict[str, Any]] = []
        self.current: dict[int, TaskEmbeddings] = {}  # the last stage's databases, current encoders
        self._batches: list[TaskEmbeddings] = []

    def reset(self) -> None:
        self.current, self._batches = {}, []
        self._indexed_now, self._embed_seconds = set(), 0.0

    def result(self) -> dict[str, Any] | None:
        return self.stages[-1] if self.stages else None

    def state_dict(self) -> dict[str, Any]:
        """Stored databases (also those of partial reindexing), tasks awaiting indexing and every stage's metrics."""
        return {"stored": self.stored, "pending": self.pending, "stages": self.stages, "budgeted": self.budgeted.state_dict(), "timings": self.timings}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.stored, self.pending, self.stages = state["stored"], state["pending"], state["stages"]
        if "budgeted" in state:  # checkpoints written before partial reindexing have neither
            self.budgeted.load_state_dict(state["budgeted"])
            self.timings = state["timings"]

    def after_training_exp(self, strategy: Any) -> None:
        self.pending |= set(strategy.experience.task_labels)

    def before_eval(self, strategy: Any) -> None:
        self.reset()

    def before_eval_exp(self, strategy: Any) -> None:
        self._batches = []
        self._started = time.perf_counter()

    def after_eval_iteration(self, strategy: Any) -> None:
        image_emb, text_emb = strategy.mb_output
        self._batches.append(TaskEmbeddings(image_emb.detach(), text_emb.detach(), strategy.mb_text_to_image))  # on the device

    def after_eval_exp(self, strategy: Any) -> None:
        task = strategy.experience.task_label
        if task not in self.stored and task not in self.pending:
            raise ValueError(f"task {task} is evaluated before it was learned; evaluate only seen tasks")
        emb = concat_tasks(self._batches)  # batch-local caption links become database-wide, on the device
        self.current[task] = emb
        if task in self.pending:  # indexing: the database is stored as embedded right after learning
            emb = emb.to("cpu")
            self.stored[task] = emb
            self.pending.discard(task)
            self._indexed_now.add(task)
            self.budgeted.index(task, emb, strategy.clock.train_exp_counter - 1)
        self._batches = []
        self._embed_seconds += time.perf_counter() - self._started

    def after_eval(self, strategy: Any) -> None:
        """Computes this stage's metrics into `stages` (the runner logs them to TensorBoard)."""
        stage = strategy.clock.train_exp_counter - 1
        tasks = sorted(self.current)
        clock = [time.perf_counter()]
        on_cpu = {t: e.to("cpu") for t, e in self.current.items()}
        eligible, spent = self.budgeted.reindex(stage, on_cpu, [t for t in tasks if t not in self._indexed_now])
        clock.append(time.perf_counter())
        device = strategy.device
        stored = {t: self.stored[t].to(device) for t in tasks}
        partial = {name: {t: db[t].to(device) for t in tasks} for name, db in self.budgeted.databases.items()}
        ranks = stage_ranks(self.current, {"reindex": self.current, "noreindex": stored, **partial}, directions=self.directions)
        metrics = metrics_from_ranks(ranks, ks=self.ks)
        clock.append(time.perf_counter())
        diagnostics = stage_diagnostics(self.current, stored, ranks["reindex"], directions=self.directions)
        clock.append(time.perf_counter())
        cost = {"eligible": eligible, "items": {"reindex": eligible, "noreindex": 0, **spent}}
        self.stages.append({"stage": stage, "tasks": tasks, "metrics": metrics, "diagnostics": diagnostics, "reindex_cost": cost})
        items = sum(self.current[t].image.shape[0] for t in tasks)
        self.timings.append(
            {
                "stage": stage,
                "embed_s": self._embed_seconds,  # embedding every seen task's test items (data loading included)
                "embed_s_per_item": self._embed_seconds / items,
                "reindex_select_s": clock[1] - clock[0],  # choosing and copying the partial reindexes
                "metrics_s": clock[2] - clock[1],
                "diagnostics_s": clock[3] - clock[2],
            }
        )

    def __str__(self) -> str:
        return "Retrieval"
