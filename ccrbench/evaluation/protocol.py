"""Indexing and querying protocol: reindex vs no reindex, known vs unknown task.

Pure functions over embeddings; the Avalanche plugin in `plugin.py` feeds them.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

import torch
from torch import Tensor

from ccrbench.evaluation.keys import ALL_TASKS, AVERAGE, DIRECTIONS, POLICIES, RSUM, MetricKey, model_diagnostic, parse_keys
from ccrbench.evaluation.retrieval import rank_metrics, retrieval_ranks



@dataclass(frozen=True)
class TaskEmbeddings:
    """One task's test database, embedded by some encoders.

    Attributes:
        image: [N, D] image embeddings.
        text: [M, D] caption embeddings.
        text_to_image: LongTensor [M], each caption's row in `image`.
    """

    image: Tensor
    text: Tensor
    text_to_image: Tensor

    def to(self, device: torch.device | str) -> "TaskEmbeddings":
        """The same database on `device` (itself when it is there already)."""
        moved = (self.image.to(device), self.text.to(device), self.text_to_image.to(device))
        return self if moved[0] is self.image else TaskEmbeddings(*moved)


def concat_tasks(parts: list[TaskEmbeddings]) -> TaskEmbeddings:
    """The union of several databases (unknown task): rows stacked, caption links offset."""
    offsets = torch.tensor([0] + [p.image.shape[0] for p in parts[:-1]]).cumsum(0)
    return TaskEmbeddings(
        image=torch.cat([p.image for p in parts]),
        text=torch.cat([p.text for p in parts]),
        text_to_image=torch.cat([p.text_to_image + int(o) for p, o in zip(parts, offsets)]),
    )


def query_ranks(current: TaskEmbeddings, stored: TaskEmbeddings, *, policy: str, direction: str) -> Tensor:
    """0-based ranks of one direction's queries under one indexing policy.

    reindex: queries and database both embedded with the current encoders.
    noreindex: queries with the current encoders, database as stored when indexed
    (i2t: current images vs stored captions; t2i: stored images vs current captions).
    """
    if policy == "reindex":
        images, texts = current.image, current.text
    elif policy == "noreindex":
        images, texts = (current.image, stored.text) if direction == "i2t" else (stored.image, current.text)
    else:
        raise ValueError(f"unknown policy {policy!r}; expected one of {POLICIES}")
    return retrieval_ranks(images, texts, current.text_to_image, directions=(direction,))[direction]


def stage_ranks(
    current: dict[int, TaskEmbeddings],
    databases: Mapping[str, dict[int, TaskEmbeddings]],
    *,
    directions: tuple[str, ...] = DIRECTIONS,
) -> dict[str, dict[str, dict[str, Tensor]]]:
    """0-based ranks of every query of every seen task under several indexing policies.

    Every policy queries with the current encoders against its own database (reindex: the
    current embeddings; noreindex: those stored at indexing; a partial reindex: a mix):
    i2t queries current images against the database's captions, t2i current captions
    against its images.

    Args:
        current: task -> test database embedded with the current encoders.
        databases: policy -> task -> that policy's database (same tasks as `current`).
        directions: which of "i2t", "t2i" to rank.

    Returns:
        {policy: {scope: {direction: LongTensor}}}, scope being the task id as a string
        (known task: its own database) and "all" (every query against the union).
    """
    tasks = sorted(current)
    union_now = concat_tasks([current[t] for t in tasks])
    out: dict[str, dict[str, dict[str, Tensor]]] = {}
    for policy, database in databases.items():
        if set(database) != set(current):
            raise ValueError(f"{policy}: stored tasks {sorted(database)} differ from evaluated tasks {tasks}")
        pairs = [(str(t), current[t], database[t]) for t in tasks]
        pairs.append((ALL_TASKS, union_now, union_now if database is current else concat_tasks([database[t] for t in tasks])))
        out[policy] = {scope: _ranks(now, stored, directions) for scope, now, stored in pairs}
    return out


def _ranks(current: TaskEmbeddings, stored: TaskEmbeddings, directions: tuple[str, ...]) -> dict[str, Tensor]:
    if stored is current:  # one pass answers both directions
        return retrieval_ranks(current.image, current.text, current.text_to_image, directions=directions)
    return {d: query_ranks(current, stored, policy="noreindex", direction=d) for d in directions}


def metrics_from_ranks(
    ranks: dict[str, dict[str, dict[str, Tensor]]], *, ks: tuple[int, ...] = (1, 5, 10)
) -> dict[str, dict[str, dict[str, float]]]:
    """{policy: {scope: {metric: value}}} of `stage_ranks`' output, with "average" (the mean
    over tasks) and rsum when both directions were ranked."""
    out: dict[str, dict[str, dict[str, float]]] = {}
    for policy, scopes in ranks.items():
        metrics = {
            scope: {key: value for d, r in per_direction.items() for key, value in rank_metrics(r, ks, f"{d}_").items()}
            for scope, per_direction in scopes.items()
        }
        tasks = [scope for scope in metrics if scope != ALL_TASKS]
        average = {k: sum(metrics[t][k] for t in tasks) / len(tasks) for k in metrics[tasks[0]]}
        out[policy] = {**{t: metrics[t] for t in tasks}, AVERAGE: average, ALL_TASKS: metrics[ALL_TASKS]}
    directions = {d for scopes in ranks.values() for d in scopes[ALL_TASKS]}
    return add_rsum(out, ks) if directions == set(DIRECTIONS) else out


def evaluate_stage(
    current: dict[int, TaskEmbeddings],
    stored: dict[int, TaskEmbeddings],
    *,
    ks: tuple[int, ...] = (1, 5, 10),
    directions: tuple[str, ...] = DIRECTIONS,
) -> dict[str, dict[str, dict[str, float]]]:
    """Metrics of every seen task and of their union, under both policies.

    Args:
        current: task -> test database embedded with the current encoders.
        stored: task -> the embeddings stored when that task was indexed (same keys).
        ks: the K of Recall@K.
        directions: which of "i2t", "t2i" to evaluate.

    Returns:
        {policy: {scope: {metric: value}}}, scope being the task id as a string (known
        task: its own database), "average" (mean over tasks) and "all" (unknown task:
        every query against the union of all seen databases).
    """
    databases = {"reindex": current, "noreindex": stored}
    return metrics_from_ranks(stage_ranks(current, databases, directions=directions), ks=ks)


def add_rsum(metrics: dict[str, dict[str, dict[str, float]]], ks: tuple[int, ...]) -> dict[str, dict[str, dict[str, float]]]:
    """Adds rsum (the sum of every R@K of both directions) to every scope, in place."""
    for scopes in metrics.values():
        for scope in scopes.values():
            scope[RSUM] = sum(scope[str(MetricKey("r", d, k))] for d in DIRECTIONS for k in ks)
    return metrics


def merge_directions(per_model: list[list[dict]]) -> list[dict]:
    """Stage records of models that answer different directions, merged into one per stage
    (also the records of unlearned tasks and retention sets: `{stage, metrics: {policy: {scope: ...}}}`).

    A single model's records are returned as they are; for decoupled models (one answering
    i2t, one t2i) each stage's metrics are the union of both, with rsum recomputed; each
    diagnostic is prefixed by its model (e.g. "i2t_model_image_drift") and the items
    re-embedded by both models' databases are summed.
    """
    if len(per_model) == 1:
        return per_model[0]
    merged = []
    for records in zip(*per_model):
        metrics: dict[str, dict[str, dict[str, float]]] = {}
        for record in records:
            for policy, scopes in record["metrics"].items():
                for scope, values in scopes.items():
                    metrics.setdefault(policy, {}).setdefault(scope, {}).update(values)
        first_scope = next(iter(metrics[POLICIES[0]].values()))  # records of unlearned tasks or retention sets have no all-task scope
        ks = tuple(key.k for key in parse_keys(first_scope) if key.is_recall and key.direction == DIRECTIONS[0])
        merged.append({**records[0], "metrics": add_rsum(metrics, ks)})
        if "diagnostics" in records[0]:
            diagnostics: dict[str, dict[str, float]] = {}
            for record in records:
                direction = _direction(record)  # of the model that made the record
                for scope, values in record["diagnostics"].items():
                    diagnostics.setdefault(scope, {}).update({model_diagnostic(direction, k): v for k, v in values.items()})
            items = {p: sum(r["reindex_cost"]["items"][p] for r in records) for p in records[0]["reindex_cost"]["items"]}
            cost = {"eligible": sum(r["reindex_cost"]["eligible"] for r in records), "items": items}
            merged[-1].update(diagnostics=diagnostics, reindex_cost=cost)
    return merged


def _direction(record: dict) -> str:
    """The one direction a decoupled model's stage record answers."""
    (direction,) = {key.direction for key in parse_keys(record["metrics"][POLICIES[0]][ALL_TASKS])} - {None}
    return direction
