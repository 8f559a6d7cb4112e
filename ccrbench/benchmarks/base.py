"""What every benchmark returns: Avalanche streams of image-caption data, one experience per task."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import torch
from avalanche.benchmarks.scenarios.dataset_scenario import benchmark_from_datasets
from avalanche.benchmarks.scenarios.generic_scenario import CLScenario
from avalanche.benchmarks.scenarios.task_aware import with_task_labels
from avalanche.benchmarks.utils import AvalancheDataset
from avalanche.benchmarks.utils.data_attribute import TaskLabels
from avalanche.benchmarks.utils.flat_data import ConstantSequence
from torch import Tensor
from torch.utils.data import Dataset


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
        images: indexable image source; item i is the encoder input of image i.
        captions: the captions of each image (at least one each).
        image_ids: a unique integer id per image.
    """

    images: Dataset
    captions: tuple[tuple[str, ...], ...]
    image_ids: tuple[int, ...]

    def __post_init__(self) -> None:
        if not (len(self.images) == len(self.captions) == len(self.image_ids)):
            raise ValueError(
                f"images ({len(self.images)}), captions ({len(self.captions)}) and "
                f"image_ids ({len(self.image_ids)}) must have one entry per image"
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
    return AvalancheDataset([dataset], data_attributes=[TaskLabels(ConstantSequence(task, len(dataset)))])


@dataclass(frozen=True)
class RetrievalBenchmark:
    """An Avalanche benchmark plus what retrieval needs beside it.

    Attributes:
        scenario: `benchmark_from_datasets(train=..., test=...)` with task labels; train
            experiences yield (image, caption, image_id, task) per caption, test experiences
            (image, captions, image_id, task) per image.
        task_names: one readable name per task.
        train_captions: every training caption (to build vocabularies).
    """

    scenario: CLScenario
    task_names: tuple[str, ...]
    train_captions: tuple[str, ...]

    @property
    def train_stream(self):  # noqa: ANN201 - Avalanche stream type
        return self.scenario.train_stream

    @property
    def test_stream(self):  # noqa: ANN201 - Avalanche stream type
        return self.scenario.test_stream


def make_benchmark(
    *, train: Sequence[TaskSplit], test: Sequence[TaskSplit], task_names: Sequence[str]
) -> RetrievalBenchmark:
    """Wraps per-task splits into the suite's Avalanche benchmark (task t = experience t)."""
    if not (len(train) == len(test) == len(task_names)):
        raise ValueError("train, test and task_names need one entry per task")
    train_ds = [_with_task(CaptionPairs(s), t) for t, s in enumerate(train)]
    test_ds = [_with_task(ImagesWithCaptions(s), t) for t, s in enumerate(test)]
    scenario = with_task_labels(benchmark_from_datasets(train=train_ds, test=test_ds))
    corpus = tuple(c for s in train for caps in s.captions for c in caps)
    return RetrievalBenchmark(scenario=scenario, task_names=tuple(task_names), train_captions=corpus)
