"""Shared pieces of the benchmarks built from downloaded files (SeCOCO, SeViGe).

A file benchmark's loader reads the dataset's annotation files, assigns images to
tasks and picks their captions (giving `Candidate`s), then `assemble` attaches each
image's encoder input:

- mode "images": the image file, decoded with PIL (`FileImages`: square crop of
  `image_size`, float [3, S, S] in [0, 1]; normalisation is each encoder's job).
  Every image is decoded once when the benchmark is built; one that does not decode
  is an error naming it (`on_bad_image: fail`) or is dropped and counted (`skip`).
  The outcome of that scan is cached per file size and modification time.
- mode "features": a row of a precomputed feature array (`FeatureImages`) in the
  VSE++ precomp layout `{dir}/{split}_ims.npy` (float32, one row per image, or one
  per caption when repeated), `{split}_caps.txt` (one caption per line, the same
  number per image, in row order) plus `{split}_ids.txt` (one image id per row),
  which lets the loader pick each task's rows. `ccrbench features` writes it.

Every missing or malformed input is a `DataError` naming the file and the fix; it
is a ConfigError, so the command line reports it and exits with status 2.
"""

from __future__ import annotations

import functools
import hashlib
import json
import os
from collections import Counter, defaultdict
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from itertools import combinations
from pathlib import Path
from typing import Any, Literal, TypeVar

import numpy as np
import torch
from PIL import Image
from torch import Tensor
from torch.utils.data import Dataset, Subset
from torchvision import transforms
from tqdm.auto import tqdm

from ccrbench.benchmarks.base import RetrievalBenchmark, TaskSplit, make_benchmark
from ccrbench.io import write_atomic
from ccrbench.models.text import split_words
from ccrbench.registry import ConfigError, Registry, register_benchmark

SPLITS = ("train", "test")
NO_TASK = "(no task)"
BAD_IMAGE_ERRORS = (OSError, ValueError, SyntaxError, Image.DecompressionBombError)
F = TypeVar("F", bound=Callable[..., Any])


class DataError(ConfigError):
    """A data file is missing, malformed or inconsistent with the others."""


def cache_dir() -> Path:
    """Where derived data is cached (`CCRBENCH_CACHE`, default ~/.cache/ccrbench)."""
    return Path(os.environ.get("CCRBENCH_CACHE", Path.home() / ".cache" / "ccrbench"))


def under(root: str | Path, path: str) -> Path:
    """`path` relative to the benchmark's `root` (an absolute path stays as it is)."""
    return Path(root).expanduser() / Path(path).expanduser()


def require_file(path: Path, *, hint: str) -> Path:
    """`path` if it is a file; otherwise a DataError naming it, where it was looked for, and `hint`."""
    if not path.is_file():
        where = path.parent.resolve()
        found = "the folder does not exist" if not where.is_dir() else "not there"
        raise DataError(f"missing file {path.name}: looked for {path} (in {where}: {found}); {hint}")
    return path


def load_json(path: Path, *, hint: str) -> Any:
    """Reads a JSON file; a missing file or malformed JSON is a DataError naming the file and line."""
    require_file(path, hint=hint)
    try:
        with open(path, encoding="utf-8") as f:
            return json.load(f)
    except json.JSONDecodeError as e:
        raise DataError(
            f"{path}: malformed JSON at line {e.lineno}, column {e.colno} ({e.msg}); the file is damaged "
            f"or incomplete: download it again ({hint})"
        ) from e
    except UnicodeDecodeError as e:
        raise DataError(f"{path}: not UTF-8 text, so not JSON ({e}); download it again ({hint})") from e


def require_key(entry: Any, key: str, *, path: Path, what: str) -> Any:
    """`entry[key]`, or a DataError saying which entry of which file lacks it."""
    if not isinstance(entry, Mapping) or key not in entry:
        raise DataError(f"{path}: {what} has no {key!r} field; is this the original, unmodified file?")
    return entry[key]


def find_image(name: str, folders: Sequence[Path]) -> Path:
    """The first `folder / name` that exists, or a DataError naming every folder searched."""
    for folder in folders:
        if (folder / name).is_file():
            return folder / name
    looked = ", ".join(str(f) for f in folders)
    raise DataError(f"missing image {name}: looked in {looked}; download the images into that folder")


def clean_caption(text: str) -> str:
    """A caption on one line: runs of whitespace (newlines included) become one space."""
    return " ".join(text.split())


# --------------------------------------------------------------------------- images


def decode_image(path: Path, image_size: int) -> Image.Image:
    """Opens and fully decodes an RGB image (JPEGs at the smallest scale still >= image_size)."""
    with Image.open(path) as image:
        image.draft("RGB", (image_size, image_size))
        return image.convert("RGB")


class FileImages(Dataset):
    """Images read from files: item i is float [3, S, S] in [0, 1].

    The shorter side is resized to S, then the centre S x S square is cropped.

    Args:
        paths: one image file per item.
        image_size: S, the side of the square output.
    """

    def __init__(self, *, paths: Sequence[Path], image_size: int) -> None:
        if image_size < 8:
            raise ConfigError(f"image_size must be at least 8 pixels, got {image_size}")
        self.paths = tuple(paths)
        self.image_size = image_size
        self.transform = transforms.Compose(
            [transforms.Resize(image_size), transforms.CenterCrop(image_size), transforms.ToTensor()]
        )

    def __len__(self) -> int:
        return len(self.paths)

    def __getitem__(self, i: int) -> Tensor:
        try:
            image = decode_image(self.paths[i], self.image_size)
        except BAD_IMAGE_ERRORS as e:
            raise DataError(f"image {self.paths[i]} does not decode ({e}); replace the file or delete it") from e
        return self.transform(image)


def bad_images(paths: Sequence[Path], *, image_size: int, on_bad_image: Literal["fail", "skip"]) -> dict[int, str]:
    """Decodes every image once; returns {index: reason} of those that do not decode.

    The outcome is cached under `cache_dir()`, keyed by the files' paths, sizes and
    modification times, so only a changed file set is decoded again.

    Raises:
        DataError: with `on_bad_image="fail"`, for the first image that does not decode.
    """
    stats = [(str(p), p.stat()) for p in paths]
    key = hashlib.sha1(
        json.dumps([image_size, [(p, s.st_size, s.st_mtime_ns) for p, s in stats]]).encode()
    ).hexdigest()
    cached = cache_dir() / "image_checks" / f"{key[:20]}.json"
    if cached.is_file():
        bad = {int(i): reason for i, reason in json.loads(cached.read_text()).items()}
    else:
        bad = {}
        for i, path in enumerate(tqdm(paths, desc="decoding images", leave=False, disable=None)):
            try:
                decode_image(path, image_size)
            except BAD_IMAGE_ERRORS as e:
                bad[i] = f"{type(e).__name__}: {e}"
        cached.parent.mkdir(parents=True, exist_ok=True)
        write_atomic(cached, lambda f: json.dump(bad, f))
    if bad and on_bad_image == "fail":
        i = min(bad)
        raise DataError(
            f"image {paths[i]} does not decode ({bad[i]}); replace the file, or set benchmark.on_bad_image=skip "
            f"to leave out the {len(bad)} image(s) that do not decode"
        )
    return bad


# --------------------------------------------------------------------------- precomputed features


class FeatureImages(Dataset):
    """Precomputed image features: item i is float32 [F], row `rows[i]` of `features`.

    Args:
        features: float32 array [N, F] (may be memory-mapped).
        rows: the row of each item.
    """

    def __init__(self, *, features: np.ndarray, rows: Sequence[int]) -> None:
        if features.dtype != np.float32 or features.ndim != 2:
            raise ValueError(f"expected float32 features [N, F], got {features.dtype} {features.shape}")
        self.features = features
        self.rows = tuple(rows)

    def __len__(self) -> int:
        return len(self.rows)

    def __getitem__(self, i: int) -> Tensor:
        return torch.from_numpy(np.array(self.features[self.rows[i]], dtype=np.float32))


@dataclass(frozen=True)
class Precomp:
    """One split in the VSE++ precomp layout, with its image ids.

    Attributes:
        features: float32 [R, F], memory-mapped.
        captions: the captions of each image, in row order.
        ids: the image id of each image.
        rows: each image's row in `features` (i, or i * captions per image when
            the rows are repeated per caption).
    """

    features: np.ndarray
    captions: tuple[tuple[str, ...], ...]
    ids: tuple[int, ...]
    rows: tuple[int, ...]

    def row_of(self) -> dict[int, int]:
        """image id -> index into `ids`/`captions`/`rows`."""
        return {image_id: i for i, image_id in enumerate(self.ids)}


def precomp_paths(folder: Path, split: str) -> tuple[Path, Path, Path]:
    """The features, captions and ids files of one split."""
    return folder / f"{split}_ims.npy", folder / f"{split}_caps.txt", folder / f"{split}_ids.txt"


def read_precomp(folder: Path, split: str) -> Precomp:
    """Reads `{split}_ims.npy`, `{split}_caps.txt` and `{split}_ids.txt` from `folder`.

    Raises:
        DataError: a missing file, an unreadable array, a non-integer or repeated id,
            or lengths that do not line up.
    """
    hint = "write them with `ccrbench features --config CFG --encoder NAME`"
    ims_path, caps_path, ids_path = (require_file(p, hint=hint) for p in precomp_paths(folder, split))
    try:
        features = np.load(ims_path, mmap_mode="r")
    except (ValueError, OSError) as e:
        raise DataError(f"{ims_path}: not a readable .npy array ({e}); {hint}") from e
    if features.dtype != np.float32 or features.ndim != 2:
        raise DataError(f"{ims_path}: expected float32 features [images, F], got {features.dtype} {features.shape}; {hint}")
    ids = []
    for n, line in enumerate(ids_path.read_text().splitlines(), 1):
        try:
            ids.append(int(line))
        except ValueError as e:
            raise DataError(f"{ids_path}: line {n} is {line!r}, not an integer image id; {hint}") from e
    repeated = [i for i, c in Counter(ids).items() if c > 1]
    if repeated:
        raise DataError(f"{ids_path}: image id(s) {repeated[:5]} appear more than once; {hint}")
    captions = caps_path.read_text(encoding="utf-8").splitlines()
    if not ids or len(captions) % len(ids):
        raise DataError(
            f"length mismatch in {folder}: {caps_path.name} has {len(captions)} captions for the {len(ids)} ids of "
            f"{ids_path.name}, not the same number per image; {hint}"
        )
    per_image = len(captions) // len(ids)
    if features.shape[0] == len(ids):
        rows = tuple(range(len(ids)))
    elif features.shape[0] == len(captions):
        rows = tuple(range(0, len(captions), per_image))
    else:
        raise DataError(
            f"length mismatch in {folder}: {ims_path.name} has {features.shape[0]} rows but {ids_path.name} has "
            f"{len(ids)} ids and {caps_path.name} {len(captions)} captions (one row per image or per caption); {hint}"
        )
    grouped = tuple(tuple(captions[i * per_image : (i + 1) * per_image]) for i in range(len(ids)))
    return Precomp(features=features, captions=grouped, ids=tuple(ids), rows=rows)


# --------------------------------------------------------------------------- tasks


@dataclass(frozen=True)
class Candidate:
    """An image assigned to a task and a split, with its captions, before its pixels are read.

    Attributes:
        image_id: the dataset's image id.
        task: index of its task.
        split: "train" or "test".
        captions: its captions (the same number for every image).
        file: its image file name, searched for in the benchmark's image folders.
    """

    image_id: int
    task: int
    split: str
    captions: tuple[str, ...]
    file: str


class Exclusions:
    """Counts of left-out images, by task (or NO_TASK) and reason."""

    def __init__(self) -> None:
        self.counts: dict[str, Counter[str]] = defaultdict(Counter)

    def add(self, task: str, reason: str) -> None:
        self.counts[task][reason] += 1

    def frozen(self) -> dict[str, dict[str, int]]:
        return {task: dict(sorted(c.items())) for task, c in sorted(self.counts.items())}


@dataclass(frozen=True)
class TaskData:
    """What a file benchmark's loader finds: per-task splits and what it left out.

    Attributes:
        task_names: one name per task, in training order.
        train: one TaskSplit per task.
        test: one TaskSplit per task.
        excluded: {task name or NO_TASK: {reason: number of images}}.
    """

    task_names: tuple[str, ...]
    train: tuple[TaskSplit, ...]
    test: tuple[TaskSplit, ...]
    excluded: Mapping[str, Mapping[str, int]]

    def benchmark(self) -> RetrievalBenchmark:
        return make_benchmark(train=self.train, test=self.test, task_names=self.task_names)

    def vocabulary_overlap(self) -> dict[tuple[str, str], float]:
        """Jaccard index of the word sets of each pair of tasks' training captions."""
        words = [{w for caps in s.captions for c in caps for w in split_words(c) if w.isalnum()} for s in self.train]
        return {
            (self.task_names[a], self.task_names[b]): len(words[a] & words[b]) / max(1, len(words[a] | words[b]))
            for a, b in combinations(range(len(words)), 2)
        }

    def summary(self) -> str:
        """Per-task counts, exclusions with reasons and vocabulary overlap, as text."""
        lines = ["| task | train images | train captions | test images | test captions | excluded |", "|---|---|---|---|---|---|"]
        for t, name in enumerate(self.task_names):
            tr, te = self.train[t], self.test[t]
            excluded = ", ".join(f"{reason}: {n}" for reason, n in self.excluded.get(name, {}).items()) or "-"
            lines.append(
                f"| {name} | {len(tr.captions)} | {sum(map(len, tr.captions))} | {len(te.captions)} "
                f"| {sum(map(len, te.captions))} | {excluded} |"
            )
        unassigned = self.excluded.get(NO_TASK, {})
        lines += ["", "images in no task: " + (", ".join(f"{r}: {n}" for r, n in unassigned.items()) or "none")]
        lines += ["", "vocabulary overlap of training captions (Jaccard of word sets):"]
        lines += [f"  {a} / {b}: {j:.3f}" for (a, b), j in self.vocabulary_overlap().items()] or ["  (one task)"]
        return "\n".join(lines)


def assemble(
    *,
    candidates: Sequence[Candidate],
    task_names: Sequence[str],
    excluded: Exclusions,
    mode: Literal["images", "features"],
    image_folders: Sequence[Path],
    image_size: int,
    on_bad_image: Literal["fail", "skip"],
    features_dir: Path,
) -> TaskData:
    """Attaches each candidate's encoder input (image file or feature row) and builds the splits.

    Raises:
        DataError: a missing image or feature file, an image without features or an
            image that does not decode (with on_bad_image="fail"), captions that differ
            from the precomputed ones, or a task left without images.
    """
    items: dict[tuple[int, str], list[tuple[Candidate, Dataset, int]]] = defaultdict(list)
    if mode == "images":
        paths = [find_image(c.file, image_folders) for c in candidates]
        bad = bad_images(paths, image_size=image_size, on_bad_image=on_bad_image)
        for i, c in enumerate(candidates):
            if i in bad:
                excluded.add(task_names[c.task], "image does not decode")
        kept = [i for i in range(len(candidates)) if i not in bad]
        source = FileImages(paths=[paths[i] for i in kept], image_size=image_size)
        for row, i in enumerate(kept):
            items[candidates[i].task, candidates[i].split].append((candidates[i], source, row))
    else:
        precomp = {split: read_precomp(features_dir, split) for split in SPLITS}
        sources = {split: FeatureImages(features=p.features, rows=p.rows) for split, p in precomp.items()}
        index = {split: p.row_of() for split, p in precomp.items()}
        for c in candidates:
            i = index[c.split].get(c.image_id)
            ids_file = precomp_paths(features_dir, c.split)[2]
            if i is None:
                if on_bad_image == "fail":
                    raise DataError(
                        f"{ids_file} has no row for image {c.image_id}: the features were extracted for other data; "
                        f"re-run `ccrbench features` with this config, or set benchmark.on_bad_image=skip to leave "
                        f"such images out"
                    )
                excluded.add(task_names[c.task], "no precomputed features")
                continue
            if precomp[c.split].captions[i] != c.captions:
                raise DataError(
                    f"{precomp_paths(features_dir, c.split)[1]}: the captions of image {c.image_id} differ from "
                    f"the annotations' ({precomp[c.split].captions[i]!r} vs {c.captions!r}); the features were "
                    f"extracted from other annotations: re-run `ccrbench features` with this config"
                )
            items[c.task, c.split].append((c, sources[c.split], i))
    splits: dict[str, list[TaskSplit]] = {split: [] for split in SPLITS}
    for t, name in enumerate(task_names):
        for split in SPLITS:
            chosen = items[t, split]
            if not chosen:
                left_out = dict(excluded.counts.get(name, {}))
                raise DataError(
                    f"task {name!r} has no {split} images (left out: {left_out or 'none'}); check the task "
                    f"definition and the data under the benchmark's root"
                )
            source = chosen[0][1]
            splits[split].append(
                TaskSplit(
                    images=Subset(source, [row for _, _, row in chosen]),
                    captions=tuple(c.captions for c, _, _ in chosen),
                    image_ids=tuple(c.image_id for c, _, _ in chosen),
                )
            )
    return TaskData(
        task_names=tuple(task_names), train=tuple(splits["train"]), test=tuple(splits["test"]), excluded=excluded.frozen()
    )


# --------------------------------------------------------------------------- registry

FILE_BENCHMARKS = Registry("file benchmark", plural="file benchmarks")


def register_file_benchmark(name: str) -> Callable[[F], F]:
    """Registers a loader `(**options) -> TaskData` as file benchmark `name`, and the
    benchmark it gives (`TaskData.benchmark()`) as benchmark `name`, with the same options."""

    def decorator(load: F) -> F:
        FILE_BENCHMARKS.register(name)(load)

        @functools.wraps(load)
        def benchmark(**options: Any) -> RetrievalBenchmark:
            return load(**options).benchmark()

        register_benchmark(name)(benchmark)
        return load

    return decorator
