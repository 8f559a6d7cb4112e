"""Data that would give a silently wrong result: repeated ids, non-finite features, blank captions."""

import json

import numpy as np
import pytest

from ccrbench.benchmarks.coco import secoco
from ccrbench.benchmarks.files.precomp import read_precomp
from ccrbench.benchmarks.files.reading import DataError
from ccrbench.benchmarks.files.tasks import Candidate, refuse_twice
from ccrbench.benchmarks.visual_genome import sevige
from ccrbench.cli import main
from ccrbench.registry import BENCHMARKS
from tests.benchmarks.minidata import write_config
from tests.benchmarks.test_coco import features_cli
from tests.benchmarks.test_files import write_precomp


def edit_json(path, change):
    data = json.loads(path.read_text())
    change(data)
    path.write_text(json.dumps(data))


def test_an_image_id_twice_in_a_coco_images_array_is_named(coco_root):
    captions = coco_root / "annotations" / "captions_train2014.json"
    edit_json(captions, lambda d: d["images"].append({**d["images"][0], "file_name": "COCO_train2014_other.jpg"}))
    first = json.loads(captions.read_text())["images"][0]["id"]
    with pytest.raises(DataError, match=rf"captions_train2014.json: 'images': id\(s\) \[{first}\] appear more than once"):
        secoco(root=str(coco_root), image_size=16)


def test_a_file_name_twice_in_a_coco_images_array_is_named(coco_root):
    instances = coco_root / "annotations" / "instances_val2014.json"
    edit_json(instances, lambda d: d["images"][1].update(file_name=d["images"][0]["file_name"]))
    with pytest.raises(DataError, match=r"instances_val2014.json: 'images': file_name\(s\) \['COCO_val2014_.*'\] appear more than once"):
        secoco(root=str(coco_root), image_size=16)


def test_a_caption_annotation_twice_is_named(coco_root):
    captions = coco_root / "annotations" / "captions_val2014.json"
    edit_json(captions, lambda d: d["annotations"].append(d["annotations"][0]))
    with pytest.raises(DataError, match=r"captions_val2014.json: 'annotations': caption id\(s\) \[\d+\] appear more than once"):
        secoco(root=str(coco_root), image_size=16)


def test_a_cocoid_twice_in_the_karpathy_file_is_named_not_a_test_leak(coco_root):
    def train_image_also_in_test(d):
        train = next(im for im in d["images"] if im["split"] == "train")
        d["images"].append({**train, "split": "test"})

    edit_json(coco_root / "dataset_coco.json", train_image_also_in_test)
    with pytest.raises(DataError, match=r"dataset_coco.json: cocoid\(s\) \[\d+\] appear more than once"):
        secoco(root=str(coco_root), image_size=16, karpathy_split="dataset_coco.json", test_size="all")


@pytest.mark.parametrize("file, key", [("image_data", "image_id"), ("objects", "image_id"), ("region_descriptions", "id")])
def test_an_image_twice_in_a_visual_genome_file_is_named(vg_root, file, key):
    edit_json(vg_root / f"{file}.json", lambda d: d.append(d[0]))
    with pytest.raises(DataError, match=rf"{file}.json: image[ _]id\(s\) \[\d+\] appear more than once"):
        sevige(root=str(vg_root), image_size=16, test_fraction=0.4)


def test_no_loader_can_put_an_image_in_two_splits():
    """The net under every file benchmark's loader (new ones included): `assemble` refuses an
    image id, or an image file, given twice."""
    a = Candidate(image_id=1, task=0, split="train", captions=("a",), file="x.jpg")
    refuse_twice([a, Candidate(image_id=2, task=0, split="test", captions=("b",), file="y.jpg")])
    with pytest.raises(DataError, match=r"image id 1 is listed twice \(task 0 train and task 1 test\)"):
        refuse_twice([a, Candidate(image_id=1, task=1, split="test", captions=("b",), file="y.jpg")])
    with pytest.raises(DataError, match=r"image file 'x.jpg' is listed twice \(task 0 train and task 0 test\)"):
        refuse_twice([a, Candidate(image_id=2, task=0, split="test", captions=("b",), file="x.jpg")])


def test_exclude_coco_test_without_any_coco_id_warns(vg_root):
    edit_json(vg_root / "image_data.json", lambda d: [im.update(coco_id=None) for im in d])
    with pytest.warns(UserWarning, match="exclude_coco_test: no image of .*image_data.json has a coco_id"):
        sevige(root=str(vg_root), image_size=16, test_fraction=0.4, exclude_coco_test="dataset_coco.json")


def test_a_blank_caption_line_is_named_by_its_line_number(tmp_path):
    write_precomp(tmp_path, "test", np.zeros((2, 2), np.float32), ["a", "", "c", "d"], [1, 2])
    with pytest.raises(DataError, match=r"test_caps.txt: line\(s\) \[2\] are blank"):
        read_precomp(tmp_path, "test")


@pytest.fixture
def features_config(coco_root, tmp_path):
    """A SeCOCO features-mode config with its features extracted (16 wide)."""
    config = write_config(tmp_path / "c.yaml", {"name": "secoco", "root": str(coco_root), "image_size": 32, "mode": "features"})
    assert features_cli(config) == 0
    return config


@pytest.mark.parametrize("split, value", [("test", np.nan), ("train", np.inf)])
def test_a_non_finite_feature_row_is_named_with_its_file_and_row(coco_root, features_config, split, value):
    path = coco_root / "features" / f"{split}_ims.npy"
    features = np.load(path)
    features[1, 3] = value
    np.save(path, features)
    bm = BENCHMARKS.build("secoco", {"root": str(coco_root), "mode": "features"})
    stream = bm.train_stream if split == "train" else bm.test_stream
    with pytest.raises(DataError, match=rf"{path}: row 1 holds NaN or infinite values"):
        for exp in stream:  # the run reads every row of both
            for i in range(len(exp.dataset)):
                exp.dataset[i]


def test_data_check_catches_a_feature_width_other_than_input_dim(features_config, capsys):
    assert main(["data", "check", "--config", features_config, "--set", "model.image_encoder={name: feature_mlp, input_dim: 16}"]) == 0
    capsys.readouterr()
    assert main(["data", "check", "--config", features_config, "--set", "model.image_encoder={name: feature_mlp, input_dim: 512}"]) == 2
    assert "model.image_encoder.input_dim is 512 but the precomputed features are 16 wide" in capsys.readouterr().err


def test_a_run_on_a_nan_training_feature_names_the_data_not_the_learning_rate(coco_root, features_config, tmp_path, capsys):
    path = coco_root / "features" / "train_ims.npy"
    features = np.load(path)
    features[5] = np.nan
    np.save(path, features)
    args = ["run", "--quiet", "--config", features_config, "--out", str(tmp_path / "run"), "--set", "train.epochs=1", "--set", "train.batch_size=4"]
    args += ["--set", "model.image_encoder={name: feature_mlp, input_dim: 16, hidden_dim: 8, output_dim: 8}", "--set", "model.embed_dim=8"]
    args += ["--set", "model.text_encoder={name: bigru, word_dim: 8, hidden_dim: 8}"]
    assert main(args) == 2
    err = capsys.readouterr().err
    assert f"{path}: row 5 holds NaN or infinite values" in err and "learning rate" not in err
