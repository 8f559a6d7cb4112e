"""SeCOCO: MS-COCO as a sequence of tasks, each a group of COCO supercategories.

Files under `root` (the official COCO downloads, `year` 2014 or 2017):

    annotations/instances_{train,val}{year}.json   categories with their supercategory (always)
    annotations/captions_{train,val}{year}.json    captions (only without a Karpathy split)
    dataset_coco.json                              Karpathy split (optional: `karpathy_split`)
    {train,val}{year}/<file_name>                  images (mode "images")
    features/{train,test}_{ims.npy,caps.txt,ids.txt}  precomputed features (mode "features")

Splits: with `karpathy_split`, Karpathy's train + restval images train and its test
images are the test set (its val images are not used); the captions are its
`sentences[].raw` in sentid order. Without it, COCO's train{year} trains and val{year}
is the test set; the captions are those of captions_*.json in annotation-id order.
`test_size` keeps the first N test images (Karpathy: in the file's order, so 1000
is VSE++'s first 1K fold; official split: by image id) before tasks are assigned.

Tasks: an image belongs to a task when the supercategories of all its instance
annotations are in that task's group. Images with several tasks' categories, with a
category in no group, or with no instance at all are left out and counted. The
default three tasks are scenes that rarely share an image:

- animals: `animal`;
- vehicles: `vehicle` + `outdoor` (traffic lights, signs, hydrants, benches: street scenes);
- indoor: `kitchen`, `food`, `furniture`, `electronic`, `appliance`, `indoor`.

`person` (in about half of COCO, next to every other supercategory) and the
person-bound `sports` and `accessory` are in no task: a "person" task would mix
with every other one, and adding person to a group would leave the others mostly
empty. Like SeViGe's animals / vehicles / clothes, the tasks are separate visual
domains with their own nouns and shared function words.

Captions: the first `captions_per_image` captions of each image (every COCO image
has at least 5); an image with fewer is left out and counted; an image with none at
all is an error (the captions and instances files do not belong together).
"""

from __future__ import annotations

import contextlib
import io
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

from pycocotools.coco import COCO

from ccrbench.benchmarks.files import (
    NO_TASK,
    Candidate,
    DataError,
    Exclusions,
    TaskData,
    assemble,
    clean_caption,
    load_json,
    register_file_benchmark,
    require_key,
    under,
)
from ccrbench.registry import ConfigError

SUPERCATEGORIES = (
    "person", "vehicle", "outdoor", "animal", "accessory", "sports",
    "kitchen", "food", "furniture", "electronic", "appliance", "indoor",
)  # fmt: skip
DEFAULT_TASKS = (("animal",), ("vehicle", "outdoor"), ("kitchen", "food", "furniture", "electronic", "appliance", "indoor"))
DEFAULT_TASK_NAMES = ("animals", "vehicles", "indoor")
KARPATHY_SPLITS = ("train", "restval", "val", "test")
ANNOTATIONS_HINT = "download the COCO annotations (annotations_trainval{year}.zip) and unzip them into {root}"


def load_coco(path: Path, *, kind: Literal["captions", "instances"], hint: str) -> COCO:
    """A pycocotools index of an official COCO annotations file, its schema checked first.

    Raises:
        DataError: a missing file, malformed JSON, or an entry without a required field.
    """
    data = load_json(path, hint=hint)
    required = {"images": ("id", "file_name"), "annotations": ("id", "image_id", "caption" if kind == "captions" else "category_id")}
    if kind == "instances":
        required["categories"] = ("id", "name", "supercategory")
    for section, keys in required.items():
        entries = require_key(data, section, path=path, what=f"the COCO {kind} file")
        if not isinstance(entries, list):
            raise DataError(f"{path}: {section!r} should be a list; is this the original COCO {kind} file?")
        for i, entry in enumerate(entries):
            for key in keys:
                require_key(entry, key, path=path, what=f"{section}[{i}]")
    if kind == "instances":
        known = {c["id"] for c in data["categories"]}
        unknown = sorted({a["category_id"] for a in data["annotations"]} - known)
        if unknown:
            raise DataError(f"{path}: annotations use category ids {unknown[:5]} missing from 'categories'")
    coco = COCO()
    coco.dataset = data
    with contextlib.redirect_stdout(io.StringIO()):  # pycocotools prints its progress
        coco.createIndex()
    return coco


@dataclass(frozen=True)
class KarpathyImage:
    """One image of Karpathy's split file.

    Attributes:
        cocoid: the COCO image id.
        split: "train", "restval", "val" or "test".
        sentences: its captions (`sentences[].raw`) in sentid order.
    """

    cocoid: int
    split: str
    sentences: tuple[str, ...]


def read_karpathy(path: Path) -> list[KarpathyImage]:
    """The images of a Karpathy split file (`dataset_coco.json`), in the file's order.

    Raises:
        DataError: a missing or malformed file, or an image without cocoid, split or sentences.
    """
    hint = "download Karpathy's splits (caption_datasets.zip, with dataset_coco.json) and set benchmark.karpathy_split to it"
    data = load_json(path, hint=hint)
    images = require_key(data, "images", path=path, what="the Karpathy split file")
    out = []
    for i, image in enumerate(images):
        split = require_key(image, "split", path=path, what=f"images[{i}]")
        if split not in KARPATHY_SPLITS:
            raise DataError(f"{path}: images[{i}] has split {split!r}; expected one of {', '.join(KARPATHY_SPLITS)}")
        sentences = require_key(image, "sentences", path=path, what=f"images[{i}]")
        for j, s in enumerate(sentences):
            require_key(s, "raw", path=path, what=f"images[{i}].sentences[{j}]")
        ordered = sorted(enumerate(sentences), key=lambda js: (js[1].get("sentid", js[0]), js[0]))
        out.append(
            KarpathyImage(
                cocoid=int(require_key(image, "cocoid", path=path, what=f"images[{i}]")),
                split=split,
                sentences=tuple(clean_caption(s["raw"]) for _, s in ordered),
            )
        )
    return out


@dataclass(frozen=True)
class _Image:
    image_id: int
    split: str
    captions: tuple[str, ...]
    file: str
    supercategories: frozenset[str]


def _check_tasks(tasks: Sequence[Sequence[str]], task_names: Sequence[str]) -> None:
    if not tasks:
        raise ConfigError("secoco.tasks: give at least one group of supercategories")
    if len(task_names) != len(tasks):
        raise ConfigError(f"secoco.task_names: {len(task_names)} names for {len(tasks)} task groups; give one name per group")
    if len(set(task_names)) != len(task_names):
        raise ConfigError(f"secoco.task_names: names must differ, got {list(task_names)}")
    seen: dict[str, int] = {}
    for t, group in enumerate(tasks):
        if not group:
            raise ConfigError(f"secoco.tasks[{t}]: an empty group; list at least one supercategory")
        for sc in group:
            if sc not in SUPERCATEGORIES:
                raise ConfigError(f"secoco.tasks[{t}]: unknown supercategory {sc!r}; COCO has: {', '.join(SUPERCATEGORIES)}")
            if sc in seen:
                raise ConfigError(f"secoco.tasks: supercategory {sc!r} is in groups {seen[sc]} and {t}; a category belongs to one task")
            seen[sc] = t


def _supercategories(coco: COCO, image_id: int) -> frozenset[str]:
    return frozenset(coco.cats[a["category_id"]]["supercategory"] for a in coco.imgToAnns[image_id])


def _official_images(root: Path, year: int, test_size: int | str, excluded: Exclusions) -> list[_Image]:
    out = []
    hint = ANNOTATIONS_HINT.format(year=year, root=root)
    for split, coco_split in (("train", "train"), ("test", "val")):
        captions_path = root / "annotations" / f"captions_{coco_split}{year}.json"
        captions = load_coco(captions_path, kind="captions", hint=hint)
        instances_path = root / "annotations" / f"instances_{coco_split}{year}.json"
        instances = load_coco(instances_path, kind="instances", hint=hint)
        ids = sorted(captions.imgs)
        if split == "test" and test_size != "all":
            for _ in ids[test_size:]:
                excluded.add(NO_TASK, "test image beyond test_size")
            ids = ids[:test_size]
        for image_id in ids:
            if image_id not in instances.imgs:
                raise DataError(
                    f"image {image_id} of {captions_path} is not in {instances_path}: the two files must be of the "
                    f"same split and year; {hint}"
                )
            texts = [clean_caption(a["caption"]) for a in sorted(captions.imgToAnns[image_id], key=lambda a: a["id"])]
            texts = [c for c in texts if c]
            if not texts:
                raise DataError(
                    f"captions missing for image {image_id} ({captions.imgs[image_id]['file_name']}): {captions_path} "
                    f"has no caption annotation for it; download the file again"
                )
            out.append(
                _Image(image_id, split, tuple(texts), f"{coco_split}{year}/{captions.imgs[image_id]['file_name']}", _supercategories(instances, image_id))
            )
    return out


def _karpathy_images(root: Path, year: int, path: Path, test_size: int | str, excluded: Exclusions) -> list[_Image]:
    hint = ANNOTATIONS_HINT.format(year=year, root=root)
    instances = {
        s: load_coco(root / "annotations" / f"instances_{s}{year}.json", kind="instances", hint=hint) for s in ("train", "val")
    }
    out, tests = [], 0
    for image in read_karpathy(path):
        if image.split == "val":
            excluded.add(NO_TASK, "Karpathy val split (not used)")
            continue
        if image.split == "test":
            tests += 1
            if test_size != "all" and tests > test_size:
                excluded.add(NO_TASK, "test image beyond test_size")
                continue
        coco_split = next((s for s, coco in instances.items() if image.cocoid in coco.imgs), None)
        if coco_split is None:
            raise DataError(
                f"image {image.cocoid} of {path} is in neither instances_train{year}.json nor instances_val{year}.json "
                f"under {root / 'annotations'}: the Karpathy split needs COCO train+val {year} instances"
            )
        texts = tuple(c for c in image.sentences if c)
        if not texts:
            raise DataError(f"captions missing for image {image.cocoid}: {path} lists no sentence for it; download the file again")
        coco = instances[coco_split]
        out.append(
            _Image(
                image.cocoid,
                "test" if image.split == "test" else "train",
                texts,
                f"{coco_split}{year}/{coco.imgs[image.cocoid]['file_name']}",
                _supercategories(coco, image.cocoid),
            )
        )
    return out


@register_file_benchmark("secoco")
def secoco(
    *,
    root: str = "data/coco",
    year: Literal[2014, 2017] = 2014,
    karpathy_split: str = "",
    test_size: int | Literal["all"] = 1000,
    tasks: tuple[tuple[str, ...], ...] = DEFAULT_TASKS,
    task_names: tuple[str, ...] = DEFAULT_TASK_NAMES,
    captions_per_image: int = 5,
    mode: Literal["images", "features"] = "images",
    features_dir: str = "features",
    image_size: int = 224,
    on_bad_image: Literal["fail", "skip"] = "fail",
) -> TaskData:
    """SeCOCO: MS-COCO split into tasks by groups of supercategories (see the module doc).

    Args:
        root: folder holding annotations/, the image folders and the Karpathy file.
        year: COCO release of the annotations and image folders, 2014 or 2017.
        karpathy_split: Karpathy's dataset_coco.json (relative to root), for the standard
            train (train + restval) / test split and captions; "" uses COCO's train / val.
        test_size: test images kept before tasks are assigned: the first 1000 (COCO 1K,
            VSE++'s first fold), 5000 (COCO 5K) or any N, or "all".
        tasks: the supercategories of each task, in training order.
        task_names: one name per task.
        captions_per_image: captions kept per image (the first ones); images with fewer
            are left out and counted.
        mode: "images" reads the image files; "features" reads precomputed features
            ({features_dir}/{train,test}_ims.npy, _caps.txt, _ids.txt).
        features_dir: folder of the precomputed features, relative to root.
        image_size: side of the square image crops (mode "images").
        on_bad_image: an image that does not decode (or, in mode "features", has no
            feature row): "fail" stops with an error naming it, "skip" leaves it out and counts it.
    """
    base = Path(root).expanduser()
    if captions_per_image < 1:
        raise ConfigError(f"secoco.captions_per_image: expected at least 1, got {captions_per_image}")
    if test_size != "all" and test_size < 1:
        raise ConfigError(f"secoco.test_size: expected a positive number of images or 'all', got {test_size}")
    _check_tasks(tasks, task_names)
    excluded = Exclusions()
    if karpathy_split:
        images = _karpathy_images(base, year, under(base, karpathy_split), test_size, excluded)
    else:
        images = _official_images(base, year, test_size, excluded)
    group_of = {sc: t for t, group in enumerate(tasks) for sc in group}
    candidates = []
    for image in sorted(images, key=lambda im: im.image_id):
        if not image.supercategories:
            excluded.add(NO_TASK, "no instance annotations")
            continue
        owners = {group_of.get(sc) for sc in image.supercategories}
        if len(owners - {None}) > 1:
            excluded.add(NO_TASK, "categories of several tasks")
        elif None in owners:
            excluded.add(NO_TASK, "categories outside every task")
        elif len(image.captions) < captions_per_image:
            excluded.add(task_names[owners.pop()], f"fewer than {captions_per_image} captions")
        else:
            candidates.append(
                Candidate(image.image_id, owners.pop(), image.split, image.captions[:captions_per_image], image.file)
            )
    return assemble(
        candidates=candidates,
        task_names=task_names,
        excluded=excluded,
        mode=mode,
        image_folders=[base],
        image_size=image_size,
        on_bad_image=on_bad_image,
        features_dir=under(base, features_dir),
    )
