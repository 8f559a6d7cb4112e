"""An example benchmark outside the package: `benchmark: example_plugins.my_benchmark:colour_squares`."""

from __future__ import annotations

from typing import Annotated

import torch
from annotated_types import Ge

from ccrbench.benchmarks import RetrievalBenchmark, TaskSplit, make_benchmark
from ccrbench.benchmarks.base import TensorImages

TASKS = {"warm": ("red", "pink", "yellow"), "cool": ("green", "blue", "purple")}
RGB = {"red": (220, 30, 30), "pink": (240, 120, 170), "yellow": (230, 220, 40),
       "green": (40, 180, 60), "blue": (40, 80, 220), "purple": (140, 50, 190)}


def squares(colours: tuple[str, ...], count: int, *, size: int, first_id: int, generator: torch.Generator) -> TaskSplit:
    """`count` white images [3, size, size] with one square of one of `colours`, two captions each."""
    images = torch.full((count, 3, size, size), 255, dtype=torch.uint8)  # [N, 3, H, W]
    captions = []
    for i in range(count):
        colour = colours[int(torch.randint(len(colours), (), generator=generator))]
        side = int(torch.randint(size // 4, size // 2 + 1, (), generator=generator))
        x, y = (int(v) for v in torch.randint(0, size - side + 1, (2,), generator=generator))
        images[i, :, y : y + side, x : x + side] = torch.tensor(RGB[colour], dtype=torch.uint8)[:, None, None]
        place = "left" if 2 * x + side < size else "right"
        captions.append((f"a {colour} square", f"a {'large' if 3 * side > size else 'small'} {colour} square on the {place}"))
    return TaskSplit(images=TensorImages(images), captions=tuple(captions), image_ids=tuple(range(first_id, first_id + count)))


def colour_squares(
    *,
    train_images: Annotated[int, Ge(1)] = 40,
    test_images: Annotated[int, Ge(1)] = 10,
    image_size: Annotated[int, Ge(8)] = 32,
    seed: Annotated[int, Ge(0)] = 0,
) -> RetrievalBenchmark:
    """Coloured squares on white, one task per colour family: warm colours, then cool ones.

    Args:
        train_images: training images per task (two captions each).
        test_images: test (indexed) images per task.
        image_size: side of the square images, in pixels.
        seed: generator seed; the same seed gives the same data.
    """
    generator = torch.Generator().manual_seed(seed)
    splits: dict[str, list[TaskSplit]] = {"train": [], "test": []}
    first_id = 0  # image ids are unique across tasks and splits
    for colours in TASKS.values():
        for split, count in (("train", train_images), ("test", test_images)):
            splits[split].append(squares(colours, count, size=image_size, first_id=first_id, generator=generator))
            first_id += count
    return make_benchmark(train=splits["train"], test=splits["test"], task_names=tuple(TASKS))
