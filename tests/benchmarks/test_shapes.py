import numpy as np
import pytest

from ccrbench.benchmarks.shapes import DOMAINS, generate_task, shapes_benchmark


def test_generation_is_deterministic():
    a_img, a_cap = generate_task(1, 12, image_size=48, seed=7)
    b_img, b_cap = generate_task(1, 12, image_size=48, seed=7)
    c_img, _ = generate_task(1, 12, image_size=48, seed=8)
    assert np.array_equal(a_img, b_img) and a_cap == b_cap
    assert not np.array_equal(a_img, c_img)
    assert a_img.shape == (12, 3, 48, 48) and a_img.dtype == np.uint8


def test_five_different_captions_per_image():
    _, captions = generate_task(0, 50, image_size=32, seed=0)
    assert all(len(c) == 5 and len(set(c)) == 5 and all(s.strip() for s in c) for c in captions)


def test_tasks_are_separate_domains_with_shared_attributes():
    words = {}
    for d, name in enumerate(DOMAINS):
        _, captions = generate_task(d, 60, image_size=32, seed=d)
        words[name] = {w for caps in captions for c in caps for w in c.split()}
    for name, shapes in DOMAINS.items():
        for other in DOMAINS:
            if other != name:
                assert not (set(shapes) & words[other]), f"{name} objects appear in {other} captions"
    shared = set.intersection(*words.values())
    assert {"red", "blue", "small", "large", "left", "shape"} <= shared


def test_benchmark_streams_and_cache(tmp_path, monkeypatch):
    monkeypatch.setenv("CCRBENCH_CACHE", str(tmp_path))
    bm = shapes_benchmark(tasks=("curves", "signs"), train_images=20, test_images=8, image_size=32, seed=3)
    assert len(bm.train_stream) == len(bm.test_stream) == 2 and bm.task_names == ("curves", "signs")
    image, caption, image_id, task = bm.train_stream[1].dataset[0]
    assert image.shape == (3, 32, 32) and 0.0 <= float(image.min()) and float(image.max()) <= 1.0
    assert isinstance(caption, str) and task == 1
    assert len(bm.train_stream[0].dataset) == 20 * 5  # one training item per caption
    image, captions, image_id, task = bm.test_stream[0].dataset[0]
    assert len(captions) == 5 and task == 0 and bm.test_stream[0].task_label == 0
    ids = [bm.test_stream[t].dataset[i][2] for t in range(2) for i in range(8)]
    assert len(set(ids)) == 16  # image ids are unique across tasks
    assert len(list(tmp_path.rglob("*.npz"))) == 4
    again = shapes_benchmark(tasks=("curves", "signs"), train_images=20, test_images=8, image_size=32, seed=3)
    assert again.train_captions == bm.train_captions


def test_unknown_domain_is_a_clear_error():
    with pytest.raises(ValueError, match="unknown domain.*available: blocks"):
        shapes_benchmark(tasks=("animals",))
