import pytest

from tests.benchmarks.minidata import build_coco, build_vg


@pytest.fixture
def coco_root(tmp_path):
    """A fresh miniature COCO tree (tests may damage it)."""
    return build_coco(tmp_path / "coco")


@pytest.fixture
def vg_root(tmp_path):
    """A fresh miniature Visual Genome tree, with a Karpathy split file beside it."""
    root = build_vg(tmp_path / "vg")
    build_coco(tmp_path / "coco_for_vg")
    (root / "dataset_coco.json").write_text((tmp_path / "coco_for_vg" / "dataset_coco.json").read_text())
    return root
