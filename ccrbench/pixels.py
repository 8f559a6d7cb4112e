"""Image batches that become float pixels where they go: uint8 pixels and JPEG bytes.

`collate_images` (the DataLoader's image collation) stacks float images as they are, and
turns two other kinds of item into a batch that the training template moves with
`.to(device)` like any tensor, becoming float [N, 3, S, S] in [0, 1] there:

- uint8 [3, S, S] items (the prepared store's rows) -> `PixelBatch`: converted to float
  after the copy, one operation per batch instead of one per item, and on a GPU a quarter
  of the bytes to copy;
- `EncodedImage` items (a file's raw bytes, read by the workers; `benchmark.decode: cuda`)
  -> `JpegBatch`: the whole batch decoded by torchvision's `decode_jpeg` on the device
  (nvjpeg on CUDA), resized there (shorter side to S, antialiased bilinear, centre S x S
  crop). Its pixels differ a little from the PIL path's (no JPEG draft scaling, another
  resampling kernel): tests/benchmarks/test_prepared.py bounds the difference.
"""

from __future__ import annotations

import warnings
from collections.abc import Sequence
from typing import NamedTuple

import torch
from torch import Tensor


class EncodedImage(NamedTuple):
    """One image file's bytes and the side S of the square it becomes.

    Attributes:
        data: uint8 [L], the file's bytes.
        size: S.
    """

    data: Tensor
    size: int


class JpegBatch(NamedTuple):
    """A batch of undecoded JPEGs; `.to(device)` decodes them there.

    Attributes:
        data: one uint8 [L_i] tensor of file bytes per image.
        size: S, the side of the decoded squares.
    """

    data: tuple[Tensor, ...]
    size: int

    def __len__(self) -> int:  # type: ignore[override]  # images, as a tensor batch's len
        return len(self.data)

    def pin_memory(self) -> JpegBatch:
        """Unchanged: nvjpeg reads the bytes from ordinary host memory (the DataLoader calls this)."""
        return self

    def to(self, device: torch.device | str, non_blocking: bool = False) -> Tensor:
        """float [N, 3, S, S] in [0, 1] on `device`, decoded there (CUDA: nvjpeg; a failing GPU decode
        falls back to the CPU with a warning)."""
        device = torch.device(device)
        if device.type == "cuda":
            try:
                return decode_batch(self.data, self.size, device)
            except RuntimeError as e:
                warnings.warn(f"decoding JPEGs on {device} failed ({e}); decoding this batch on the CPU", stacklevel=2)
        return decode_batch(self.data, self.size, torch.device("cpu")).to(device, non_blocking=non_blocking)


def decode_batch(data: Sequence[Tensor], size: int, device: torch.device) -> Tensor:
    """JPEG bytes -> float [N, 3, S, S] in [0, 1], decoded and resized on `device`."""
    from torchvision.io import ImageReadMode, decode_jpeg
    from torchvision.transforms.v2.functional import center_crop, resize

    decoded = decode_jpeg(list(data), mode=ImageReadMode.RGB, device=device)  # N x uint8 [3, H_i, W_i]
    squares = [center_crop(resize(x, [size], antialias=True), [size, size]) for x in decoded]  # N x [3, S, S]
    return torch.stack(squares).float().div_(255.0)


class PixelBatch(NamedTuple):
    """A batch of uint8 images; `.to(device)` copies them there and converts them to float in [0, 1].

    Attributes:
        pixels: uint8 [N, 3, S, S].
    """

    pixels: Tensor

    def __len__(self) -> int:  # type: ignore[override]  # images, as a tensor batch's len
        return len(self.pixels)

    def pin_memory(self) -> PixelBatch:
        return PixelBatch(self.pixels.pin_memory())

    def to(self, device: torch.device | str, non_blocking: bool = False) -> Tensor:
        """float [N, 3, S, S] in [0, 1] on `device` (x / 255, as torchvision's to_tensor)."""
        return self.pixels.to(device, non_blocking=non_blocking).float().div_(255.0)


def collate_images(images: Sequence[Tensor | EncodedImage]) -> Tensor | PixelBatch | JpegBatch:
    """A DataLoader batch of images: float tensors stacked [N, ...], uint8 ones as a `PixelBatch`,
    encoded images as a `JpegBatch`."""
    if images and isinstance(images[0], EncodedImage):
        return JpegBatch(tuple(x.data for x in images), images[0].size)
    stacked = torch.stack(list(images))
    return PixelBatch(stacked) if stacked.dtype == torch.uint8 else stacked


def decoded(image: Tensor | EncodedImage) -> Tensor:
    """One item as the model gets it, on the CPU: float pixels (or the item itself when it is a float tensor)."""
    return collate_images([image]).to("cpu")[0]
