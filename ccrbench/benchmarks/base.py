"""What every benchmark returns: Avalanche streams of image-caption data, one experience per task."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import TYPE_CHECKING, Literal

import torch
from torch import Tensor
from torch.utils.data import Dataset

from ccrbench.registry import ConfigError

if TYPE_CHECKING:  # Avalanche takes seconds to import: only `make_benchmark` imports it (`data check` never does)
    from avalanche.benchmarks.scenarios.generic_scenario import CLScenario
    from avalanche.benchmarks.utils import AvalancheDataset


class TensorImages(Dataset):
    """Images held in memory as uint8 [N, 3, H, W]; items are float [3, H, W] in [0, 1]."""

    def __init__(self, images: Tensor) -> None:
        if images.dtype != torch.uint8 or images.ndim != 4:
            raise ValueError(f"expected uint8 images [N, 3, H, W], got {images.dtype} {tuple(images.shape)}")
        self.images = images

    def __len__(self) -> int:
        return self.images.shape[0]

    def __getitem__(self, i: int) -> Tensor:
        return self.images[i].float().div_(255.0)


@dataclass(frozen=True)
class TaskSplit:
    """One task's images and captions for one split.

    Attributes:
        images: indexable image source; item i is the encoder input of image i (or uint8 pixels,
            which batches turn into float in [0, 1] on the device: `ccrbench.pixels.collate_images`).
        captions: the captions of each image (at least one each).
        image_ids: a unique integer id per image.
        files: the file of each image, relative to the dataset's root (() when the images are
            not read from files, e.g. generated ones).
    """

    images: Dataset
    captions: tuple[tuple[str, ...], ...]
    image_ids: tuple[int, ...]
    files: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        if not (len(self.images) == len(self.captions) == len(self.image_ids)) or len(self.files) not in (0, len(self.image_ids)):
            raise ValueError(
                f"images ({len(self.images)}), captions ({len(self.captions)}), image_ids ({len(self.image_ids)}) "
                f"and files ({len(self.files)}, or none) must have one entry per image"
            )
        empty = [i for i, caps in zip(self.image_ids, self.captions) if not caps or not all(c.strip() for c in caps)]
        if empty:
            raise ValueError(f"images {empty[:5]} have no caption or an empty caption")


class CaptionPairs(Dataset):
    """Training view: one item per (image, caption) pair -> (image, caption, image_id)."""

    def __init__(self, split: TaskSplit) -> None:
        self.split = split
        self.pairs = [(i, c) for i, caps in enumerate(split.captions) for c in caps]

    def __len__(self) -> int:
        return len(self.pairs)

    def __getitem__(self, k: int) -> tuple[Tensor, str, int]:
        i, caption = self.pairs[k]
        return self.split.images[i], caption, self.split.image_ids[i]


class ImagesWithCaptions(Dataset):
    """Indexing view: one item per image -> (image, its captions, image_id)."""

    def __init__(self, split: TaskSplit) -> None:
        self.split = split

    def __len__(self) -> int:
        return len(self.split.captions)

    def __getitem__(self, i: int) -> tuple[Tensor, tuple[str, ...], int]:
        return self.split.images[i], self.split.captions[i], self.split.image_ids[i]


def _with_task(dataset: Dataset, task: int) -> AvalancheDataset:
    """Appends the task label to every item (Avalanche's `targets_task_labels`)."""
    from avalanche.benchmarks.utils import AvalancheDataset
    from avalanche.benchmarks.utils.data_attribute import TaskLabels
    from avalanche.benchmarks.utils.flat_data import ConstantSequence

    return AvalancheDataset([dataset], data_attributes=[TaskLabels(ConstantSequence(task, len(dataset)))])


@dataclass(frozen=True)
class RetrievalBenchmark:
    """An Avalanche benchmark plus what retrieval needs beside it.

    Attributes:
        scenario: `benchmark_from_datasets(train=..., test=...)` with task labels; train
            experiences yield (image, caption, image_id, task) per caption, test experiences
            (image, captions, image_id, task) per image.
        task_names: one readable name per task.
        task_captions: per task, its training captions (to build vocabularies from every task,
            or from the tasks seen so far).
        checksums: {split: SHA-256 of its items (per task: image ids and captions)}, to tell
            whether two runs evaluated the same data.
        image_files: {split: the files of its images, task after task} (empty tuples for
            images that are not read from files).
    """

    scenario: CLScenario
    task_names: tuple[str, ...]
    task_captions: tuple[tuple[str, ...], ...]
    checksums: Mapping[str, str] = field(default_factory=dict)
    image_files: Mapping[str, tuple[str, ...]] = field(default_factory=dict)

    @property
    def train_captions(self) -> tuple[str, ...]:
        """Every training caption, task after task."""
        return tuple(c for task in self.task_captions for c in task)

    @property
    def train_stream(self):  # noqa: ANN201 - Avalanche stream type
        return self.scenario.train_stream

    @property
    def test_stream(self):  # noqa: ANN201 - Avalanche stream type
        return self.scenario.test_stream

    @property
    def val_stream(self):  # noqa: ANN201 - Avalanche stream type
        """Validation experiences (same tasks and item layout as the test stream, disjoint images).

        Raises:
            ConfigError: the benchmark was built without a validation split.
        """
        if not hasattr(self.scenario, "val_stream"):
            raise ConfigError("eval.split=val: this benchmark has no validation split; use eval.split=test")
        return self.scenario.val_stream

    def eval_stream(self, split: Literal["test", "val"]):  # noqa: ANN201 - Avalanche stream type
        """The stream evaluated after every stage: `test_stream` or `val_stream`."""
        return self.val_stream if split == "val" else self.test_stream


def split_checksum(splits: Sequence[TaskSplit]) -> str:
    """SHA-256 of one split's items: per task, each image id with its captions, in order."""
    items = [[[i, list(caps)] for i, caps in zip(s.image_ids, s.captions)] for s in splits]
    return hashlib.sha256(json.dumps(items).encode()).hexdigest()


def make_benchmark(
    *,
    train: Sequence[TaskSplit],
    test: Sequence[TaskSplit],
    task_names: Sequence[str],
    val: Sequence[TaskSplit] | None = None,
) -> RetrievalBenchmark:
    """Wraps per-task splits into the suite's Avalanche benchmark (task t = experience t).

    `val`, when given, becomes a validation stream laid out like the test stream.
    """
    from avalanche.benchmarks.scenarios.dataset_scenario import benchmark_from_datasets
    from avalanche.benchmarks.scenarios.task_aware import with_task_labels

    splits = {"train": train, "test": test, **({"val": val} if val is not None else {})}
    if any(len(s) != len(task_names) for s in splits.values()):
        raise ValueError(f"{', '.join(splits)} and task_names need one entry per task")
    streams = {
        name: [_with_task(CaptionPairs(s) if name == "train" else ImagesWithCaptions(s), t) for t, s in enumerate(split)]
        for name, split in splits.items()
    }
    scenario = with_task_labels(benchmark_from_datasets(**streams))
    corpus = tuple(tuple(c for caps in s.captions for c in caps) for s in train)
    checksums = MappingProxyType({name: split_checksum(split) for name, split in splits.items()})
    files = MappingProxyType({name: tuple(f for s in split for f in s.files) for name, split in splits.items()})
    return RetrievalBenchmark(scenario=scenario, task_names=tuple(task_names), task_captions=corpus, checksums=checksums, image_files=files)
