"""The prepared image store (`ccrbench data prepare`), GPU-path JPEG batches, and training augmentation."""

import os
import warnings

import numpy as np
import pytest
import torch
from PIL import Image

from ccrbench.benchmarks.coco import secoco
from ccrbench.benchmarks.files import prepared
from ccrbench.benchmarks.files.images import Augmented, FileImages, JpegFiles
from ccrbench.benchmarks.files.prepared import PreparedImages, Preparing, prepare_store, preparing
from ccrbench.benchmarks.files.reading import DataError
from ccrbench.cli import main
from ccrbench.pixels import JpegBatch, PixelBatch, collate_images
from tests.benchmarks.minidata import coco_file, write_config


def photo(path, seed, size=(64, 48)):
    """A JPEG with smooth gradients and edges (a resize blends neighbouring pixels differently)."""
    y, x = np.mgrid[0 : size[1], 0 : size[0]]
    rgb = np.stack([x * 255 // size[0], y * 255 // size[1], ((x // 8 + y // 8 + seed) % 2) * 200], axis=-1)
    Image.fromarray(rgb.astype(np.uint8)).save(path, "JPEG", quality=90)


def as_float(image):
    """An item as the model gets it: in a batch moved to the device (uint8 pixels become float there)."""
    return collate_images([image]).to("cpu")[0]


def flat(splits):
    return [(i, as_float(s.images[k])) for s in splits for k, i in enumerate(s.image_ids)]


def prepare(root, *, workers=0, **options):
    with preparing(Preparing(workers=workers, progress=False, report=lambda line: None)) as done:
        data = secoco(root=str(root), image_size=16, **options)
    return data, done.stores


def test_store_gives_exactly_the_pil_tensors_and_is_read_when_present(coco_root):
    pil = secoco(root=str(coco_root), image_size=16, karpathy_split="dataset_coco.json")
    data, stores = prepare(coco_root, karpathy_split="dataset_coco.json")
    assert sorted(s.name for s in stores) == ["test-16px", "train-16px", "val-16px"]
    read = secoco(root=str(coco_root), image_size=16, karpathy_split="dataset_coco.json")
    for split in ("train", "val", "test"):
        assert all(isinstance(s.images.dataset, PreparedImages) for s in getattr(read, split))
        for (i, a), (j, b) in zip(flat(getattr(pil, split)), flat(getattr(read, split)), strict=True):
            assert i == j and a.shape == (3, 16, 16) and torch.equal(a, b)  # bound: 0, the same pixels


def test_prepare_with_workers_writes_the_same_store(coco_root, tmp_path):
    prepare(coco_root)
    first = np.load(coco_root / "prepared" / "train-16px" / "images.npy")
    _, stores = prepare(coco_root, workers=2, prepared_dir=str(tmp_path / "other"))
    assert np.array_equal(first, np.load(stores[0] / "images.npy")) and first.max() > 0


def test_a_changed_file_is_noticed_and_rewritten_alone(coco_root, monkeypatch):
    prepare(coco_root)
    path = coco_root / "train2014" / coco_file(101)
    photo(path, 1)
    os.utime(path, ns=(1, 1))  # another modification time for sure
    with pytest.warns(UserWarning, match=r"train-16px: 1 file\(s\) changed since it was written, e.g. .*000101.jpg"):
        stale = secoco(root=str(coco_root), image_size=16)
    assert isinstance(stale.train[0].images.dataset, FileImages)  # decoded from the files meanwhile
    decoded = []
    real = FileImages.square
    monkeypatch.setattr(FileImages, "square", lambda self, i: decoded.append(self.paths[i].name) or real(self, i))
    prepare(coco_root)
    assert decoded == [coco_file(101)]
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        fresh = secoco(root=str(coco_root), image_size=16)
    assert torch.equal(dict(flat(fresh.train))[101], dict(flat(stale.train))[101])


def test_another_size_is_another_store(coco_root):
    prepare(coco_root)
    assert (coco_root / "prepared" / "train-16px").is_dir()
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # no store of 24 px: the files, without a warning
        data = secoco(root=str(coco_root), image_size=24)
    assert isinstance(data.train[0].images.dataset, FileImages)


def test_corrupt_jpeg_during_prepare_follows_on_bad_image(coco_root, tmp_path, capsys):
    path = coco_root / "train2014" / coco_file(102)
    path.write_bytes(path.read_bytes()[:150])  # a truncated JPEG
    with pytest.raises(DataError, match=r"000102.jpg does not decode .*on_bad_image=skip .*images written are kept"):
        prepare(coco_root)
    config = write_config(tmp_path / "c.yaml", {"name": "secoco", "root": str(coco_root), "image_size": 16})
    assert main(["data", "prepare", "--quiet", "--config", config]) == 2  # remembered, not decoded again
    assert "000102.jpg does not decode" in capsys.readouterr().err
    assert main(["data", "check", "--config", config, "--set", "benchmark.on_bad_image=skip"]) == 0
    assert "test images: the files, decoded with PIL" in capsys.readouterr().out  # prepare stopped before the test split
    assert main(["data", "prepare", "--quiet", "--config", config, "--set", "benchmark.on_bad_image=skip"]) == 0
    assert "train: " in capsys.readouterr().out
    assert main(["data", "check", "--config", config, "--set", "benchmark.on_bad_image=skip"]) == 0
    out = capsys.readouterr().out
    assert "image does not decode: 1" in out and f"train images: prepared, {coco_root / 'prepared' / 'train-16px'}" in out
    data = secoco(root=str(coco_root), image_size=16, on_bad_image="skip")
    assert isinstance(data.train[0].images.dataset, PreparedImages) and 102 not in data.train[0].image_ids
    assert data.excluded["animals"]["image does not decode"] == 1
    with pytest.raises(DataError, match=r"000102.jpg does not decode"):
        secoco(root=str(coco_root), image_size=16)  # fail: the store's record of it


def test_interrupted_prepare_resumes(coco_root, monkeypatch):
    calls = []
    real = FileImages.square

    def interrupted(self, i):
        if len(calls) == 3:
            raise KeyboardInterrupt
        calls.append(self.paths[i])
        return real(self, i)

    monkeypatch.setattr(prepared, "CHUNK", 2)
    monkeypatch.setattr(FileImages, "square", interrupted)
    with pytest.raises(KeyboardInterrupt):
        prepare(coco_root)
    status = np.load(coco_root / "prepared" / "train-16px" / "status.npy")
    assert status.tolist().count(prepared.DONE) == 2  # the first chunk; the second was cut short
    with pytest.warns(UserWarning, match=r"incomplete \(\d+ of \d+ images not written"):
        secoco(root=str(coco_root), image_size=16)
    calls.clear()
    monkeypatch.setattr(FileImages, "square", lambda self, i: calls.append(self.paths[i]) or real(self, i))
    data, stores = prepare(coco_root)
    assert len(calls) == sum(len(np.load(s / "status.npy")) for s in stores) - 2  # all but the first chunk
    pil = FileImages(paths=[coco_root / "train2014" / coco_file(i) for i in data.train[0].image_ids], image_size=16)
    assert all(torch.equal(pil[k], as_float(data.train[0].images[k])) for k in range(len(pil)))


def test_prepare_prints_the_disk_cost_first_and_refuses_a_full_disk(tmp_path, monkeypatch):
    paths = [tmp_path / f"{i}.jpg" for i in range(3)]
    for i, p in enumerate(paths):
        photo(p, i)
    lines = []
    settings = Preparing(progress=False, report=lines.append)
    monkeypatch.setattr(prepared.shutil, "disk_usage", lambda p: type("U", (), {"free": 1000})())
    with pytest.raises(DataError, match=r"0.0 MB needed, 0.0 MB free; set benchmark.prepared_dir"):
        prepare_store(tmp_path / "s", split="train", ids=[1, 2, 3], paths=paths, image_size=16, on_bad_image="fail", settings=settings)
    assert lines == [f"train: 3 images at 16x16: 0.0 MB in {tmp_path / 's'} (0.0 MB free)"]
    assert not (tmp_path / "s" / "images.npy").exists()


def test_data_prepare_needs_images_mode(coco_root, tmp_path, capsys):
    config = write_config(tmp_path / "c.yaml", {"name": "secoco", "root": str(coco_root), "mode": "features"})
    assert main(["data", "prepare", "--config", config]) == 2
    assert "benchmark.mode is 'features'" in capsys.readouterr().err


def test_jpeg_batches_decode_close_to_the_pil_path(tmp_path):
    paths = [tmp_path / f"{i}.jpg" for i in range(3)]
    for i, p in enumerate(paths):
        photo(p, i, size=(64 + 16 * i, 48))
    batch = collate_images([JpegFiles(paths=paths, image_size=16)[i] for i in range(3)])
    assert isinstance(batch, JpegBatch) and len(batch) == 3 and batch.pin_memory() is batch
    decoded = batch.to("cpu")  # torchvision's CPU decode_jpeg: the CUDA path's fallback
    pil = torch.stack([FileImages(paths=paths, image_size=16)[i] for i in range(3)])
    assert decoded.shape == pil.shape == (3, 3, 16, 16) and decoded.dtype == torch.float32
    difference = (decoded - pil).abs()
    assert difference.mean() < 0.03 and difference.max() < 0.35  # another decoder scale and resampling kernel
    assert torch.equal(collate_images([pil[0], pil[1]]), pil[:2])
    pixels = collate_images([(pil[0] * 255).round().to(torch.uint8)])
    assert isinstance(pixels, PixelBatch) and torch.equal(pixels.to("cpu")[0], pil[0])


def test_decode_cuda_without_cuda_warns_and_decodes_on_the_cpu(coco_root, monkeypatch):
    monkeypatch.setattr(prepared, "cuda_available", lambda: False)
    with pytest.warns(UserWarning, match="decode: cuda, but CUDA is not available"):
        data = secoco(root=str(coco_root), image_size=16, decode="cuda")
    assert isinstance(data.train[0].images.dataset, FileImages)
    monkeypatch.setattr(prepared, "cuda_available", lambda: True)  # as on a GPU machine: bytes for the GPU
    data = secoco(root=str(coco_root), image_size=16, decode="cuda")
    assert isinstance(data.train[0].images.dataset, JpegFiles)
    with pytest.raises(DataError, match="augment needs decoded images"):
        secoco(root=str(coco_root), image_size=16, decode="cuda", augment=True)


def test_augmentation_crops_and_flips_training_images_only(coco_root):
    plain, augmented = secoco(root=str(coco_root), image_size=16), secoco(root=str(coco_root), image_size=16, augment=True)
    assert isinstance(augmented.train[0].images, Augmented) and not isinstance(augmented.test[0].images, Augmented)
    torch.manual_seed(0)
    views = [augmented.train[0].images[0] for _ in range(4)]
    assert all(v.shape == (3, 16, 16) for v in views)
    assert any(not torch.equal(v, plain.train[0].images[0]) for v in views)
    assert torch.equal(augmented.test[0].images[0], plain.test[0].images[0])
    prepare(coco_root)
    stored = secoco(root=str(coco_root), image_size=16, augment=True)
    view = stored.train[0].images[0]  # augmented on the store's uint8 pixels
    assert view.dtype == torch.uint8 and view.shape == (3, 16, 16)


@pytest.mark.parametrize("source", ["prepared", "jpeg"])
def test_tiny_run_trains_on_prepared_pixels_and_on_jpeg_batches(coco_root, tmp_path, monkeypatch, source):
    benchmark = {"name": "secoco", "root": str(coco_root), "image_size": 32}
    if source == "prepared":
        benchmark["augment"] = True  # on the store's uint8 rows
        with preparing(Preparing(progress=False, report=lambda line: None)):
            secoco(root=str(coco_root), image_size=32)
    else:
        monkeypatch.setattr(prepared, "cuda_available", lambda: True)  # bytes items; the CPU run decodes its batches
        benchmark["decode"] = "cuda"
    config = write_config(tmp_path / "c.yaml", benchmark)
    with warnings.catch_warnings():
        warnings.simplefilter("error", UserWarning)  # the store is read, not found stale
        assert main(["run", "--quiet", "--config", config, "--out", str(tmp_path / "run")]) == 0
    assert (tmp_path / "run" / "results.json").is_file()
