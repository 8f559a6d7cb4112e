"""Mode "images": image files decoded with PIL, and the cached scan for images that do not decode.

Every image is decoded once when the benchmark is built; one that does not decode is
an error naming it (`on_bad_image: fail`) or is dropped and counted (`skip`). The
outcome of that scan is cached per file size and modification time.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Sequence
from pathlib import Path
from typing import Literal

from PIL import Image
from torch import Tensor
from torch.utils.data import Dataset
from torchvision import transforms
from tqdm.auto import tqdm

from ccrbench.benchmarks.files.reading import DataError
from ccrbench.io import cache_dir, write_atomic
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
