"""Mode "features": rows of a precomputed feature array in the VSE++ precomp layout.

`{dir}/{split}_ims.npy` (float32 or float16, one row per image, or one per caption
when repeated), `{split}_caps.txt` (one caption per line, the same number per image,
in row order) plus `{split}_ids.txt` (one image id per row), which lets the loader
pick each task's rows. `ccrbench features` writes it. The array is memory-mapped:
only the rows a batch needs are read, never the whole array.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from torch import Tensor
from torch.utils.data import Dataset

from ccrbench.benchmarks.files.reading import DataError, refuse_repeated, require_file

FEATURE_DTYPES = (np.float32, np.float16)


class FeatureImages(Dataset):
    """Precomputed image features: item i is float32 [F], row `rows[i]` of `features`.

    Args:
        features: float32 or float16 array [N, F] (may be memory-mapped).
        rows: the row of each item.
        source: the file the features come from, named when a row is not finite.

    Raises (on reading an item):
        DataError: its row holds NaN or infinite values (naming `source` and the row).
    """

    def __init__(self, *, features: np.ndarray, rows: Sequence[int], source: str | Path = "the features array") -> None:
        if features.dtype not in FEATURE_DTYPES or features.ndim != 2:
            raise ValueError(f"expected float32 or float16 features [N, F], got {features.dtype} {features.shape}")
        self.features = features
        self.rows = tuple(rows)
        self.source = source

    def __len__(self) -> int:
        return len(self.rows)

    def __getitem__(self, i: int) -> Tensor:
        row = np.array(self.features[self.rows[i]], dtype=np.float32)  # [F]
        if not np.isfinite(row).all():  # checked as each row is read: the array stays memory-mapped
            raise DataError(
                f"{self.source}: row {self.rows[i]} holds NaN or infinite values; recompute the features "
                "(`ccrbench features`) or leave that image out"
            )
        return torch.from_numpy(row)


@dataclass(frozen=True)
class Precomp:
    """One split in the VSE++ precomp layout, with its image ids.

    Attributes:
        features: float32 or float16 [R, F], memory-mapped.
        captions: the captions of each image, in row order.
        ids: the image id of each image.
        rows: each image's row in `features` (i, or i * captions per image when
            the rows are repeated per caption).
    """

    features: np.ndarray
    captions: tuple[tuple[str, ...], ...]
    ids: tuple[int, ...]
    rows: tuple[int, ...]
    source: Path

    def images(self) -> FeatureImages:
        """The split's rows as a dataset (item i: image `ids[i]`)."""
        return FeatureImages(features=self.features, rows=self.rows, source=self.source)

    def row_of(self) -> dict[int, int]:
        """image id -> index into `ids`/`captions`/`rows`."""
        return {image_id: i for i, image_id in enumerate(self.ids)}


def precomp_paths(folder: Path, split: str) -> tuple[Path, Path, Path]:
    """The features, captions and ids files of one split."""
    return folder / f"{split}_ims.npy", folder / f"{split}_caps.txt", folder / f"{split}_ids.txt"


def read_precomp(folder: Path, split: str) -> Precomp:
    """Reads `{split}_ims.npy` (memory-mapped), `{split}_caps.txt` and `{split}_ids.txt` from `folder`.

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
    if features.dtype not in FEATURE_DTYPES or features.ndim != 2:
        raise DataError(
            f"{ims_path}: expected float32 or float16 features [images, F], got {features.dtype} {features.shape}; {hint}"
        )
    ids = []
    for n, line in enumerate(ids_path.read_text().splitlines(), 1):
        try:
            ids.append(int(line))
        except ValueError as e:
            raise DataError(f"{ids_path}: line {n} is {line!r}, not an integer image id; {hint}") from e
    refuse_repeated(ids_path, "image id(s)", ids, hint=hint)
    captions = caps_path.read_text(encoding="utf-8").splitlines()
    blank = [n for n, caption in enumerate(captions, 1) if not caption.strip()]
    if blank:
        raise DataError(f"{caps_path}: line(s) {blank[:5]} are blank; every line is one caption (remove the line or write its caption); {hint}")
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
    return Precomp(features=features, captions=grouped, ids=tuple(ids), rows=rows, source=ims_path)
