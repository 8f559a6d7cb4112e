import json

import pytest

from ccrbench.benchmarks.files.reading import DataError
from ccrbench.benchmarks.files.tasks import NO_TASK
from ccrbench.benchmarks.flickr import flickr30k
from ccrbench.cli import main
from tests.benchmarks.captiondata import build_flickr
from tests.benchmarks.minidata import write_config


@pytest.fixture
def flickr_root(tmp_path):
    return build_flickr(tmp_path / "flickr")


def load(root, **options):
    return flickr30k(root=str(root), image_size=16, **options)


def test_karpathy_splits_and_default_keyword_tasks(flickr_root):
    data = load(flickr_root)
    assert data.task_names == ("animals", "vehicles", "water")
    assert [s.image_ids for s in data.train] == [(0, 3), (1, 4), (2, 5)]  # restval trains
    assert [s.image_ids for s in data.val] == [(6,), (7,), (8,)]
    assert [s.image_ids for s in data.test] == [(11, 14), (12,), (13,)]
    assert data.excluded == {NO_TASK: {"no task's words": 1, "words of several tasks": 1}}
    assert data.train[0].captions[0] == tuple(f"caption {k} of a dog 0" for k in range(5))  # in sentid order


def test_keywords_file_and_captions_per_image(flickr_root):
    (flickr_root / "kw.yaml").write_text("pets: [dog, cat, puppy]\nrest: [car, bus, truck, bicycle, beach, lake, ocean, pool, bird, horse]\n")
    data = load(flickr_root, keywords="kw.yaml", captions_per_image=2)
    assert data.task_names == ("pets", "rest") and [s.image_ids for s in data.test] == [(14,), (11, 12, 13)]
    assert all(len(caps) == 2 for s in data.train for caps in s.captions)
    assert data.excluded[NO_TASK] == {"no task's words": 1}  # "boat" is no word of this file: image 9 is a pet's
    assert data.train[0].image_ids == (0, 9)


def test_bad_files_are_clear_errors(flickr_root):
    path = flickr_root / "dataset_flickr30k.json"
    data = json.loads(path.read_text())
    data["images"][1]["imgid"] = 0
    path.write_text(json.dumps(data))
    with pytest.raises(DataError, match=r"imgid\(s\) \[0\] appear more than once"):
        load(flickr_root)
    data["images"][1]["imgid"], data["images"][1]["split"] = 1, "holdout"
    path.write_text(json.dumps(data))
    with pytest.raises(DataError, match="images\\[1\\] has split 'holdout'"):
        load(flickr_root)
    (flickr_root / "flickr30k-images" / "1000.jpg").unlink()
    data["images"][1]["split"] = "train"
    path.write_text(json.dumps(data))
    with pytest.raises(DataError, match="missing image flickr30k-images/1000.jpg"):
        load(flickr_root)


def test_data_check_prints_per_task_counts(flickr_root, tmp_path, capsys):
    config = write_config(tmp_path / "c.yaml", {"name": "flickr30k", "root": str(flickr_root), "image_size": 16})
    assert main(["data", "check", "--config", config]) == 0
    out = capsys.readouterr().out
    assert "flickr30k: 3 tasks, data OK" in out and "| animals | 2 | 10 | 1 | 5 | 2 | 10 | - |" in out
    assert "images in no task: no task's words: 1, words of several tasks: 1" in out


def test_tasks_from_a_task_file_column(flickr_root):
    rows = ["filename,label"] + [f"{1000 + i},{'pet' if i in (0, 3, 6, 11, 14) else 'other'}".replace(",", ".jpg,", 1) for i in range(15) if i != 10]
    (flickr_root / "labels.csv").write_text("\n".join(rows) + "\n")
    with pytest.raises(DataError, match=r"image 10 \(1010.jpg\): no task value"):
        load(flickr_root, task_by="column", task_file="labels.csv", task_column="label")
    data = load(flickr_root, task_by="column", task_file="labels.csv", task_column="label", tasks=[["pet"], ["other"]], on_bad_row="skip")
    assert data.task_names == ("pet", "other") and [s.image_ids for s in data.test] == [(11, 14), (12, 13)]
    assert data.excluded[NO_TASK] == {"bad row: no task value": 1}
    with pytest.raises(DataError, match="no column 'task'; it has 'filename', 'label'"):
        load(flickr_root, task_by="column", task_file="labels.csv")
