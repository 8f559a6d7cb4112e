"""Task assembly: candidates (an image with its task, split and captions) become per-task splits.

A loader gives `Candidate`s and counts what it leaves out (`Exclusions`); `assemble`
attaches each candidate's encoder input (image file or feature row) and builds one
`TaskSplit` per task and split; `TaskData.summary` is what `ccrbench data check` prints.
"""

from __future__ import annotations

import hashlib
from collections import Counter, defaultdict
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from itertools import combinations
from pathlib import Path
from typing import Literal

from torch.utils.data import Dataset, Subset

from ccrbench.benchmarks.base import RetrievalBenchmark, TaskSplit, make_benchmark
from ccrbench.benchmarks.files.images import Augmented, JpegFiles
from ccrbench.benchmarks.files.precomp import precomp_paths, read_precomp
from ccrbench.benchmarks.files.prepared import image_sources
from ccrbench.benchmarks.files.reading import DataError, find_image
from ccrbench.markdown import markdown_table
from ccrbench.tokens import split_words

SPLITS = ("train", "val", "test")
NO_TASK = "(no task)"


def hash_unit(image_id: int, *, seed: int) -> float:
    """A number in [0, 1) from a hash of (seed, image id): splits that are deterministic and
    independent of file order and of which other images are kept."""
    digest = hashlib.sha1(f"{seed}:{image_id}".encode()).digest()
    return int.from_bytes(digest[:8], "big") / 2**64


@dataclass(frozen=True)
class Candidate:
    """An image assigned to a task and a split, with its captions, before its pixels are read.

    Attributes:
        image_id: the dataset's image id.
        task: index of its task.
        split: "train", "val" or "test".
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
        val: one TaskSplit per task (validation images, assigned to tasks as the test images
            are), or None when some task has no validation image.
        test: one TaskSplit per task.
        excluded: {task name or NO_TASK: {reason: number of images}}.
        without_val: the tasks without validation images (when `val` is None).
    """

    task_names: tuple[str, ...]
    train: tuple[TaskSplit, ...]
    val: tuple[TaskSplit, ...] | None
    test: tuple[TaskSplit, ...]
    excluded: Mapping[str, Mapping[str, int]]
    without_val: tuple[str, ...] = ()

    def benchmark(self) -> RetrievalBenchmark:
        return make_benchmark(train=self.train, val=self.val, test=self.test, task_names=self.task_names)

    def vocabulary_overlap(self) -> dict[tuple[str, str], float]:
        """Jaccard index of the word sets of each pair of tasks' training captions."""
        texts = (" ".join(c for caps in s.captions for c in caps) for s in self.train)  # one regex pass per task
        words = [{w for w in set(split_words(text)) if w.isalnum()} for text in texts]
        return {
            (self.task_names[a], self.task_names[b]): len(words[a] & words[b]) / max(1, len(words[a] | words[b]))
            for a, b in combinations(range(len(words)), 2)
        }

    def summary(self) -> str:
        """Per-task counts of each split, exclusions with reasons and vocabulary overlap, as text."""
        rows = []
        for t, name in enumerate(self.task_names):
            counts = [
                cell
                for s in (getattr(self, split) for split in SPLITS)
                for cell in ((str(len(s[t].captions)), str(sum(map(len, s[t].captions)))) if s is not None else ("-", "-"))
            ]
            excluded = ", ".join(f"{reason}: {n}" for reason, n in self.excluded.get(name, {}).items()) or "-"
            rows.append([name, *counts, excluded])
        head = ["task", *(f"{split} {what}" for split in SPLITS for what in ("images", "captions")), "excluded"]
        lines = markdown_table(head, rows)
        unassigned = self.excluded.get(NO_TASK, {})
        lines += ["", "images in no task: " + (", ".join(f"{r}: {n}" for r, n in unassigned.items()) or "none")]
        if self.val is None:
            lines += [f"no validation split: no validation image in task(s) {', '.join(self.without_val)}"]
        lines += ["", "vocabulary overlap of training captions (Jaccard of word sets):"]
        lines += [f"  {a} / {b}: {j:.3f}" for (a, b), j in self.vocabulary_overlap().items()] or ["  (one task)"]
        return "\n".join(lines)


def refuse_twice(candidates: Sequence[Candidate]) -> None:
    """Raises a DataError when two candidates share an image id or an image file: whatever the
    loader, an image is in one task and one split only (never a test image that is also trained on)."""
    for what, key in (("image id", lambda c: c.image_id), ("image file", lambda c: c.file)):
        first: dict[object, Candidate] = {}
        for c in candidates:
            other = first.setdefault(key(c), c)
            if other is not c:
                raise DataError(
                    f"{what} {key(c)!r} is listed twice (task {other.task} {other.split} and task {c.task} {c.split}): an image "
                    "belongs to one task and one split; remove the repeated entry from the dataset's files"
                )


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
    prepared_dir: Path | None = None,
    decode: Literal["cpu", "cuda"] = "cpu",
    augment: bool = False,
) -> TaskData:
    """Attaches each candidate's encoder input (image file or feature row) and builds the splits.

    Images (mode "images") come from each split's prepared store under `prepared_dir` when it is
    valid, else from the files (`decode`: "cpu" with PIL in the loader, "cuda" as bytes decoded
    in batches on the GPU); `augment` wraps the training images in `Augmented`.

    Raises:
        DataError: a missing image or feature file, an image without features or an
            image that does not decode (with on_bad_image="fail"), captions that differ
            from the precomputed ones, an image id or file given twice (it could be in
            two splits), or a task left without train or test images (one without
            validation images leaves the benchmark without a validation split).
    """
    refuse_twice(candidates)
    items: dict[tuple[int, str], list[tuple[Candidate, Dataset, int]]] = defaultdict(list)
    if mode == "images":
        sources = image_sources(
            paths=[find_image(c.file, image_folders) for c in candidates],
            ids=[c.image_id for c in candidates],
            splits=[c.split for c in candidates],
            image_size=image_size,
            on_bad_image=on_bad_image,
            prepared_dir=prepared_dir,
            decode=decode,
        )
        for c, source in zip(candidates, sources):
            if source is None:
                excluded.add(task_names[c.task], "image does not decode")
            else:
                items[c.task, c.split].append((c, *source))
        if augment and any(isinstance(source[0], JpegFiles) for source in sources if source is not None):
            raise DataError(
                "benchmark.augment needs decoded images, and decode: cuda gives JPEG bytes: prepare the images "
                "(`ccrbench data prepare`), or set benchmark.decode=cpu"
            )
    else:
        precomp = {split: read_precomp(features_dir, split) for split in SPLITS if any(c.split == split for c in candidates)}
        sources = {split: p.images() for split, p in precomp.items()}
        index = {split: p.row_of() for split, p in precomp.items()}
        for c in candidates:
            i = index[c.split].get(c.image_id)
            if i is None:
                if on_bad_image == "fail":
                    raise DataError(
                        f"{precomp_paths(features_dir, c.split)[2]} has no row for image {c.image_id}: the features were extracted for other data; "
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
    for split in ("train", "test"):
        for t, name in enumerate(task_names):
            if not items[t, split]:
                left_out = dict(excluded.counts.get(name, {}))
                raise DataError(
                    f"task {name!r} has no {split} images (left out: {left_out or 'none'}); check the task "
                    f"definition, the split's size options and the data under the benchmark's root"
                )
    without_val = tuple(name for t, name in enumerate(task_names) if not items[t, "val"])

    def images(t: int, split: str) -> Dataset:
        """Task t's images of `split`: rows of one source, since every image of a split comes from the same one."""
        subset = Subset(items[t, split][0][1], [row for _, _, row in items[t, split]])
        return Augmented(subset, image_size=image_size) if augment and split == "train" else subset

    splits = {
        split: tuple(
            TaskSplit(
                images=images(t, split),
                captions=tuple(c.captions for c, _, _ in items[t, split]),
                image_ids=tuple(c.image_id for c, _, _ in items[t, split]),
                files=tuple(c.file for c, _, _ in items[t, split]),
            )
            for t in range(len(task_names))
        )
        for split in SPLITS
        if split != "val" or not without_val
    }
    return TaskData(
        task_names=tuple(task_names),
        train=splits["train"],
        val=splits.get("val"),
        test=splits["test"],
        excluded=excluded.frozen(),
        without_val=without_val,
    )
