import json
import re

import pytest

from ccrbench.benchmarks.files.reading import DataError
from ccrbench.benchmarks.files.tasks import NO_TASK
from ccrbench.benchmarks.visual_genome import DOMAINS, mentions, object_domains, sevige, split_of
from ccrbench.cli import main
from ccrbench.options import check_options
from ccrbench.registry import ConfigError
from tests.benchmarks.minidata import VG_DOMAIN, vg_expected_captions, write_config

SPLIT = {"test_fraction": 0.4, "val_fraction": 0.2, "split_seed": 0}


def load(root, **options):
    return sevige(root=str(root), image_size=16, **{**SPLIT, **options})


def expected_ids(split, *, leave_out=()):
    return [
        tuple(i for i, d in sorted(VG_DOMAIN.items()) if d == domain and i not in leave_out and split_of(i, seed=0, test_fraction=0.4, val_fraction=0.2) == split)
        for domain in DOMAINS
    ]


def test_domains_from_names_synsets_and_lemmas():
    domains = lambda obj: object_domains(obj, path=None, what="object")  # noqa: E731
    assert domains({"names": ["dog"], "synsets": ["dog.n.01"]}) == {"animals"}
    assert domains({"name": "zebra"}) == {"animals"}  # the older schema, no synsets
    assert domains({"names": ["giraffes"], "synsets": []}) == {"animals"}  # plural
    assert domains({"names": ["pooch"], "synsets": ["dog.n.01"]}) == {"animals"}  # the synset's lemma
    assert domains({"names": ["kite"], "synsets": ["kite.n.04"]}) == {"animals"} and domains({"names": ["kite"], "synsets": ["kite.n.03"]}) == set()
    assert domains({"names": ["police car"], "synsets": ["car.n.01"]}) == {"vehicles"}
    assert domains({"names": ["cab"], "synsets": ["cab.n.03"]}) == {"vehicles"}
    assert domains({"names": ["pants"], "synsets": ["trouser.n.01"]}) == {"clothes"}
    assert domains({"names": ["baseball cap"], "synsets": ["cap.n.01"]}) == {"clothes"}
    assert domains({"names": ["mouse"], "synsets": ["mouse.n.04"]}) == set()  # the computer mouse
    assert domains({"names": ["hot dog"], "synsets": ["hotdog.n.02"]}) == set()
    assert domains({"names": ["tie"], "synsets": []}) == set()  # ambiguous name alone
    assert mentions("two buses near a fence", "vehicles") and mentions("a man's T-shirt", "clothes")
    assert not mentions("a hot day in the park", "animals")


def test_tasks_exclusions_and_split(vg_root):
    data = load(vg_root)
    assert data.task_names == ("animals", "vehicles", "clothes")
    assert [s.image_ids for s in data.train] == expected_ids("train")
    assert [s.image_ids for s in data.test] == expected_ids("test")
    assert [s.image_ids for s in data.val] == expected_ids("val") == [(5, 8), (15, 16), (28,)]  # assigned as test images
    assert data.excluded == {
        NO_TASK: {"no object of any domain": 4, "objects of several domains": 2},
        "animals": {"fewer than 5 descriptions of the domain": 1},
    }
    assert data.train[0].images[0].shape == (3, 16, 16) and data.train[2].images[0].shape == (3, 16, 16)  # VG_100K, VG_100K_2


def test_split_is_deterministic_and_follows_seed_and_fraction(vg_root):
    a, b = load(vg_root), load(vg_root)
    assert [s.image_ids for s in a.test] == [s.image_ids for s in b.test]
    assert [s.captions for s in a.train] == [s.captions for s in b.train]
    assert [s.image_ids for s in a.val] == [s.image_ids for s in b.val]
    for split in ("train", "val", "test"):  # disjoint
        others = {i for other in ("train", "val", "test") if other != split for s in getattr(a, other) for i in s.image_ids}
        assert not others & {i for s in getattr(a, split) for i in s.image_ids}

    def ids(split, *, seed=0, test=0.25, val=0.25):
        return {i for i in range(4000) if split_of(i, seed=seed, test_fraction=test, val_fraction=val) == split}

    assert all(0.22 < len(ids(split, seed=s)) / 4000 < 0.28 for s in (0, 1) for split in ("test", "val"))
    assert ids("val", seed=0) != ids("val", seed=1) and ids("test", seed=0) != ids("test", seed=1)
    assert ids("test", val=0.1) == ids("test", val=0.3)  # the validation share leaves the test set as it is
    assert ids("val", val=0.1) <= ids("val", val=0.3) and ids("test", test=0.2) <= ids("test", test=0.4)


def test_captions_are_domain_descriptions_by_region_id(vg_root):
    data = load(vg_root)
    for split in (*data.train, *data.test):
        for image_id, captions in zip(split.image_ids, split.captions):
            assert captions == vg_expected_captions(image_id)


def test_subset_and_order_of_domains(vg_root):
    data = load(vg_root, tasks=["clothes", "animals"])
    assert data.task_names == ("clothes", "animals")
    assert data.excluded[NO_TASK]["vehicles (not a task)"] == 8
    assert [s.image_ids for s in data.train] == [expected_ids("train")[2], expected_ids("train")[0]]


def test_coco_test_images_can_be_left_out(vg_root):
    data = load(vg_root, exclude_coco_test="dataset_coco.json")
    assert data.excluded["animals"]["COCO Karpathy test image"] == 1
    assert [s.image_ids for s in data.test] == expected_ids("test", leave_out=(7,))
    assert [s.image_ids for s in data.train] == expected_ids("train", leave_out=(7,))
    with pytest.raises(DataError, match="missing file dataset_coco.json: looked for .*vg/coco/dataset_coco.json"):
        load(vg_root, exclude_coco_test="coco/dataset_coco.json")


@pytest.mark.parametrize(
    "options, message",
    [
        ({"tasks": ["animals", "plants"]}, "expected distinct domains from animals, vehicles, clothes"),
        ({"tasks": ["animals", "animals"]}, "expected distinct domains"),
        ({"val_fraction": 0.7}, r"val_fraction: expected a number between 0 and 1 - test_fraction \(0.6\)"),
    ],
)
def test_bad_options_are_clear_errors(vg_root, options, message):
    with pytest.raises(ConfigError, match=message):
        load(vg_root, **options)


@pytest.mark.parametrize(
    "options, message",
    [
        ({"test_fraction": 1.0}, "sevige.test_fraction: must be < 1, got 1.0"),
        ({"val_fraction": 0.0}, "sevige.val_fraction: must be > 0, got 0.0"),
        ({"captions_per_image": 0}, "sevige.captions_per_image: must be >= 1, got 0"),
    ],
)
def test_options_out_of_their_limits_are_refused_at_load(options, message):
    with pytest.raises(ConfigError, match=re.escape(message)):
        check_options(sevige, options, where="sevige")


def test_missing_and_malformed_files(vg_root):
    (vg_root / "region_descriptions.json").write_text('[{"id": 1,\n "regions": [}]')
    with pytest.raises(DataError, match="region_descriptions.json: malformed JSON at line 2"):
        load(vg_root)
    (vg_root / "objects.json").unlink()
    with pytest.raises(DataError, match=r"missing file objects.json: looked for .*vg/objects.json.*download Visual Genome"):
        load(vg_root)


def rewrite(path, change):
    data = json.loads(path.read_text())
    change(data)
    path.write_text(json.dumps(data))


def test_inconsistent_files(vg_root):
    rewrite(vg_root / "region_descriptions.json", lambda d: d.pop(4))
    with pytest.raises(DataError, match="captions missing for image 5: .*region_descriptions.json has no entry"):
        load(vg_root)
    rewrite(vg_root / "objects.json", lambda d: d[0]["objects"][0].pop("names"))
    with pytest.raises(DataError, match="object 0 of image 1 has neither 'names' nor 'name'"):
        load(vg_root)
    rewrite(vg_root / "objects.json", lambda d: d.pop(0))
    with pytest.raises(DataError, match="objects missing for image 1: .*objects.json has no entry"):
        load(vg_root)
    rewrite(vg_root / "image_data.json", lambda d: d[0].pop("image_id"))
    with pytest.raises(DataError, match=r"image_data.json: entry \[0\] has no 'image_id' field"):
        load(vg_root)


def test_image_that_does_not_decode(vg_root):
    (vg_root / "VG_100K_2" / "24.jpg").write_bytes(b"not a jpeg")
    with pytest.raises(DataError, match="VG_100K_2/24.jpg does not decode"):
        load(vg_root)
    data = load(vg_root, on_bad_image="skip")
    assert data.excluded["clothes"] == {"image does not decode": 1}
    assert 24 not in {i for s in (*data.train, *data.test) for i in s.image_ids}
    (vg_root / "VG_100K_2" / "24.jpg").unlink()
    with pytest.raises(DataError, match=r"missing image 24.jpg: looked in .*vg/VG_100K, .*vg/VG_100K_2"):
        load(vg_root)


def test_features_then_tiny_run_on_features(vg_root, tmp_path, capsys):
    benchmark = {"name": "sevige", "root": str(vg_root), "image_size": 32, "mode": "features", **SPLIT}
    mlp = {"name": "feature_mlp", "input_dim": 16, "hidden_dim": 16, "output_dim": 16, "layers": 2}
    config = write_config(tmp_path / "c.yaml", benchmark, mlp)
    args = ["features", "--config", config, "--encoder", "small_cnn", "--quiet", "--out", str(vg_root / "feats")]
    assert main([*args, "--set", "model.image_encoder.width=8", "--set", "model.image_encoder.output_dim=16"]) == 0
    override = ["--set", "benchmark.features_dir=feats"]
    assert main(["data", "check", "--config", config, *override]) == 0
    assert "| animals | " in capsys.readouterr().out
    assert main(["run", "--quiet", "--config", config, *override, "--out", str(tmp_path / "run")]) == 0
    results = json.loads((tmp_path / "run" / "results.json").read_text())
    assert results["complete"] and results["task_names"] == ["animals", "vehicles", "clothes"]
    assert results["config"]["model"]["image_encoder"]["name"] == "feature_mlp"
    assert main(["run", "--quiet", "--config", config, "--out", str(tmp_path / "raw"), "--set", "benchmark.features_dir=feats",
                 "--set", "model.image_encoder.input_dim=8"]) == 2  # fmt: skip
    assert "feature_mlp expects features [N, 8], got (" in capsys.readouterr().err
