"""The benchmark contract, checked for every registered benchmark on tiny settings (file
benchmarks on the miniature trees of minidata.py): a new benchmark is covered by registering it
and adding its tiny options to TINY below."""

from collections.abc import Callable
from itertools import combinations
from pathlib import Path

import pytest
import torch

import ccrbench  # noqa: F401 - fills the registries
from ccrbench.benchmarks.base import RetrievalBenchmark
from ccrbench.registry import BENCHMARKS, FILE_BENCHMARKS
from tests.benchmarks import captiondata
from tests.benchmarks.minidata import build_coco, build_vg
from tests.contract import assert_documented_keyword_keys

# Per benchmark: a function of a temporary folder (where it may write data) giving tiny options.
TINY: dict[str, Callable[[Path], dict]] = {
    "shapes": lambda tmp: {"tasks": ["blocks", "curves"], "train_images": 4, "test_images": 3, "image_size": 32},
    "secoco": lambda tmp: {"root": str(build_coco(tmp / "coco")), "image_size": 16},
    "sevige": lambda tmp: {"root": str(build_vg(tmp / "vg")), "image_size": 16, "test_fraction": 0.4},
    "flickr30k": lambda tmp: {"root": str(captiondata.build_flickr(tmp)), "image_size": 16},
    "image_captions": lambda tmp: {
        "root": str(tmp), "files": [captiondata.write_csv(tmp).name], "split_column": "split", "captions_per_image": 2, "image_size": 16
    },
}
NAMES = BENCHMARKS.names()


@pytest.fixture(scope="module")
def built(tmp_path_factory):
    """name -> (its tiny options, two benchmarks built from them), built once per module."""
    cache = {}

    def get(name):
        if name not in TINY:
            pytest.fail(f"benchmark {name!r} has no tiny options: add it to TINY in {__file__}")
        if name not in cache:
            options = TINY[name](tmp_path_factory.mktemp(name))
            cache[name] = options, BENCHMARKS.build(name, options), BENCHMARKS.build(name, options)
        return cache[name]

    return get


def items(experience):
    dataset = experience.dataset
    return [dataset[i] for i in range(len(dataset))]


def streams(benchmark):
    """The evaluation streams it has: test, and val where it offers one."""
    return {"test": benchmark.test_stream, **({"val": benchmark.scenario.val_stream} if hasattr(benchmark.scenario, "val_stream") else {})}


def test_the_tiny_options_are_of_registered_benchmarks():
    assert sorted(set(TINY) - set(NAMES)) == [], "remove options of benchmarks that are no longer registered"


@pytest.mark.parametrize("name", NAMES)
def test_keys_are_keyword_only_typed_and_documented(name):
    assert_documented_keyword_keys(BENCHMARKS, name)


@pytest.mark.parametrize("name", NAMES)
def test_one_experience_per_task_in_every_stream(name, built):
    _, bm, _ = built(name)
    assert isinstance(bm, RetrievalBenchmark)
    tasks = len(bm.task_names)
    assert tasks >= 1 and len(set(bm.task_names)) == tasks and len(bm.task_captions) == tasks
    for stream in [bm.train_stream, *streams(bm).values()]:
        assert [exp.task_label for exp in stream] == list(range(tasks))
        assert [exp.task_labels for exp in stream] == [[t] for t in range(tasks)]


@pytest.mark.parametrize("name", NAMES)
def test_items_have_the_retrieval_layout_and_unique_image_ids(name, built):
    """Train: one (image, caption, image id, task) per caption; test/val: one (image, captions,
    image id, task) per image; an image is in one split and one task only."""
    _, bm, _ = built(name)
    ids_of_split = {}
    for t, exp in enumerate(bm.train_stream):
        train = items(exp)
        assert train and all(isinstance(c, str) and c.strip() and task == t for _, c, _, task in train)
        assert [c for _, c, _, _ in train] == list(bm.task_captions[t])  # the captions vocabularies are built from
        ids_of_split.setdefault("train", []).extend({i for _, _, i, _ in train})
    for split, stream in streams(bm).items():
        for t, exp in enumerate(stream):
            held = items(exp)
            assert held and all(task == t and len(caps) >= 1 and all(isinstance(c, str) for c in caps) for _, caps, _, task in held)
            ids_of_split.setdefault(split, []).extend(i for _, _, i, _ in held)
    for split, ids in ids_of_split.items():
        assert all(isinstance(i, int) for i in ids) and len(ids) == len(set(ids)), f"{split}: an image id repeats"
    splits = list(ids_of_split.values())
    assert all(not set(a) & set(b) for k, a in enumerate(splits) for b in splits[k + 1 :]), "an image is in two splits"


@pytest.mark.parametrize("name", NAMES)
def test_no_image_is_in_two_splits_by_id_or_by_file(name, built):
    """No leak between train, val and test: their image ids, and their image files (for the
    benchmarks that read files), are pairwise disjoint and each listed once."""
    _, bm, _ = built(name)
    ids = {"train": [i for exp in bm.train_stream for i in dict.fromkeys(item[2] for item in items(exp))]}
    ids |= {split: [item[2] for exp in stream for item in items(exp)] for split, stream in streams(bm).items()}
    files = {split: list(bm.image_files.get(split, ())) for split in ids}
    for split in ids:
        assert len(files[split]) == (len(ids[split]) if name in FILE_BENCHMARKS else 0), f"{split}: one file per image of a file benchmark"
    for by in (ids, files):
        for a, b in combinations(by, 2):
            assert not set(by[a]) & set(by[b]), f"{name}: {a} and {b} share {sorted(set(by[a]) & set(by[b]))[:5]}"
        assert all(len(v) == len(set(v)) for v in by.values()), f"{name}: an image is listed twice in a split"


@pytest.mark.parametrize("name", NAMES)
def test_same_options_give_the_same_data(name, built):
    _, bm, again = built(name)
    for a, b in [(bm.train_stream, again.train_stream), *zip(streams(bm).values(), streams(again).values())]:
        for x, y in zip(a, b):
            first, second = items(x), items(y)
            assert [item[1:] for item in first] == [item[1:] for item in second]  # captions, ids, tasks
            assert all(torch.equal(p[0], q[0]) for p, q in zip(first, second))  # encoder inputs
