"""Writes a synthetic Visual Genome tree in the real file schema, at real scale or a fraction of it.

    python scripts/make_synthetic_vg.py /tmp/vg_synth [--scale 0.05] [--dtype float16]

What it writes under the folder (sizes at --scale 1, those of the v1.2/v1.4 release):

    image_data.json            108,077 images (about 51K with a coco_id)
    objects.json               about 3.8M objects (names, synsets, boxes, merged ids)
    region_descriptions.json   about 5.4M region descriptions (phrase, box)
    features/{train,val,test}_{ims.npy,caps.txt,ids.txt}
                               2048-d features in the precomp layout of SeViGe's default
                               split (`benchmark.mode: features`)
    sevige_features.yaml       a config reading it

No image file is written. Everything is drawn from a seeded generator.
"""

from __future__ import annotations

import inspect
import json
import os
import shutil
import tempfile
from pathlib import Path

import numpy as np
from synthetic_precomp import parser, write_precomp

IMAGES, OBJECTS_PER_IMAGE, REGIONS_PER_IMAGE = 108_077, 35, 50
NOUNS = {
    "animals": [("dog", "dog.n.01"), ("cat", "cat.n.01"), ("horse", "horse.n.01"), ("giraffe", "giraffe.n.01"),
                ("zebra", "zebra.n.01"), ("sheep", "sheep.n.01"), ("bird", "bird.n.01"), ("elephant", "elephant.n.01")],
    "vehicles": [("car", "car.n.01"), ("bus", "bus.n.01"), ("truck", "truck.n.01"), ("train", "train.n.01"),
                 ("motorcycle", "motorcycle.n.01"), ("bicycle", "bicycle.n.01"), ("boat", "boat.n.01")],
    "clothes": [("shirt", "shirt.n.01"), ("jacket", "jacket.n.01"), ("hat", "hat.n.01"), ("pants", "trouser.n.01"),
                ("dress", "dress.n.01"), ("shoe", "shoe.n.01")],
    None: [("tree", "tree.n.01"), ("sky", "sky.n.01"), ("building", "building.n.01"), ("window", "window.n.01"),
           ("grass", "grass.n.01"), ("road", "road.n.01"), ("sign", "sign.n.02"), ("wall", "wall.n.01")],
}  # fmt: skip
SCENES, SCENE_P = ["animals", "vehicles", "clothes", None, "mixed"], [0.15, 0.2, 0.25, 0.2, 0.2]
ADJECTIVES = "white black red blue green brown small large old young wooden metal parked standing".split()


def main() -> None:
    args = parser(__doc__).parse_args()
    rng = np.random.default_rng(args.seed)
    args.out.mkdir(parents=True, exist_ok=True)
    n_images = max(30, round(IMAGES * args.scale))
    object_id = region_id = 1
    with (
        open(args.out / "image_data.json", "w") as images_f,
        open(args.out / "objects.json", "w") as objects_f,
        open(args.out / "region_descriptions.json", "w") as regions_f,
    ):
        for f in (images_f, objects_f, regions_f):
            f.write("[")
        for image_id in range(1, n_images + 1):
            sep = "" if image_id == 1 else ", "
            folder = "VG_100K" if image_id % 3 else "VG_100K_2"
            coco_id = int(rng.integers(1, 600_000)) if rng.random() < 0.47 else None
            images_f.write(sep + json.dumps({
                "width": 800, "url": f"https://cs.stanford.edu/people/rak248/{folder}/{image_id}.jpg", "height": 600,
                "image_id": image_id, "coco_id": coco_id, "flickr_id": int(rng.integers(1e6, 1e9)),
            }))  # fmt: skip
            scene = SCENES[rng.choice(len(SCENES), p=SCENE_P)]
            pool = NOUNS[None] + (NOUNS[scene] if scene in NOUNS else NOUNS["animals"] + NOUNS["vehicles"] if scene else [])
            n_objects, n_regions = (int(n) for n in rng.poisson((OBJECTS_PER_IMAGE, REGIONS_PER_IMAGE)))
            picks = rng.integers(0, len(pool), n_objects)
            boxes = rng.integers(0, 500, (n_objects + n_regions, 4)).tolist()
            objects = ",".join(
                f'{{"synsets": ["{pool[k][1]}"], "h": {h}, "object_id": {object_id + j}, "merged_object_ids": [], '
                f'"names": ["{pool[k][0]}"], "w": {w}, "y": {y}, "x": {x}}}'
                for j, (k, (x, y, w, h)) in enumerate(zip(picks.tolist(), boxes))
            )
            object_id += n_objects
            objects_f.write(f'{sep}{{"image_id": {image_id}, "objects": [{objects}], "image_url": "https://x/{image_id}.jpg"}}')
            nouns = [pool[k][0] for k in picks.tolist()] or ["wall"]
            words = zip(rng.integers(0, len(nouns), n_regions).tolist(), rng.integers(0, len(ADJECTIVES), n_regions).tolist(),
                        rng.integers(0, 99, n_regions).tolist(), boxes[n_objects:])  # fmt: skip
            regions = ",".join(
                f'{{"region_id": {region_id + j}, "width": {w}, "height": {h}, "image_id": {image_id}, '
                f'"phrase": "the {nouns[a]} is {ADJECTIVES[b]} {c}", "y": {y}, "x": {x}}}'
                for j, (a, b, c, (x, y, w, h)) in enumerate(words)
            )
            region_id += n_regions
            regions_f.write(f'{sep}{{"regions": [{regions}], "id": {image_id}}}')
        for f in (images_f, objects_f, regions_f):
            f.write("]")
    write_features(args.out, dim=args.dim, dtype=args.dtype, rng=rng)
    (args.out / "sevige_features.yaml").write_text(
        f"benchmark:\n  name: sevige\n  root: {args.out.resolve()}\n  mode: features\nmodel:\n  image_encoder: {{name: feature_mlp, input_dim: {args.dim}}}\n"
    )
    print(f"{n_images} images, {object_id - 1} objects, {region_id - 1} region descriptions; written to {args.out}")


def write_features(root: Path, *, dim: int, dtype: str, rng: np.random.Generator) -> None:
    """The precomp layout of SeViGe's default split and captions (derived with the package's reader)."""
    from ccrbench.benchmarks.visual_genome import read_visual_genome, split_of, sevige

    defaults = {k: p.default for k, p in inspect.signature(sevige).parameters.items()}
    cache = tempfile.mkdtemp()
    os.environ["CCRBENCH_CACHE"] = cache  # leave no index behind
    try:
        images = [im for im in read_visual_genome(root) if len(im.domains) == 1 and len(im.texts) >= defaults["captions_per_image"]]
    finally:
        shutil.rmtree(cache)
    for split in ("train", "val", "test"):
        chosen = [
            im for im in images
            if split_of(im.image_id, seed=defaults["split_seed"], test_fraction=defaults["test_fraction"],
                        val_fraction=defaults["val_fraction"]) == split
        ]  # fmt: skip
        captions = [im.texts[: defaults["captions_per_image"]] for im in chosen]
        write_precomp(root / "features", split, [im.image_id for im in chosen], captions, dim=dim, dtype=dtype, rng=rng)


if __name__ == "__main__":
    main()
