"""The prepared image store (`ccrbench data prepare`): each split's images decoded once, at the
run's size, into a memory-mapped uint8 array that images mode reads instead of the JPEGs.

Layout of one split's store, `{root}/{prepared_dir}/{split}-{S}px/`:

    meta.json    format version, S, and per image in the split's order: its id, its file,
                 and that file's size and modification time (ns) when it was written
    images.npy   uint8 [N, 3, S, S]; row r is image r of meta.json (read memory-mapped)
    status.npy   uint8 [N]: 0 not written yet, 1 written, 2 does not decode
    bad.json     {row: reason} of the images that do not decode

A row is exactly the PIL path's tensor times 255 (`FileImages.square`: JPEG draft
decoding, shorter side resized to S, centre crop), so a run reads the same pixels
either way. Why raw pixels and not JPEG bytes: a row is read with one copy, far below a
JPEG decode (scripts/bench_loader.py measures both); the cost is 3·S² bytes per image
on disk (COCO 2014's 123K images: 18.6 GB at 224², 6.1 GB at 128²), printed before
anything is written.

A store serves a run when its version, S, image ids and files are the run's and every
file still has the size and modification time recorded (the suite's rule for derived
data, as `cached_index`); otherwise the run warns and decodes with PIL. `prepare` writes
only what is missing: the rows not written yet (an interrupted prepare resumes) and the
rows whose file changed; another S or image list starts the store afresh.
"""

from __future__ import annotations

import json
import shutil
import warnings
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import ProcessPoolExecutor
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import numpy as np
import torch
from numpy.lib.format import open_memmap
from torch import Tensor
from torch.utils.data import Dataset, Subset
from tqdm.auto import tqdm

from ccrbench.benchmarks.files.images import Augmented, FileImages, JpegFiles, bad_image_error, bad_images
from ccrbench.benchmarks.files.reading import DataError
from ccrbench.io import write_atomic

VERSION = 1  # of the store's layout and resize rule: change it when either changes
TODO, DONE, BAD = 0, 1, 2
CHUNK = 64  # images per unit of work (and of resumption)


@dataclass
class Preparing:
    """What `ccrbench data prepare` asks of the file benchmark it builds.

    Attributes:
        workers: decoding processes (0: in this process).
        progress: show a progress bar per split.
        report: where the disk cost and outcome lines go.
        stores: the store folders written (filled while the benchmark is built).
    """

    workers: int = 0
    progress: bool = True
    report: Callable[[str], None] = print
    stores: list[Path] = field(default_factory=list)


_PREPARING: ContextVar[Preparing | None] = ContextVar("preparing", default=None)


@contextmanager
def preparing(settings: Preparing) -> Iterator[Preparing]:
    """While inside, building a file benchmark in images mode prepares (or completes) its stores."""
    token = _PREPARING.set(settings)
    try:
        yield settings
    finally:
        _PREPARING.reset(token)


class PreparedImages(Dataset):
    """The rows of a prepared store: item i is uint8 [3, S, S].

    A DataLoader batch of them (`ccrbench.pixels.collate_images`) becomes float in [0, 1],
    exactly the PIL path's values, when it is moved to the training device: one conversion
    per batch rather than per item (on a GPU, after a copy of a quarter of the bytes). The
    array is memory-mapped on first use in each process (DataLoader workers open their own).

    Args:
        file: the store's images.npy.
    """

    def __init__(self, *, file: Path) -> None:
        self.file = file
        self.length = int(np.load(file, mmap_mode="r").shape[0])
        self._array: np.ndarray | None = None

    def __len__(self) -> int:
        return self.length

    def __getstate__(self) -> dict[str, Any]:
        return {**self.__dict__, "_array": None}  # a worker maps the file itself instead of receiving a copy

    def __getitem__(self, i: int) -> Tensor:
        if self._array is None:
            self._array = np.load(self.file, mmap_mode="r")
        return torch.from_numpy(np.array(self._array[i]))  # uint8 [3, S, S]


def store_dir(prepared_dir: Path, split: str, image_size: int) -> Path:
    """The folder of one split's store."""
    return prepared_dir / f"{split}-{image_size}px"


def _identity(ids: Sequence[int], paths: Sequence[Path], image_size: int) -> dict[str, Any]:
    return {"version": VERSION, "image_size": image_size, "ids": list(ids), "files": [str(p) for p in paths]}


def _stats(paths: Sequence[Path]) -> list[list[int]]:
    return [[(s := p.stat()).st_size, s.st_mtime_ns] for p in paths]


def _read_meta(folder: Path) -> dict[str, Any] | None:
    try:
        meta = json.loads((folder / "meta.json").read_text())
        return meta if isinstance(meta, dict) else None
    except (OSError, ValueError):
        return None


def _read_bad(folder: Path) -> dict[int, str]:
    path = folder / "bad.json"
    return {int(r): reason for r, reason in json.loads(path.read_text()).items()} if path.is_file() else {}


def open_store(folder: Path, *, ids: Sequence[int], paths: Sequence[Path], image_size: int) -> tuple[PreparedImages, dict[int, str]] | str:
    """The store's images and its {row: reason} of images that do not decode, or why it cannot serve."""
    meta = _read_meta(folder)
    if meta is None:
        return "no store"
    identity = _identity(ids, paths, image_size)
    if any(meta.get(k) != v for k, v in identity.items()):
        return "prepared for another image list, image size or version"
    changed = [p for p, old, now in zip(paths, meta["stats"], _stats(paths)) if old != now]
    if changed:
        return f"{len(changed)} file(s) changed since it was written, e.g. {changed[0]}"
    try:
        status = np.load(folder / "status.npy")
        images = PreparedImages(file=folder / "images.npy")
    except (OSError, ValueError) as e:
        return f"unreadable ({e})"
    if len(images) != len(ids) or status.shape != (len(ids),):
        return "damaged (its arrays do not have one row per image)"
    missing = int((status == TODO).sum())
    if missing:
        return f"incomplete ({missing} of {len(ids)} images not written: the prepare was interrupted)"
    return images, _read_bad(folder)


def _size(n: int) -> str:
    return f"{n / 1e9:.2f} GB" if n >= 1e9 else f"{n / 1e6:.1f} MB"


def _write_rows(images_file: Path, rows: Sequence[int], paths: Sequence[Path], image_size: int) -> dict[int, str]:
    """Decodes `paths` into `rows` of the store (flushed to disk); returns {row: reason} of those that do not decode."""
    array = np.load(images_file, mmap_mode="r+")
    squares = FileImages(paths=paths, image_size=image_size)
    bad = {}
    for k, row in enumerate(rows):
        try:
            array[row] = np.asarray(squares.square(k)).transpose(2, 0, 1)  # [S, S, 3] -> [3, S, S]
        except DataError as e:
            bad[row] = f"{type(e.__cause__).__name__}: {e.__cause__}"
    array.flush()
    return bad


def prepare_store(
    folder: Path,
    *,
    split: str,
    ids: Sequence[int],
    paths: Sequence[Path],
    image_size: int,
    on_bad_image: Literal["fail", "skip"],
    settings: Preparing,
) -> None:
    """Writes the rows of one split's store that are missing or whose file changed.

    Raises:
        DataError: not enough free disk space (before writing), or with `on_bad_image="fail"`
            an image that does not decode (the rows written so far are kept: prepare again
            to continue once the file is replaced).
    """
    n, images_file, status_file = len(ids), folder / "images.npy", folder / "status.npy"
    stats = _stats(paths)
    meta = _read_meta(folder)
    identity = _identity(ids, paths, image_size)
    same = meta is not None and all(meta.get(k) == v for k, v in identity.items()) and images_file.is_file() and status_file.is_file()
    if same:
        status = np.load(status_file, mmap_mode="r+")
        changed = [r for r, (old, now) in enumerate(zip(meta["stats"], stats)) if old != now]
        status[changed] = TODO
        status.flush()
        bad = {r: reason for r, reason in _read_bad(folder).items() if status[r] == BAD}
    else:
        need = n * 3 * image_size**2
        folder.mkdir(parents=True, exist_ok=True)
        free = shutil.disk_usage(folder).free
        settings.report(f"{split}: {n} images at {image_size}x{image_size}: {_size(need)} in {folder} ({_size(free)} free)")
        if need > free:
            raise DataError(f"{folder}: {_size(need)} needed, {_size(free)} free; set benchmark.prepared_dir to a larger disk or lower image_size")
        for name in ("meta.json", "bad.json", "images.npy", "status.npy"):
            (folder / name).unlink(missing_ok=True)
        open_memmap(images_file, mode="w+", dtype=np.uint8, shape=(n, 3, image_size, image_size)).flush()  # sparse until written
        status = open_memmap(status_file, mode="w+", dtype=np.uint8, shape=(n,))
        bad = {}
    write_atomic(folder / "meta.json", lambda f: json.dump({**identity, "stats": stats}, f))
    settings.stores.append(folder)

    def record(rows: Sequence[int], new_bad: dict[int, str]) -> None:
        for row in rows:
            status[row] = BAD if row in new_bad else DONE
        status.flush()
        if new_bad:
            bad.update(new_bad)
            write_atomic(folder / "bad.json", lambda f: json.dump(bad, f))
        if new_bad and on_bad_image == "fail":
            row = min(new_bad)
            raise bad_image_error(paths[row], new_bad[row], len(bad), kept=f"; the {int((status == DONE).sum())} images written are kept")

    if bad and on_bad_image == "fail":  # found by an earlier prepare, the file unchanged since
        raise bad_image_error(paths[min(bad)], bad[min(bad)], len(bad))
    todo = np.flatnonzero(status == TODO).tolist()
    if same and todo:
        settings.report(f"{split}: {folder}: {len(todo)} of {n} images left to write ({_size(len(todo) * 3 * image_size**2)})")
    work = [todo[k : k + CHUNK] for k in range(0, len(todo), CHUNK)]
    with tqdm(total=n, initial=n - len(todo), desc=f"preparing {split}", unit="img", disable=not settings.progress, dynamic_ncols=True) as bar:
        if settings.workers == 0:
            for rows in work:
                record(rows, _write_rows(images_file, rows, [paths[r] for r in rows], image_size))
                bar.update(len(rows))
        else:
            with ProcessPoolExecutor(settings.workers) as pool:
                futures = [(rows, pool.submit(_write_rows, images_file, rows, [paths[r] for r in rows], image_size)) for rows in work]
                try:
                    for rows, future in futures:
                        record(rows, future.result())
                        bar.update(len(rows))
                except BaseException:
                    pool.shutdown(cancel_futures=True)
                    raise
    settings.report(f"{split}: {folder} holds {n - len(bad)} images" + (f"; {len(bad)} do not decode (left out)" if bad else ""))


def cuda_available() -> bool:
    """Whether `decode: cuda` can decode on a GPU here."""
    return torch.cuda.is_available()


def image_sources(
    *,
    paths: Sequence[Path],
    ids: Sequence[int],
    splits: Sequence[str],
    image_size: int,
    on_bad_image: Literal["fail", "skip"],
    prepared_dir: Path | None,
    decode: Literal["cpu", "cuda"],
) -> list[tuple[Dataset, int] | None]:
    """Where each image's pixels come from: (dataset, item), or None for an image that does not decode.

    Per split: its prepared store when that is valid (prepared or completed first while
    `preparing`), else the files, decoded with PIL in the loader (`decode: cpu`) or read as
    bytes and decoded in batches on the GPU (`decode: cuda`; without CUDA: PIL, with a warning).

    Raises:
        DataError: with `on_bad_image="fail"`, for the first image that does not decode.
    """
    if decode == "cuda" and not cuda_available():
        warnings.warn("benchmark.decode: cuda, but CUDA is not available: decoding with PIL on the CPU", stacklevel=2)
        decode = "cpu"
    settings = _PREPARING.get()
    out: list[tuple[Dataset, int] | None] = [None] * len(paths)
    bad: dict[int, str] = {}
    from_files: list[int] = []
    for split in dict.fromkeys(splits):
        members = [i for i, s in enumerate(splits) if s == split]
        if prepared_dir is None:
            from_files += members
            continue
        folder = store_dir(prepared_dir, split, image_size)
        split_ids, split_paths = [ids[i] for i in members], [paths[i] for i in members]
        if settings is not None:
            prepare_store(folder, split=split, ids=split_ids, paths=split_paths, image_size=image_size, on_bad_image=on_bad_image, settings=settings)
        opened = open_store(folder, ids=split_ids, paths=split_paths, image_size=image_size)
        if isinstance(opened, str):
            if folder.exists():
                warnings.warn(f"prepared images {folder}: {opened}; decoding the files instead (`ccrbench data prepare` updates it)", stacklevel=2)
            from_files += members
            continue
        images, split_bad = opened
        for row, i in enumerate(members):
            if row in split_bad:
                bad[i] = split_bad[row]
            else:
                out[i] = (images, row)
    file_paths = [paths[i] for i in from_files]
    file_bad = bad_images(file_paths, image_size=image_size, on_bad_image="skip") if file_paths else {}
    bad.update({from_files[k]: reason for k, reason in file_bad.items()})
    source = (JpegFiles if decode == "cuda" else FileImages)(paths=file_paths, image_size=image_size)
    for k, i in enumerate(from_files):
        if k not in file_bad:
            out[i] = (source, k)
    if bad and on_bad_image == "fail":
        i = min(bad)
        raise bad_image_error(paths[i], bad[i], len(bad))
    return out


def describe_sources(splits: dict[str, Sequence[Any] | None]) -> list[str]:
    """Where each split's images come from, one line per split ({split: its TaskSplits}; features: none)."""
    lines = []
    for split, tasks in splits.items():
        if not tasks:
            continue
        source = tasks[0].images
        while isinstance(source, (Augmented, Subset)):
            source = source.images if isinstance(source, Augmented) else source.dataset
        if isinstance(source, PreparedImages):
            lines.append(f"{split} images: prepared, {source.file.parent}")
        elif isinstance(source, (FileImages, JpegFiles)):
            where = "in batches on the GPU" if isinstance(source, JpegFiles) else "with PIL"
            lines.append(f"{split} images: the files, decoded {where} (`ccrbench data prepare` writes a store)")
    return lines
