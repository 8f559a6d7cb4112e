"""Speed of `evaluate_retrieval` against a bare matrix product and the VSE++ per-query argsort.

Prints seconds for N images, 5N captions, D dims (default 5000 / 25000 / 1024, the COCO 5K
protocol). Goal: within 1.5x of the bare product, at least 10x faster than the reference.

    python scripts/bench_metrics.py [--images 5000] [--dim 1024] [--reference-sample 1.0]
"""

from __future__ import annotations

import argparse
import time

import numpy as np
import torch

from ccrbench.evaluation import evaluate_retrieval


def vsepp_reference(images: np.ndarray, texts: np.ndarray, image_rows: list[int], caption_rows: list[int]) -> None:
    """The VSE++ loops (i2t over `image_rows`, t2i over `caption_rows`), 5 captions per image."""
    for i in image_rows:
        order = np.argsort(images[i] @ texts.T)[::-1]
        min(np.where(order == j)[0][0] for j in range(5 * i, 5 * i + 5))
    for j in caption_rows:
        order = np.argsort(texts[j] @ images.T)[::-1]
        np.where(order == j // 5)[0][0]


def best_of(fn, repeats: int) -> float:
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return min(times)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--images", type=int, default=5000)
    parser.add_argument("--dim", type=int, default=1024)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument(
        "--reference-sample", type=float, default=1.0, help="fraction of queries the reference runs (time is scaled up)"
    )
    args = parser.parse_args()
    g = torch.Generator().manual_seed(0)
    images = torch.nn.functional.normalize(torch.randn(args.images, args.dim, generator=g), dim=1)
    t2i = torch.arange(args.images).repeat_interleave(5)
    texts = torch.nn.functional.normalize(images[t2i] + torch.randn(len(t2i), args.dim, generator=g), dim=1)
    print(f"N={args.images} images, M={len(t2i)} captions, D={args.dim}, {torch.get_num_threads()} threads")

    bare = best_of(lambda: images @ texts.T, args.repeats)
    ours = best_of(lambda: evaluate_retrieval(images, texts, t2i), args.repeats)
    n_img = max(1, int(args.images * args.reference_sample))
    n_cap = max(1, int(len(t2i) * args.reference_sample))
    im_np, tx_np = images.numpy(), texts.numpy()
    ref = best_of(lambda: vsepp_reference(im_np, tx_np, list(range(n_img)), list(range(n_cap))), 1)
    ref /= args.reference_sample
    print(f"bare image_emb @ text_emb.T : {bare:8.2f} s")
    print(f"evaluate_retrieval          : {ours:8.2f} s  ({ours / bare:.2f}x the bare product)")
    scaled = " (scaled from a sample)" if args.reference_sample < 1 else ""
    print(f"VSE++ per-query argsort      : {ref:8.2f} s{scaled}  ({ref / ours:.1f}x slower than evaluate_retrieval)")


if __name__ == "__main__":
    main()
