"""Miniature COCO and Visual Genome trees in the real file schemas, with tiny JPEGs.

COCO (2014 names): train2014 / val2014 images; categories with their real ids and
supercategories; captions whose annotation ids are not in file order; a Karpathy
split file. Visual Genome: image_data.json, objects.json (both `names` and the older
`name`), region_descriptions.json, images in VG_100K and VG_100K_2.
"""

from __future__ import annotations

import json
from pathlib import Path

import yaml
from PIL import Image

COCO_CATEGORIES = [
    {"id": 1, "name": "person", "supercategory": "person"},
    {"id": 2, "name": "bicycle", "supercategory": "vehicle"},
    {"id": 3, "name": "car", "supercategory": "vehicle"},
    {"id": 10, "name": "traffic light", "supercategory": "outdoor"},
    {"id": 16, "name": "bird", "supercategory": "animal"},
    {"id": 18, "name": "dog", "supercategory": "animal"},
    {"id": 38, "name": "kite", "supercategory": "sports"},
    {"id": 47, "name": "cup", "supercategory": "kitchen"},
    {"id": 59, "name": "pizza", "supercategory": "food"},
    {"id": 62, "name": "chair", "supercategory": "furniture"},
    {"id": 72, "name": "tv", "supercategory": "electronic"},
]
# image id -> (COCO split, category names, number of captions)
COCO_IMAGES: dict[int, tuple[str, tuple[str, ...], int]] = {
    101: ("train", ("dog",), 7),
    102: ("train", ("bird", "dog"), 5),
    103: ("train", ("bird",), 5),
    104: ("train", ("dog",), 6),
    111: ("train", ("car",), 5),
    112: ("train", ("car", "traffic light"), 5),
    113: ("train", ("bicycle",), 5),
    114: ("train", ("car",), 5),
    121: ("train", ("cup", "pizza"), 5),
    122: ("train", ("chair",), 5),
    123: ("train", ("tv", "chair"), 5),
    124: ("train", ("pizza",), 5),
    131: ("train", ("dog", "car"), 5),  # several tasks
    132: ("train", ("person", "dog"), 5),  # a category outside every task
    133: ("train", ("kite",), 5),  # outside every task
    134: ("train", (), 5),  # no instance
    135: ("train", ("dog",), 4),  # too few captions
    201: ("val", ("dog",), 5),
    202: ("val", ("bird",), 5),
    211: ("val", ("car",), 5),
    212: ("val", ("bicycle",), 5),
    221: ("val", ("pizza",), 5),
    222: ("val", ("cup",), 5),
    231: ("val", ("cup", "bird"), 5),  # several tasks
    232: ("val", ("person",), 5),  # outside every task
}
KARPATHY_SPLIT = {
    **{i: "train" for i in range(101, 136) if i in COCO_IMAGES},
    104: "restval",
    114: "restval",
    212: "val",
    222: "val",
    202: "val",
}
KARPATHY_TEST_ORDER = (201, 221, 211, 231, 232)  # file order of the test images


def write_jpeg(path: Path, seed: int, size: tuple[int, int] = (24, 20)) -> None:
    """A small JPEG whose colours depend on `seed`."""
    path.parent.mkdir(parents=True, exist_ok=True)
    image = Image.new("RGB", size, ((seed * 37) % 256, (seed * 91) % 256, (seed * 53) % 256))
    image.paste(((seed * 11) % 256, 40, 200), (2, 2, 10 + seed % 10, 12))
    image.save(path, "JPEG", quality=90)


def coco_caption(image_id: int, k: int) -> str:
    """The k-th caption (in annotation-id order) of a COCO image."""
    names = " and ".join(COCO_IMAGES[image_id][1]) or "nothing"
    return f"photo {k} of a {names} in scene {image_id}"


def coco_file(image_id: int) -> str:
    split = COCO_IMAGES[image_id][0]
    return f"COCO_{split}2014_{image_id:012d}.jpg"


def build_coco(root: Path) -> Path:
    """Writes the miniature COCO tree under `root`; returns `root`."""
    ann_dir = root / "annotations"
    ann_dir.mkdir(parents=True)
    by_name = {c["name"]: c["id"] for c in COCO_CATEGORIES}
    ann_id = 9000
    for split in ("train", "val"):
        ids = [i for i, (s, _, _) in COCO_IMAGES.items() if s == split]
        images = [{"id": i, "file_name": coco_file(i), "width": 24, "height": 20, "license": 1} for i in ids]
        captions, instances = [], []
        for i in ids:
            count = COCO_IMAGES[i][2]
            # annotation ids out of file order: the k-th caption by id is listed in reverse
            for k in reversed(range(count)):
                captions.append({"id": i * 100 + k, "image_id": i, "caption": coco_caption(i, k) + ("\n" if k == 0 else "")})
            for name in COCO_IMAGES[i][1]:
                ann_id += 1
                instances.append(
                    {"id": ann_id, "image_id": i, "category_id": by_name[name], "bbox": [1, 1, 5, 5], "area": 25.0,
                     "iscrowd": 0, "segmentation": [[1, 1, 6, 1, 6, 6]]}
                )  # fmt: skip
            write_jpeg(root / f"{split}2014" / coco_file(i), i)
        info = {"description": "mini COCO", "year": 2014}
        (ann_dir / f"captions_{split}2014.json").write_text(
            json.dumps({"info": info, "images": images, "licenses": [], "annotations": captions})
        )
        (ann_dir / f"instances_{split}2014.json").write_text(
            json.dumps({"info": info, "images": images, "licenses": [], "annotations": instances, "categories": COCO_CATEGORIES})
        )
    order = [i for i in COCO_IMAGES if i not in KARPATHY_TEST_ORDER]
    order[3:3] = KARPATHY_TEST_ORDER
    karpathy = []
    for n, i in enumerate(order):
        count = COCO_IMAGES[i][2]
        sentences = [
            {"raw": f"karpathy {k} : a {' and '.join(COCO_IMAGES[i][1]) or 'nothing'} in scene {i}", "tokens": [], "imgid": n, "sentid": i * 10 + k}
            for k in reversed(range(count))
        ]  # fmt: skip
        split = "test" if i in KARPATHY_TEST_ORDER else KARPATHY_SPLIT[i]
        karpathy.append(
            {"filepath": f"{COCO_IMAGES[i][0]}2014", "filename": coco_file(i), "imgid": n, "split": split,
             "sentids": [s["sentid"] for s in sentences], "sentences": sentences, "cocoid": i}
        )  # fmt: skip
    (root / "dataset_coco.json").write_text(json.dumps({"images": karpathy, "dataset": "coco"}))
    return root


# Visual Genome: image id -> (objects, the word its descriptions use, descriptions mentioning it)
VG_OBJECTS: dict[int, list[dict]] = {
    1: [{"names": ["dog"], "synsets": ["dog.n.01"]}],
    2: [{"name": "zebra", "synsets": ["zebra.n.01"]}],  # the older 'name' field
    3: [{"names": ["giraffes"], "synsets": []}],  # plural name, no synset
    4: [{"names": ["pooch"], "synsets": ["dog.n.01"]}],  # known by its synset's lemma
    5: [{"names": ["kite"], "synsets": ["kite.n.04"]}],  # ambiguous name, the bird's synset
    6: [{"names": ["horse"], "synsets": ["horse.n.01"]}, {"names": ["tree"], "synsets": ["tree.n.01"]}],
    7: [{"names": ["cat"], "synsets": ["cat.n.01"]}],  # also a COCO Karpathy test image
    8: [{"names": ["sheep"], "synsets": ["sheep.n.01"]}],
    11: [{"names": ["car"], "synsets": ["car.n.01"]}],
    12: [{"names": ["bus"], "synsets": ["bus.n.01"]}],
    13: [{"names": ["police car"], "synsets": ["car.n.01"]}],
    14: [{"names": ["cab"], "synsets": ["cab.n.03"]}],
    15: [{"names": ["motorcycle"], "synsets": ["motorcycle.n.01"]}],
    16: [{"names": ["airplane"], "synsets": ["airplane.n.01"]}],
    17: [{"names": ["boat"], "synsets": ["boat.n.01"]}],
    18: [{"names": ["train"], "synsets": ["train.n.01"]}],
    21: [{"names": ["shirt"], "synsets": ["shirt.n.01"]}],
    22: [{"names": ["pants"], "synsets": ["trouser.n.01"]}],
    23: [{"names": ["baseball cap"], "synsets": ["cap.n.01"]}],
    24: [{"names": ["jacket"], "synsets": ["jacket.n.01"]}],
    25: [{"names": ["dress"], "synsets": ["dress.n.01"]}],
    26: [{"names": ["shoes"], "synsets": ["shoe.n.01"]}],
    27: [{"names": ["hat"], "synsets": ["hat.n.01"]}],
    28: [{"names": ["tie"], "synsets": ["necktie.n.01"]}],
    31: [{"names": ["dog"], "synsets": ["dog.n.01"]}, {"names": ["shirt"], "synsets": ["shirt.n.01"]}],  # several
    32: [{"names": ["car"], "synsets": ["car.n.01"]}, {"names": ["horse"], "synsets": ["horse.n.01"]}],  # several
    33: [{"names": ["tree"], "synsets": ["tree.n.01"]}],  # no domain
    34: [],  # no object
    35: [{"names": ["mouse"], "synsets": ["mouse.n.04"]}],  # the computer mouse
    36: [{"names": ["hot dog"], "synsets": ["hotdog.n.02"]}],
    37: [{"names": ["cow"], "synsets": ["cow.n.01"]}],  # only 4 descriptions of the domain
}
VG_WORD = {1: "dog", 2: "zebra", 3: "giraffe", 4: "dog", 5: "bird", 6: "horse", 7: "cat", 8: "sheep",
           11: "car", 12: "bus", 13: "car", 14: "taxi", 15: "motorcycle", 16: "airplane", 17: "boat", 18: "train",
           21: "shirt", 22: "pants", 23: "hat", 24: "jacket", 25: "dress", 26: "shoe", 27: "hat", 28: "necktie",
           31: "dog", 32: "car", 33: "tree", 34: "wall", 35: "mouse", 36: "hot dog", 37: "cow"}  # fmt: skip
VG_DOMAIN = {**{i: "animals" for i in range(1, 9)}, **{i: "vehicles" for i in range(11, 19)}, **{i: "clothes" for i in range(21, 29)}}
VG_COCO_IDS = {7: 201, 8: 101, 11: 999}  # 201 is a COCO Karpathy test image, 101 a train image


def vg_regions(image_id: int) -> list[dict]:
    """Region descriptions in file order (region ids not sorted); see `vg_expected_captions`."""
    w = VG_WORD[image_id]
    phrases = {
        5: f"the {w} is brown",
        1: f"a {w} on the left",
        3: "the sky is blue",
        2: f"A {w}  on the left",  # the same as region 1 but for case and spaces
        4: f"two {w}s near a fence",
        6: f"small {w} standing",
        7: f"the {w} looks happy",
        8: f"{w} in the picture",
    }
    if image_id == 37:
        phrases = {k: v for k, v in phrases.items() if k not in (7, 8)}
    return [
        {"region_id": image_id * 100 + k, "image_id": image_id, "phrase": p, "x": 0, "y": 0, "width": 5, "height": 5}
        for k, p in phrases.items()
    ]


def vg_expected_captions(image_id: int) -> tuple[str, ...]:
    w = VG_WORD[image_id]
    return (f"a {w} on the left", f"two {w}s near a fence", f"the {w} is brown", f"small {w} standing", f"the {w} looks happy")


def vg_folder(image_id: int) -> str:
    return "VG_100K" if image_id < 20 else "VG_100K_2"


def build_vg(root: Path) -> Path:
    """Writes the miniature Visual Genome tree under `root` (with a copy of the COCO Karpathy file)."""
    root.mkdir(parents=True)
    ids = sorted(VG_OBJECTS)
    image_data = [
        {"image_id": i, "url": f"https://cs.stanford.edu/people/rak248/{vg_folder(i)}/{i}.jpg", "width": 24,
         "height": 20, "coco_id": VG_COCO_IDS.get(i), "flickr_id": None}
        for i in reversed(ids)
    ]  # fmt: skip
    objects, object_id = [], 0
    for i in ids:
        listed = []
        for obj in VG_OBJECTS[i]:
            object_id += 1
            listed.append({"object_id": object_id, "x": 1, "y": 1, "w": 4, "h": 4, **obj})
        objects.append({"image_id": i, "objects": listed})
        write_jpeg(root / vg_folder(i) / f"{i}.jpg", i)
    regions = [{"id": i, "regions": vg_regions(i)} for i in ids]
    (root / "image_data.json").write_text(json.dumps(image_data))
    (root / "objects.json").write_text(json.dumps(objects))
    (root / "region_descriptions.json").write_text(json.dumps(regions))
    return root


def write_config(path: Path, benchmark: dict, image_encoder: dict | None = None) -> str:
    """A run config for a miniature benchmark with tiny model settings; returns its path."""
    model = {"image_encoder": image_encoder or {"name": "small_cnn", "width": 8, "output_dim": 16}}
    model.update(text_encoder={"name": "bigru", "word_dim": 16, "hidden_dim": 16}, embed_dim=16)
    config = {"benchmark": benchmark, "model": model, "train": {"epochs": 1, "batch_size": 16}, "eval": {"batch_size": 4}}
    path.write_text(yaml.safe_dump(config))
    return str(path)
