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

Split: an image is a test image when a hash of (split_seed, image id) falls below
`test_fraction`: deterministic, independent of file order and of which other images
are kept. `exclude_coco_test` leaves out the images that are also in COCO's Karpathy
test split (about 51K VG images are COCO images), so a model trained here can be
tested on COCO without leakage.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

from ccrbench.benchmarks.coco import read_karpathy
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
from ccrbench.models.text import split_words
from ccrbench.registry import ConfigError


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


def _forms(word: str) -> set[str]:
    """A word and its singular candidates (-s, -es)."""
    word = word.strip().lower()
    forms = {word}
    if word.endswith("s"):
        forms.add(word[:-1])
    if word.endswith("es"):
        forms.add(word[:-2])
    return forms


def object_domains(obj: dict[str, Any], *, path: Path, what: str) -> set[str]:
    """The domains an objects.json object belongs to (by its synsets and names)."""
    if "names" in obj:
        names = obj["names"]
    elif "name" in obj:
        names = [obj["name"]]
    else:
        raise DataError(f"{path}: {what} has neither 'names' nor 'name'; is this the original objects.json?")
    synsets = obj.get("synsets") or []
    lemmas = {s.split(".")[0].replace("_", " ") for s in synsets}
    words = set().union(*(_forms(n) for n in [*names, *lemmas]))
    return {d for d, dom in DOMAINS.items() if words & dom.names or dom.synsets.intersection(synsets)}


def mentions(phrase: str, domain: str) -> bool:
    """Whether a description names an object of `domain`."""
    return any(_forms(w) & DOMAINS[domain].names for w in split_words(phrase))


def is_test(image_id: int, *, seed: int, fraction: float) -> bool:
    """Deterministic split: a hash of (seed, image id) below `fraction` puts the image in the test set."""
    digest = hashlib.sha1(f"{seed}:{image_id}".encode()).digest()
    return int.from_bytes(digest[:8], "big") / 2**64 < fraction


def _by_image(entries: Any, key: str, *, path: Path, what: str) -> dict[int, Any]:
    if not isinstance(entries, list):
        raise DataError(f"{path}: expected a list of per-image entries; is this the original {path.name}?")
    return {int(require_key(e, key, path=path, what=f"{what}[{i}]")): e for i, e in enumerate(entries)}


@register_file_benchmark("sevige")
def sevige(
    *,
    root: str = "data/vg",
    tasks: tuple[str, ...] = tuple(DOMAINS),
    captions_per_image: int = 5,
    test_fraction: float = 0.1,
    split_seed: int = 0,
    exclude_coco_test: str = "",
    mode: Literal["images", "features"] = "images",
    features_dir: str = "features",
    image_size: int = 224,
    on_bad_image: Literal["fail", "skip"] = "fail",
) -> TaskData:
    """SeViGe: Visual Genome split into animals / vehicles / clothes (see the module doc).

    Args:
        root: folder holding the Visual Genome json files and image folders.
        tasks: domains in training order, from "animals", "vehicles", "clothes".
        captions_per_image: region descriptions kept per image (those mentioning the
            domain, first by region id); images with fewer are left out and counted.
        test_fraction: share of images in the test set (hash of the image id).
        split_seed: seed of the hash split; another seed gives another split.
        exclude_coco_test: Karpathy's dataset_coco.json (relative to root): leave out
            images that are COCO Karpathy test images; "" keeps them.
        mode: "images" reads the image files; "features" reads precomputed features
            ({features_dir}/{train,test}_ims.npy, _caps.txt, _ids.txt).
        features_dir: folder of the precomputed features, relative to root.
        image_size: side of the square image crops (mode "images").
        on_bad_image: an image that does not decode (or, in mode "features", has no
            feature row): "fail" stops with an error naming it, "skip" leaves it out and counts it.
    """
    unknown = [t for t in tasks if t not in DOMAINS]
    if unknown or not tasks or len(set(tasks)) != len(tasks):
        raise ConfigError(f"sevige.tasks: expected distinct domains from {', '.join(DOMAINS)}, got {list(tasks)}")
    if captions_per_image < 1:
        raise ConfigError(f"sevige.captions_per_image: expected at least 1, got {captions_per_image}")
    if not 0.0 < test_fraction < 1.0:
        raise ConfigError(f"sevige.test_fraction: expected a number between 0 and 1, got {test_fraction}")
    base = Path(root).expanduser()
    coco_test: set[int] = set()
    if exclude_coco_test:
        coco_test = {im.cocoid for im in read_karpathy(under(base, exclude_coco_test)) if im.split == "test"}
    image_path, objects_path, regions_path = (base / f"{n}.json" for n in ("image_data", "objects", "region_descriptions"))
    images = load_json(image_path, hint=HINT.format(name="image_data", root=base))
    objects = _by_image(load_json(objects_path, hint=HINT.format(name="objects", root=base)), "image_id", path=objects_path, what="entry")
    regions = _by_image(load_json(regions_path, hint=HINT.format(name="region_descriptions", root=base)), "id", path=regions_path, what="entry")
    excluded = Exclusions()
    candidates = []
    for image in sorted(_by_image(images, "image_id", path=image_path, what="image").values(), key=lambda im: im["image_id"]):
        image_id = int(image["image_id"])
        if image_id not in objects:
            raise DataError(f"objects missing for image {image_id}: {objects_path} has no entry for it; the json files must be of one release")
        if image_id not in regions:
            raise DataError(
                f"captions missing for image {image_id}: {regions_path} has no entry for it; the json files must be of one release"
            )
        entry = objects[image_id]
        domains = set()
        for k, obj in enumerate(require_key(entry, "objects", path=objects_path, what=f"the entry of image {image_id}")):
            domains |= object_domains(obj, path=objects_path, what=f"object {k} of image {image_id}")
        if not domains:
            excluded.add(NO_TASK, "no object of any domain")
            continue
        if len(domains) > 1:
            excluded.add(NO_TASK, "objects of several domains")
            continue
        domain = domains.pop()
        if domain not in tasks:
            excluded.add(NO_TASK, f"{domain} (not a task)")
            continue
        if image.get("coco_id") is not None and int(image["coco_id"]) in coco_test:
            excluded.add(domain, "COCO Karpathy test image")
            continue
        listed = require_key(regions[image_id], "regions", path=regions_path, what=f"the entry of image {image_id}")
        texts, seen = [], set()
        for r, region in sorted(
            enumerate(listed), key=lambda kr: int(require_key(kr[1], "region_id", path=regions_path, what=f"region {kr[0]} of image {image_id}"))
        ):
            phrase = clean_caption(str(require_key(region, "phrase", path=regions_path, what=f"region {r} of image {image_id}")))
            if phrase and phrase.lower() not in seen and mentions(phrase, domain):
                seen.add(phrase.lower())
                texts.append(phrase)
        if len(texts) < captions_per_image:
            excluded.add(domain, f"fewer than {captions_per_image} descriptions of the domain")
            continue
        url = str(require_key(image, "url", path=image_path, what=f"image {image_id}"))
        split = "test" if is_test(image_id, seed=split_seed, fraction=test_fraction) else "train"
        candidates.append(Candidate(image_id, tasks.index(domain), split, tuple(texts[:captions_per_image]), url.rsplit("/", 1)[-1]))
    return assemble(
        candidates=candidates,
        task_names=tasks,
        excluded=excluded,
        mode=mode,
        image_folders=[base / f for f in IMAGE_FOLDERS],
        image_size=image_size,
        on_bad_image=on_bad_image,
        features_dir=under(base, features_dir),
    )
