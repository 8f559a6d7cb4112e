"""Retrieval metrics as an Avalanche evaluation-plugin metric.

Indexing happens here: the first time a task is evaluated after it was learned, its
test database embeddings are stored; later stages query that stored database under
the no-reindex policy, and a freshly embedded one under the reindex policy.
"""

from __future__ import annotations

from typing import Any

from avalanche.evaluation.metric_definitions import PluginMetric
from avalanche.evaluation.metric_results import MetricValue

from ccrbench.evaluation.protocol import DIRECTIONS, TaskEmbeddings, concat_tasks, evaluate_stage


def metric_tag(policy: str, key: str, scope: str) -> str:
    """TensorBoard tag: one chart per policy/metric, one curve per task, 'average' and 'all'."""
    where = f"Task{int(scope):03d}" if scope.isdigit() else scope
    return f"Retrieval_{policy}/{key}/eval_phase/test_stream/{where}"


class RetrievalMetrics(PluginMetric[dict]):
    """Known/unknown-task retrieval metrics under both indexing policies, after every stage.

    Args:
        ks: the K of Recall@K.
        directions: the directions this model answers ("i2t", "t2i" or both).
    """

    def __init__(self, *, ks: tuple[int, ...] = (1, 5, 10), directions: tuple[str, ...] = DIRECTIONS) -> None:
        super().__init__()
        self.ks = ks
        self.directions = directions
        self.stored: dict[int, TaskEmbeddings] = {}
        self.pending: set[int] = set()
        self.stages: list[dict[str, Any]] = []
        self.current: dict[int, TaskEmbeddings] = {}  # the last stage's databases, current encoders
        self._batches: list[TaskEmbeddings] = []

    def reset(self) -> None:
        self.current, self._batches = {}, []

    def result(self) -> dict[str, Any] | None:
        return self.stages[-1] if self.stages else None

    def state_dict(self) -> dict[str, Any]:
        """Stored databases, tasks awaiting indexing and every stage's metrics."""
        return {"stored": self.stored, "pending": self.pending, "stages": self.stages}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.stored, self.pending, self.stages = state["stored"], state["pending"], state["stages"]

    def after_training_exp(self, strategy: Any) -> None:
        self.pending |= set(strategy.experience.task_labels)

    def before_eval(self, strategy: Any) -> None:
        self.reset()

    def before_eval_exp(self, strategy: Any) -> None:
        self._batches = []

    def after_eval_iteration(self, strategy: Any) -> None:
        image_emb, text_emb = strategy.mb_output
        self._batches.append(TaskEmbeddings(image_emb.detach().cpu(), text_emb.detach().cpu(), strategy.mb_text_to_image.cpu()))

    def after_eval_exp(self, strategy: Any) -> None:
        task = strategy.experience.task_label
        if task not in self.stored and task not in self.pending:
            raise ValueError(f"task {task} is evaluated before it was learned; evaluate only seen tasks")
        emb = concat_tasks(self._batches)  # batch-local caption links become database-wide
        self.current[task] = emb
        if task in self.pending:  # indexing: the database is stored as embedded right after learning
            self.stored[task] = emb
            self.pending.discard(task)
        self._batches = []

    def after_eval(self, strategy: Any) -> list[MetricValue]:
        stage = strategy.clock.train_exp_counter - 1
        metrics = evaluate_stage(
            self.current, {t: self.stored[t] for t in self.current}, ks=self.ks, directions=self.directions
        )
        self.stages.append({"stage": stage, "tasks": sorted(self.current), "metrics": metrics})
        return [
            MetricValue(self, metric_tag(policy, key, scope), value, stage)
            for policy, scopes in metrics.items()
            for scope, values in scopes.items()
            for key, value in values.items()
        ]

    def __str__(self) -> str:
        return "Retrieval"
