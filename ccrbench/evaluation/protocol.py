"""Indexing and querying protocol: reindex vs no reindex, known vs unknown task.

Pure functions over embeddings; the Avalanche plugin in `plugin.py` feeds them.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import Tensor

from ccrbench.evaluation.retrieval import rank_metrics, retrieval_ranks

POLICIES = ("reindex", "noreindex")
DIRECTIONS = ("i2t", "t2i")
ALL_TASKS = "all"
AVERAGE = "average"


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
    tasks = sorted(current)
    if set(stored) != set(current):
        raise ValueError(f"stored tasks {sorted(stored)} differ from evaluated tasks {tasks}")
    out: dict[str, dict[str, dict[str, float]]] = {}
    union_now = concat_tasks([current[t] for t in tasks])
    union_stored = concat_tasks([stored[t] for t in tasks])
    for policy in POLICIES:
        scopes: dict[str, dict[str, float]] = {}
        for t in tasks:
            scopes[str(t)] = {}
            for d in directions:
                ranks = query_ranks(current[t], stored[t], policy=policy, direction=d)
                scopes[str(t)].update(rank_metrics(ranks, ks, f"{d}_"))
        keys = scopes[str(tasks[0])]
        scopes[AVERAGE] = {k: sum(scopes[str(t)][k] for t in tasks) / len(tasks) for k in keys}
        scopes[ALL_TASKS] = {}
        for d in directions:
            ranks = query_ranks(union_now, union_stored, policy=policy, direction=d)
            scopes[ALL_TASKS].update(rank_metrics(ranks, ks, f"{d}_"))
        out[policy] = scopes
    return add_rsum(out, ks) if set(directions) == set(DIRECTIONS) else out


def add_rsum(metrics: dict[str, dict[str, dict[str, float]]], ks: tuple[int, ...]) -> dict[str, dict[str, dict[str, float]]]:
    """Adds rsum (the sum of every R@K of both directions) to every scope, in place."""
    for scopes in metrics.values():
        for scope in scopes.values():
            scope["rsum"] = sum(scope[f"{d}_r{k}"] for d in DIRECTIONS for k in ks)
    return metrics


def merge_directions(per_model: list[list[dict]]) -> list[dict]:
    """Stage records of models that answer different directions, merged into one per stage.

    A single model's records are returned as they are; for decoupled models (one answering
    i2t, one t2i) each stage's metrics are the union of both, with rsum recomputed.
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
        ks = tuple(int(k[len("i2t_r"):]) for k in metrics[POLICIES[0]][ALL_TASKS] if k.startswith("i2t_r"))
        merged.append({**records[0], "metrics": add_rsum(metrics, ks)})
    return merged
