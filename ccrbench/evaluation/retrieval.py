"""Retrieval metrics as pure tensor functions (VSE++ protocol, vectorised).

Ranks are 0-based: the rank of a query is the number of negatives (database items
that are not its positives) scoring at least as high as its best positive. On
tie-free data this equals the position of the best positive in a per-query
descending argsort (the VSE++ reference), without sorting anything. Ties count
against the query, so a collapsed embedding gets the worst ranks, never the best.
"""

from __future__ import annotations

import torch
from torch import Tensor

DEFAULT_CHUNK_ELEMENTS = 1 << 23  # scores held at once: 8M floats = 32 MiB (+ 8 MiB of flags)


def _check(image_emb: Tensor, text_emb: Tensor, text_to_image: Tensor) -> None:
    if image_emb.ndim != 2 or text_emb.ndim != 2 or image_emb.shape[1] != text_emb.shape[1]:
        raise ValueError(
            f"expected image_emb [N, D] and text_emb [M, D], got {tuple(image_emb.shape)} and {tuple(text_emb.shape)}"
        )
    if text_to_image.shape != (text_emb.shape[0],):
        raise ValueError(f"text_to_image must have shape [{text_emb.shape[0]}], got {tuple(text_to_image.shape)}")
    if text_to_image.numel() and (text_to_image.min() < 0 or text_to_image.max() >= image_emb.shape[0]):
        raise ValueError(f"text_to_image holds indices outside [0, {image_emb.shape[0]})")


def _captions_per_image(text_to_image: Tensor, num_images: int) -> tuple[Tensor, Tensor]:
    """Caption indices of each image, padded by repeating the image's last caption.

    Returns:
        LongTensor [N, C_max] of caption indices and BoolTensor [N, C_max], False on padding.
    """
    counts = torch.bincount(text_to_image, minlength=num_images)  # [N]
    if (counts == 0).any():
        missing = torch.nonzero(counts == 0).flatten()[:5].tolist()
        raise ValueError(f"image rows {missing} have no caption: every image needs at least one caption")
    order = torch.argsort(text_to_image, stable=True)  # caption indices grouped by image
    starts = torch.cumsum(counts, 0) - counts  # [N]
    offsets = torch.arange(int(counts.max()))  # [C_max]
    slot = torch.minimum(offsets[None, :], counts[:, None] - 1)  # [N, C_max], repeat the last real slot
    return order[starts[:, None] + slot], offsets[None, :] < counts[:, None]


def retrieval_ranks(
    image_emb: Tensor,
    text_emb: Tensor,
    text_to_image: Tensor,
    *,
    directions: tuple[str, ...] = ("i2t", "t2i"),
    chunk_elements: int = DEFAULT_CHUNK_ELEMENTS,
) -> dict[str, Tensor]:
    """0-based ranks of every query in both directions, from one pass of chunked products.

    Args:
        image_emb: [N, D] image embeddings (the i2t queries / t2i database).
        text_emb: [M, D] caption embeddings.
        text_to_image: LongTensor [M], the image row of each caption.
        directions: which of "i2t", "t2i" to compute.
        chunk_elements: how many scores to hold at once (bounds memory).

    Returns:
        {"i2t": LongTensor [N], "t2i": LongTensor [M]} for the requested directions.
        i2t: other images' captions scoring >= the image's best caption.
        t2i: images other than the caption's own scoring >= it. Its positive score is a
        row-wise dot product, which may differ from the matrix product in the last bit:
        this can only move exact ties.
    """
    _check(image_emb, text_emb, text_to_image)
    n, m = image_emb.shape[0], text_emb.shape[0]
    text_to_image = text_to_image.to(image_emb.device)
    want_i2t, want_t2i = "i2t" in directions, "t2i" in directions
    if want_i2t:
        positives, valid = (x.to(image_emb.device) for x in _captions_per_image(text_to_image.cpu(), n))  # [N, C]
        i2t = torch.empty(n, dtype=torch.long, device=image_emb.device)
    if want_t2i:
        # The positive score of each caption, as a row-wise dot product: [M].
        t2i_pos = (image_emb[text_to_image] * text_emb).sum(1)
        t2i = torch.zeros(m, dtype=torch.long, device=image_emb.device)
        captions = torch.arange(m, device=image_emb.device)
    rows = min(n, max(1, chunk_elements // max(m, 1)))
    # Buffers reused by every chunk: fresh allocations of this size cost page faults.
    scores_buf = torch.empty(rows, m, dtype=image_emb.dtype, device=image_emb.device)
    flags_buf = torch.empty(rows, m, dtype=torch.bool, device=image_emb.device)
    for start in range(0, n, rows):
        stop = min(start + rows, n)
        scores = torch.matmul(image_emb[start:stop], text_emb.T, out=scores_buf[: stop - start])  # [c, M]
        flags = flags_buf[: stop - start]
        if want_i2t:
            pos = scores.gather(1, positives[start:stop])  # [c, C]
            best = pos.amax(1, keepdim=True)  # [c, 1]
            tied_positives = ((pos >= best) & valid[start:stop]).sum(1)  # the best one and its exact ties
            i2t[start:stop] = torch.ge(scores, best, out=flags).sum(1, dtype=torch.int32) - tied_positives
        if want_t2i:
            # Exclude each caption's own image (it is the positive, not a competitor).
            own = (text_to_image >= start) & (text_to_image < stop)  # [M]
            scores[text_to_image[own] - start, captions[own]] = float("-inf")
            t2i += torch.ge(scores, t2i_pos[None, :], out=flags).sum(0, dtype=torch.int32)
    out = {}
    if want_i2t:
        out["i2t"] = i2t
    if want_t2i:
        out["t2i"] = t2i
    return out


def rank_metrics(ranks: Tensor, ks: tuple[int, ...] = (1, 5, 10), prefix: str = "") -> dict[str, float]:
    """Recall@K (percent), median rank and mean rank of 0-based ranks, as in VSE++.

    R@K = 100 * #(rank < K) / #queries; medr = floor(median(rank)) + 1;
    meanr = mean(rank) + 1 (the median of an even count averages the two middle values).
    """
    ranks = ranks.detach().cpu().double()
    n = ranks.numel()
    if n == 0:
        raise ValueError("no queries to rank")
    out = {f"{prefix}r{k}": 100.0 * int((ranks < k).sum()) / n for k in ks}
    out[f"{prefix}medr"] = float(torch.floor(torch.quantile(ranks, 0.5))) + 1.0
    out[f"{prefix}meanr"] = float(ranks.mean()) + 1.0
    return out


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
    out["rsum"] = sum(out[f"{d}_r{k}"] for d in ("i2t", "t2i") for k in ks)
    return out
