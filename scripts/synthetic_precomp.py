"""Shared by make_synthetic_coco.py and make_synthetic_vg.py: their command line and the precomp files they write."""

from __future__ import annotations

import argparse
from collections.abc import Sequence
from pathlib import Path

import numpy as np


def parser(doc: str) -> argparse.ArgumentParser:
    """The options every synthetic tree takes: the folder, its scale, the features' width and dtype, the seed."""
    p = argparse.ArgumentParser(description=doc.splitlines()[0])
    p.add_argument("out", type=Path)
    p.add_argument("--scale", type=float, default=1.0, help="fraction of the real sizes (default 1)")
    p.add_argument("--dim", type=int, default=2048, help="feature width (default 2048)")
    p.add_argument("--dtype", choices=("float32", "float16"), default="float32")
    p.add_argument("--seed", type=int, default=0)
    return p


def write_precomp(
    folder: Path, split: str, ids: Sequence[int], captions: Sequence[Sequence[str]], *, dim: int, dtype: str, rng: np.random.Generator
) -> None:
    """`{split}_ims.npy` (random features, one row per image, written in blocks), `_caps.txt`, `_ids.txt`."""
    folder.mkdir(parents=True, exist_ok=True)
    array = np.lib.format.open_memmap(folder / f"{split}_ims.npy", mode="w+", dtype=dtype, shape=(len(ids), dim))
    for start in range(0, len(ids), 8192):
        stop = min(len(ids), start + 8192)
        array[start:stop] = rng.standard_normal((stop - start, dim), dtype=np.float32)
    array.flush()
    del array
    with open(folder / f"{split}_caps.txt", "w") as f:
        f.writelines(c + "\n" for caps in captions for c in caps)
    with open(folder / f"{split}_ids.txt", "w") as f:
        f.writelines(f"{i}\n" for i in ids)
