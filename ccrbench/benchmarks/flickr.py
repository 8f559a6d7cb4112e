"""Flickr30K as a sequence of tasks, with Karpathy's split.

Files under `root`:

    dataset_flickr30k.json    Karpathy's split (caption_datasets.zip): images[{imgid, filename,
                              split: train|val|test|restval, sentences[{raw, sentid}]}]
    flickr30k-images/         the images (mode "images")
    features/{train,val,test}_{ims.npy,caps.txt,ids.txt}  precomputed features (mode "features")

Splits: Karpathy's train (+ restval) images train, its val images validate and its
test images (1,000, the standard retrieval test) are the test set; validation and test
images are assigned to tasks alike. Image ids are Karpathy's `imgid`; the captions are
`sentences[].raw` in sentid order, the first `captions_per_image` (5 in the file).

Tasks (`task_by`): Flickr30K has no categories, so by default tasks come from words of
the captions (`files.task_rules.KeywordRule`): `keywords`, a YAML file {task: [words]}
relative to root, or `DEFAULT_KEYWORDS` (animals / vehicles / water scenes); an image
whose captions name words of several tasks, or of none, is left out and counted. With
`task_by: column`, a CSV `task_file` gives each image file's task (columns `filename` and
`task_column`; values grouped by `tasks`), e.g. labels of your own.
"""

from __future__ import annotations

import csv
from collections import Counter
from pathlib import Path
from typing import Annotated, Literal

from annotated_types import Ge

import msgspec

from ccrbench.benchmarks.captions import BadRows, ImageEntry, make_rule, to_candidates
from ccrbench.benchmarks.coco import KARPATHY_SPLITS, _Sentence
from ccrbench.benchmarks.files.reading import DataError, cached_index, clean_caption, load_json, require_file, under
from ccrbench.benchmarks.files.task_rules import KeywordRule
from ccrbench.benchmarks.files.tables import check_columns
from ccrbench.benchmarks.files.tasks import Exclusions, TaskData, assemble
from ccrbench.registry import ConfigError, register_file_benchmark

DEFAULT_KEYWORDS = {
    "animals": ["dog", "puppy", "cat", "horse", "cow", "sheep", "bird", "duck", "animal", "goat", "camel", "elephant"],
    "vehicles": ["car", "bus", "truck", "bicycle", "bike", "motorcycle", "train", "vehicle", "taxi", "tractor"],
    "water": ["beach", "ocean", "sea", "lake", "river", "pool", "wave", "surf", "boat", "swim", "swimming"],
}
HINT = "download Karpathy's splits (caption_datasets.zip, with dataset_flickr30k.json) into {root}"
INDEX_VERSION = "1"


class _FlickrImage(msgspec.Struct):
    imgid: int
    filename: str
    split: str
    sentences: list[_Sentence]


class _Flickr(msgspec.Struct):
    images: list[_FlickrImage]


def read_flickr(path: Path, *, hint: str) -> list[tuple[int, str, str, tuple[str, ...]]]:
    """(imgid, filename, split, captions in sentid order) per image of Karpathy's Flickr30K file;
    cached while the file is unchanged.

    Raises:
        DataError: a missing or malformed file, an unknown split, or an imgid used twice.
    """

    def build() -> list[tuple[int, str, str, tuple[str, ...]]]:
        out = []
        for i, image in enumerate(load_json(path, hint=hint, schema=_Flickr).images):
            if image.split not in KARPATHY_SPLITS:
                raise DataError(f"{path}: images[{i}] has split {image.split!r}; expected one of {', '.join(KARPATHY_SPLITS)}")
            ordered = sorted(enumerate(image.sentences), key=lambda js: (js[0] if js[1].sentid is None else js[1].sentid, js[0]))
            out.append((image.imgid, image.filename, image.split, tuple(clean_caption(s.raw) for _, s in ordered)))
        repeated = [i for i, n in Counter(im[0] for im in out).items() if n > 1]
        if repeated:
            raise DataError(f"{path}: imgid(s) {repeated[:5]} appear more than once; an imgid names one image ({hint})")
        return out

    return cached_index("flickr30k", [require_file(path, hint=hint)], build, version=INDEX_VERSION)


def read_task_file(path: Path, task_column: str) -> dict[str, str]:
    """{image file name: task value} of a CSV with columns `filename` and `task_column`.

    Raises:
        DataError: a missing file, a missing column, or a file name listed twice.
    """
    require_file(path, hint="write a CSV with columns filename and the task column")
    out: dict[str, str] = {}
    with open(path, newline="", encoding="utf-8") as f:
        reader = csv.DictReader(f)
        check_columns(path, reader.fieldnames or [], ["filename", task_column])
        for n, record in enumerate(reader, 1):
            name = (record["filename"] or "").strip()
            if name in out:
                raise DataError(f"{path} row {n}: {name!r} is listed twice; an image has one task")
            out[name] = (record[task_column] or "").strip()
    return out


@register_file_benchmark("flickr30k")
def flickr30k(
    *,
    root: str = "data/flickr30k",
    karpathy_split: str = "dataset_flickr30k.json",
    images_dir: str = "flickr30k-images",
    task_by: Literal["keywords", "column"] = "keywords",
    keywords: str = "",
    task_file: str = "",
    task_column: str = "task",
    tasks: tuple[tuple[str, ...], ...] = (),
    task_names: tuple[str, ...] = (),
    captions_per_image: Annotated[int, Ge(1)] = 5,
    on_bad_row: Literal["fail", "skip"] = "fail",
    mode: Literal["images", "features"] = "images",
    features_dir: str = "features",
    image_size: Annotated[int, Ge(8)] = 224,
    on_bad_image: Literal["fail", "skip"] = "fail",
) -> TaskData:
    """Flickr30K with Karpathy's train / val / test split, in tasks of caption words (see the module doc).

    Args:
        root: folder holding the Karpathy file, the image folder and features_dir.
        karpathy_split: Karpathy's dataset_flickr30k.json, relative to root.
        images_dir: the folder of the images, relative to root.
        task_by: "keywords" (caption words) or "column" (task_file).
        keywords: with task_by=keywords, a YAML file {task: [words]} relative to root ("": DEFAULT_KEYWORDS).
        task_file: with task_by=column, a CSV relative to root with columns filename and task_column;
            an image it does not list is a bad row.
        task_column: the task file's column of task values.
        tasks: with task_by=column, the values of each task in training order (one task per
            distinct value, sorted, when empty); images of other values are left out and counted.
        task_names: with task_by=column, one name per task (default: the values joined with '+').
        captions_per_image: captions kept per image (the first ones); images with fewer are
            left out and counted.
        on_bad_row: an image with an empty caption (or, with task_by=column, no task): "fail" stops
            naming it, "skip" leaves it out and counts it.
        mode: "images" reads the image files; "features" reads precomputed features.
        features_dir: folder of the precomputed features, relative to root.
        image_size: side of the square image crops (mode "images").
        on_bad_image: an image that does not decode (or has no feature row): "fail" or "skip" (counted).
    """
    base = Path(root).expanduser()
    path = under(base, karpathy_split)
    if task_by == "column":
        if not task_file:
            raise ConfigError("flickr30k: task_by=column needs benchmark.task_file, a CSV of filename and task per image")
        task_of = read_task_file(under(base, task_file), task_column)
        rule = make_rule(task_by="column", base=base, tasks=tasks, task_names=task_names, keywords="", period_boundaries=(), values=task_of.values())
    else:
        task_of = {}
        rule = KeywordRule.from_file(under(base, keywords)) if keywords else KeywordRule.from_mapping(DEFAULT_KEYWORDS, where="DEFAULT_KEYWORDS")
    excluded = Exclusions()
    bad = BadRows(on_bad_row, excluded)
    images = []
    for imgid, filename, split, captions in read_flickr(path, hint=HINT.format(root=base)):
        where = f"{path} image {imgid} ({filename})"
        if not captions or not all(captions):
            bad(where, "empty caption", "download the file again")
            continue
        fields = {"split": split, **({task_column: task_of.get(filename, "")} if task_by == "column" else {})}
        images.append(ImageEntry(where, f"{images_dir}/{filename}", imgid, list(captions), fields))
    candidates = to_candidates(
        images,
        rule=rule,
        task_value=task_column if task_by == "column" else "",
        split_column="split",
        split_seed=0,
        val_fraction=0.0,
        test_fraction=0.0,
        captions_per_image=captions_per_image,
        bad=bad,
    )
    return assemble(
        candidates=candidates,
        task_names=rule.names,
        excluded=excluded,
        mode=mode,
        image_folders=[base],
        image_size=image_size,
        on_bad_image=on_bad_image,
        features_dir=under(base, features_dir),
    )
