import json

import pytest

from ccrbench.benchmarks.captions import image_captions
from ccrbench.benchmarks.files.reading import DataError
from ccrbench.benchmarks.files.tasks import NO_TASK
from ccrbench.cli import main
from ccrbench.registry import ConfigError
from tests.benchmarks import captiondata
from tests.benchmarks.minidata import write_config

FORMATS = {
    "csv": lambda root: [captiondata.write_csv(root).name],
    "tsv": lambda root: [captiondata.write_csv(root, name="data.tsv").name],
    "jsonl": lambda root: [captiondata.write_jsonl(root).name],
    "parquet": lambda root: [captiondata.write_parquet(root).name],
    "webdataset": lambda root: ["shards/*.tar"] if captiondata.write_shards(root) else [],
    "hf_parquet": lambda root: [captiondata.write_hf_embedded(root).name],  # images embedded as {bytes, path}
    "hf_arrow": lambda root: [captiondata.write_hf_embedded(root, suffix=".arrow").name],
}
COLUMN = {"task_by": "column", "task_column": "task", "split_column": "split", "captions_per_image": 2}
EXPECTED = {task: {split: sorted(r["name"] for r in captiondata.images() if r["task"] == task and r["split"] == split) for split in ("train", "val", "test")} for task in captiondata.WORDS}


def load(root, files, **options):
    return image_captions(root=str(root), files=tuple(files), image_size=16, **options)


def names(data, split):
    """{task name: sorted image names} of a split, from the captions (they hold word and number)."""
    by_id = {r["captions"][0]: r["name"] for r in captiondata.images()}
    return {name: sorted(by_id[caps[0]] for caps in s.captions) for name, s in zip(data.task_names, getattr(data, split))}


RULES = {  # options of each task rule, with the task names it gives (in the order of captiondata.WORDS' tasks)
    "column": ({**COLUMN, "tasks": [["animals"], ["vehicles"], ["food"]]}, ("animals", "vehicles", "food")),
    "keywords": ({"task_by": "keywords", "keywords": "keywords.yaml", "split_column": "split", "captions_per_image": 2}, tuple(captiondata.WORDS)),
    "time": (
        {"task_by": "time", "time_column": "year", "period_boundaries": ["2014", "2020"], "split_column": "split", "captions_per_image": 2},
        ("...-2014", "2014-2020", "2020-..."),
    ),
}


@pytest.mark.parametrize("rule", RULES)
@pytest.mark.parametrize("fmt", FORMATS)
def test_every_format_with_every_task_rule_gives_the_same_tasks_splits_and_captions(fmt, rule, tmp_path):
    files = FORMATS[fmt](tmp_path)
    captiondata.write_keywords(tmp_path)
    options, task_names = RULES[rule]
    data = load(tmp_path, files, **options)
    assert data.task_names == task_names
    for split in ("train", "val", "test"):
        assert names(data, split) == {name: EXPECTED[task][split] for name, task in zip(task_names, captiondata.WORDS)}
    record = next(r for r in captiondata.images() if r["name"] == "animals_0.jpg")
    assert tuple(record["captions"]) in data.train[0].captions  # both captions, in order
    assert data.train[0].images[0].shape == (3, 16, 16)


def test_ids_are_stable_and_the_same_for_the_same_files(tmp_path):
    a = load(tmp_path / "a", FORMATS["csv"](tmp_path / "a"), **COLUMN)
    b = load(tmp_path / "b", FORMATS["jsonl"](tmp_path / "b"), **COLUMN)
    assert [s.image_ids for s in a.train] == [s.image_ids for s in b.train]  # ids from paths relative to root


def test_column_rule_without_groups_gives_one_task_per_value_and_skips_other_values(tmp_path):
    files = FORMATS["csv"](tmp_path)
    assert load(tmp_path, files, **COLUMN).task_names == ("animals", "food", "vehicles")
    data = load(tmp_path, files, **COLUMN, tasks=[["animals", "food"]], task_names=["living"])
    assert data.task_names == ("living",) and data.excluded[NO_TASK] == {"task value outside every task": 4}
    assert len(data.test[0].captions) == 2


def test_keyword_rule_over_captions_and_over_a_label_column(tmp_path):
    files = FORMATS["csv"](tmp_path)
    captiondata.write_keywords(tmp_path)
    data = load(tmp_path, files, task_by="keywords", keywords="keywords.yaml", split_column="split", captions_per_image=2)
    assert data.task_names == tuple(captiondata.WORDS)  # the file's order
    assert names(data, "test") == {task: EXPECTED[task]["test"] for task in data.task_names}  # "cats" matches "cat"
    (tmp_path / "labels.yaml").write_text("domestic: [pet]\ntravel: [transport]\n")
    by_label = load(tmp_path, files, task_by="keywords", keywords="labels.yaml", label_column="label", split_column="split", captions_per_image=2)
    assert by_label.task_names == ("domestic", "travel") and by_label.excluded[NO_TASK] == {"no task's words": 4}


def test_keyword_rule_leaves_out_and_counts_images_of_several_tasks(tmp_path):
    records = captiondata.images()
    records[0]["captions"] = ["a dog in a car", "a dog"]  # animals and vehicles
    files = [captiondata.write_csv(tmp_path, records).name]
    captiondata.write_keywords(tmp_path)
    data = load(tmp_path, files, task_by="keywords", keywords="keywords.yaml", split_column="split", captions_per_image=2)
    assert data.excluded[NO_TASK] == {"words of several tasks": 1}
    assert sum(len(s.captions) for split in (data.train, data.val, data.test) for s in split) == len(records) - 1


def test_time_rule_reads_iso_dates_and_rejects_bad_boundaries_and_times(tmp_path):
    records = captiondata.images()
    for r in records:
        r["year"] = f"{r['year']}-06-30"
    files = [captiondata.write_csv(tmp_path, records).name]
    data = load(tmp_path, files, task_by="time", time_column="year", period_boundaries=["2014-01-01", "2020-01-01"], split_column="split", captions_per_image=2)
    assert names(data, "test") == {name: EXPECTED[task]["test"] for name, task in zip(data.task_names, captiondata.WORDS)}
    with pytest.raises(DataError, match=r"data.csv row \d+: unreadable time '20\d\d-06-30'"):
        load(tmp_path, files, task_by="time", time_column="year", period_boundaries=["2014", "2020"], split_column="split")
    with pytest.raises(ConfigError, match="must increase strictly"):
        load(tmp_path, files, task_by="time", time_column="year", period_boundaries=["2020", "2014"], split_column="split")


def test_hash_split_is_deterministic_and_holds_out_the_asked_shares(tmp_path):
    records = captiondata.images(per_task=40)
    files = [captiondata.write_csv(tmp_path, records).name]
    data = load(tmp_path, files, val_fraction=0.2, test_fraction=0.3, captions_per_image=2)
    again = load(tmp_path, files, val_fraction=0.2, test_fraction=0.3, captions_per_image=2)
    assert [s.image_ids for s in data.test] == [s.image_ids for s in again.test]
    counts = {split: sum(len(s.image_ids) for s in getattr(data, split)) for split in ("train", "val", "test")}
    assert 0.15 < counts["test"] / len(records) < 0.45 and 0.08 < counts["val"] / len(records) < 0.32
    other = load(tmp_path, files, val_fraction=0.2, test_fraction=0.3, captions_per_image=2, split_seed=1)
    assert [s.image_ids for s in other.test] != [s.image_ids for s in data.test]


def test_images_with_too_few_captions_are_left_out_and_counted(tmp_path):
    records = captiondata.images()
    records[0]["captions"] = ["just one dog"]
    files = [captiondata.write_jsonl(tmp_path, records).name]
    data = load(tmp_path, files, **COLUMN)
    assert data.excluded["animals"] == {"fewer than 2 captions": 1}


def rewrite_csv(path, old, new):
    path.write_text(path.read_text().replace(old, new))


# CSV rows: animals_0..3 are rows 1-8 (two rows each), vehicles_0..3 rows 9-16, food_0..3 rows 17-24.
@pytest.mark.parametrize(
    "damage, message, reason, skipped",
    [
        (("imgs/food_1.jpg", "imgs/missing.jpg"), r"data.csv row 19: image not found: .*missing.jpg", "image not found", 2),
        (("a pizza number 0", ""), "data.csv row 17: empty caption", "empty caption", 1),
        ((",food,train,2021,", ",,train,2021,"), r"data.csv row 17: no task value \(column 'task' is empty\)", "no task value", 1),
        ((",animals,train,2013,", ",animals,tran,2013,"), "data.csv row 3: unknown split 'tran'; write one of train, val, test", "unknown split", 1),
    ],
)
def test_a_bad_row_names_file_and_row_or_is_skipped_and_counted(tmp_path, damage, message, reason, skipped):
    path = captiondata.write_csv(tmp_path)
    rewrite_csv(path, *damage)
    with pytest.raises(DataError, match=message):
        load(tmp_path, [path.name], **COLUMN)
    data = load(tmp_path, [path.name], **COLUMN, on_bad_row="skip")
    assert data.excluded[NO_TASK] == {f"bad row: {reason}": skipped}


def test_unknown_column_lists_the_columns_the_file_has(tmp_path):
    for fmt in ("csv", "jsonl", "parquet"):
        files = FORMATS[fmt](tmp_path / fmt)
        with pytest.raises(DataError, match=r"no column 'text'; it has 'image', 'caption', 'task'"):
            load(tmp_path / fmt, files, caption_column="text", split_column="split")


def test_a_shard_sample_without_caption_names_shard_and_key(tmp_path):
    captiondata.write_shards(tmp_path, drop_caption="vehicles_2")
    with pytest.raises(DataError, match=r"part-000.tar sample vehicles_2: empty caption"):
        load(tmp_path, ["shards/*.tar"], **COLUMN)
    data = load(tmp_path, ["shards/*.tar"], **COLUMN, on_bad_row="skip")
    assert data.excluded[NO_TASK] == {"bad row: empty caption": 1}


def test_an_id_naming_two_images_is_an_error_naming_both(tmp_path):
    path = captiondata.write_csv(tmp_path)
    text = path.read_text().splitlines()
    lines = [text[0] + ",id"] + [f"{line},{n // 2}" for n, line in enumerate(text[1:])]
    path.write_text("\n".join(lines[:3] + [lines[3].rsplit(",", 1)[0] + ",0"] + lines[4:]) + "\n")
    with pytest.raises(DataError, match=r"data.csv row 3: image id 0 is already the id of .*animals_0.jpg \(.*data.csv row 1\)"):
        load(tmp_path, [path.name], **COLUMN, id_column="id")


def test_rows_of_one_image_must_agree_on_split_and_task(tmp_path):
    path = captiondata.write_csv(tmp_path)
    lines = path.read_text().splitlines()
    lines[2] = lines[2].replace(",train,", ",test,")  # the second caption row of animals_0
    path.write_text("\n".join(lines) + "\n")
    with pytest.raises(DataError, match=r"row 2: image .*animals_0.jpg has split='test' here but 'train' in .*row 1"):
        load(tmp_path, [path.name], **COLUMN)


def test_the_same_image_listed_twice_is_loaded_once(tmp_path):
    path = captiondata.write_csv(tmp_path)
    (tmp_path / "sub").mkdir()
    (tmp_path / "sub" / "copy.csv").write_text(path.read_text().replace("imgs/", "../imgs/"))  # the same files, named otherwise
    data = load(tmp_path, [path.name, "sub/copy.csv"], **{**COLUMN, "captions_per_image": 4})
    assert names(data, "test") == {task: EXPECTED[task]["test"] for task in data.task_names}
    assert all(len(caps) == 4 for s in data.train for caps in s.captions)


def test_features_of_the_images_give_the_same_data(tmp_path, capsys):
    files = FORMATS["jsonl"](tmp_path)
    benchmark = {"name": "image_captions", "root": str(tmp_path), "files": files, "image_size": 32, **COLUMN}
    config = write_config(tmp_path / "c.yaml", benchmark)
    args = ["features", "--config", config, "--encoder", "small_cnn", "--quiet", "--set", "model.image_encoder.width=8"]
    assert main([*args, "--set", "model.image_encoder.output_dim=16"]) == 0
    raw, features = load(tmp_path, files, **COLUMN), load(tmp_path, files, **COLUMN, mode="features")
    for split in ("train", "val", "test"):
        for a, b in zip(getattr(raw, split), getattr(features, split)):
            assert a.image_ids == b.image_ids and a.captions == b.captions and b.images[0].shape == (16,)


def test_bad_options_are_clear_errors(tmp_path):
    files = FORMATS["csv"](tmp_path)
    with pytest.raises(ConfigError, match="set benchmark.keywords"):
        load(tmp_path, files, task_by="keywords")
    with pytest.raises(ConfigError, match=r"val_fraction \(0.5\) \+ test_fraction \(0.5\) must be below 1"):
        load(tmp_path, files, val_fraction=0.5, test_fraction=0.5)
    with pytest.raises(DataError, match="matches no file"):
        load(tmp_path, ["nothing/*.csv"])
    with pytest.raises(ConfigError, match="is in groups 0 and 1"):
        load(tmp_path, files, **COLUMN, tasks=[["food"], ["food", "animals"]], task_names=["a", "b"])


def test_data_check_and_a_tiny_run(tmp_path, capsys):
    files = FORMATS["csv"](tmp_path)
    benchmark = {"name": "image_captions", "root": str(tmp_path), "files": files, "image_size": 32, **COLUMN}
    config = write_config(tmp_path / "c.yaml", benchmark)
    assert main(["data", "check", "--config", config]) == 0
    out = capsys.readouterr().out
    assert "image_captions: 3 tasks, data OK" in out and "| animals | 2 | 4 | 1 | 2 | 1 | 2 | - |" in out
    assert main(["run", "--quiet", "--config", config, "--out", str(tmp_path / "run")]) == 0
    results = json.loads((tmp_path / "run" / "results.json").read_text())
    assert results["complete"] and results["task_names"] == ["animals", "food", "vehicles"]
    capsys.readouterr()
    rewrite_csv(tmp_path / files[0], "imgs/food_1.jpg", "imgs/missing.jpg")
    assert main(["data", "check", "--config", config]) == 2
    assert "data.csv row 19: image" in capsys.readouterr().err
