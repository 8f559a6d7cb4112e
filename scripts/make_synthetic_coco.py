"""Writes a synthetic MS-COCO 2014 tree in the real file schema, at real scale or a fraction of it.

    python scripts/make_synthetic_coco.py /tmp/coco_synth [--scale 0.05] [--dtype float16] [--images]

What it writes under the folder (sizes at --scale 1, those of the real release):

    annotations/instances_{train,val}2014.json   82,783 + 40,504 images, 604,907 + 291,875 instances
                                                 of the 80 real categories in their 12 supercategories,
                                                 with segmentation polygons (RLE for crowds) like the real files
    annotations/captions_{train,val}2014.json    616,767 captions in all (5 per image, a few with 6)
    dataset_coco.json                            Karpathy's split: 113,287 train+restval, 5,000 val, 5,000 test
    features/{train,val,test}_{ims.npy,caps.txt,ids.txt}
                                                 2048-d features in the precomp layout `benchmark.mode:
                                                 features` reads with `karpathy_split: dataset_coco.json`
    secoco_features.yaml                         a config reading it

No image file is written (the features mode does not read them) unless `--images` asks for
them: {train,val}2014/<file_name>, 640x480 natural-image-like JPEGs (scripts/bench_loader.py's,
for images mode and `ccrbench data prepare`). Everything is drawn from a seeded generator, so
two runs write the same tree.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
from synthetic_precomp import parser, write_precomp

CATEGORIES = {
    "person": ["person"],
    "vehicle": ["bicycle", "car", "motorcycle", "airplane", "bus", "train", "truck", "boat"],
    "outdoor": ["traffic light", "fire hydrant", "stop sign", "parking meter", "bench"],
    "animal": ["bird", "cat", "dog", "horse", "sheep", "cow", "elephant", "bear", "zebra", "giraffe"],
    "accessory": ["backpack", "umbrella", "handbag", "tie", "suitcase"],
    "sports": ["frisbee", "skis", "snowboard", "sports ball", "kite", "baseball bat", "baseball glove", "skateboard",
               "surfboard", "tennis racket"],
    "kitchen": ["bottle", "wine glass", "cup", "fork", "knife", "spoon", "bowl"],
    "food": ["banana", "apple", "sandwich", "orange", "broccoli", "carrot", "hot dog", "pizza", "donut", "cake"],
    "furniture": ["chair", "couch", "potted plant", "bed", "dining table", "toilet"],
    "electronic": ["tv", "laptop", "mouse", "remote", "keyboard", "cell phone"],
    "appliance": ["microwave", "oven", "toaster", "sink", "refrigerator"],
    "indoor": ["book", "clock", "vase", "scissors", "teddy bear", "hair drier", "toothbrush"],
}  # fmt: skip
# The real category ids (1..90 with gaps), in the order above.
CATEGORY_IDS = [1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 13, 14, 15, 16, 17, 18, 19, 20, 21, 22, 23, 24, 25, 27, 28, 31, 32,
                33, 34, 35, 36, 37, 38, 39, 40, 41, 42, 43, 44, 46, 47, 48, 49, 50, 51, 52, 53, 54, 55, 56, 57, 58, 59,
                60, 61, 62, 63, 64, 65, 67, 70, 72, 73, 74, 75, 76, 77, 78, 79, 80, 81, 82, 84, 85, 86, 87, 88, 89,
                90]  # fmt: skip
# Scenes: the supercategories an image's instances are drawn from (with a person in some).
SCENES = [("animal",), ("vehicle", "outdoor"), ("kitchen", "food", "furniture", "electronic", "appliance", "indoor"),
          ("person", "sports", "accessory"), ("person", "vehicle"), ("animal", "furniture")]  # fmt: skip
SCENE_P = [0.2, 0.2, 0.25, 0.2, 0.1, 0.05]
IMAGES = {"train": 82_783, "val": 40_504}
INSTANCES = {"train": 604_907, "val": 291_875}
CAPTIONS = 616_767  # 5 per image, a few with 6 or 7
EXTRA_CAPTION = (CAPTIONS - 5 * sum(IMAGES.values())) / sum(IMAGES.values())
KARPATHY = {"val": 5_000, "test": 5_000}  # from val2014; the rest of val2014 is restval
WORDS = ("a an the of on in with next to near two three small large white black red blue green young old sitting "
         "standing walking parked open table street room field road water grass plate building top front side "
         "looking holding eating riding playing").split()  # fmt: skip


def categories() -> list[dict]:
    names = [(sc, name) for sc, ns in CATEGORIES.items() for name in ns]
    return [{"supercategory": sc, "id": i, "name": n} for (sc, n), i in zip(names, CATEGORY_IDS, strict=True)]


def write_json_list(f, key: str, items, *, last: bool = False) -> None:
    """Writes `"key": [item, ...]` from an iterable of already-encoded JSON strings."""
    f.write(f'"{key}": [')
    for n, item in enumerate(items):
        f.write(item if n == 0 else "," + item)
    f.write("]" + ("" if last else ", "))


def polygons(rng: np.random.Generator, n: int) -> list[str]:
    """`n` encoded segmentation polygons of 8 to 60 points with 2 decimals (the real files' look)."""
    out = []
    for _ in range(n):
        points = rng.integers(8, 60)
        coords = rng.uniform(0, 640, size=2 * points)
        out.append("[[" + ",".join(f"{c:.2f}" for c in coords) + "]]")
    return out


def caption(rng: np.random.Generator, nouns: list[str]) -> str:
    words = list(rng.choice(WORDS, size=rng.integers(6, 12)))
    for noun in nouns[:2]:
        words.insert(int(rng.integers(0, len(words))), noun)
    return "A " + " ".join(words) + "."


def main() -> None:
    p = parser(__doc__)
    p.add_argument("--images", action="store_true", help="also write a JPEG per image (images mode)")
    args = p.parse_args()
    rng = np.random.default_rng(args.seed)
    cats = categories()
    by_super = {sc: [c for c in cats if c["supercategory"] == sc] for sc in CATEGORIES}
    (args.out / "annotations").mkdir(parents=True, exist_ok=True)
    pool = polygons(rng, 2000)
    next_image, next_ann, next_caption = 1, 1, 1
    karpathy: list[dict] = []
    counts = {}
    for split in ("train", "val"):
        n_images = max(20, round(IMAGES[split] * args.scale))
        n_instances = round(INSTANCES[split] * n_images / IMAGES[split])
        ids = np.arange(next_image, next_image + n_images) * 3  # ids with gaps, like COCO's
        next_image += n_images
        scenes = rng.choice(len(SCENES), size=n_images, p=SCENE_P)
        empty = rng.choice(n_images, n_images // 50, replace=False)  # some images have no instance
        p = np.full(n_images, 1.0)
        p[empty] = 0
        per_image = rng.multinomial(n_instances, p / p.sum())
        images, anns, caps, nouns_of = [], [], [], {}
        for image_id, scene, k in zip(ids.tolist(), scenes.tolist(), per_image.tolist()):
            file_name = f"COCO_{split}2014_{image_id:012d}.jpg"
            images.append(json.dumps({
                "license": int(rng.integers(1, 9)), "file_name": file_name,
                "coco_url": f"http://images.cocodataset.org/{split}2014/{file_name}", "height": 480, "width": 640,
                "date_captured": "2013-11-14 16:28:13", "flickr_url": f"http://farm4.staticflickr.com/{image_id}.jpg",
                "id": image_id,
            }))  # fmt: skip
            supers = SCENES[scene]
            chosen = [by_super[supers[int(rng.integers(0, len(supers)))]] for _ in range(k)]
            chosen = [group[int(rng.integers(0, len(group)))] for group in chosen]
            nouns_of[image_id] = [c["name"] for c in chosen] or ["room"]
            for c in chosen:
                crowd = rng.random() < 0.01
                segmentation = (
                    '{"counts": [' + ",".join(map(str, rng.integers(0, 400, 120))) + '], "size": [480, 640]}'
                    if crowd else pool[int(rng.integers(0, len(pool)))]
                )  # fmt: skip
                x, y, w, h = (round(float(v), 2) for v in rng.uniform(0, 300, 4))
                anns.append(
                    f'{{"segmentation": {segmentation}, "area": {w * h:.4f}, "iscrowd": {int(crowd)}, '
                    f'"image_id": {image_id}, "bbox": [{x}, {y}, {w}, {h}], "category_id": {c["id"]}, "id": {next_ann}}}'
                )
                next_ann += 1
            sentences = []
            for _ in range(6 if rng.random() < EXTRA_CAPTION else 5):
                text = caption(rng, nouns_of[image_id])
                caps.append(json.dumps({"image_id": image_id, "id": next_caption, "caption": text}))
                sentences.append({"tokens": text.lower().rstrip(".").split(), "raw": text, "imgid": len(karpathy),
                                  "sentid": next_caption})  # fmt: skip
                next_caption += 1
            karpathy.append({"filepath": f"{split}2014", "sentids": [s["sentid"] for s in sentences],
                             "filename": file_name, "imgid": len(karpathy), "split": "train" if split == "train" else "",
                             "sentences": sentences, "cocoid": image_id})  # fmt: skip
        info = '"info": {"description": "synthetic COCO 2014", "version": "1.0", "year": 2014}, '
        licenses = json.dumps([{"url": "http://creativecommons.org/licenses/by-nc-sa/2.0/", "id": 1, "name": "BY-NC-SA"}])
        for kind in ("instances", "captions"):
            with open(args.out / "annotations" / f"{kind}_{split}2014.json", "w") as f:
                f.write("{" + info)
                write_json_list(f, "images", images)
                f.write(f'"licenses": {licenses}, ')
                if kind == "instances":
                    write_json_list(f, "annotations", anns)
                    write_json_list(f, "categories", (json.dumps(c) for c in cats), last=True)
                else:
                    write_json_list(f, "annotations", caps, last=True)
                f.write("}")
        counts[split] = (n_images, len(anns), len(caps))
    val_images = [im for im in karpathy if im["filepath"] == "val2014"]
    for n, im in enumerate(val_images):
        test = round(KARPATHY["test"] * args.scale)
        im["split"] = "test" if n < test else "val" if n < test + round(KARPATHY["val"] * args.scale) else "restval"
    with open(args.out / "dataset_coco.json", "w") as f:
        json.dump({"images": karpathy, "dataset": "coco"}, f)
    write_features(args.out / "features", karpathy, dim=args.dim, dtype=args.dtype, rng=rng)
    (args.out / "secoco_features.yaml").write_text(
        "benchmark:\n  name: secoco\n"
        f"  root: {args.out.resolve()}\n  karpathy_split: dataset_coco.json\n  mode: features\n  test_size: 5000\n"
        f"model:\n  image_encoder: {{name: feature_mlp, input_dim: {args.dim}}}\n"
    )
    if args.images:
        from bench_loader import write_photos  # torch and ccrbench: only imported when asked

        write_photos([args.out / im["filepath"] / im["filename"] for im in karpathy], seed=args.seed)
    for split, (n_images, n_anns, n_caps) in counts.items():
        print(f"{split}2014: {n_images} images, {n_anns} instances, {n_caps} captions")
    print(f"karpathy: {len(karpathy)} images; written to {args.out}")


def write_features(folder: Path, karpathy: list[dict], *, dim: int, dtype: str, rng: np.random.Generator) -> None:
    """The precomp layout of the Karpathy split: one row per image, its first 5 captions, its id."""
    for split, members in (("train", ("train", "restval")), ("val", ("val",)), ("test", ("test",))):
        images = [im for im in karpathy if im["split"] in members]
        captions = [[" ".join(s["raw"].split()) for s in im["sentences"][:5]] for im in images]
        write_precomp(folder, split, [im["cocoid"] for im in images], captions, dim=dim, dtype=dtype, rng=rng)


if __name__ == "__main__":
    main()
