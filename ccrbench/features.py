"""`ccrbench features`: a file benchmark's image features, in the VSE++ precomp layout.

Every image of the benchmark's train, val and test splits (all tasks, in task order) goes
through a registered image encoder (initialised from the run seed, in eval mode); the
outputs land in `{out}/{split}_ims.npy` with `{split}_caps.txt` and `{split}_ids.txt`,
which the benchmark reads back with `mode: features`.

Resumable: each split is computed in chunks of images, each saved on its own under
`{out}/.partial-*`; a rerun skips the chunks that exist and the splits that are
finished (`manifest.json` records each finished split's fingerprint: encoder, seed,
image size, image ids and captions). Every file is written with `io.write_atomic`, so
an interrupted run never leaves a half file.

An application command like `runner`: it reads a run config and builds an encoder for
a benchmark, so it sits above benchmarks and models.
"""

from __future__ import annotations

import hashlib
import json
import shutil
from collections.abc import Sequence
from pathlib import Path
from typing import Any, BinaryIO

import numpy as np
import torch
from torch import nn
from torch.utils.data import ConcatDataset, DataLoader, Dataset, Subset
from tqdm.auto import tqdm

from ccrbench.benchmarks.files.precomp import precomp_paths
from ccrbench.benchmarks.files.reading import DataError, load_json, under
from ccrbench.benchmarks.files.tasks import SPLITS
from ccrbench.config import RunConfig, apply_overrides, from_dict, read_yaml, to_dict
from ccrbench.io import write_atomic
from ccrbench.pixels import collate_images
from ccrbench.registry import BENCHMARKS, ENCODERS, FILE_BENCHMARKS, ConfigError


def features_config(path: str | Path, overrides: Sequence[str], encoder: str) -> RunConfig:
    """The config with `encoder` as image encoder (its options from `model.image_encoder.*`
    overrides) and the benchmark reading raw images.

    Raises:
        ConfigError: naming the file and the offending key.
    """
    data = read_yaml(Path(path))
    data["model"] = {**(data.get("model") or {}), "image_encoder": {"name": encoder}}
    try:
        data = apply_overrides(data, overrides)
        benchmark = data.get("benchmark", "shapes")
        benchmark = {"name": benchmark} if isinstance(benchmark, str) else dict(benchmark)
        if "mode" in BENCHMARKS.parameters(benchmark.get("name", "shapes")):
            data["benchmark"] = {**benchmark, "mode": "images"}
        return from_dict(data)
    except ConfigError as e:
        raise ConfigError(f"{path}: {e}") from e


def _fingerprint(*parts: Any) -> str:
    return hashlib.sha1(json.dumps(parts, sort_keys=True).encode()).hexdigest()


def _extract_split(
    encoder: nn.Module,
    images: Dataset,
    *,
    partial: Path,
    chunk_images: int,
    batch_size: int,
    num_workers: int,
    device: str,
    desc: str,
    progress: bool,
) -> list[Path]:
    """Encodes `images` chunk by chunk into `partial/NNNNNN.npy`, skipping chunks already there."""
    n = len(images)
    starts = range(0, n, chunk_images)
    chunks = [partial / f"{k:06d}.npy" for k in range(len(starts))]
    done = sum(min(chunk_images, n - s) for s, c in zip(starts, chunks) if c.is_file())
    with tqdm(total=n, initial=done, desc=desc, unit="img", disable=not progress, dynamic_ncols=True) as bar:
        for start, chunk in zip(starts, chunks):
            if chunk.is_file():
                continue
            outputs = []
            loader = DataLoader(Subset(images, range(start, min(n, start + chunk_images))), batch_size=batch_size, num_workers=num_workers, collate_fn=collate_images)
            for batch in loader:
                with torch.no_grad():
                    out = encoder(batch.to(device))
                if out.ndim != 2:
                    raise ConfigError(f"the image encoder gives {tuple(out.shape)} per batch; features need [images, F]")
                outputs.append(out.float().cpu())
                bar.update(len(batch))
            array = torch.cat(outputs).numpy()
            write_atomic(chunk, lambda f: np.save(f, array), binary=True)
    return chunks


def _concatenate(chunks: list[Path], path: Path, rows: int) -> None:
    """Writes the chunks one after the other into one float32 .npy at `path` (atomically)."""
    width = np.load(chunks[0], mmap_mode="r").shape[1]
    header = {"descr": np.lib.format.dtype_to_descr(np.dtype(np.float32)), "fortran_order": False, "shape": (rows, width)}

    def write(f: BinaryIO) -> None:
        np.lib.format.write_array_header_1_0(f, header)
        for chunk in chunks:
            f.write(np.ascontiguousarray(np.load(chunk), dtype=np.float32).tobytes())

    write_atomic(path, write, binary=True)


def extract_features(
    config: RunConfig, out: str | Path | None = None, *, chunk_images: int = 1024, progress: bool = True
) -> dict[str, str]:
    """Extracts the image features of every image of `config`'s file benchmark.

    Args:
        config: the run config; its benchmark must be a file benchmark (read in mode
            "images") and `model.image_encoder` an image encoder.
        out: output folder (default: the benchmark's `features_dir` under its `root`).
        chunk_images: images per saved chunk (the unit of resumption).
        progress: show a tqdm progress bar per split.

    Returns:
        {split: "extracted" or "already done"}, plus "out": the output folder.

    Raises:
        ConfigError: not a file benchmark, not an image encoder, or `out` holds features
            of another encoder, seed or image size.
    """
    if chunk_images < 1:
        raise ConfigError(f"chunk_images: expected at least 1, got {chunk_images}")
    options = dict(config.benchmark.options)
    data = FILE_BENCHMARKS.build(config.benchmark.name, options)
    folder = Path(out) if out is not None else under(options["root"], options["features_dir"])
    spec = config.model.image_encoder
    torch.manual_seed(config.seed)
    encoder = ENCODERS.build(spec.name, spec.options, corpus=())
    if getattr(encoder, "modality", None) != "image":
        raise ConfigError(f"encoder {spec.name!r} is not an image encoder; `ccrbench list` shows the image encoders")
    encoder.eval().to(config.device)
    identity = {"encoder": to_dict(spec), "seed": config.seed, "image_size": options["image_size"]}
    folder.mkdir(parents=True, exist_ok=True)
    manifest_path = folder / "manifest.json"
    manifest = load_json(manifest_path, hint="delete the folder") if manifest_path.exists() else {"extractor": identity, "splits": {}}
    if manifest.get("extractor") != identity:
        raise DataError(
            f"{folder} holds features of another extractor ({manifest.get('extractor')}, not {identity}); "
            f"choose another --out or delete {folder}"
        )
    outcome: dict[str, str] = {"out": str(folder)}
    for split in SPLITS:
        tasks = getattr(data, split)
        if tasks is None:  # no validation split
            continue
        ids = [i for s in tasks for i in s.image_ids]
        captions = [caps for s in tasks for caps in s.captions]
        fingerprint = _fingerprint(identity, ids, captions)
        ims_path, caps_path, ids_path = precomp_paths(folder, split)
        if manifest["splits"].get(split) == fingerprint and all(p.is_file() for p in (ims_path, caps_path, ids_path)):
            outcome[split] = "already done"
            continue
        partial = folder / f".partial-{split}-{fingerprint[:16]}-{chunk_images}"
        for stale in folder.glob(f".partial-{split}-*"):
            if stale != partial:
                shutil.rmtree(stale)
        partial.mkdir(exist_ok=True)
        chunks = _extract_split(
            encoder,
            ConcatDataset([s.images for s in tasks]),
            partial=partial,
            chunk_images=chunk_images,
            batch_size=config.eval.batch_size,
            num_workers=config.train.num_workers,
            device=config.device,
            desc=f"{split} features",
            progress=progress,
        )
        _concatenate(chunks, ims_path, len(ids))
        write_atomic(caps_path, lambda f: f.writelines(c + "\n" for caps in captions for c in caps))
        write_atomic(ids_path, lambda f: f.writelines(f"{i}\n" for i in ids))
        manifest["splits"][split] = fingerprint
        write_atomic(manifest_path, lambda f: json.dump(manifest, f, indent=1))
        shutil.rmtree(partial)
        outcome[split] = "extracted"
    return outcome
