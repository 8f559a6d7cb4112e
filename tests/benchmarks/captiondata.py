"""Tiny image-caption datasets in each format `image_captions` reads: CSV (repeated rows for
several captions), JSON Lines and Parquet (a list of captions per row) and a webdataset of
two shards (jpg + json), each with tiny JPEGs beside it."""

from __future__ import annotations

import csv
import io
import json
import tarfile
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq

from tests.benchmarks.minidata import write_jpeg

WORDS = {"animals": ("dog", "cats", "horse"), "vehicles": ("car", "bus", "bicycle"), "food": ("pizza", "apple", "bread")}
SPLIT_CYCLE = ("train", "train", "val", "test")
LABELS = {"animals": "pet", "vehicles": "transport", "food": "meal"}
YEARS = {"animals": 2012, "vehicles": 2016, "food": 2021}


def images(per_task: int = 4) -> list[dict]:
    """One record per image: name, task, split, year, label and two captions naming the task's words."""
    out = []
    for t, (task, words) in enumerate(WORDS.items()):
        for k in range(per_task):
            word = words[k % len(words)]
            out.append(
                {
                    "name": f"{task}_{k}.jpg",
                    "task": task,
                    "split": SPLIT_CYCLE[k % len(SPLIT_CYCLE)],
                    "year": YEARS[task] + k % 2,
                    "label": LABELS[task],
                    "captions": [f"a {word} number {k}", f"photo of the {word} {k} in a scene"],
                    "seed": 10 * t + k,
                }
            )
    return out


def _write_images(folder: Path, records: list[dict]) -> None:
    for r in records:
        write_jpeg(folder / "imgs" / r["name"], r["seed"], size=(12, 10))


def write_csv(root: Path, records: list[dict] | None = None, *, name: str = "data.csv") -> Path:
    """One row per caption (several rows per image); columns image, caption, task, split, year, label."""
    records = records if records is not None else images()
    _write_images(root, records)
    path = root / name
    with open(path, "w", newline="") as f:
        writer = csv.writer(f, delimiter="\t" if name.endswith(".tsv") else ",")
        writer.writerow(["image", "caption", "task", "split", "year", "label"])
        for r in records:
            for caption in r["captions"]:
                writer.writerow([f"imgs/{r['name']}", caption, r["task"], r["split"], r["year"], r["label"]])
    return path


def _rows(records: list[dict]) -> list[dict]:
    return [
        {"image": f"imgs/{r['name']}", "caption": r["captions"], "task": r["task"], "split": r["split"], "year": r["year"], "label": r["label"]}
        for r in records
    ]


def write_jsonl(root: Path, records: list[dict] | None = None) -> Path:
    """One JSON object per image, its captions as a list."""
    records = records if records is not None else images()
    _write_images(root, records)
    path = root / "data.jsonl"
    path.write_text("".join(json.dumps(row) + "\n" for row in _rows(records)))
    return path


def write_parquet(root: Path, records: list[dict] | None = None) -> Path:
    """One Parquet row per image, its captions as a list column."""
    records = records if records is not None else images()
    _write_images(root, records)
    path = root / "data.parquet"
    pq.write_table(pa.Table.from_pylist(_rows(records)), path)
    return path


def write_hf_embedded(root: Path, records: list[dict] | None = None, *, suffix: str = ".parquet") -> Path:
    """Rows as a Hugging Face dataset keeps them: the image column holds `{bytes, path}` (the JPEG's
    bytes, no file beside it), written as Parquet or as an Arrow IPC stream (`save_to_disk`'s format)."""
    records = records if records is not None else images()
    scratch = root / "scratch"
    _write_images(scratch, records)
    rows = [{**row, "image": {"bytes": (scratch / row["image"]).read_bytes(), "path": r["name"]}} for r, row in zip(records, _rows(records))]
    table = pa.Table.from_pylist(rows)
    path = root / f"data{suffix}"
    if suffix == ".parquet":
        pq.write_table(table, path)
    else:
        with pa.OSFile(str(path), "wb") as sink, pa.ipc.new_stream(sink, table.schema) as writer:
            writer.write_table(table)
    return path


def write_shards(root: Path, records: list[dict] | None = None, *, shards: int = 2, drop_caption: str = "") -> list[Path]:
    """`shards` webdataset tars of `key.jpg` + `key.json` ({caption: [...], task, split, year, label});
    the sample named `drop_caption` gets no caption."""
    records = records if records is not None else images()
    _write_images(root, records)
    paths = [root / "shards" / f"part-{s:03d}.tar" for s in range(shards)]
    paths[0].parent.mkdir(parents=True, exist_ok=True)
    for s, path in enumerate(paths):
        with tarfile.open(path, "w") as tar:
            for r, row in list(zip(records, _rows(records)))[s::shards]:
                key = r["name"].removesuffix(".jpg")
                meta = {k: v for k, v in row.items() if k != "image" and (k != "caption" or key != drop_caption)}
                for suffix, data in ((".jpg", (root / row["image"]).read_bytes()), (".json", json.dumps(meta).encode())):
                    info = tarfile.TarInfo(key + suffix)
                    info.size = len(data)
                    tar.addfile(info, io.BytesIO(data))
    return paths


def write_keywords(root: Path) -> Path:
    """The task -> words file of the three tasks (singular words; plurals match)."""
    path = root / "keywords.yaml"
    path.write_text("".join(f"{task}: [{', '.join(w.rstrip('s') for w in words)}]\n" for task, words in WORDS.items()))
    return path


# Flickr30K imgid -> (Karpathy split, the word its captions name); 9 names two tasks' words, 10 none.
FLICKR = {
    0: ("train", "dog"), 1: ("train", "car"), 2: ("restval", "beach"), 3: ("train", "horses"), 4: ("train", "bus"),
    5: ("train", "lake"), 6: ("val", "cat"), 7: ("val", "truck"), 8: ("val", "ocean"), 9: ("train", "dog on a boat"),
    10: ("train", "man"), 11: ("test", "bird"), 12: ("test", "bicycle"), 13: ("test", "pool"), 14: ("test", "puppy"),
}  # fmt: skip


def build_flickr(root: Path) -> Path:
    """A miniature Flickr30K: dataset_flickr30k.json (sentids not in file order) and flickr30k-images/."""
    entries = []
    for imgid, (split, word) in FLICKR.items():
        filename = f"{1000 + imgid}.jpg"
        write_jpeg(root / "flickr30k-images" / filename, imgid, size=(12, 10))
        sentences = [{"raw": f"caption {k} of a {word} {imgid}", "sentid": 5 * imgid + k, "imgid": imgid, "tokens": []} for k in range(5)]
        entries.append({"imgid": imgid, "filename": filename, "split": split, "sentids": [s["sentid"] for s in sentences], "sentences": sentences[::-1]})
    (root / "dataset_flickr30k.json").write_text(json.dumps({"images": entries, "dataset": "flickr30k"}))
    return root
