import os
import shutil
import warnings

import numpy as np
import pytest
import torch

from ccrbench.evaluation import evaluate_retrieval, retrieval, retrieval_ranks


def vsepp_reference(images: np.ndarray, texts: np.ndarray, text_to_image: np.ndarray, ks=(1, 5, 10)) -> dict:
    """The VSE++ protocol, one argsort per query, generalised to any number of captions per image."""
    i2t = []
    for i in range(len(images)):
        order = np.argsort(images[i] @ texts.T)[::-1]
        i2t.append(min(np.where(order == j)[0][0] for j in np.where(text_to_image == i)[0]))
    t2i = []
    for j in range(len(texts)):
        order = np.argsort(texts[j] @ images.T)[::-1]
        t2i.append(np.where(order == text_to_image[j])[0][0])
    out = {}
    for name, ranks in (("i2t", np.array(i2t)), ("t2i", np.array(t2i))):
        for k in ks:
            out[f"{name}_r{k}"] = 100.0 * (ranks < k).sum() / len(ranks)
        out[f"{name}_medr"] = np.floor(np.median(ranks)) + 1
        out[f"{name}_meanr"] = ranks.mean() + 1
    out["rsum"] = sum(out[f"{d}_r{k}"] for d in ("i2t", "t2i") for k in ks)
    return out


def random_data(n_images: int, counts: list[int], dim: int, seed: int, noise: float = 1.0):
    g = torch.Generator().manual_seed(seed)
    images = torch.nn.functional.normalize(torch.randn(n_images, dim, generator=g), dim=1)
    text_to_image = torch.repeat_interleave(torch.arange(n_images), torch.tensor(counts))
    texts = images[text_to_image] + noise * torch.randn(len(text_to_image), dim, generator=g)
    texts = torch.nn.functional.normalize(texts, dim=1)
    perm = torch.randperm(len(texts), generator=g)  # captions in no particular order
    return images, texts[perm], text_to_image[perm]


@pytest.mark.parametrize(
    "counts",
    [[5] * 40, [1, 2, 3, 4, 5, 6, 7, 1, 1, 9] * 3, [1] * 25],
    ids=["five_each", "uneven", "one_each"],
)
def test_matches_vsepp_reference(counts):
    images, texts, t2i = random_data(len(counts), counts, dim=16, seed=len(counts))
    ours = evaluate_retrieval(images, texts, t2i)
    ref = vsepp_reference(images.double().numpy(), texts.double().numpy(), t2i.numpy())
    assert ours.keys() == ref.keys()
    for key in ref:
        assert ours[key] == pytest.approx(ref[key], abs=1e-9), key


@pytest.mark.parametrize("tile", [(1, 1), (1, 7), (3, 5), (7, 1000), (64, 64)])
def test_tiling_does_not_change_ranks(tile):
    images, texts, t2i = random_data(50, [3] * 50, dim=8, seed=1)
    full = retrieval_ranks(images, texts, t2i)
    tiled = retrieval_ranks(images, texts, t2i, tile=tile)
    assert torch.equal(full["i2t"], tiled["i2t"]) and torch.equal(full["t2i"], tiled["t2i"])


@pytest.mark.parametrize("tile", [(1, 1), (2, 3), (5, 8), (64, 2048)])
def test_exact_ties_do_not_depend_on_tiling(tile):
    # Duplicated images and captions: every duplicate scores exactly like the original (a tie),
    # which a matrix product may round either way depending on the tile shape.
    images, texts, t2i = random_data(24, [4] * 24, dim=96, seed=3, noise=0.3)
    images = images.repeat(2, 1)  # image 24 + i equals image i
    texts, t2i = torch.cat([texts, texts]), torch.cat([t2i, t2i + 24])
    ranks = retrieval_ranks(images, texts, t2i, tile=tile)
    exact = (images.double() @ texts.double().T).numpy()
    own = t2i.numpy()
    for j in range(len(texts)):  # the definition: other images scoring >= the caption's own
        assert ranks["t2i"][j] == (np.delete(exact[:, j], own[j]) >= exact[own[j], j]).sum()
    for i in range(len(images)):
        best = exact[i, own == i].max()
        assert ranks["i2t"][i] == (exact[i, own != i] >= best).sum()


def test_perfect_and_reversed_embeddings():
    eye = torch.eye(10)
    perfect = evaluate_retrieval(eye, eye, torch.arange(10))
    assert perfect["i2t_r1"] == perfect["t2i_r1"] == 100.0
    assert perfect["i2t_medr"] == perfect["t2i_meanr"] == 1.0
    # caption j matches image 9 - j best, its own image worst but one: rank 9 of 10 for every query
    worst = evaluate_retrieval(eye, eye.flip(0) - eye, torch.arange(10))
    assert worst["t2i_r5"] == 0.0 and worst["t2i_medr"] == 10.0


def test_ties_count_against_the_query():
    collapsed = torch.ones(5, 3)  # every score equal: no information, worst rank
    out = evaluate_retrieval(collapsed, collapsed.repeat(2, 1), torch.arange(5).repeat(2))
    assert out["i2t_r1"] == out["t2i_r1"] == 0.0
    assert out["i2t_medr"] == 1 + 8 and out["t2i_medr"] == 1 + 4


def test_median_of_even_count_averages_middle_ranks():
    # ranks 0, 0, 1, 3 -> median 0.5 -> medr floor(0.5) + 1 = 1; mean rank 1 -> meanr 2
    from ccrbench.evaluation import rank_metrics

    out = rank_metrics(torch.tensor([0, 0, 1, 3]), ks=(1, 2))
    assert out == {"r1": 50.0, "r2": 75.0, "medr": 1.0, "meanr": 2.0}


def test_bad_inputs_are_named():
    images, texts, t2i = random_data(4, [2] * 4, dim=4, seed=0)
    with pytest.raises(ValueError, match="no caption"):
        retrieval_ranks(images, texts[:6], t2i[t2i < 3][:6] * 0 + torch.tensor([0, 0, 1, 1, 2, 2]))
    with pytest.raises(ValueError, match="shape"):
        retrieval_ranks(images, texts, t2i[:-1])
    with pytest.raises(ValueError, match="outside"):
        retrieval_ranks(images, texts, t2i + 4)


@pytest.mark.parametrize("collapsed", [False, True], ids=["duplicates", "collapsed"])
def test_full_tiles_count_like_the_definition(collapsed):
    # Tiles of 128 x 256: the counts go through the uint8 block sums; a collapsed embedding
    # (every score tied) makes every count the whole line, beyond what one uint8 holds.
    images, texts, t2i = random_data(128, [2] * 128, dim=16, seed=5, noise=0.5)
    images, texts, t2i = images.repeat(2, 1), torch.cat([texts, texts]), torch.cat([t2i, t2i + 128])  # exact ties
    if collapsed:
        images, texts = torch.ones_like(images) / 4, torch.ones_like(texts) / 4
    ranks = retrieval_ranks(images, texts, t2i, tile=(128, 256))
    exact = (images.double() @ texts.double().T).numpy()
    own = t2i.numpy()
    t2i_ref = [(np.delete(exact[:, j], own[j]) >= exact[own[j], j]).sum() for j in range(len(texts))]
    i2t_ref = [(exact[i, own != i] >= exact[i, own == i].max()).sum() for i in range(len(images))]
    assert ranks["t2i"].tolist() == t2i_ref and ranks["i2t"].tolist() == i2t_ref
    if collapsed:
        assert set(t2i_ref) == {len(images) - 1} and set(i2t_ref) == {len(texts) - 2}


def tied_data():
    """Duplicated images and captions (exact ties), uneven tiles of 5 x 8 (full and edge ones)."""
    images, texts, t2i = random_data(13, [3] * 13, dim=32, seed=7, noise=0.3)
    return images.repeat(2, 1), torch.cat([texts, texts]), torch.cat([t2i, t2i + 13])


@pytest.mark.skipif(
    not any(shutil.which(c) for c in (os.environ.get("CXX", "g++"), "g++", "clang++")),
    reason="torch.compile's CPU backend needs a C++ compiler (the fallback is tested below)",
)
def test_the_compiled_tile_kernel_gives_the_separate_passes_ranks():
    """The real torch.compile kernel (the first call compiles it: seconds) on full tiles, the
    separate passes on edge tiles: the same ranks, exact ties included, and no fallback."""
    images, texts, t2i = tied_data()
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # a fallback to the separate passes would warn
        fused = retrieval_ranks(images, texts, t2i, tile=(5, 8), fused=True)
    plain = retrieval_ranks(images, texts, t2i, tile=(5, 8), fused=False)
    assert torch.equal(fused["i2t"], plain["i2t"]) and torch.equal(fused["t2i"], plain["t2i"])
    exact, own = (images.double()[:, None] * texts.double()[None]).sum(2).numpy(), t2i.numpy()  # the same sum for equal rows
    assert fused["t2i"].tolist() == [(np.delete(exact[:, j], own[j]) >= exact[own[j], j]).sum() for j in range(len(texts))]


def test_fused_counting_is_chosen_by_size_and_falls_back_with_a_warning(monkeypatch):
    images, texts, t2i = tied_data()  # 26 x 78 scores in tiles of 5 x 8: 5 x 9 = 45 full tiles
    plain = retrieval_ranks(images, texts, t2i, tile=(5, 8), fused=False)
    calls = []

    def spy(*args):
        calls.append(tuple(args[0].shape))
        return retrieval._tile_counts(*args)

    monkeypatch.setattr(retrieval, "_compiled_tile_counts", lambda: spy)
    monkeypatch.setattr(retrieval, "FUSED_MIN_TILES", 46)
    retrieval_ranks(images, texts, t2i, tile=(5, 8))
    assert calls == []
    monkeypatch.setattr(retrieval, "FUSED_MIN_TILES", 45)
    retrieval_ranks(images, texts, t2i, tile=(5, 8), directions=("i2t",))  # one direction: separate passes
    assert calls == []
    auto = retrieval_ranks(images, texts, t2i, tile=(5, 8))
    assert calls == [(5, 8)] * 45 and all(torch.equal(auto[d], plain[d]) for d in plain)

    def broken(*args):
        raise RuntimeError("no C++ compiler")

    monkeypatch.setattr(retrieval, "_compiled_tile_counts", lambda: broken)
    with pytest.warns(UserWarning, match="fused counting unavailable .RuntimeError: no C.. compiler.; counting in separate passes") as caught:
        fallback = retrieval_ranks(images, texts, t2i, tile=(5, 8))
    assert len(caught) == 1 and all(torch.equal(fallback[d], plain[d]) for d in plain)
