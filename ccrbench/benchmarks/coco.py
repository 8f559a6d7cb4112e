"""SeCOCO: MS-COCO as a sequence of tasks, each a group of COCO supercategories.

Files under `root` (the official COCO downloads, `year` 2014 or 2017):

    annotations/instances_{train,val}{year}.json   categories with their supercategory (always)
    annotations/captions_{train,val}{year}.json    captions (only without a Karpathy split)
    dataset_coco.json                              Karpathy split (optional: `karpathy_split`)
    {train,val}{year}/<file_name>                  images (mode "images")
    features/{train,val,test}_{ims.npy,caps.txt,ids.txt}  precomputed features (mode "features")

Splits: with `karpathy_split`, Karpathy's train + restval images train, its val
images (5,000) validate and its test images are the test set; the captions are its
`sentences[].raw` in sentid order. Without it, COCO's train{year} trains, except a
`val_fraction` of it held out for validation by a hash of (split_seed, image id)
(deterministic, independent of file order), and val{year} is the test set; the
captions are those of captions_*.json in annotation-id order. `test_size` keeps the
first N test images (Karpathy: in the file's order, so 1000 is VSE++'s first 1K fold;
official split: by image id) before tasks are assigned. Validation images are
assigned to tasks exactly as test images are.

Reading: the annotation files are parsed with msgspec into only the fields used
(segmentation polygons are skipped, never built), and the per-image index derived
from each file is cached under `cache_dir()` while the file keeps its size and
modification time, so a repeated load reads a small index instead of the JSON.

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

from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Annotated, Literal

import msgspec
from annotated_types import Ge, Interval

from ccrbench.benchmarks.files.reading import DataError, cached_index, clean_caption, load_json, refuse_repeated, require_file, under
from ccrbench.benchmarks.files.tasks import NO_TASK, Candidate, Exclusions, TaskData, assemble, hash_unit
from ccrbench.registry import ConfigError, register_file_benchmark

SUPERCATEGORIES = (
    "person", "vehicle", "outdoor", "animal", "accessory", "sports",
    "kitchen", "food", "furniture", "electronic", "appliance", "indoor",
)  # fmt: skip
DEFAULT_TASKS = (("animal",), ("vehicle", "outdoor"), ("kitchen", "food", "furniture", "electronic", "appliance", "indoor"))
DEFAULT_TASK_NAMES = ("animals", "vehicles", "indoor")
KARPATHY_SPLITS = ("train", "restval", "val", "test")
INDEX_VERSION = "2"  # of the cached per-image indices: change it when their derivation changes
REPEAT_HINT = "the file lists each image and annotation once: it is damaged or edited; download it again"
ANNOTATIONS_HINT = "download the COCO annotations (annotations_trainval{year}.zip) and unzip them into {root}"


class _CocoImage(msgspec.Struct):
    id: int
    file_name: str


class _Instance(msgspec.Struct):
    image_id: int
    category_id: int


class _Category(msgspec.Struct):
    id: int
    name: str
    supercategory: str


class _Instances(msgspec.Struct):
    """The fields of an instances file that SeCOCO reads (segmentations and boxes are skipped unparsed)."""

    images: list[_CocoImage]
    annotations: list[_Instance]
    categories: list[_Category]


class _Caption(msgspec.Struct):
    id: int
    image_id: int
    caption: str


class _Captions(msgspec.Struct):
    images: list[_CocoImage]
    annotations: list[_Caption]


class _Sentence(msgspec.Struct):
    raw: str
    sentid: int | None = None


class _KarpathyImage(msgspec.Struct):
    cocoid: int
    split: str
    sentences: list[_Sentence]


class _Karpathy(msgspec.Struct):
    images: list[_KarpathyImage]


@dataclass(frozen=True)
class CocoImages:
    """The per-image index of an official COCO annotations file.

    Attributes:
        files: image id -> file name.
        supercategories: image id -> the supercategories of its instances (instances files).
        captions: image id -> its non-empty captions in annotation-id order (captions files).
    """

    files: dict[int, str]
    supercategories: dict[int, frozenset[str]] = field(default_factory=dict)
    captions: dict[int, tuple[str, ...]] = field(default_factory=dict)


def load_coco(path: Path, *, kind: Literal["captions", "instances"], hint: str) -> CocoImages:
    """The per-image index of an official COCO annotations file, cached while the file is unchanged.

    Raises:
        DataError: a missing file, malformed JSON, an entry without a required field, an
            image id, file name or caption id listed twice, or an instance of a category
            missing from 'categories'.
    """

    def build() -> CocoImages:
        data = load_json(path, hint=hint, schema=_Captions if kind == "captions" else _Instances)
        refuse_repeated(path, "'images': id(s)", (im.id for im in data.images), hint=REPEAT_HINT)
        refuse_repeated(path, "'images': file_name(s)", (im.file_name for im in data.images), hint=REPEAT_HINT)
        if kind == "captions":
            refuse_repeated(path, "'annotations': caption id(s)", (a.id for a in data.annotations), hint=REPEAT_HINT)
            captions: dict[int, list[tuple[int, str]]] = defaultdict(list)
            for a in data.annotations:
                captions[a.image_id].append((a.id, clean_caption(a.caption)))
            return CocoImages(
                files={im.id: im.file_name for im in data.images},
                captions={i: tuple(c for _, c in sorted(caps) if c) for i, caps in captions.items()},
            )
        supercategory = {c.id: c.supercategory for c in data.categories}
        unknown = sorted({a.category_id for a in data.annotations} - supercategory.keys())
        if unknown:
            raise DataError(f"{path}: annotations use category ids {unknown[:5]} missing from 'categories'")
        supers: dict[int, set[str]] = defaultdict(set)
        for a in data.annotations:
            supers[a.image_id].add(supercategory[a.category_id])
        return CocoImages(
            files={im.id: im.file_name for im in data.images}, supercategories={i: frozenset(s) for i, s in supers.items()}
        )

    return cached_index(f"coco-{kind}", [require_file(path, hint=hint)], build, version=INDEX_VERSION)


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
    """The images of a Karpathy split file (`dataset_coco.json`), in the file's order; cached while
    the file is unchanged.

    Raises:
        DataError: a missing or malformed file, an image without cocoid, split or sentences, or a
            cocoid listed twice (it could be in two splits).
    """
    hint = "download Karpathy's splits (caption_datasets.zip, with dataset_coco.json) and set benchmark.karpathy_split to it"

    def build() -> list[KarpathyImage]:
        out = []
        images = load_json(path, hint=hint, schema=_Karpathy).images
        refuse_repeated(path, "cocoid(s)", (image.cocoid for image in images), hint=REPEAT_HINT)
        for i, image in enumerate(images):
            if image.split not in KARPATHY_SPLITS:
                raise DataError(f"{path}: images[{i}] has split {image.split!r}; expected one of {', '.join(KARPATHY_SPLITS)}")
            ordered = sorted(enumerate(image.sentences), key=lambda js: (js[0] if js[1].sentid is None else js[1].sentid, js[0]))
            out.append(KarpathyImage(image.cocoid, image.split, tuple(clean_caption(s.raw) for _, s in ordered)))
        return out

    return cached_index("karpathy", [require_file(path, hint=hint)], build, version=INDEX_VERSION)


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


def _official_images(
    root: Path, year: int, test_size: int | str, val_fraction: float, split_seed: int, excluded: Exclusions
) -> list[_Image]:
    out = []
    hint = ANNOTATIONS_HINT.format(year=year, root=root)
    for split, coco_split in (("train", "train"), ("test", "val")):
        captions_path = root / "annotations" / f"captions_{coco_split}{year}.json"
        captions = load_coco(captions_path, kind="captions", hint=hint)
        instances_path = root / "annotations" / f"instances_{coco_split}{year}.json"
        instances = load_coco(instances_path, kind="instances", hint=hint)
        ids = sorted(captions.files)
        if split == "test" and test_size != "all":
            for _ in ids[test_size:]:
                excluded.add(NO_TASK, "test image beyond test_size")
            ids = ids[:test_size]
        for image_id in ids:
            if image_id not in instances.files:
                raise DataError(
                    f"image {image_id} of {captions_path} is not in {instances_path}: the two files must be of the "
                    f"same split and year; {hint}"
                )
            texts = captions.captions.get(image_id, ())
            if not texts:
                raise DataError(
                    f"captions missing for image {image_id} ({captions.files[image_id]}): {captions_path} "
                    f"has no caption annotation for it; download the file again"
                )
            if split == "train" and hash_unit(image_id, seed=split_seed) < val_fraction:
                split_of = "val"
            else:
                split_of = split
            out.append(
                _Image(
                    image_id,
                    split_of,
                    texts,
                    f"{coco_split}{year}/{captions.files[image_id]}",
                    instances.supercategories.get(image_id, frozenset()),
                )
            )
    return out


def _karpathy_images(root: Path, year: int, path: Path, test_size: int | str, excluded: Exclusions) -> list[_Image]:
    hint = ANNOTATIONS_HINT.format(year=year, root=root)
    instances = {
        s: load_coco(root / "annotations" / f"instances_{s}{year}.json", kind="instances", hint=hint) for s in ("train", "val")
    }
    out, tests = [], 0
    for image in read_karpathy(path):
        if image.split == "test":
            tests += 1
            if test_size != "all" and tests > test_size:
                excluded.add(NO_TASK, "test image beyond test_size")
                continue
        coco_split = next((s for s, coco in instances.items() if image.cocoid in coco.files), None)
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
                image.split if image.split in ("val", "test") else "train",
                texts,
                f"{coco_split}{year}/{coco.files[image.cocoid]}",
                coco.supercategories.get(image.cocoid, frozenset()),
            )
        )
    return out


@register_file_benchmark("secoco")
def secoco(
    *,
    root: str = "data/coco",
    year: Literal[2014, 2017] = 2014,
    karpathy_split: str = "",
    test_size: Annotated[int, Ge(1)] | Literal["all"] = 1000,
    val_fraction: Annotated[float, Interval(gt=0, lt=1)] = 0.05,
    split_seed: Annotated[int, Ge(0)] = 0,
    tasks: tuple[tuple[str, ...], ...] = DEFAULT_TASKS,
    task_names: tuple[str, ...] = DEFAULT_TASK_NAMES,
    captions_per_image: Annotated[int, Ge(1)] = 5,
    mode: Literal["images", "features"] = "images",
    features_dir: str = "features",
    image_size: Annotated[int, Ge(1)] = 224,
    on_bad_image: Literal["fail", "skip"] = "fail",
    prepared_dir: str = "prepared",
    decode: Literal["cpu", "cuda"] = "cpu",
    augment: bool = False,
) -> TaskData:
    """SeCOCO: MS-COCO split into tasks by groups of supercategories (see the module doc).

    Args:
        root: folder holding annotations/, the image folders and the Karpathy file.
        year: COCO release of the annotations and image folders, 2014 or 2017.
        karpathy_split: Karpathy's dataset_coco.json (relative to root), for the standard
            train (train + restval) / test split and captions; "" uses COCO's train / val.
        test_size: test images kept before tasks are assigned: the first 1000 (COCO 1K,
            VSE++'s first fold), 5000 (COCO 5K) or any N, or "all".
        val_fraction: without `karpathy_split`, the share of COCO's train images held out
            for validation (by a hash of the image id); with it, Karpathy's val images validate.
        split_seed: seed of that hash; another seed holds out other images.
        tasks: the supercategories of each task, in training order.
        task_names: one name per task.
        captions_per_image: captions kept per image (the first ones); images with fewer
            are left out and counted.
        mode: "images" reads the image files; "features" reads precomputed features
            ({features_dir}/{train,val,test}_ims.npy, _caps.txt, _ids.txt).
        features_dir: folder of the precomputed features, relative to root.
        image_size: side of the square image crops (mode "images").
        on_bad_image: an image that does not decode (or, in mode "features", has no
            feature row): "fail" stops with an error naming it, "skip" leaves it out and counts it.
        prepared_dir: folder of the prepared images (`ccrbench data prepare`), relative to
            root; mode "images" reads them instead of the files when they are up to date.
        decode: without prepared images, where the files are decoded: "cpu" (PIL, in the
            loader workers) or "cuda" (bytes read by the workers, decoded in batches on the
            GPU by nvjpeg; without CUDA it warns and decodes on the CPU).
        augment: training images get a random resized crop and a horizontal flip.
    """
    base = Path(root).expanduser()
    _check_tasks(tasks, task_names)
    excluded = Exclusions()
    if karpathy_split:
        images = _karpathy_images(base, year, under(base, karpathy_split), test_size, excluded)
    else:
        images = _official_images(base, year, test_size, val_fraction, split_seed, excluded)
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
        prepared_dir=under(base, prepared_dir),
        decode=decode,
        augment=augment,
    )
