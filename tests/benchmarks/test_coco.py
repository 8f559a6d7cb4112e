import json
import re
import subprocess
import sys

import numpy as np
import pytest
import torch

from ccrbench import features as features_command
from ccrbench.benchmarks.coco import secoco
from ccrbench.benchmarks.files.reading import DataError
from ccrbench.benchmarks.files.tasks import NO_TASK
from ccrbench.cli import main
from ccrbench.models.features import FeatureMLP
from ccrbench.models.image import SmallCNN
from ccrbench.options import check_options
from ccrbench.registry import BENCHMARKS, ConfigError
from tests.benchmarks.minidata import coco_caption, coco_file, write_config

OFFICIAL_EXCLUDED = {
    NO_TASK: {"categories of several tasks": 2, "categories outside every task": 3, "no instance annotations": 1},
    "animals": {"fewer than 5 captions": 1},
}


def load(root, **options):
    return secoco(root=str(root), image_size=16, **options)


def ids(splits):
    return [s.image_ids for s in splits]


def test_tasks_and_exclusions_official_split(coco_root):
    data = load(coco_root)
    assert data.task_names == ("animals", "vehicles", "indoor")
    assert ids(data.train) == [(101, 102, 103, 104), (111, 112, 113, 114), (121, 122, 123, 124)]
    assert ids(data.test) == [(201, 202), (211, 212), (221, 222)]
    assert data.excluded == OFFICIAL_EXCLUDED
    image = data.train[1].images[0]
    assert image.shape == (3, 16, 16) and image.dtype == torch.float32 and 0 <= image.min() and image.max() <= 1


def test_custom_task_groups(coco_root):
    data = load(coco_root, tasks=[["animal", "outdoor", "vehicle"], ["food", "kitchen"]], task_names=["outside", "food"])
    assert ids(data.train) == [(101, 102, 103, 104, 111, 112, 113, 114, 131), (121, 124)]
    assert data.excluded[NO_TASK]["categories outside every task"] == 3 + 2  # person, kite; chair, tv+chair


def test_captions_are_the_first_five_by_annotation_id(coco_root):
    data = load(coco_root)
    assert data.train[0].captions[0] == tuple(coco_caption(101, k) for k in range(5))  # 7 in the file, listed backwards
    assert [s.captions for s in load(coco_root).train] == [s.captions for s in data.train]  # deterministic
    assert all(len(c) == 5 for s in (*data.train, *data.test) for c in s.captions)


def test_karpathy_split(coco_root):
    data = load(coco_root, karpathy_split="dataset_coco.json", test_size="all")
    assert ids(data.train) == [(101, 102, 103, 104), (111, 112, 113, 114), (121, 122, 123, 124)]  # restval trains
    assert ids(data.val) == [(202,), (212,), (222,)]  # Karpathy's val images, assigned to tasks as test images are
    assert ids(data.test) == [(201,), (211,), (221,)]
    assert NO_TASK not in data.excluded or "Karpathy val split (not used)" not in data.excluded[NO_TASK]
    assert data.train[0].captions[0] == tuple(f"karpathy {k} : a dog in scene 101" for k in range(5))  # sentid order
    few = load(coco_root, karpathy_split="dataset_coco.json", test_size=3)  # the first 3 test images in file order
    assert ids(few.test) == [(201,), (211,), (221,)] and few.excluded[NO_TASK]["test image beyond test_size"] == 2
    with pytest.raises(DataError, match="task 'vehicles' has no test images"):
        load(coco_root, karpathy_split="dataset_coco.json", test_size=2)


def test_official_split_holds_out_validation_images_by_hash(coco_root):
    data = load(coco_root, val_fraction=0.36)
    assert ids(data.val) == [(102, 103), (113,), (121, 124)]  # hash(0, id) < 0.36, assigned to tasks as test images
    assert ids(data.train) == [(101, 104), (111, 112, 114), (122, 123)]
    assert ids(data.test) == [(201, 202), (211, 212), (221, 222)]  # unchanged
    assert ids(load(coco_root, val_fraction=0.36).val) == ids(data.val)  # deterministic
    other = load(coco_root, val_fraction=0.36, split_seed=1)
    assert ids(other.val) != ids(data.val)
    for d in (data, other):
        train, val, test = ({i for s in getattr(d, split) for i in s.image_ids} for split in ("train", "val", "test"))
        assert not (train & val or val & test or train & test)
        assert train | val == {i for s in load(coco_root).train for i in s.image_ids}  # held out from COCO's train
    assert load(coco_root).val is None  # 0.05 of 12 images leaves tasks without validation images
    bm = BENCHMARKS.build("secoco", {"root": str(coco_root), "image_size": 16, "val_fraction": 0.36})
    image, captions, image_id, task = bm.val_stream[2].dataset[1]
    assert (image_id, task) == (124, 2) and captions == tuple(coco_caption(124, k) for k in range(5))
    with pytest.raises(ConfigError, match="no validation split"):
        BENCHMARKS.build("secoco", {"root": str(coco_root), "image_size": 16}).val_stream


def test_official_test_size_keeps_the_first_images_by_id(coco_root):
    data = load(coco_root, test_size=5)
    assert ids(data.test) == [(201, 202), (211, 212), (221,)]
    assert data.excluded[NO_TASK]["test image beyond test_size"] == 3


def test_registered_benchmark_gives_avalanche_streams(coco_root):
    bm = BENCHMARKS.build("secoco", {"root": str(coco_root), "image_size": 16})
    assert bm.task_names == ("animals", "vehicles", "indoor") and len(bm.train_stream) == 3
    image, caption, image_id, task = bm.train_stream[2].dataset[0]
    assert image.shape == (3, 16, 16) and isinstance(caption, str) and (image_id, task) == (121, 2)
    image, captions, image_id, task = bm.test_stream[1].dataset[1]
    assert len(captions) == 5 and (image_id, task) == (212, 1)
    assert len(bm.train_captions) == 3 * 4 * 5


@pytest.mark.parametrize(
    "options, message",
    [
        ({"tasks": [["animal"], ["vehicles"]], "task_names": ["a", "b"]}, r"unknown supercategory 'vehicles'; COCO has: person"),
        ({"tasks": [["animal"], ["animal", "food"]], "task_names": ["a", "b"]}, "'animal' is in groups 0 and 1"),
        ({"tasks": [["animal"], ["food"]]}, "3 names for 2 task groups"),
        ({"tasks": [["animal"], []], "task_names": ["a", "b"]}, r"tasks\[1\]: an empty group"),
    ],
)
def test_bad_options_are_clear_errors(coco_root, options, message):
    with pytest.raises(ConfigError, match=message):
        load(coco_root, **options)


@pytest.mark.parametrize(
    "options, message",
    [
        ({"test_size": 0}, "secoco.test_size: must be >= 1, got 0"),
        ({"test_size": "some"}, "secoco.test_size: expected int | one of 'all', got 'some'"),
        ({"captions_per_image": 0}, "secoco.captions_per_image: must be >= 1, got 0"),
        ({"val_fraction": 1.0}, "secoco.val_fraction: must be < 1, got 1.0"),
        ({"val_fraction": 0}, "secoco.val_fraction: must be > 0, got 0"),
    ],
)
def test_options_out_of_their_limits_are_refused_at_load(options, message):
    with pytest.raises(ConfigError, match=re.escape(message)):
        check_options(secoco, options, where="secoco")


def test_missing_file_names_it_and_where_it_was_looked_for(coco_root):
    (coco_root / "annotations" / "captions_val2014.json").unlink()
    with pytest.raises(DataError, match=r"missing file captions_val2014.json: looked for .*coco/annotations/captions_val2014.json"):
        load(coco_root)
    with pytest.raises(DataError, match=r"missing file dataset_coco.json.*download Karpathy"):
        load(coco_root, karpathy_split="nowhere/dataset_coco.json")


def test_malformed_json_names_the_line(coco_root):
    (coco_root / "annotations" / "instances_train2014.json").write_text('{"images": [\n  {"id": 1,\n  ]}')
    with pytest.raises(DataError, match=r"instances_train2014.json: malformed JSON at line 3"):
        load(coco_root)


def test_entry_without_a_required_field(coco_root):
    path = coco_root / "annotations" / "captions_train2014.json"
    data = json.loads(path.read_text())
    del data["annotations"][3]["caption"]
    path.write_text(json.dumps(data))
    with pytest.raises(DataError, match=r"captions_train2014.json: annotations\[3\] has no 'caption' field"):
        load(coco_root)


def test_captions_missing_for_an_image(coco_root):
    path = coco_root / "annotations" / "captions_val2014.json"
    data = json.loads(path.read_text())
    data["annotations"] = [a for a in data["annotations"] if a["image_id"] != 212]
    path.write_text(json.dumps(data))
    with pytest.raises(DataError, match=r"captions missing for image 212 \(COCO_val2014_000000000212.jpg\)"):
        load(coco_root)


def test_captions_and_instances_of_different_splits(coco_root):
    ann = coco_root / "annotations"
    (ann / "instances_val2014.json").write_text((ann / "instances_train2014.json").read_text())
    with pytest.raises(DataError, match="image 201 of .*captions_val2014.json is not in .*instances_val2014.json"):
        load(coco_root)


def test_karpathy_image_unknown_to_coco(coco_root):
    path = coco_root / "dataset_coco.json"
    data = json.loads(path.read_text())
    data["images"][0]["cocoid"] = 777
    path.write_text(json.dumps(data))
    with pytest.raises(DataError, match="image 777 of .*dataset_coco.json is in neither instances_train2014.json"):
        load(coco_root, karpathy_split="dataset_coco.json")
    data["images"][0]["split"] = "testing"
    path.write_text(json.dumps(data))
    with pytest.raises(DataError, match=r"images\[0\] has split 'testing'"):
        load(coco_root, karpathy_split="dataset_coco.json")


def test_image_that_does_not_decode(coco_root, tmp_path, capsys):
    path = coco_root / "train2014" / coco_file(102)
    path.write_bytes(path.read_bytes()[:150])  # a truncated JPEG
    with pytest.raises(DataError, match=r"COCO_train2014_000000000102.jpg does not decode .*on_bad_image=skip"):
        load(coco_root)
    config = write_config(tmp_path / "c.yaml", {"name": "secoco", "root": str(coco_root), "image_size": 16})
    assert main(["data", "check", "--config", config]) == 2
    assert "COCO_train2014_000000000102.jpg does not decode" in capsys.readouterr().err
    assert main(["data", "check", "--config", config, "--set", "benchmark.on_bad_image=skip"]) == 0
    assert "image does not decode: 1" in capsys.readouterr().out
    data = load(coco_root, on_bad_image="skip")
    assert ids(data.train)[0] == (101, 103, 104)
    assert data.excluded["animals"] == {"fewer than 5 captions": 1, "image does not decode": 1}


def test_missing_image_file(coco_root):
    (coco_root / "val2014" / coco_file(222)).unlink()
    with pytest.raises(DataError, match=r"missing image val2014/COCO_val2014_000000000222.jpg: looked in .*coco"):
        load(coco_root)


def test_data_check_prints_counts_and_overlap(coco_root, tmp_path, capsys):
    config = write_config(tmp_path / "c.yaml", {"name": "secoco", "root": str(coco_root), "image_size": 16})
    assert main(["data", "check", "--config", config]) == 0
    out = capsys.readouterr().out
    assert "| animals | 4 | 20 | - | - | 2 | 10 | fewer than 5 captions: 1 |" in out
    assert "no validation split: no validation image in task(s) animals, vehicles, indoor" in out
    assert "categories of several tasks: 2" in out and "no instance annotations: 1" in out
    assert "animals / vehicles: 0.4" in out
    assert main(["data", "check", "--config", config, "--set", "benchmark.val_fraction=0.36"]) == 0
    out = capsys.readouterr().out
    assert "| animals | 2 | 10 | 2 | 10 | 2 | 10 | fewer than 5 captions: 1 |" in out  # per-task validation counts
    assert "| vehicles | 3 | 15 | 1 | 5 | 2 | 10 | - |" in out and "no validation split" not in out
    (coco_root / "annotations" / "captions_train2014.json").write_text("{\"images\": [\n")
    assert main(["data", "check", "--config", config]) == 2
    assert "captions_train2014.json: malformed JSON at line 2" in capsys.readouterr().err
    assert main(["data", "check", "--config", write_config(tmp_path / "s.yaml", {"name": "shapes"})]) == 2
    assert "unknown file benchmark 'shapes'; registered: flickr30k, image_captions, secoco, sevige" in capsys.readouterr().err


def features_cli(config, *extra):
    args = ["features", "--config", config, "--encoder", "small_cnn", "--quiet", "--chunk-images", "5"]
    args += ["--set", "model.image_encoder.width=8", "--set", "model.image_encoder.output_dim=16", *extra]
    return main(args)


def test_features_are_the_encoder_outputs_and_give_the_same_embeddings(coco_root, tmp_path, capsys):
    config = write_config(tmp_path / "c.yaml", {"name": "secoco", "root": str(coco_root), "image_size": 32, "mode": "features"})
    assert features_cli(config) == 0
    assert "train: extracted" in capsys.readouterr().out
    assert sorted(p.name for p in (coco_root / "features").iterdir()) == [
        "manifest.json", "test_caps.txt", "test_ids.txt", "test_ims.npy", "train_caps.txt", "train_ids.txt", "train_ims.npy"
    ]  # fmt: skip
    assert np.load(coco_root / "features" / "train_ims.npy").shape == (12, 16)
    torch.manual_seed(0)  # the config's seed
    encoder = SmallCNN(width=8, output_dim=16).eval()
    torch.manual_seed(1)
    mlp = FeatureMLP(input_dim=16, hidden_dim=8, output_dim=8)
    raw, feats = secoco(root=str(coco_root), image_size=32), secoco(root=str(coco_root), mode="features")
    for split in ("train", "test"):
        for a, b in zip(getattr(raw, split), getattr(feats, split)):
            assert a.image_ids == b.image_ids and a.captions == b.captions
            pixels = torch.stack([a.images[i] for i in range(len(a.image_ids))])
            features = torch.stack([b.images[i] for i in range(len(b.image_ids))])
            with torch.no_grad():
                expected = encoder(pixels)
                assert torch.allclose(features, expected, atol=1e-4), (features - expected).abs().max()  # batch-size-dependent conv sums
                assert torch.allclose(mlp(features), mlp(expected), atol=1e-4)  # same image embeddings


def test_features_resume_and_skip_finished_splits(coco_root, tmp_path, monkeypatch, capsys):
    config = write_config(tmp_path / "c.yaml", {"name": "secoco", "root": str(coco_root), "image_size": 32})
    loaded = []
    real_loader = features_command.DataLoader
    monkeypatch.setattr(features_command, "DataLoader", lambda ds, **kw: loaded.append(len(ds)) or real_loader(ds, **kw))

    def interrupted(chunks, path, rows):
        raise KeyboardInterrupt

    monkeypatch.setattr(features_command, "_concatenate", interrupted)
    assert features_cli(config) == 130  # Ctrl-C
    assert loaded == [5, 5, 2] and not (coco_root / "features" / "train_ims.npy").exists()
    partial = next((coco_root / "features").glob(".partial-train-*"))
    (partial / "000001.npy").unlink()
    monkeypatch.undo()
    monkeypatch.setattr(features_command, "DataLoader", lambda ds, **kw: loaded.append(len(ds)) or real_loader(ds, **kw))
    loaded.clear()
    assert features_cli(config) == 0
    assert loaded == [5, 5, 1]  # train: only the missing chunk; test: 6 images in two chunks
    assert not partial.exists()
    first = np.load(coco_root / "features" / "train_ims.npy")
    loaded.clear()
    assert features_cli(config) == 0
    assert loaded == [] and "train: already done\ntest: already done" in capsys.readouterr().out
    monkeypatch.undo()
    fresh = tmp_path / "fresh"
    assert features_cli(config, "--out", str(fresh)) == 0
    assert np.allclose(np.load(fresh / "train_ims.npy"), first, atol=1e-6)
    assert (fresh / "train_ids.txt").read_text() == (coco_root / "features" / "train_ids.txt").read_text()
    assert features_cli(config, "--set", "model.image_encoder.width=16") == 2
    assert "holds features of another extractor" in capsys.readouterr().err


def test_feature_files_must_line_up(coco_root, tmp_path, capsys):
    config = write_config(tmp_path / "c.yaml", {"name": "secoco", "root": str(coco_root), "image_size": 32, "mode": "features"})
    assert main(["data", "check", "--config", config]) == 2
    assert "missing file train_ims.npy: looked for" in capsys.readouterr().err
    assert features_cli(config) == 0
    folder = coco_root / "features"
    ids = (folder / "train_ids.txt").read_text().splitlines()
    (folder / "train_ids.txt").write_text("\n".join(ids[:-1]) + "\n")
    assert main(["data", "check", "--config", config]) == 2
    assert "length mismatch in" in capsys.readouterr().err
    (folder / "train_ids.txt").write_text("\n".join(ids[:-1] + ["12x"]) + "\n")
    assert main(["data", "check", "--config", config]) == 2
    assert "line 12 is '12x', not an integer image id" in capsys.readouterr().err
    (folder / "train_ids.txt").write_text("\n".join(ids[:-1] + ["999999"]) + "\n")  # the last image has no row
    assert main(["data", "check", "--config", config]) == 2
    assert f"has no row for image {ids[-1]}" in capsys.readouterr().err
    assert main(["data", "check", "--config", config, "--set", "benchmark.on_bad_image=skip"]) == 0
    assert "no precomputed features: 1" in capsys.readouterr().out
    (folder / "train_ids.txt").write_text("\n".join(ids) + "\n")
    caps = (folder / "train_caps.txt").read_text().replace("photo 2 of a dog in scene 101", "another caption")
    (folder / "train_caps.txt").write_text(caps)
    with pytest.raises(DataError, match="the captions of image 101 differ from the annotations'"):
        secoco(root=str(coco_root), mode="features")


def test_tiny_run_on_secoco_images(coco_root, tmp_path, capsys):
    config = write_config(tmp_path / "c.yaml", {"name": "secoco", "root": str(coco_root), "image_size": 32})
    assert main(["run", "--quiet", "--config", config, "--out", str(tmp_path / "run")]) == 0
    results = json.loads((tmp_path / "run" / "results.json").read_text())
    assert results["complete"] and results["task_names"] == ["animals", "vehicles", "indoor"]
    assert len(results["stages"]) == 3


def test_data_check_does_not_import_avalanche(coco_root, tmp_path):
    """`data check` reads files only: it must not pay Avalanche's seconds of imports (the
    repeated check on a COCO-sized tree is mostly imports; results/bench/bench.md)."""
    config = write_config(tmp_path / "c.yaml", {"name": "secoco", "root": str(coco_root), "image_size": 16})
    code = f"import sys; from ccrbench.cli import main; assert main(['data', 'check', '--config', {config!r}]) == 0; print(sorted(m for m in sys.modules if m.startswith('avalanche')))"
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=False)
    assert done.returncode == 0, done.stderr[-2000:]
    assert done.stdout.strip().splitlines()[-1] == "[]"
