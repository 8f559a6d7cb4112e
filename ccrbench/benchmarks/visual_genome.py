"""SeViGe: Visual Genome as a sequence of domains (animals, vehicles, clothes), as in Wang et al. 2021.

Files under `root` (Visual Genome v1.2 / v1.4 downloads):

    image_data.json            [{image_id, url, coco_id, ...}]
    objects.json               [{image_id, objects: [{object_id, names (or name), synsets}]}]
    region_descriptions.json   [{id, regions: [{region_id, image_id, phrase}]}]
    VG_100K/, VG_100K_2/       images (mode "images"), named as in their url
    features/{train,test}_{ims.npy,caps.txt,ids.txt}  precomputed features (mode "features")

Domains: an object belongs to a domain when one of its synsets is in the domain's
`synsets`, or one of its names, or the lemma of one of its synsets (the part before
".n."), is in the domain's `names` (plurals in -s/-es included). The vocabulary is
`DOMAINS` below; no WordNet is needed. Words that name other things too (mouse, bat,
tie, cap, chicken, kite, trunk, collar, ...) are left out of `names`; their unambiguous
senses are listed as synsets. An image belongs to the domain of its domain objects;
images with objects of several domains, or of none, are left out and counted.

Captions: Visual Genome has region descriptions, not captions. An image's captions
are its region descriptions that mention a word of its domain, duplicates (ignoring
case) removed, the first `captions_per_image` by region id; an image with fewer is
left out and counted (so every caption is about the domain's object). An image
without any region entry is an error (region_descriptions.json does not match
image_data.json).

Split: a hash of (split_seed, image id) puts an image in the test set when it falls
below `test_fraction`, in the validation set when it falls in the next `val_fraction`,
else in the training set: deterministic, independent of file order and of which other
images are kept; validation images are assigned to tasks exactly as test images are.
`exclude_coco_test` leaves out the images that are also in COCO's Karpathy
test split (about 51K VG images are COCO images), so a model trained here can be
tested on COCO without leakage.

Reading: the json files are parsed with msgspec into only the fields used, and the
per-image result (domains, domain descriptions) is cached under `cache_dir()` while
the files keep their size and modification time.
"""

from __future__ import annotations

import functools
import json
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Any, Literal

import msgspec
from annotated_types import Ge, Interval

from ccrbench.benchmarks.coco import read_karpathy
from ccrbench.benchmarks.files.reading import DataError, cached_index, clean_caption, load_json, refuse_repeated, require_file, under
from ccrbench.benchmarks.files.task_rules import word_forms
from ccrbench.benchmarks.files.tasks import NO_TASK, Candidate, Exclusions, TaskData, assemble, hash_unit
from ccrbench.registry import ConfigError, register_file_benchmark
from ccrbench.tokens import split_words


@dataclass(frozen=True)
class Domain:
    """The vocabulary of one domain.

    Attributes:
        names: singular object names and caption words of the domain.
        synsets: WordNet synsets of the domain whose lemma is not in `names`
            (or is ambiguous and so left out of it).
    """

    names: frozenset[str]
    synsets: frozenset[str]


DOMAINS: dict[str, Domain] = {
    "animals": Domain(
        names=frozenset(
            "animal pet dog puppy cat kitten kitty horse pony foal mare stallion cow calf cattle bull ox sheep lamb "
            "goat elephant giraffe zebra bear cub bird duck duckling goose geese swan pigeon seagull gull parrot owl "
            "eagle hawk penguin heron pelican crow sparrow deer monkey lion tiger rabbit bunny squirrel butterfly "
            "turtle frog camel pig donkey mule kangaroo ostrich flamingo rhino rhinoceros hippo hippopotamus "
            "livestock".split()
        ),
        synsets=frozenset({"mouse.n.01", "chicken.n.02", "bat.n.01", "kite.n.04", "seal.n.09", "fish.n.01"}),
    ),
    "vehicles": Domain(
        names=frozenset(
            "vehicle automobile car bus truck train locomotive tram trolley streetcar motorcycle motorbike bike "
            "bicycle scooter moped airplane aeroplane plane jet airliner helicopter boat ship sailboat yacht canoe "
            "kayak ferry van taxi jeep suv minivan limo limousine tractor".split()
        ),
        synsets=frozenset({"cab.n.03"}),
    ),
    "clothes": Domain(
        names=frozenset(
            "clothes clothing outfit shirt tshirt jacket coat pants trouser jean jeans shorts dress skirt "
            "sweater sweatshirt hoodie hat beanie shoe sneaker sandal boot sock glove scarf necktie vest uniform "
            "blouse suit footwear".split()
        ),
        synsets=frozenset({"cap.n.01", "necktie.n.01", "short_pants.n.01", "tee_shirt.n.01", "jersey.n.03"}),
    ),
}
IMAGE_FOLDERS = ("VG_100K", "VG_100K_2")
HINT = "download Visual Genome v1.2 ({name}.json.zip) and unzip it into {root}"
REPEAT_HINT = "the file lists each image once: it is damaged or edited; download it again"


@functools.lru_cache(maxsize=1 << 16)
def _forms(word: str) -> frozenset[str]:
    """A word and its singular candidates (-s, -es); cached, as a few thousand words make up millions of descriptions."""
    return frozenset(word_forms(word.strip()))


def object_domains(obj: Any, *, path: Path | None, what: str) -> set[str]:
    """The domains an objects.json object (a mapping or `_VgObject`) belongs to, by its synsets and names."""
    get = obj.get if isinstance(obj, dict) else lambda key: getattr(obj, key)
    if get("names") is not None:
        names = get("names")
    elif get("name") is not None:
        names = [get("name")]
    else:
        raise DataError(f"{path}: {what} has neither 'names' nor 'name'; is this the original objects.json?")
    return set(_domains(tuple(names), tuple(get("synsets") or ())))


@functools.lru_cache(maxsize=1 << 16)
def _domains(names: tuple[str, ...], synsets: tuple[str, ...]) -> frozenset[str]:
    """The domains of an object with these names and synsets (cached: objects repeat across images)."""
    lemmas = {s.split(".")[0].replace("_", " ") for s in synsets}
    words = set().union(*(_forms(n) for n in [*names, *lemmas]))
    return frozenset(d for d, dom in DOMAINS.items() if words & dom.names or dom.synsets.intersection(synsets))


def mentions(phrase: str, domain: str) -> bool:
    """Whether a description names an object of `domain`."""
    return any(_forms(w) & DOMAINS[domain].names for w in split_words(phrase))


def split_of(image_id: int, *, seed: int, test_fraction: float, val_fraction: float) -> str:
    """Deterministic split by a hash of (seed, image id): "test" below `test_fraction`, "val" in the
    next `val_fraction`, else "train"."""
    u = hash_unit(image_id, seed=seed)
    return "test" if u < test_fraction else "val" if u < test_fraction + val_fraction else "train"


class _VgImage(msgspec.Struct):
    image_id: int
    url: str
    coco_id: int | None = None


class _VgObject(msgspec.Struct):
    names: list[str] | None = None
    name: str | None = None
    synsets: list[str] | None = None


class _VgObjects(msgspec.Struct):
    image_id: int
    objects: list[_VgObject]


class _Region(msgspec.Struct):
    region_id: int
    phrase: str


class _VgRegions(msgspec.Struct):
    id: int
    regions: list[_Region]


@dataclass(frozen=True)
class VgImage:
    """One image of image_data.json with what SeViGe derives from the other files.

    Attributes:
        image_id: the Visual Genome image id.
        coco_id: its COCO image id, or None.
        file: its image file name (the last part of its url).
        domains: the domains of its objects.
        texts: when it has one domain, its region descriptions that mention the domain,
            duplicates (ignoring case) removed, by region id; otherwise empty.
    """

    image_id: int
    coco_id: int | None
    file: str
    domains: frozenset[str]
    texts: tuple[str, ...]


def read_visual_genome(base: Path) -> list[VgImage]:
    """The images of the three json files under `base`, by image id; cached while the files (and
    `DOMAINS`) are unchanged.

    Raises:
        DataError: a missing or malformed file, an entry without a required field, an image
            listed twice in a file (by id, or by image file), or an image without an objects or
            region_descriptions entry.
    """
    paths = [base / f"{n}.json" for n in ("image_data", "objects", "region_descriptions")]
    image_path, objects_path, regions_path = paths
    hints = [HINT.format(name=p.stem, root=base) for p in paths]

    def build() -> list[VgImage]:
        images = sorted(load_json(image_path, hint=hints[0], schema=list[_VgImage]), key=lambda im: im.image_id)
        refuse_repeated(image_path, "image_id(s)", (im.image_id for im in images), hint=REPEAT_HINT)
        refuse_repeated(image_path, "image file(s)", (im.url.rsplit("/", 1)[-1] for im in images), hint=REPEAT_HINT)
        entries = load_json(objects_path, hint=hints[1], schema=list[_VgObjects])
        refuse_repeated(objects_path, "image_id(s)", (e.image_id for e in entries), hint=REPEAT_HINT)
        objects = {e.image_id: e.objects for e in entries}
        del entries
        domains = {}
        for image in images:
            if image.image_id not in objects:
                raise DataError(
                    f"objects missing for image {image.image_id}: {objects_path} has no entry for it; "
                    f"the json files must be of one release"
                )
            found = (
                object_domains(obj, path=objects_path, what=f"object {k} of image {image.image_id}")
                for k, obj in enumerate(objects[image.image_id])
            )
            domains[image.image_id] = frozenset().union(*found)
        del objects
        entries = load_json(regions_path, hint=hints[2], schema=list[_VgRegions])
        refuse_repeated(regions_path, "image id(s)", (e.id for e in entries), hint=REPEAT_HINT)
        regions = {e.id: e.regions for e in entries}
        del entries
        out = []
        for image in images:
            if image.image_id not in regions:
                raise DataError(
                    f"captions missing for image {image.image_id}: {regions_path} has no entry for it; "
                    f"the json files must be of one release"
                )
            texts, seen = [], set()
            if len(domains[image.image_id]) == 1:
                (domain,) = domains[image.image_id]
                for region in sorted(regions[image.image_id], key=lambda r: r.region_id):
                    phrase = clean_caption(region.phrase)
                    if phrase and phrase.lower() not in seen and mentions(phrase, domain):
                        seen.add(phrase.lower())
                        texts.append(phrase)
            file = image.url.rsplit("/", 1)[-1]
            out.append(VgImage(image.image_id, image.coco_id, file, domains[image.image_id], tuple(texts)))
        return out

    version = json.dumps({"checks": 2, **{d: [sorted(dom.names), sorted(dom.synsets)] for d, dom in DOMAINS.items()}})
    return cached_index("visual-genome", [require_file(p, hint=h) for p, h in zip(paths, hints)], build, version=version)


@register_file_benchmark("sevige")
def sevige(
    *,
    root: str = "data/vg",
    tasks: tuple[str, ...] = tuple(DOMAINS),
    captions_per_image: Annotated[int, Ge(1)] = 5,
    test_fraction: Annotated[float, Interval(gt=0, lt=1)] = 0.1,
    val_fraction: Annotated[float, Interval(gt=0, lt=1)] = 0.1,
    split_seed: Annotated[int, Ge(0)] = 0,
    exclude_coco_test: str = "",
    mode: Literal["images", "features"] = "images",
    features_dir: str = "features",
    image_size: Annotated[int, Ge(1)] = 224,
    on_bad_image: Literal["fail", "skip"] = "fail",
    prepared_dir: str = "prepared",
    decode: Literal["cpu", "cuda"] = "cpu",
    augment: bool = False,
) -> TaskData:
    """SeViGe: Visual Genome split into animals / vehicles / clothes (see the module doc).

    Args:
        root: folder holding the Visual Genome json files and image folders.
        tasks: domains in training order, from "animals", "vehicles", "clothes".
        captions_per_image: region descriptions kept per image (those mentioning the
            domain, first by region id); images with fewer are left out and counted.
        test_fraction: share of images in the test set (hash of the image id).
        val_fraction: share of images in the validation set (the same hash, the next
            `val_fraction` above `test_fraction`).
        split_seed: seed of the hash split; another seed gives another split.
        exclude_coco_test: Karpathy's dataset_coco.json (relative to root): leave out
            images that are COCO Karpathy test images; "" keeps them.
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
    unknown = [t for t in tasks if t not in DOMAINS]
    if unknown or not tasks or len(set(tasks)) != len(tasks):
        raise ConfigError(f"sevige.tasks: expected distinct domains from {', '.join(DOMAINS)}, got {list(tasks)}")
    if val_fraction >= 1.0 - test_fraction:
        raise ConfigError(
            f"sevige.val_fraction: expected a number between 0 and 1 - test_fraction ({1 - test_fraction:g}), got {val_fraction}"
        )
    base = Path(root).expanduser()
    coco_test: set[int] = set()
    if exclude_coco_test:
        coco_test = {im.cocoid for im in read_karpathy(under(base, exclude_coco_test)) if im.split == "test"}
    excluded = Exclusions()
    candidates = []
    vg_images = read_visual_genome(base)
    if exclude_coco_test and all(image.coco_id is None for image in vg_images):
        warnings.warn(
            f"sevige.exclude_coco_test: no image of {base / 'image_data.json'} has a coco_id, so no COCO test image can be "
            "left out; use the release whose image_data.json has coco_id (1.2), or exclude_coco_test: ''",
            stacklevel=2,
        )
    for image in vg_images:
        if not image.domains:
            excluded.add(NO_TASK, "no object of any domain")
            continue
        if len(image.domains) > 1:
            excluded.add(NO_TASK, "objects of several domains")
            continue
        (domain,) = image.domains
        if domain not in tasks:
            excluded.add(NO_TASK, f"{domain} (not a task)")
            continue
        if image.coco_id is not None and image.coco_id in coco_test:
            excluded.add(domain, "COCO Karpathy test image")
            continue
        if len(image.texts) < captions_per_image:
            excluded.add(domain, f"fewer than {captions_per_image} descriptions of the domain")
            continue
        split = split_of(image.image_id, seed=split_seed, test_fraction=test_fraction, val_fraction=val_fraction)
        candidates.append(Candidate(image.image_id, tasks.index(domain), split, image.texts[:captions_per_image], image.file))
    return assemble(
        candidates=candidates,
        task_names=tasks,
        excluded=excluded,
        mode=mode,
        image_folders=[base / f for f in IMAGE_FOLDERS],
        image_size=image_size,
        on_bad_image=on_bad_image,
        features_dir=under(base, features_dir),
        prepared_dir=under(base, prepared_dir),
        decode=decode,
        augment=augment,
    )
