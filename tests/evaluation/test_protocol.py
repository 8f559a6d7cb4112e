import pytest
import torch

from ccrbench.evaluation import TaskEmbeddings, evaluate_stage
from ccrbench.evaluation.protocol import concat_tasks


def task(images: torch.Tensor, texts: torch.Tensor) -> TaskEmbeddings:
    return TaskEmbeddings(images, texts, torch.arange(len(images)))


def test_noreindex_queries_the_stored_database():
    aligned = torch.eye(6)
    scrambled = torch.eye(6)[torch.tensor([1, 2, 3, 4, 5, 0])]
    # Now the images are aligned with the stored captions, the current captions are scrambled.
    current = {0: task(aligned, scrambled)}
    stored = {0: task(scrambled, aligned)}
    out = evaluate_stage(current, stored, ks=(1,))
    assert out["noreindex"]["0"]["i2t_r1"] == 100.0  # current images vs stored captions
    assert out["reindex"]["0"]["i2t_r1"] == 0.0  # current images vs current captions
    # t2i without reindexing: current captions against stored images: scrambled vs scrambled.
    assert out["noreindex"]["0"]["t2i_r1"] == 100.0
    assert out["reindex"]["0"]["t2i_r1"] == 0.0


def test_known_vs_unknown_task():
    # Two tasks whose embeddings collide: perfect within a task, confused across tasks.
    a = task(torch.eye(4), torch.eye(4))
    out = evaluate_stage({0: a, 1: a}, {0: a, 1: a}, ks=(1, 2))
    assert out["reindex"]["average"]["i2t_r1"] == 100.0
    # In the union, every query ties with its twin from the other task; ties count against it.
    assert out["reindex"]["all"]["i2t_r2"] == 100.0
    assert out["reindex"]["all"]["i2t_r1"] == out["reindex"]["all"]["t2i_r1"] == 0.0
    assert set(out["reindex"]) == {"0", "1", "average", "all"}


def test_concat_offsets_caption_links():
    a = TaskEmbeddings(torch.zeros(2, 3), torch.zeros(3, 3), torch.tensor([0, 1, 1]))
    b = TaskEmbeddings(torch.zeros(3, 3), torch.zeros(2, 3), torch.tensor([2, 0]))
    u = concat_tasks([a, b])
    assert u.text_to_image.tolist() == [0, 1, 1, 4, 2]


def test_stored_and_current_must_cover_the_same_tasks():
    a = task(torch.eye(3), torch.eye(3))
    with pytest.raises(ValueError, match="differ"):
        evaluate_stage({0: a, 1: a}, {0: a})
