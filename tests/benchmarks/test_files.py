import os

import msgspec
import numpy as np
import pytest
import torch

from ccrbench.benchmarks.files import images
from ccrbench.benchmarks.files.images import FileImages, bad_images
from ccrbench.benchmarks.files.precomp import FeatureImages, read_precomp
from ccrbench.benchmarks.files.reading import DataError, cached_index, load_json
from ccrbench.registry import ConfigError
from tests.benchmarks.minidata import write_jpeg


def test_file_images_are_square_float_crops(tmp_path):
    write_jpeg(tmp_path / "wide.jpg", 3, size=(60, 30))
    write_jpeg(tmp_path / "tall.jpg", 4, size=(20, 50))
    images = FileImages(paths=[tmp_path / "wide.jpg", tmp_path / "tall.jpg"], image_size=16)
    assert len(images) == 2
    for x in (images[0], images[1]):
        assert x.shape == (3, 16, 16) and x.dtype == torch.float32 and 0 <= x.min() and x.max() <= 1 and x.max() > 0.1
    (tmp_path / "wide.jpg").write_bytes(b"garbage")
    with pytest.raises(DataError, match="wide.jpg does not decode"):
        images[0]
    with pytest.raises(ConfigError, match="image_size must be at least 8"):
        FileImages(paths=[], image_size=4)


def test_bad_images_are_found_once_and_cached(tmp_path, monkeypatch):
    paths = [tmp_path / f"{i}.jpg" for i in range(3)]
    for i, p in enumerate(paths):
        write_jpeg(p, i)
    paths[1].write_bytes(paths[1].read_bytes()[:100])
    assert set(bad_images(paths, image_size=16, on_bad_image="skip")) == {1}
    with pytest.raises(DataError, match=r"1.jpg does not decode .*leave out the 1 image"):
        bad_images(paths, image_size=16, on_bad_image="fail")

    def no_decoding(path, size):
        raise AssertionError("decoded again")

    monkeypatch.setattr(images, "decode_image", no_decoding)
    assert set(bad_images(paths, image_size=16, on_bad_image="skip")) == {1}  # from the cache
    monkeypatch.undo()
    write_jpeg(paths[1], 1)  # repaired: size and time change, so it is decoded again
    assert bad_images(paths, image_size=16, on_bad_image="fail") == {}


def test_load_json_errors_name_the_file(tmp_path):
    with pytest.raises(DataError, match=r"missing file a.json: looked for .*nowhere/a.json \(in .*nowhere: the folder does not exist\); get it"):
        load_json(tmp_path / "nowhere" / "a.json", hint="get it")
    (tmp_path / "b.json").write_text('{"a": 1,\n\n "b": }')
    with pytest.raises(DataError, match=r"b.json: malformed JSON at line 3, column 7"):
        load_json(tmp_path / "b.json", hint="get it")
    (tmp_path / "c.json").write_bytes(b"\xff\xfe{}")
    with pytest.raises(DataError, match="c.json: not UTF-8 text"):
        load_json(tmp_path / "c.json", hint="get it")


def write_precomp(folder, split, features, captions, ids):
    folder.mkdir(exist_ok=True)
    np.save(folder / f"{split}_ims.npy", features)
    (folder / f"{split}_caps.txt").write_text("".join(c + "\n" for c in captions))
    (folder / f"{split}_ids.txt").write_text("".join(f"{i}\n" for i in ids))


def test_precomp_rows_per_image_or_per_caption(tmp_path):
    features = np.arange(12, dtype=np.float32).reshape(3, 4)
    write_precomp(tmp_path, "test", features, ["a", "b", "c", "d", "e", "f"], [7, 3, 5])
    p = read_precomp(tmp_path, "test")
    assert p.ids == (7, 3, 5) and p.captions == (("a", "b"), ("c", "d"), ("e", "f")) and p.rows == (0, 1, 2)
    assert p.row_of() == {7: 0, 3: 1, 5: 2}
    assert torch.equal(FeatureImages(features=p.features, rows=p.rows)[2], torch.tensor([8.0, 9, 10, 11]))
    repeated = np.repeat(features, 2, axis=0)  # VSE++ style: one row per caption
    write_precomp(tmp_path, "test", repeated, ["a", "b", "c", "d", "e", "f"], [7, 3, 5])
    p = read_precomp(tmp_path, "test")
    assert p.rows == (0, 2, 4)
    items = FeatureImages(features=p.features, rows=p.rows)
    assert len(items) == 3 and torch.equal(items[1], torch.tensor([4.0, 5, 6, 7]))


def test_float16_precomp_is_memory_mapped_and_read_as_float32(tmp_path):
    write_precomp(tmp_path, "val", np.arange(12, dtype=np.float16).reshape(3, 4), ["a", "b", "c"], [7, 3, 5])
    p = read_precomp(tmp_path, "val")
    assert isinstance(p.features, np.memmap) and p.features.dtype == np.float16
    item = FeatureImages(features=p.features, rows=p.rows)[1]
    assert item.dtype == torch.float32 and torch.equal(item, torch.tensor([4.0, 5, 6, 7]))


def test_cached_index_is_rebuilt_when_a_source_or_the_version_changes(tmp_path, monkeypatch):
    monkeypatch.setenv("CCRBENCH_CACHE", str(tmp_path / "cache"))
    source = tmp_path / "a.json"
    source.write_text("1")
    builds = []

    def index(version=""):
        return cached_index("test", [source], lambda: builds.append(1) or source.read_text(), version=version)

    assert index() == "1" and index() == "1" and len(builds) == 1  # the second read comes from the cache
    source.write_text("22")  # another size
    assert index() == "22" and len(builds) == 2
    source.write_text("33")
    os.utime(source, ns=(10**18, 10**18))  # the same size, another modification time
    assert index() == "33" and len(builds) == 3
    assert index(version="2") == "33" and len(builds) == 4
    for cached in (tmp_path / "cache" / "index").iterdir():
        cached.write_bytes(b"damaged")
    assert index() == "33" and len(builds) == 5


def test_json_is_decoded_into_only_the_fields_of_a_schema(tmp_path):
    class Entry(msgspec.Struct):
        id: int

    (tmp_path / "a.json").write_text('[{"id": 1, "segmentation": [[1.5, 2.5]]}, {"id": 2}]')
    assert load_json(tmp_path / "a.json", hint="h", schema=list[Entry]) == [Entry(1), Entry(2)]
    (tmp_path / "b.json").write_text('[{"id": 1}, {"name": "x"}]')
    with pytest.raises(DataError, match=r"b.json: entry \[1\] has no 'id' field"):
        load_json(tmp_path / "b.json", hint="h", schema=list[Entry])


@pytest.mark.parametrize(
    "features, captions, ids, message",
    [
        (np.zeros((4, 2), np.float32), ["a"] * 6, [1, 2, 3], "test_ims.npy has 4 rows but test_ids.txt has 3 ids"),
        (np.zeros((3, 2), np.float32), ["a"] * 5, [1, 2, 3], "test_caps.txt has 5 captions for the 3 ids"),
        (np.zeros((3, 2), np.float64), ["a"] * 3, [1, 2, 3], "expected float32 or float16 features"),
        (np.zeros((3, 2), np.float32), ["a"] * 3, [1, 2, 2], r"image id\(s\) \[2\] appear more than once"),
    ],
)
def test_precomp_mismatches_are_clear_errors(tmp_path, features, captions, ids, message):
    write_precomp(tmp_path, "test", features, captions, ids)
    with pytest.raises(DataError, match=message):
        read_precomp(tmp_path, "test")


def test_precomp_missing_or_unreadable_files(tmp_path):
    write_precomp(tmp_path, "train", np.zeros((2, 2), np.float32), ["a", "b"], [1, 2])
    (tmp_path / "train_ids.txt").unlink()
    with pytest.raises(DataError, match="missing file train_ids.txt: looked for .*ccrbench features"):
        read_precomp(tmp_path, "train")
    (tmp_path / "train_ids.txt").write_text("1\n2\n")
    (tmp_path / "train_ims.npy").write_bytes(b"not numpy")
    with pytest.raises(DataError, match="train_ims.npy: not a readable .npy array"):
        read_precomp(tmp_path, "train")
