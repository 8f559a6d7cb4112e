"""Speed and memory of `retrieval_ranks` / `evaluate_retrieval` against a bare matrix product.

    python scripts/bench_metrics.py [--images 5000] [--dim 1024] [--repeats 3]
        [--large-fraction 0.1] [--reference-sample 0.02]

- N images, 5N captions, D dims (default 5000 / 25000 / 1024, the COCO 5K protocol):
  `evaluate_retrieval` against one bare fp32 `image_emb @ text_emb.T`, alternated in the
  same process (goal: <= 1.2x), and the VSE++ per-query argsort on a sample of the queries;
- the 1M-caption database (200K images x 1M captions x 256): a slice of the images
  (`--large-fraction`, 0 skips it) against all 1M captions, ranks against the same tiled
  product without the ranking (the bare product does not fit in memory: 800 GB), time
  extrapolated to all images (linear in N), peak RSS of the process (goal: <= 1.5x); the
  fused tile kernel that all 200K images would get (`FUSED_MIN_TILES`), compiled before the timing.

Prints `figure | goal | measured | ratio` lines (`main()` returns them for `make bench`).
"""

from __future__ import annotations

import argparse
import resource
import statistics
import time

import numpy as np
import torch

from ccrbench.evaluation import evaluate_retrieval, retrieval_ranks
from ccrbench.evaluation.retrieval import DEFAULT_TILE

from bench_format import print_table, stats  # scripts/ is on the path


def vsepp_reference(images: np.ndarray, texts: np.ndarray, image_rows: list[int], caption_rows: list[int]) -> None:
    """The VSE++ loops (i2t over `image_rows`, t2i over `caption_rows`), 5 captions per image."""
    for i in image_rows:
        order = np.argsort(images[i] @ texts.T)[::-1]
        min(np.where(order == j)[0][0] for j in range(5 * i, 5 * i + 5))
    for j in caption_rows:
        order = np.argsort(texts[j] @ images.T)[::-1]
        np.where(order == j // 5)[0][0]


def seconds(fn) -> float:
    start = time.perf_counter()
    fn()
    return time.perf_counter() - start


def embeddings(t2i: torch.Tensor, dim: int, seed: int = 0) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Unit image vectors and noisy captions of them, caption k showing image t2i[k]."""
    g = torch.Generator().manual_seed(seed)
    images = torch.nn.functional.normalize(torch.randn(int(t2i.max()) + 1, dim, generator=g), dim=1)
    n_captions = len(t2i)
    texts = torch.empty(n_captions, dim)
    for c in range(0, n_captions, 1 << 16):  # no second [M, D] temporary
        block = images[t2i[c : c + (1 << 16)]] + torch.randn(min(1 << 16, n_captions - c), dim, generator=g)
        texts[c : c + (1 << 16)] = torch.nn.functional.normalize(block, dim=1)
    return images, texts, t2i


def tiled_product(images: torch.Tensor, texts: torch.Tensor) -> None:
    """The score matrix tile by tile, nothing else (the floor when it does not fit in memory)."""
    rows, cols = DEFAULT_TILE
    buf = torch.empty(rows, cols, device=images.device)
    for r in range(0, images.shape[0], rows):
        for c in range(0, texts.shape[0], cols):
            block = images[r : r + rows]
            torch.matmul(block, texts[c : c + cols].T, out=buf[: block.shape[0], : min(cols, texts.shape[0] - c)])


def main(argv: list[str] | None = None) -> list[str]:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--images", type=int, default=5000)
    parser.add_argument("--dim", type=int, default=1024)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--large-fraction", type=float, default=0.1, help="share of the 200K images ranked in the 1M-caption figure")
    parser.add_argument("--reference-sample", type=float, default=0.02, help="share of the queries the VSE++ reference runs")
    args = parser.parse_args(argv)
    images, texts, t2i = embeddings(torch.arange(args.images).repeat_interleave(5), args.dim)
    name = f"{args.images} x {len(t2i)} x {args.dim}, {torch.get_num_threads()} threads"
    bare, ours = [], []
    for _ in range(args.repeats):  # alternated: both see the same machine load
        bare.append(seconds(lambda: images @ texts.T))
        ours.append(seconds(lambda: evaluate_retrieval(images, texts, t2i)))
    ratios = [o / b for o, b in zip(ours, bare)]
    n_img, n_cap = max(1, int(args.images * args.reference_sample)), max(1, int(len(t2i) * args.reference_sample))
    im_np, tx_np = images.numpy(), texts.numpy()
    ref = seconds(lambda: vsepp_reference(im_np, tx_np, list(range(n_img)), list(range(n_cap)))) / args.reference_sample
    lines = [
        f"bare fp32 product ({name}) | - | {stats(bare, 's', 2)} | -",
        f"evaluate_retrieval ({name}) | <= 1.2x the product | {stats(ours, 's', 2)} | {statistics.median(ratios):.2f}x "
        f"(min {min(ratios):.2f}x)",
        f"VSE++ per-query argsort, scaled from {args.reference_sample:.0%} of the queries | - | {ref:.0f} s | "
        f"{ref / statistics.median(ours):.0f}x slower",
    ]
    del images, texts, t2i, im_np, tx_np
    if args.large_fraction > 0:
        n = int(200_000 * args.large_fraction)
        images, texts, t2i = embeddings(torch.arange(1_000_000) % n, 256)
        # The slice stands for all 200K images, whose 195K full tiles make `fused=None` compile the
        # tile kernel (FUSED_MIN_TILES): the slice uses it too, compiled once before the timing.
        compile_s = seconds(lambda: retrieval_ranks(images[: DEFAULT_TILE[0]], texts[: 4 * DEFAULT_TILE[1]], t2i[: 4 * DEFAULT_TILE[1]] % DEFAULT_TILE[0], fused=True))
        bare, ours = [], []
        for _ in range(args.repeats):
            bare.append(seconds(lambda: tiled_product(images, texts)))
            ours.append(seconds(lambda: retrieval_ranks(images, texts, t2i, fused=True)))
        peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20  # KiB -> GiB
        scale = 1 / args.large_fraction
        ratios = [o / b for o, b in zip(ours, bare)]
        lines += [
            f"1M captions: tiled product, {n} of 200K images (x{scale:g} for all) | - | {stats([b * scale / 60 for b in bare], 'min', 1)} | -",
            f"1M captions: retrieval_ranks, 200K x 1M x 256 (extrapolated x{scale:g}) | <= 1.5x the product | "
            f"{stats([o * scale / 60 for o in ours], 'min', 1)} | {statistics.median(ratios):.2f}x",
            f"1M captions: compiling the fused tile kernel, once per process (in the first call of 4 tiles) | - | {compile_s:.1f} s | -",
            f"1M captions: peak RSS of the process ({n} images; all 200K add {200_000 * 256 * 4 / 2**30:.2f} GiB) | bounded | {peak:.2f} GiB | -",
        ]
    return print_table(lines)


if __name__ == "__main__":
    main()
