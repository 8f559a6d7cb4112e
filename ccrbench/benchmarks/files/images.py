"""Mode "images": image files decoded with PIL, their raw bytes for decoding on the GPU, training
augmentation, and the cached scan for images that do not decode.

Every image is decoded once when the benchmark is built (unless a prepared store,
`ccrbench.benchmarks.files.prepared`, already knows); one that does not decode is an
error naming it (`on_bad_image: fail`) or is dropped and counted (`skip`). The outcome
of that scan is cached per file size and modification time.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Sequence
from pathlib import Path
from typing import Literal

from PIL import Image
import torch
from torch import Tensor
from torch.utils.data import Dataset
from tqdm.auto import tqdm

from ccrbench.benchmarks.files.reading import DataError
from ccrbench.io import cache_dir, write_atomic
from ccrbench.pixels import EncodedImage
from ccrbench.registry import ConfigError

BAD_IMAGE_ERRORS = (OSError, ValueError, SyntaxError, Image.DecompressionBombError)


def decode_image(path: Path, image_size: int) -> Image.Image:
    """Opens and fully decodes an RGB image (JPEGs at the smallest scale still >= image_size)."""
    with Image.open(path) as image:
        image.draft("RGB", (image_size, image_size))
        return image.convert("RGB")


class FileImages(Dataset):
    """Images read from files: item i is float [3, S, S] in [0, 1].

    The shorter side is resized to S, then the centre S x S square is cropped
    (normalisation is each encoder's job).

    Args:
        paths: one image file per item.
        image_size: S, the side of the square output.
    """

    def __init__(self, *, paths: Sequence[Path], image_size: int) -> None:
        if image_size < 8:
            raise ConfigError(f"image_size must be at least 8 pixels, got {image_size}")
        self.paths = tuple(paths)
        self.image_size = image_size
        from torchvision import transforms  # imported here: torchvision takes a second, and features need none of it

        self.resize = transforms.Compose([transforms.Resize(image_size), transforms.CenterCrop(image_size)])
        self.to_tensor = transforms.functional.to_tensor

    def __len__(self) -> int:
        return len(self.paths)

    def square(self, i: int) -> Image.Image:
        """Image i as the S x S RGB square (the resize rule of this class and of the prepared store).

        Raises:
            DataError: naming the file when it does not decode.
        """
        try:
            return self.resize(decode_image(self.paths[i], self.image_size))
        except BAD_IMAGE_ERRORS as e:
            raise DataError(f"image {self.paths[i]} does not decode ({e}); replace the file or delete it") from e

    def __getitem__(self, i: int) -> Tensor:
        return self.to_tensor(self.square(i))


class JpegFiles(Dataset):
    """Images as their files' raw bytes, decoded later in batches (`ccrbench.pixels`, `benchmark.decode: cuda`).

    Args:
        paths: one JPEG file per item.
        image_size: S, the side of the square they are decoded into.
    """

    def __init__(self, *, paths: Sequence[Path], image_size: int) -> None:
        self.paths = tuple(paths)
        self.image_size = image_size

    def __len__(self) -> int:
        return len(self.paths)

    def __getitem__(self, i: int) -> EncodedImage:
        return EncodedImage(torch.frombuffer(bytearray(self.paths[i].read_bytes()), dtype=torch.uint8), self.image_size)


class Augmented(Dataset):
    """Training augmentation on the tensors read (float, or the prepared store's uint8): a random
    resized crop (scale 0.5-1 of the area, aspect 3/4-4/3, back to S x S) and a horizontal flip
    with probability 1/2.

    Random numbers come from torch's generator (seeded per DataLoader worker by the DataLoader).

    Args:
        images: [3, S, S] items.
        image_size: S.
    """

    def __init__(self, images: Dataset, *, image_size: int) -> None:
        from torchvision.transforms import v2  # imported here, as in FileImages

        self.images = images
        self.transform = v2.Compose([v2.RandomResizedCrop(image_size, scale=(0.5, 1.0), antialias=True), v2.RandomHorizontalFlip()])

    def __len__(self) -> int:
        return len(self.images)

    def __getitem__(self, i: int) -> Tensor:
        return self.transform(self.images[i])


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
        raise bad_image_error(paths[min(bad)], bad[min(bad)], len(bad))
    return bad


def bad_image_error(path: Path, reason: str, count: int, *, kept: str = "") -> DataError:
    """The error of `on_bad_image: fail` for the first of `count` images that do not decode."""
    return DataError(
        f"image {path} does not decode ({reason}); replace the file, or set benchmark.on_bad_image=skip "
        f"to leave out the {count} image(s) that do not decode{kept}"
    )
