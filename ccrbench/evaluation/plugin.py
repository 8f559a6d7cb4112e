"""Retrieval metrics as an Avalanche evaluation-plugin metric.

Indexing happens here: the first time a task is evaluated after it was learned, its
test database embeddings are stored; later stages query that stored database under
the no-reindex policy, and a freshly embedded one under the reindex policy. Budgeted
partial-reindexing policies keep databases of their own that evolve stage by stage
(`reindexing.py`), and every stage also records the drift diagnostics (`diagnostics.py`).
Ranks and diagnostics are computed on the strategy's device (a GPU's matrix products);
stored databases live in CPU memory (bounded GPU memory, device-free checkpoints).

Every value reaches Avalanche's loggers as a `MetricValue` named by Avalanche's convention
(`metric_names`): `R@10_i2t_noreindex/eval_phase/test_stream/Task001`, `.../average` (known
task, mean over the learned tasks), `.../all_tasks` (unknown task: the union), plus
`Forgetting_...` of every learned task; `x_plot` is the number of tasks learned.

Tasks not learned yet (full-stream evaluation) are measured apart (`unlearned`; evaluated before
any training they give the matrices' row 0), and so are held-out retention sets, never trained
on: the experiences of a stream named `retention` (`retention_stream`), one per set, each indexed at its first evaluation (`.../retention_stream/<label>`, and `Retention_...`:
the change since that first evaluation).
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from typing import Any

from avalanche.evaluation.metric_definitions import PluginMetric
from avalanche.evaluation.metric_results import MetricValue
from avalanche.evaluation.metric_utils import stream_type

from ccrbench.evaluation import continual
from ccrbench.evaluation.diagnostics import stage_diagnostics
from ccrbench.evaluation.keys import ALL_TASKS, AVERAGE, RULES, MetricKey
from ccrbench.evaluation.protocol import DIRECTIONS, TaskEmbeddings, concat_tasks, metrics_from_ranks, stage_ranks
from ccrbench.evaluation.reindexing import BudgetedIndexes

RETENTION_STREAM = "retention"  # the name of the stream of held-out retention sets


def retention_stream(held_out: Sequence[Any]) -> Any:
    """The stream of held-out retention sets that `RetrievalMetrics` measures apart: one experience
    per set, each holding every experience of one evaluation stream (e.g. another benchmark's
    `test_stream`: all its tasks, one database). Give `RetrievalMetrics(retention=...)` their labels."""
    from avalanche.benchmarks.scenarios.dataset_scenario import benchmark_from_datasets
    from avalanche.benchmarks.utils import AvalancheDataset

    data = [AvalancheDataset([exp.dataset for exp in stream]) for stream in held_out]
    return getattr(benchmark_from_datasets(**{RETENTION_STREAM: data}), f"{RETENTION_STREAM}_stream")

def metric_label(key: str, policy: str) -> str:
    """Avalanche's name of a metric key under a policy: i2t_r10 -> R@10_i2t_noreindex, t2i_medr -> medr_t2i_reindex, rsum -> rsum_reindex."""
    parsed = MetricKey.parse(key)
    measure = f"R@{parsed.k}" if parsed.is_recall else parsed.measure
    return "_".join(part for part in (measure, parsed.direction, policy) if part)


def scope_label(scope: str) -> str:
    """Task "1" -> Task001 (Avalanche's task suffix), "average" -> average, "all" -> all_tasks."""
    return f"Task{int(scope):03d}" if scope.isdigit() else {ALL_TASKS: "all_tasks"}.get(scope, scope)


def task_forgetting(history: list[dict[str, dict[str, dict[str, float]]]]) -> dict[str, dict[str, dict[str, float]]]:
    """{policy: {scope: {key: forgetting}}} after the last of the stage metrics `history`: per task learned
    before it, `continual.task_forgetting` (its best earlier value minus its value now), and "average",
    their mean (docs/metrics.md's forgetting, stage by stage)."""
    now = history[-1]
    num_tasks = 1 + max(int(scope) for scopes in now.values() for scope in scopes if scope.isdigit())
    matrices = continual.stage_matrices([{"metrics": m} for m in history], num_tasks, policies=now)
    out: dict[str, dict[str, dict[str, float]]] = {}
    for policy, by_key in matrices.items():
        per_key = {k: continual.task_forgetting(m, higher_is_better=MetricKey.parse(k).higher_is_better) for k, m in by_key.items()}
        old = [t for t in range(num_tasks) if not continual.missing(next(iter(per_key.values()))[t])]  # learned before now
        per_task = {str(t): {k: values[t] for k, values in per_key.items()} for t in old}
        if per_task:
            out[policy] = {**per_task, AVERAGE: {k: continual.mean(t[k] for t in per_task.values()) for k in per_key}}
    return out


def metric_values(origin: Any, metrics: dict[str, dict[str, dict[str, float]]], *, prefix: str, stream: str, x_plot: int) -> list[MetricValue]:
    """MetricValues of {policy: {scope: {key: value}}}, e.g. `{prefix}R@10_i2t_noreindex/eval_phase/test_stream/Task001`."""
    return [
        MetricValue(origin, f"{prefix}{metric_label(key, policy)}/eval_phase/{stream}_stream/{scope_label(scope)}", float(value), x_plot)
        for policy, scopes in metrics.items()
        for scope, values in scopes.items()
        for key, value in values.items()
    ]


class RetrievalMetrics(PluginMetric[dict]):
    """Known/unknown-task retrieval metrics under both indexing policies, after every stage.

    `strategy.eval(benchmark.test_stream)` may evaluate tasks not learned yet: they are measured
    with the current encoders against their own database (both policies coincide before a task is
    indexed) and kept apart, in `unlearned` (the upper triangle of the task x stage matrix); the
    stage records in `stages` hold the learned tasks only. Evaluating again in the same stage
    replaces that stage's record; a task's no-reindex database is stored once, at its first
    evaluation after it was learned.

    Args:
        ks: the K of Recall@K.
        directions: the directions this model answers ("i2t", "t2i" or both).
        reindex_budget: budgeted partial reindexing: per stage, fractions of the stored items
            (floats) or item counts (ints) to re-embed, one policy per budget and rule.
        reindex_rules: which items a budget re-embeds (see `evaluation/reindexing.py`).
        reindex_probe: fraction of every task's items probed by `most_drifted_first`.
        seed: seeds the random reindexing rule and the probe sets.
        retention: the labels of the held-out retention sets, in the order of the `retention`
            stream's experiences.
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
        retention: tuple[str, ...] = (),
    ) -> None:
        super().__init__()
        self.ks = ks
        self.directions = directions
        self.budgeted = BudgetedIndexes(budgets=reindex_budget, rules=reindex_rules, seed=seed, probe=reindex_probe)
        self.timings: list[dict[str, float]] = []  # seconds per stage (results.json "timings", not in the stages)
        self.indexed_at: dict[int, int] = {}  # task -> the stage its database was stored at
        self._embed_seconds, self._started = 0.0, 0.0
        self.stored: dict[int, TaskEmbeddings] = {}
        self.pending: set[int] = set()
        self.stages: list[dict[str, Any]] = []
        self.unlearned: list[dict[str, Any]] = []  # per evaluation: tasks not learned yet ({stage, tasks_learned, metrics})
        self.current: dict[int, TaskEmbeddings] = {}  # the last evaluation's databases, current encoders
        self._batches: list[TaskEmbeddings] = []
        self.retention_labels = retention
        self.retention_stored: dict[int, TaskEmbeddings] = {}  # set -> its database as first embedded (stage 0)
        self.retention: list[dict[str, Any]] = []  # per stage: {stage, tasks_learned, metrics: {policy: {label: {key: value}}}}
        self._retention_now: dict[int, TaskEmbeddings] = {}

    def reset(self) -> None:
        self.current, self._batches, self._retention_now = {}, [], {}
        self._embed_seconds = 0.0

    def before_eval(self, strategy: Any) -> None:
        """Starts an evaluation; one of the retention sets keeps the tasks' last embeddings (`current`)."""
        first = next(iter(strategy.current_eval_stream), None)
        if first is not None and stream_type(first) == RETENTION_STREAM:
            self._batches, self._retention_now = [], {}
        else:
            self.reset()

    def result(self) -> dict[str, Any] | None:
        return self.stages[-1] if self.stages else None

    def state_dict(self) -> dict[str, Any]:
        """Stored databases (also those of partial reindexing), tasks awaiting indexing and every stage's metrics."""
        return {
            "stored": self.stored,
            "pending": self.pending,
            "stages": self.stages,
            "budgeted": self.budgeted.state_dict(),
            "timings": self.timings,
            "indexed_at": self.indexed_at,
            "unlearned": self.unlearned,
            "retention_stored": self.retention_stored,
            "retention": self.retention,
        }

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.stored, self.pending, self.stages = state["stored"], state["pending"], state["stages"]
        if "budgeted" in state:  # checkpoints written before partial reindexing have neither
            self.budgeted.load_state_dict(state["budgeted"])
            self.timings = state["timings"]
        # checkpoints written before full-stream evaluation: every stored task was indexed at an earlier stage
        self.indexed_at = state.get("indexed_at", {t: -1 for t in self.stored})
        self.unlearned = state.get("unlearned", [])
        self.retention_stored, self.retention = state.get("retention_stored", {}), state.get("retention", [])

    @property
    def learned(self) -> set[int]:
        """Tasks trained on so far (indexed or awaiting indexing)."""
        return set(self.stored) | self.pending

    def after_training_exp(self, strategy: Any) -> None:
        self.pending |= set(strategy.experience.task_labels)

    def before_eval_exp(self, strategy: Any) -> None:
        self._batches = []
        self._started = time.perf_counter()

    def after_eval_iteration(self, strategy: Any) -> None:
        image_emb, text_emb = strategy.mb_output
        self._batches.append(TaskEmbeddings(image_emb.detach(), text_emb.detach(), strategy.mb_text_to_image))  # on the device

    def after_eval_exp(self, strategy: Any) -> None:
        emb = concat_tasks(self._batches)  # batch-local caption links become database-wide, on the device
        self._batches = []
        if stream_type(strategy.experience) == RETENTION_STREAM:
            index = strategy.experience.current_experience
            self._retention_now[index] = emb
            self.retention_stored.setdefault(index, emb.to("cpu"))  # indexed once, by the model it first meets
            return
        task = strategy.experience.task_label
        self.current[task] = emb
        if task in self.pending:  # indexing: the database is stored as embedded right after learning
            emb = emb.to("cpu")
            stage = strategy.clock.train_exp_counter - 1
            self.stored[task] = emb
            self.pending.discard(task)
            self.indexed_at[task] = stage
            self.budgeted.index(task, emb, stage)
        self._embed_seconds += time.perf_counter() - self._started

    def after_eval(self, strategy: Any) -> list[MetricValue]:
        """Computes this stage's metrics into `stages` (and `unlearned`) and returns them as MetricValues."""
        stage = strategy.clock.train_exp_counter - 1
        stream, x_plot = stream_type(strategy.experience), len(self.learned)
        if stream == RETENTION_STREAM:
            return self._retention_values(strategy, stage, x_plot=x_plot)
        values = self._unlearned_values(strategy, stage, stream=stream, x_plot=x_plot)
        tasks = sorted(t for t in self.current if t in self.stored)
        if not tasks:
            return values
        again = None
        if self.stages and self.stages[-1]["stage"] == stage:  # evaluated again in this stage: its record is replaced
            again = self.stages.pop()["reindex_cost"]
            self.timings.pop()
        metrics = self._stage(strategy, stage, tasks, cost=again)
        history = [s["metrics"] for s in self.stages]
        return [
            *values,
            *metric_values(self, metrics, prefix="", stream=stream, x_plot=x_plot),
            *metric_values(self, task_forgetting(history), prefix="Forgetting_", stream=stream, x_plot=x_plot),
        ]

    def _unlearned_values(self, strategy: Any, stage: int, *, stream: str, x_plot: int) -> list[MetricValue]:
        """Known-task metrics of the evaluated tasks not learned yet (recorded in `unlearned`), as MetricValues.

        Both policies coincide before a task is indexed. Before any training (stage -1, the matrices'
        row 0) every task is unlearned, and their average and all-task search are recorded too.
        """
        future = {t: self.current[t].to(strategy.device) for t in sorted(self.current) if t not in self.learned}
        if not future:
            return []
        scopes = metrics_from_ranks(stage_ranks(future, {"reindex": future}, directions=self.directions), ks=self.ks)["reindex"]
        kept = scopes if not self.learned else {scope: values for scope, values in scopes.items() if scope.isdigit()}
        metrics = {policy: kept for policy in ("reindex", "noreindex")}
        if self.unlearned and self.unlearned[-1]["stage"] == stage:  # evaluated again in this stage: replaced
            self.unlearned.pop()
        self.unlearned.append({"stage": stage, "tasks_learned": x_plot, "metrics": metrics})
        return metric_values(self, metrics, prefix="", stream=stream, x_plot=x_plot)

    def _retention_values(self, strategy: Any, stage: int, *, x_plot: int) -> list[MetricValue]:
        """The retention sets' metrics (recorded in `retention`) and their change since the first
        evaluation (`Retention_`: `continual.retention_summary`'s), as MetricValues; reindex queries the current database of each
        set, noreindex the one embedded at its first evaluation."""
        device = strategy.device
        now = {i: e.to(device) for i, e in sorted(self._retention_now.items())}
        stored = {i: self.retention_stored[i].to(device) for i in now}
        ranks = stage_ranks(now, {"reindex": now, "noreindex": stored}, directions=self.directions)
        scopes = metrics_from_ranks(ranks, ks=self.ks)
        metrics = {policy: {self.retention_labels[i]: values[str(i)] for i in now} for policy, values in scopes.items()}
        if self.retention and self.retention[-1]["stage"] == stage:  # evaluated again in this stage: replaced
            self.retention.pop()
        self.retention.append({"stage": stage, "tasks_learned": x_plot, "metrics": metrics})
        change = continual.retention_summary(self.retention)["retention"]  # results.json's and TensorBoard's: ranks sign-flipped
        return [
            *metric_values(self, metrics, prefix="", stream=RETENTION_STREAM, x_plot=x_plot),
            *metric_values(self, change, prefix="Retention_", stream=RETENTION_STREAM, x_plot=x_plot),
        ]

    def _stage(self, strategy: Any, stage: int, tasks: list[int], *, cost: dict[str, Any] | None) -> dict[str, dict[str, dict[str, float]]]:
        """Appends the stage record (metrics, diagnostics, reindexing cost) and timings of the learned `tasks`;
        partial reindexing spends its budget at the stage's first evaluation (`cost`: that of an earlier one)."""
        learned = {t: self.current[t] for t in tasks}
        clock = [time.perf_counter()]
        if cost is None:
            on_cpu = {t: e.to("cpu") for t, e in learned.items()}
            eligible, spent = self.budgeted.reindex(stage, on_cpu, [t for t in tasks if self.indexed_at[t] < stage])
            cost = {"eligible": eligible, "items": {"reindex": eligible, "noreindex": 0, **spent}}
        clock.append(time.perf_counter())
        device = strategy.device
        stored = {t: self.stored[t].to(device) for t in tasks}
        partial = {name: {t: db[t].to(device) for t in tasks} for name, db in self.budgeted.databases.items()}
        ranks = stage_ranks(learned, {"reindex": learned, "noreindex": stored, **partial}, directions=self.directions)
        metrics = metrics_from_ranks(ranks, ks=self.ks)
        clock.append(time.perf_counter())
        diagnostics = stage_diagnostics(learned, stored, ranks["reindex"], directions=self.directions)
        clock.append(time.perf_counter())
        self.stages.append({"stage": stage, "tasks": tasks, "metrics": metrics, "diagnostics": diagnostics, "reindex_cost": cost})
        items = sum(learned[t].image.shape[0] for t in tasks)
        self.timings.append(
            {
                "stage": stage,
                "embed_s": self._embed_seconds,  # embedding every evaluated task's test items (data loading included)
                "embed_s_per_item": self._embed_seconds / items,
                "reindex_select_s": clock[1] - clock[0],  # choosing and copying the partial reindexes
                "metrics_s": clock[2] - clock[1],
                "diagnostics_s": clock[3] - clock[2],
            }
        )
        return metrics

    def __str__(self) -> str:
        return "Retrieval"
