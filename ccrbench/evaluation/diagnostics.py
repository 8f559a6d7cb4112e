"""Why a model forgets, measured: the causes of the paper's Fig. 4 as metrics.

Pure functions over the embeddings the evaluation already has: every item's embedding as
stored when its task was indexed, and as the current encoders embed it now.

- intra-modal drift: mean cosine similarity of an item's stored and current embedding,
  per modality (1 = no drift);
- cross-modal misalignment: mean similarity of the true image-caption pairs under the
  current encoders and under the no-reindex pairing (current query vs stored database),
  and the mean margin of the positive over the hardest in-task negative;
- task overlap: in the all-task search under the current encoders, the fraction of each
  query's top-K from other tasks, and the share of all-task misses (positive not in the
  top K) caused by other tasks alone (a hit in the query's own task).

Embeddings are L2-normalised by the model, so similarities are dot products, as in the
retrieval metrics.
"""

from __future__ import annotations

import math
from collections.abc import Mapping

import torch
import torch.nn.functional as F
from torch import Tensor

from ccrbench.evaluation.protocol import DIRECTIONS, TaskEmbeddings, concat_tasks

from ccrbench.evaluation.keys import ALL_TASKS, AVERAGE

OVERLAP_K = 10  # the top-K of the task-overlap diagnostics
# (key, label) of every diagnostic, in the order reports, plots and TensorBoard show them.
CHUNK_ELEMENTS = 1 << 22  # scores held at once (16 MiB of floats)


def mean_cosine(stored: Tensor, current: Tensor) -> float:
    """Mean cosine similarity of corresponding rows of two [N, D] embedding matrices."""
    return float(F.cosine_similarity(stored, current, dim=1).mean())


def pair_similarity(image: Tensor, text: Tensor, text_to_image: Tensor) -> float:
    """Mean similarity of every caption to its own image: image [N, D], text [M, D]."""
    return float((image[text_to_image] * text).sum(1).mean())


def hardest_negative_margins(image: Tensor, text: Tensor, text_to_image: Tensor, *, directions: tuple[str, ...] = DIRECTIONS) -> dict[str, float]:
    """Mean margin of the positive over the hardest negative of one database.

    i2t: an image's best caption minus the best caption of another image; t2i: a caption's
    similarity to its image minus that to the most similar other image. NaN with one image.

    Args:
        image: [N, D] image embeddings.
        text: [M, D] caption embeddings.
        text_to_image: LongTensor [M], each caption's row in `image`.
        directions: which of "i2t", "t2i" to compute (both from one pass).

    Returns:
        {"i2t_margin": ..., "t2i_margin": ...} for the requested directions.
    """
    n, m = image.shape[0], text.shape[0]
    if n < 2:
        return {f"{d}_margin": math.nan for d in directions}
    i2t = torch.empty(n, device=image.device)
    t2i_neg = torch.full((m,), -math.inf, device=image.device)
    captions = torch.arange(m, device=image.device)
    rows = max(1, CHUNK_ELEMENTS // max(m, 1))
    for start in range(0, n, rows):
        stop = min(start + rows, n)
        scores = image[start:stop] @ text.T  # [c, M]
        own = (text_to_image >= start) & (text_to_image < stop)  # [M], captions of this chunk's images
        own_rows, own_cols = text_to_image[own] - start, captions[own]
        if "i2t" in directions:
            best = torch.full((stop - start,), -math.inf, device=image.device).scatter_reduce(0, own_rows, scores[own_rows, own_cols], "amax")  # [c]
        scores[own_rows, own_cols] = -math.inf  # only negatives are left
        if "i2t" in directions:
            i2t[start:stop] = best - scores.amax(1)
        if "t2i" in directions:
            t2i_neg = torch.maximum(t2i_neg, scores.amax(0))
    out = {}
    if "i2t" in directions:
        out["i2t_margin"] = float(i2t.mean())
    if "t2i" in directions:
        out["t2i_margin"] = float(((image[text_to_image] * text).sum(1) - t2i_neg).mean())
    return out


def cross_task_topk(image: Tensor, text: Tensor, image_task: Tensor, text_task: Tensor, *, k: int = OVERLAP_K, directions: tuple[str, ...] = DIRECTIONS) -> dict[str, Tensor]:
    """Fraction of each query's top-k results that come from another task, from one pass.

    Args:
        image: [N, D] image embeddings (i2t queries, t2i database), every task's.
        text: [M, D] caption embeddings (i2t database, t2i queries).
        image_task: LongTensor [N], each image's task.
        text_task: LongTensor [M], each caption's task.
        k: how many results.
        directions: which of "i2t", "t2i" to compute.

    Returns:
        {"i2t": FloatTensor [N], "t2i": FloatTensor [M]} in [0, 1], for the requested directions.
    """
    n, m = image.shape[0], text.shape[0]
    i2t = torch.empty(n, device=image.device)
    col_scores = torch.empty(0, m, device=image.device)  # running top-k of every caption: scores and image rows
    col_rows = torch.empty(0, m, dtype=torch.long, device=image.device)
    rows = max(1, CHUNK_ELEMENTS // max(m, 1))
    for start in range(0, n, rows):
        scores = image[start : start + rows] @ text.T  # [c, M]
        if "i2t" in directions:
            top = scores.topk(min(k, m), dim=1).indices  # [c, k]
            i2t[start : start + rows] = (text_task[top] != image_task[start : start + rows, None]).float().mean(1)
        if "t2i" in directions:
            values, chunk_rows = scores.topk(min(k, scores.shape[0]), dim=0)  # [k', M]
            col_scores, order = torch.cat([col_scores, values]).topk(min(k, col_scores.shape[0] + values.shape[0]), dim=0)
            col_rows = torch.cat([col_rows, chunk_rows + start]).gather(0, order)
    out = {}
    if "i2t" in directions:
        out["i2t"] = i2t
    if "t2i" in directions:
        out["t2i"] = (image_task[col_rows] != text_task[None, :]).float().mean(0)
    return out


def cross_task_miss_share(own_ranks: Tensor, all_ranks: Tensor, *, k: int = OVERLAP_K) -> float:
    """Share of the all-task misses that only other tasks cause.

    A query misses in the all-task search when its positive is not in the top k; the miss
    is caused by task overlap when the same query hits in its own task's database (so
    items of other tasks pushed the positive out). NaN when nothing misses.

    Args:
        own_ranks: [Q] 0-based ranks of the queries in their own task's database.
        all_ranks: [Q] ranks of the same queries in the union of all tasks.
    """
    misses = all_ranks >= k
    if not bool(misses.any()):
        return math.nan
    return float((misses & (own_ranks < k)).sum() / misses.sum())


def task_diagnostics(current: TaskEmbeddings, stored: TaskEmbeddings, directions: tuple[str, ...]) -> dict[str, float]:
    """Drift and misalignment of one task's database (stored at indexing vs current encoders)."""
    out = {
        "image_drift": mean_cosine(stored.image, current.image),
        "text_drift": mean_cosine(stored.text, current.text),
        "pair_sim": pair_similarity(current.image, current.text, current.text_to_image),
    }
    out.update(hardest_negative_margins(current.image, current.text, current.text_to_image, directions=directions))
    t2i = current.text_to_image
    if "i2t" in directions:  # the no-reindex pairing: current images query stored captions
        out["i2t_pair_sim_noreindex"] = pair_similarity(current.image, stored.text, t2i)
        out["i2t_margin_noreindex"] = hardest_negative_margins(current.image, stored.text, t2i, directions=("i2t",))["i2t_margin"]
    if "t2i" in directions:  # current captions query stored images
        out["t2i_pair_sim_noreindex"] = pair_similarity(stored.image, current.text, t2i)
        out["t2i_margin_noreindex"] = hardest_negative_margins(stored.image, current.text, t2i, directions=("t2i",))["t2i_margin"]
    return out


def stage_diagnostics(
    current: Mapping[int, TaskEmbeddings],
    stored: Mapping[int, TaskEmbeddings],
    ranks: Mapping[str, Mapping[str, Tensor]],
    *,
    directions: tuple[str, ...],
    k: int = OVERLAP_K,
) -> dict[str, dict[str, float]]:
    """Every diagnostic of one stage, per seen task, their mean, and over all tasks.

    Args:
        current: task -> its test database embedded with the current encoders.
        stored: task -> the embeddings stored when that task was indexed.
        ranks: the reindex policy's 0-based ranks {scope: {direction: [Q]}}, scope being
            each task id as a string (own database) and "all" (the union, tasks in order).
        directions: the directions this model answers.
        k: the top-K of the task-overlap diagnostics.

    Returns:
        {scope: {diagnostic: value}}, scopes as in the retrieval metrics ("0", ...,
        "average", "all"); the overlap diagnostics are per task and over all queries.
    """
    tasks = sorted(current)
    out = {str(t): task_diagnostics(current[t], stored[t], directions) for t in tasks}
    union = concat_tasks([current[t] for t in tasks])
    device = union.image.device
    image_task = torch.cat([torch.full((current[t].image.shape[0],), t, device=device) for t in tasks])  # [N]
    text_task = torch.cat([torch.full((current[t].text.shape[0],), t, device=device) for t in tasks])  # [M]
    out[ALL_TASKS] = {}
    tops = cross_task_topk(union.image, union.text, image_task, text_task, k=k, directions=directions)
    for d in directions:
        top, q_task = tops[d], image_task if d == "i2t" else text_task  # [Q]
        own = torch.cat([ranks[str(t)][d] for t in tasks])  # [Q], in union order
        every = ranks[ALL_TASKS][d]
        for t in tasks:
            mine = q_task == t
            out[str(t)][f"{d}_cross_top{k}"] = float(top[mine].mean())
            out[str(t)][f"{d}_cross_miss_share"] = cross_task_miss_share(own[mine], every[mine], k=k)
        out[ALL_TASKS][f"{d}_cross_top{k}"] = float(top.mean())
        out[ALL_TASKS][f"{d}_cross_miss_share"] = cross_task_miss_share(own, every, k=k)
    keys = out[str(tasks[0])]
    out[AVERAGE] = {key: _nanmean([out[str(t)][key] for t in tasks]) for key in keys}
    return out


def _nanmean(values: list[float]) -> float:
    kept = [v for v in values if not math.isnan(v)]
    return sum(kept) / len(kept) if kept else math.nan
