"""Drift diagnostics on constructed embeddings whose answers are known."""

import math

import pytest
import torch
import torch.nn.functional as F

from ccrbench.evaluation import diagnostics
from ccrbench.evaluation.diagnostics import (
    cross_task_miss_share,
    cross_task_topk,
    hardest_negative_margins,
    mean_cosine,
    pair_similarity,
    stage_diagnostics,
)
from ccrbench.evaluation.protocol import DIRECTIONS, TaskEmbeddings, stage_ranks


def unit(n, d=8, seed=0):
    return F.normalize(torch.randn(n, d, generator=torch.Generator().manual_seed(seed)), dim=1)


def task(images, captions_per_image=2, noise=0.0, seed=0):
    """A database whose captions are their image plus noise (renormalised)."""
    t2i = torch.arange(images.shape[0]).repeat_interleave(captions_per_image)
    text = F.normalize(images[t2i] + noise * unit(len(t2i), images.shape[1], seed + 1), dim=1)
    return TaskEmbeddings(images, text, t2i)


def rotate(x, angle):
    """Rotates the first two coordinates of every row by `angle` (a rotation of the space)."""
    c, s = math.cos(angle), math.sin(angle)
    r = torch.eye(x.shape[1])
    r[:2, :2] = torch.tensor([[c, -s], [s, c]])
    return x @ r.T


def diagnose(current, stored, directions=DIRECTIONS):
    ranks = stage_ranks(current, {"reindex": current}, directions=directions)["reindex"]
    return stage_diagnostics(current, stored, ranks, directions=directions)


def test_no_drift_gives_cosine_one_equal_pairings_and_no_overlap():
    # Two tasks in orthogonal halves of the space, all in-task similarities positive: no
    # item of the other task enters a top-10 (each task holds 12 images and 24 captions).
    a = task(F.pad(unit(12, 4, seed=0).abs(), (0, 4)), seed=0)
    b = task(F.pad(unit(12, 4, seed=5).abs(), (4, 0)), seed=5)
    out = diagnose({0: a, 1: b}, {0: a, 1: b})
    for scope in ("0", "1", "average"):
        d = out[scope]
        assert d["image_drift"] == pytest.approx(1.0) and d["text_drift"] == pytest.approx(1.0)
        assert d["i2t_pair_sim_noreindex"] == pytest.approx(d["pair_sim"])
        assert d["t2i_pair_sim_noreindex"] == pytest.approx(d["pair_sim"])
        assert d["i2t_margin_noreindex"] == pytest.approx(d["i2t_margin"])
    assert out["all"]["i2t_cross_top10"] == 0.0 and out["all"]["t2i_cross_top10"] == 0.0
    assert math.isnan(out["all"]["i2t_cross_miss_share"]) or out["all"]["i2t_cross_miss_share"] == 0.0


def test_a_rotated_modality_drifts_by_the_cosine_of_the_angle():
    # Every vector lies in the plane of the rotation, so each one turns by exactly the angle.
    images = F.pad(unit(5, 2), (0, 6))
    stored = task(images, captions_per_image=1)
    angle = 0.6
    current = TaskEmbeddings(rotate(images, angle), stored.text, stored.text_to_image)  # only the images moved
    out = diagnose({0: current}, {0: stored})["0"]
    assert out["image_drift"] == pytest.approx(math.cos(angle), abs=1e-6)
    assert out["text_drift"] == pytest.approx(1.0)
    assert out["pair_sim"] == pytest.approx(math.cos(angle), abs=1e-6)  # captions equal the old images
    assert out["i2t_pair_sim_noreindex"] == pytest.approx(math.cos(angle), abs=1e-6)
    assert out["t2i_pair_sim_noreindex"] == pytest.approx(1.0)  # stored images vs current (unchanged) captions


@pytest.mark.parametrize("chunk", [1 << 22, 9])  # one chunk, or one image row per chunk
def test_pair_similarity_and_margins_against_a_naive_loop(chunk, monkeypatch):
    monkeypatch.setattr(diagnostics, "CHUNK_ELEMENTS", chunk)
    images, text = unit(5, seed=1), unit(9, seed=2)
    t2i = torch.tensor([0, 0, 1, 2, 2, 2, 3, 4, 4])
    s = images @ text.T
    i2t = [max(s[i, j] for j in range(9) if t2i[j] == i) - max(s[i, j] for j in range(9) if t2i[j] != i) for i in range(5)]
    t2i_m = [s[t2i[j], j] - max(s[i, j] for i in range(5) if i != t2i[j]) for j in range(9)]
    out = hardest_negative_margins(images, text, t2i)
    assert out["i2t_margin"] == pytest.approx(float(sum(i2t) / 5), abs=1e-6)
    assert out["t2i_margin"] == pytest.approx(float(sum(t2i_m) / 9), abs=1e-6)
    assert hardest_negative_margins(images, text, t2i, directions=("t2i",)) == {"t2i_margin": out["t2i_margin"]}
    assert pair_similarity(images, text, t2i) == pytest.approx(float(sum(s[t2i[j], j] for j in range(9)) / 9), abs=1e-6)
    assert mean_cosine(images, -images) == pytest.approx(-1.0)


def test_cross_task_top_k_counts_results_from_other_tasks():
    images = torch.tensor([[1.0, 0.9, 0.0, 0.0], [0.0, 0.0, 1.0, 0.5]])
    text = torch.eye(4)
    out = cross_task_topk(images, text, torch.tensor([0, 0]), torch.tensor([0, 1, 0, 1]), k=2)
    assert out["i2t"].tolist() == [0.5, 0.5]  # image 0: captions 0 (own task) and 1; image 1: captions 2 and 3
    out = cross_task_topk(images, text, torch.tensor([0, 0]), torch.tensor([0, 1, 0, 1]), k=1)
    assert out["t2i"].tolist() == [0.0, 1.0, 0.0, 1.0]  # each caption's best image is from task 0


@pytest.mark.parametrize("chunk", [1 << 22, 10])
def test_cross_task_top_k_against_a_full_sort(chunk, monkeypatch):
    monkeypatch.setattr(diagnostics, "CHUNK_ELEMENTS", chunk)
    images, text = unit(7, seed=3), unit(10, seed=4)
    image_task, text_task = torch.tensor([0, 0, 1, 1, 2, 2, 2]), torch.arange(10) % 3
    out = cross_task_topk(images, text, image_task, text_task, k=3)
    scores = images @ text.T
    expected_i2t = [(text_task[scores[i].argsort(descending=True)[:3]] != image_task[i]).float().mean() for i in range(7)]
    expected_t2i = [(image_task[scores[:, j].argsort(descending=True)[:3]] != text_task[j]).float().mean() for j in range(10)]
    assert out["i2t"].tolist() == pytest.approx([float(x) for x in expected_i2t])
    assert out["t2i"].tolist() == pytest.approx([float(x) for x in expected_t2i])


def test_miss_share_counts_misses_that_only_other_tasks_cause():
    own = torch.tensor([0, 0, 12, 3])
    every = torch.tensor([0, 15, 20, 11])  # hit, miss caused by others, miss anyway, miss caused by others
    assert cross_task_miss_share(own, every, k=10) == pytest.approx(2 / 3)
    assert math.isnan(cross_task_miss_share(own[:1], every[:1], k=10))


def test_overlapping_tasks_are_measured_as_overlap():
    # The second task is a copy of the first: half of every top-k comes from the other task.
    a = task(unit(6), noise=0.05)
    out = diagnose({0: a, 1: a}, {0: a, 1: a})
    assert out["all"]["i2t_cross_top10"] == pytest.approx(0.5, abs=0.1)
    assert out["0"]["t2i_cross_top10"] > 0.3
    assert set(out) == {"0", "1", "average", "all"}


def test_a_decoupled_model_gets_only_its_directions_diagnostics():
    a = task(unit(4))
    out = diagnose({0: a}, {0: a}, directions=("t2i",))
    assert not [k for k in out["0"] if k.startswith("i2t")] and "t2i_margin" in out["0"] and "image_drift" in out["0"]
