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
    assert len(list(tmp_path.rglob("*.npz"))) == 6  # train, test and val of two tasks
    again = shapes_benchmark(tasks=("curves", "signs"), train_images=20, test_images=8, image_size=32, seed=3)
    assert again.train_captions == bm.train_captions


def test_unknown_domain_is_a_clear_error():
    with pytest.raises(ValueError, match="unknown domain.*available: blocks"):
        shapes_benchmark(tasks=("animals",))


def _digests(stream) -> list[set[bytes]]:
    """Per experience, the raw bytes of every image (to find duplicates across splits)."""
    return [{(exp.dataset[i][0] * 255).round().byte().numpy().tobytes() for i in range(len(exp.dataset))} for exp in stream]


def test_val_split_is_disjoint_deterministic_and_laid_out_like_test(tmp_path, monkeypatch):
    monkeypatch.setenv("CCRBENCH_CACHE", str(tmp_path))
    options = dict(tasks=("blocks", "signs"), train_images=12, test_images=6, val_images=5, image_size=32, seed=4)
    bm = shapes_benchmark(**options)
    assert len(bm.val_stream) == 2 and bm.eval_stream("val") is bm.val_stream and bm.eval_stream("test") is bm.test_stream
    train, test, val = _digests(bm.train_stream), _digests(bm.test_stream), _digests(bm.val_stream)
    for t in range(2):
        assert len(val[t]) == 5 and not val[t] & (train[t] | test[t])  # no image of val is in train or test
    ids = {split: {exp.dataset[i][2] for exp in stream for i in range(len(exp.dataset))}
           for split, stream in (("train", bm.train_stream), ("test", bm.test_stream), ("val", bm.val_stream))}
    assert not ids["val"] & (ids["train"] | ids["test"]) and len(ids["val"]) == 10
    for t, domain in enumerate(options["tasks"]):  # tasks assigned as for test: own task label, own domain's objects
        image, captions, _, task = bm.val_stream[t].dataset[0]
        assert task == t == bm.val_stream[t].task_label and len(captions) == 5 and image.shape == (3, 32, 32)
        words = {w for i in range(5) for c in bm.val_stream[t].dataset[i][1] for w in c.split()}
        assert words & set(DOMAINS[domain]) and not words & set(DOMAINS["curves"])
    # the same seed gives the same validation data, regenerated from scratch; another seed other data
    for f in tmp_path.rglob("*.npz"):
        f.unlink()
    again = shapes_benchmark(**options)
    assert _digests(again.val_stream) == val and again.checksums == bm.checksums
    other = shapes_benchmark(**{**options, "seed": 5})
    assert _digests(other.val_stream) != val and other.checksums["val"] != bm.checksums["val"]
    assert set(bm.checksums) == {"train", "test", "val"} and len(set(bm.checksums.values())) == 3


def test_val_split_defaults_to_test_size_and_leaves_train_and_test_unchanged(tmp_path, monkeypatch):
    monkeypatch.setenv("CCRBENCH_CACHE", str(tmp_path))
    bm = shapes_benchmark(tasks=("curves",), train_images=6, test_images=4, image_size=32, seed=1)
    assert len(bm.val_stream[0].dataset) == 4
    # train and test images are those generated for their splits alone, ids as before val existed
    from ccrbench.benchmarks.shapes import _load_or_generate

    images, _ = _load_or_generate(1, "test", 4, 32, 1, 0.5)
    assert np.array_equal(bm.test_stream[0].dataset[0][0].mul(255).round().byte().numpy(), images[0])
    assert [bm.test_stream[0].dataset[i][2] for i in range(4)] == [6, 7, 8, 9]
