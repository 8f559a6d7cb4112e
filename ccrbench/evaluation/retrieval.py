"""Retrieval metrics as pure tensor functions (VSE++ protocol, vectorised).

Ranks are 0-based: the rank of a query is the number of negatives (database items
that are not its positives) scoring at least as high as its best positive. On
tie-free data this equals the position of the best positive in a per-query
descending argsort (the VSE++ reference), without sorting anything. Ties count
against the query, so a collapsed embedding gets the worst ranks, never the best.
The scores are computed in 2-D tiles, so memory stays bounded at any database size,
and ties are decided on scores recomputed pair by pair, so the ranks do not depend on the tiling.
"""

from __future__ import annotations

import functools
import warnings

import torch
from torch import Tensor

from ccrbench.evaluation.keys import DIRECTIONS, RSUM, MetricKey, measure_keys
from ccrbench.evaluation.measures import MEASURES

DEFAULT_TILE = (512, 2048)  # scores held at once: 1M floats = 4 MiB (+ 1 MiB of flags)
# From this many full tiles (about 10^10 scores), `fused=None` counts each full tile with one
# compiled kernel (torch.compile): its one-time compilation (~20 s on a cold cache) costs less
# than the comparison passes it saves (~2 ms per tile on a CPU core).
FUSED_MIN_TILES = 10_000


class NonFiniteEmbeddingError(ValueError):
    """An embedding holds NaN or infinite values: it has no rank (a NaN compares false with every
    score, so it would neither beat nor tie anything and every query would look perfect)."""


def _check(image_emb: Tensor, text_emb: Tensor, text_to_image: Tensor) -> None:
    if image_emb.ndim != 2 or text_emb.ndim != 2 or image_emb.shape[1] != text_emb.shape[1]:
        raise ValueError(
            f"expected image_emb [N, D] and text_emb [M, D], got {tuple(image_emb.shape)} and {tuple(text_emb.shape)}"
        )
    if text_to_image.shape != (text_emb.shape[0],):
        raise ValueError(f"text_to_image must have shape [{text_emb.shape[0]}], got {tuple(text_to_image.shape)}")
    if text_to_image.numel() and (text_to_image.min() < 0 or text_to_image.max() >= image_emb.shape[0]):
        raise ValueError(f"text_to_image holds indices outside [0, {image_emb.shape[0]})")
    for name, emb in (("image", image_emb), ("text", text_emb)):
        bad = ~torch.isfinite(emb).all(dim=1)  # [N] or [M]
        if bad.any():
            rows = torch.nonzero(bad).flatten()
            raise NonFiniteEmbeddingError(
                f"{name} embeddings {rows[:5].tolist()}{' ...' if len(rows) > 5 else ''} ({len(rows)} of {len(emb)}) hold NaN or "
                "infinite values: no retrieval metric is computed from them; check the inputs (a NaN feature) or the "
                "model (diverged weights)"
            )


def retrieval_ranks(
    image_emb: Tensor,
    text_emb: Tensor,
    text_to_image: Tensor,
    *,
    directions: tuple[str, ...] = ("i2t", "t2i"),
    tile: tuple[int, int] = DEFAULT_TILE,
    fused: bool | None = None,
) -> dict[str, Tensor]:
    """0-based ranks of every query in both directions, from one pass of tiled products.

    A score counts against a query when it is at least the query's positive score: for
    i2t the best of the image's own captions, for t2i the caption's own image. The
    positives are excluded from the competitors. Positive scores are computed pair by pair
    (`_exact_scores`), and every score of the matrix product close enough to a positive
    to be on the other side of it after rounding is recomputed the same way: ties are
    decided on the same numbers whatever the tile size or the device's matrix product
    (an exact tie counts against the query).

    Args:
        image_emb: [N, D] image embeddings (the i2t queries / t2i database).
        text_emb: [M, D] caption embeddings.
        text_to_image: LongTensor [M], the image row of each caption.
        directions: which of "i2t", "t2i" to compute.
        tile: (images, captions) of the score tile held at once (bounds memory).
        fused: count both directions' comparisons of each full tile in one compiled kernel
            (`_tile_counts` under torch.compile; the same integers as the separate passes,
            which are memory-bound when D is small); None: when both directions are wanted
            and there are at least FUSED_MIN_TILES full tiles. Falls back to the separate
            passes, with a warning, where torch.compile cannot build it (no C++ compiler).

    Returns:
        {"i2t": LongTensor [N], "t2i": LongTensor [M]} for the requested directions.
    """
    _check(image_emb, text_emb, text_to_image)
    if image_emb.dtype in (torch.float16, torch.bfloat16):  # exact upcast: scores in fp32
        image_emb, text_emb = image_emb.float(), text_emb.float()
    device = image_emb.device
    n, m = image_emb.shape[0], text_emb.shape[0]
    rows, cols = min(n, max(1, tile[0])), min(m, max(1, tile[1]))
    own = text_to_image.to(device)  # [M]
    counts = torch.bincount(own, minlength=n)
    if (counts == 0).any():
        missing = torch.nonzero(counts == 0).flatten()[:5].tolist()
        raise ValueError(f"image rows {missing} have no caption: every image needs at least one caption")
    # Positive scores computed pair by pair, a column tile at a time (no [M, D] temporary): [M].
    pos = torch.cat([_exact_scores(image_emb, text_emb, own[c : c + cols], torch.arange(c, min(c + cols, m), device=device)) for c in range(0, m, cols)])
    best = torch.full((n,), -torch.inf, dtype=torch.float64, device=device).scatter_reduce_(0, own, pos, "amax")  # [N]
    # Scores this close to a positive are recomputed pair by pair: 8 ulps of the largest possible score,
    # over 10x the rounding error of a matrix product measured at D = 1024 (the worst-case bound,
    # D ulps, would recompute far more scores).
    norms = image_emb.norm(dim=1).max() * text_emb.norm(dim=1).max()
    delta = float(8 * torch.finfo(image_emb.dtype).eps * norms)
    # Per query: (exact positive score, lower, upper) of its near-tie band, made once, not per tile.
    bands = {d: (x, (x - delta).to(image_emb.dtype), (x + delta).to(image_emb.dtype)) for d, x in (("i2t", best), ("t2i", pos))}
    i2t = torch.zeros(n, dtype=torch.long, device=device)
    t2i = torch.zeros(m, dtype=torch.long, device=device)
    want = {d: d in directions for d in ("i2t", "t2i")}
    # Buffers reused by every tile (fresh allocations of this size cost page faults), each tile
    # a contiguous prefix of them.
    scores_buf = torch.empty(rows * cols, dtype=image_emb.dtype, device=device)
    flags_buf = torch.empty(rows * cols, dtype=torch.bool, device=device)
    if fused is None:
        fused = all(want.values()) and (n // rows) * (m // cols) >= FUSED_MIN_TILES
    counter = _compiled_tile_counts() if fused and all(want.values()) else None
    for r in range(0, n, rows):
        r_end = min(r + rows, n)
        for c in range(0, m, cols):
            c_end = min(c + cols, m)
            shape = (r_end - r, c_end - c)
            scores = torch.matmul(image_emb[r:r_end], text_emb[c:c_end].T, out=scores_buf[: shape[0] * shape[1]].view(shape))  # [R, C]
            flags = flags_buf[: shape[0] * shape[1]].view(shape)
            mine = (own[c:c_end] >= r) & (own[c:c_end] < r_end)  # [C], captions of this tile's images
            scores[own[c:c_end][mine] - r, torch.nonzero(mine).flatten()] = -torch.inf  # positives never compete
            band_i2t = [x[r:r_end, None] for x in bands["i2t"]]  # [R, 1] each
            band_t2i = [x[None, c:c_end] for x in bands["t2i"]]  # [1, C] each
            counts = {"i2t": None, "t2i": None}  # (high, low) per direction, or None: counted below
            if counter is not None and shape == (rows, cols):  # one shape: compiled once
                try:
                    i2t_high, i2t_low, t2i_high, t2i_low = counter(scores, *band_i2t[1:], *band_t2i[1:])
                    counts = {"i2t": (i2t_high, i2t_low), "t2i": (t2i_high, t2i_low)}
                except Exception as error:  # torch.compile could not build the kernel here
                    warnings.warn(f"retrieval_ranks: fused counting unavailable ({type(error).__name__}: {error}); counting in separate passes")
                    counter = None
            if want["i2t"]:
                i2t[r:r_end] += _count_at_least(scores, *band_i2t, flags, image_emb, text_emb, r, c, dim=1, counts=counts["i2t"])
            if want["t2i"]:
                t2i[c:c_end] += _count_at_least(scores, *band_t2i, flags, image_emb, text_emb, r, c, dim=0, counts=counts["t2i"])
    return {d: {"i2t": i2t, "t2i": t2i}[d] for d in directions}


def _tile_counts(scores: Tensor, i2t_lower: Tensor, i2t_upper: Tensor, t2i_lower: Tensor, t2i_upper: Tensor) -> tuple[Tensor, ...]:
    """Scores of an [R, C] tile at or above each row's (i2t, [R, 1]) and each column's (t2i,
    [1, C]) band bounds: (i2t >= upper, i2t >= lower, t2i >= upper, t2i >= lower), int32 [R]
    or [C]. Compiled, the four comparisons and sums read the tile without writing any flag."""
    return (
        (scores >= i2t_upper).sum(1, dtype=torch.int32),
        (scores >= i2t_lower).sum(1, dtype=torch.int32),
        (scores >= t2i_upper).sum(0, dtype=torch.int32),
        (scores >= t2i_lower).sum(0, dtype=torch.int32),
    )


@functools.cache
def _compiled_tile_counts():
    """`_tile_counts` under torch.compile (built on its first call, once per tile shape/dtype/device)."""
    return torch.compile(_tile_counts, dynamic=False)


def _exact_scores(image_emb: Tensor, text_emb: Tensor, image_rows: Tensor, text_rows: Tensor) -> Tensor:
    """Scores of the (image_rows[k], text_rows[k]) pairs, computed pair by pair: [K] float64.

    The products are summed in float64 (error at most one fp32 rounding per product), the
    same way for every pair wherever it sits in the score matrix.
    """
    # index_select, not x[rows]: advanced indexing costs ~8 ms on CPU whatever the row count
    return (image_emb.index_select(0, image_rows) * text_emb.index_select(0, text_rows)).sum(1, dtype=torch.float64)


def _count_at_least(
    scores: Tensor,
    threshold: Tensor,
    lower: Tensor,
    upper: Tensor,
    flags: Tensor,
    image_emb: Tensor,
    text_emb: Tensor,
    r: int,
    c: int,
    *,
    dim: int,
    counts: tuple[Tensor, Tensor] | None = None,
) -> Tensor:
    """Per row (dim=1) or column (dim=0) of a score tile, how many scores are >= threshold.

    Scores at or above `upper` count as they are; those in [lower, upper) (the near-ties
    around the exact float64 `threshold`) are recomputed pair by pair, only in the few rows
    (columns) that hold one. threshold, lower, upper: [R, 1] (dim=1) or [1, C] (dim=0).
    counts: the (>= upper, >= lower) counts when already made (`_tile_counts`).
    """
    if counts is None:
        counts = (_count_true(torch.ge(scores, upper, out=flags), dim), _count_true(torch.ge(scores, lower, out=flags), dim))
    high, low = counts
    lines = torch.nonzero(low != high).flatten()  # rows (dim=1) / columns (dim=0) with a near-tie
    if not lines.numel():
        return high
    pick = (lambda x: x.index_select(0, lines)) if dim == 1 else (lambda x: x.index_select(1, lines))
    near = pick(scores)  # [K, C] or [R, K]; the thresholds [K, 1] or [1, K]
    i, j = torch.nonzero((near >= pick(lower)) & (near < pick(upper)), as_tuple=True)
    rows, cols = (lines[i], j) if dim == 1 else (i, lines[j])
    exact = _exact_scores(image_emb, text_emb, rows + r, cols + c)
    ties = exact >= (threshold[rows, 0] if dim == 1 else threshold[0, cols])
    return high.index_add_(0, rows if dim == 1 else cols, ties.to(high.dtype))


def _count_true(flags: Tensor, dim: int) -> Tensor:
    """Trues per row (dim=1) or column (dim=0) of a contiguous [R, C] bool tile, as int32.

    Summed as uint8 over blocks of 128 first when the reduced size allows it: no int32 copy
    of the whole tile (a third of the comparison's own cost).
    """
    u = flags.view(torch.uint8)
    size = u.shape[dim]
    if size % 128:
        return u.sum(dim, dtype=torch.int32)
    if dim == 1:
        return u.view(u.shape[0], size // 128, 128).sum(2, dtype=torch.uint8).sum(1, dtype=torch.int32)
    return u.view(size // 128, 128, u.shape[1]).sum(1, dtype=torch.uint8).sum(0, dtype=torch.int32)


def rank_metrics(ranks: Tensor, ks: tuple[int, ...] = (1, 5, 10), prefix: str = "") -> dict[str, float]:
    """Every measure of `measures.MEASURES` of 0-based ranks, as in VSE++: Recall@K (percent)
    for each K, median rank and mean rank, under their keys (`r10`, `medr`, ...) after `prefix`."""
    ranks = ranks.detach().cpu().double()
    if ranks.numel() == 0:
        raise ValueError("no queries to rank")
    return {f"{prefix}{key}": MEASURES[key.measure].of_ranks(ranks, *([] if key.k is None else [key.k])) for key in measure_keys(ks)}


def evaluate_retrieval(
    image_emb: Tensor,
    text_emb: Tensor,
    text_to_image: Tensor,
    ks: tuple[int, ...] = (1, 5, 10),
) -> dict[str, float]:
    """Image->text and text->image retrieval metrics of one database.

    Args:
        image_emb: [N, D] image embeddings.
        text_emb: [M, D] caption embeddings.
        text_to_image: LongTensor [M] giving each caption's image row (any number per image).
        ks: the K of Recall@K.

    Returns:
        i2t_r{K}, i2t_medr, i2t_meanr, t2i_r{K}, t2i_medr, t2i_meanr and rsum (the sum of all
        R@K of both directions).
    """
    ranks = retrieval_ranks(image_emb, text_emb, text_to_image)
    out = {**rank_metrics(ranks["i2t"], ks, "i2t_"), **rank_metrics(ranks["t2i"], ks, "t2i_")}
    out[RSUM] = sum(out[str(MetricKey("r", d, k))] for d in DIRECTIONS for k in ks)
    return out
