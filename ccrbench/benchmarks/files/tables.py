"""Image-caption rows from the files people keep: CSV/TSV, JSON Lines, Parquet and webdataset shards.

Every format gives the same `Row`s: where the row is (file and row number, or shard
and sample key, for error messages), the image file, its captions (one cell may hold
a list: several captions per image) and the other columns asked for, as text.

- CSV (`.csv`) and TSV (`.tsv`): a header line names the columns; row N is line N + 1.
- JSON Lines (`.jsonl`, `.ndjson`): one JSON object per line.
- Parquet (`.parquet`): read with pyarrow, batch by batch.
- Arrow (`.arrow`): Arrow IPC streams or files, such as the `data-*.arrow` files a Hugging
  Face `Dataset.save_to_disk` writes. In Parquet and Arrow, an image cell may be a Hugging
  Face `Image` value `{bytes, path}`: its bytes are written once under
  `cache_dir()/webdataset` (named by their hash) and read from there.
- webdataset (`.tar`): samples of `jpg`/`jpeg`/`png` + `txt` (the caption) or `json`
  (an object holding the caption and the other columns), read with the `webdataset`
  package. Each shard's images are written once under `cache_dir()/webdataset` (kept
  while the shard keeps its size and modification time), so the benchmark reads them
  as files, one at a time: the shards are streamed, never held in memory.

Image paths are relative to the file that names them (absolute paths stay as they are).
A column the file does not have is a `DataError` listing the columns it has.
"""

from __future__ import annotations

import csv
import hashlib
import json
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ccrbench.benchmarks.files.reading import DataError, require_file
from ccrbench.io import cache_dir, write_atomic

TABLE_SUFFIXES = (".csv", ".tsv", ".jsonl", ".ndjson", ".parquet", ".arrow", ".tar")
IMAGE_EXTENSIONS = ("jpg", "jpeg", "png")


@dataclass(frozen=True)
class Row:
    """One image-caption row.

    Attributes:
        where: "FILE row N" or "SHARD sample KEY", for messages.
        image: the image file (None when the row names none).
        source: where the image comes from (its file, or the shard and sample key): rows of
            one source are rows of one image.
        captions: its captions, as written (a list cell gives several).
        fields: the other requested columns, as text ("" when the row lacks one).
    """

    where: str
    image: Path | None
    source: Path | None
    captions: tuple[str, ...]
    fields: dict[str, str]


def _text(value: Any) -> str:
    return "" if value is None else str(value).strip()


def _captions(value: Any) -> tuple[str, ...]:
    if isinstance(value, (list, tuple)):
        return tuple(_text(v) for v in value)
    return (_text(value),)


def check_columns(path: Path, have: Sequence[str], wanted: Sequence[str]) -> None:
    """A DataError naming the columns of `wanted` that `path` lacks, and those it has."""
    unknown = [c for c in wanted if c not in have]
    if unknown:
        raise DataError(
            f"{path}: no column {', '.join(map(repr, unknown))}; it has {', '.join(map(repr, have)) or 'none'}: "
            f"set the benchmark's column options to one of those"
        )


def _embedded(path: Path, n: int, cell: dict[str, Any]) -> tuple[Path | None, Path | None]:
    """(image file, source) of a Hugging Face `Image` cell {bytes, path}: its bytes are written once
    under `_shard_folder(path)`; without bytes, its path is a file path as in other rows."""
    name = _text(cell.get("path"))
    if not cell.get("bytes"):
        return ((path.parent / name),) * 2 if name else (None, None)
    data = cell["bytes"]
    file = _shard_folder(path) / f"{hashlib.sha1(data).hexdigest()[:20]}{Path(name).suffix or '.img'}"
    if not file.is_file():
        file.parent.mkdir(parents=True, exist_ok=True)
        write_atomic(file, lambda f: f.write(data), binary=True)
    return file, path / (name or f"row-{n}")


def _row(path: Path, n: int, record: dict[str, Any], image_column: str, caption_column: str, columns: Sequence[str]) -> Row:
    cell = record.get(image_column)
    if isinstance(cell, dict):
        file, source = _embedded(path, n, cell)
    else:
        image = _text(cell)
        file = source = (path.parent / image) if image else None
    return Row(
        where=f"{path} row {n}",
        image=file,
        source=source,
        captions=_captions(record.get(caption_column)),
        fields={c: _text(record.get(c)) for c in columns},
    )


def _csv_rows(path: Path, image_column: str, caption_column: str, columns: Sequence[str]) -> Iterator[Row]:
    with open(path, newline="", encoding="utf-8") as f:
        reader = csv.DictReader(f, delimiter="\t" if path.suffix == ".tsv" else ",")
        check_columns(path, reader.fieldnames or [], [image_column, caption_column, *columns])
        for n, record in enumerate(reader, 1):
            yield _row(path, n, record, image_column, caption_column, columns)


def _jsonl_rows(path: Path, image_column: str, caption_column: str, columns: Sequence[str]) -> Iterator[Row]:
    seen: set[str] = set()
    with open(path, encoding="utf-8") as f:
        for n, line in enumerate(f, 1):
            if not line.strip():
                continue
            try:
                record = json.loads(line)
            except json.JSONDecodeError as e:
                raise DataError(f"{path} row {n}: not a JSON object ({e}); one object per line") from e
            if not isinstance(record, dict):
                raise DataError(f"{path} row {n}: expected a JSON object, got {type(record).__name__}")
            if not seen:
                seen = set(record)
                check_columns(path, list(record), [image_column, caption_column, *columns])
            yield _row(path, n, record, image_column, caption_column, columns)


def _parquet_rows(path: Path, image_column: str, caption_column: str, columns: Sequence[str]) -> Iterator[Row]:
    try:
        import pyarrow.parquet as pq  # only for parquet files
    except ImportError as e:
        raise DataError(f"{path}: reading Parquet needs the pyarrow package: pip install 'ccrbench[formats]'") from e

    try:
        table = pq.ParquetFile(path)
    except Exception as e:  # pyarrow raises its own ArrowInvalid / OSError on a damaged file
        raise DataError(f"{path}: not a readable Parquet file ({e})") from e
    wanted = list(dict.fromkeys([image_column, caption_column, *columns]))
    check_columns(path, table.schema_arrow.names, wanted)
    n = 0
    for batch in table.iter_batches(columns=wanted):
        for record in batch.to_pylist():
            n += 1
            yield _row(path, n, record, image_column, caption_column, columns)


def _arrow_rows(path: Path, image_column: str, caption_column: str, columns: Sequence[str]) -> Iterator[Row]:
    """An Arrow IPC file or stream, e.g. the `data-*.arrow` files of a Hugging Face `save_to_disk` folder."""
    try:
        import pyarrow as pa
    except ImportError as e:
        raise DataError(f"{path}: reading Arrow files needs the pyarrow package: pip install 'ccrbench[formats]'") from e
    with pa.memory_map(str(path)) as source:
        try:
            reader = pa.ipc.open_stream(source)
        except pa.ArrowInvalid:
            try:
                reader = pa.ipc.open_file(source)
            except pa.ArrowInvalid as e:
                raise DataError(f"{path}: not an Arrow IPC file or stream ({e})") from e
        check_columns(path, reader.schema.names, [image_column, caption_column, *columns])
        batches = reader if isinstance(reader, pa.ipc.RecordBatchStreamReader) else (reader.get_batch(i) for i in range(reader.num_record_batches))
        n = 0
        for batch in batches:
            for record in batch.to_pylist():
                n += 1
                yield _row(path, n, record, image_column, caption_column, columns)


def _shard_folder(shard: Path) -> Path:
    stat = shard.stat()
    key = hashlib.sha1(json.dumps([str(shard.resolve()), stat.st_size, stat.st_mtime_ns]).encode()).hexdigest()[:20]
    return cache_dir() / "webdataset" / f"{shard.stem}-{key}"


def _shard_rows(shard: Path, caption_column: str, columns: Sequence[str]) -> Iterator[Row]:
    """A shard's samples; images are written once under `_shard_folder(shard)`."""
    try:
        import webdataset as wds
    except ImportError as e:
        raise DataError(f"{shard}: reading webdataset shards needs the `webdataset` package: pip install 'ccrbench[formats]'") from e
    folder = _shard_folder(shard)
    done = folder / ".complete"
    extract = not done.is_file()
    folder.mkdir(parents=True, exist_ok=True)
    dataset = wds.WebDataset(str(shard), shardshuffle=False, empty_check=False, handler=wds.reraise_exception)
    try:
        for sample in dataset:
            key = sample["__key__"]
            where = f"{shard} sample {key}"
            ext = next((e for e in IMAGE_EXTENSIONS if e in sample), None)
            image = folder / f"{hashlib.sha1(key.encode()).hexdigest()[:16]}.{ext}" if ext else None
            if extract and image is not None:
                data = sample[ext]
                write_atomic(image, lambda f: f.write(data), binary=True)
            if "json" in sample:
                try:
                    record = json.loads(sample["json"])
                except json.JSONDecodeError as e:
                    raise DataError(f"{where}: its .json is not JSON ({e})") from e
                record = record if isinstance(record, dict) else {}
                captions = _captions(record.get(caption_column)) if caption_column in record else ()
                if not captions and "txt" in sample:
                    captions = (_text(sample["txt"].decode("utf-8")),)
                fields = {c: _text(record.get(c)) for c in columns}
            else:
                captions = (_text(sample["txt"].decode("utf-8")),) if "txt" in sample else ()
                fields = dict.fromkeys(columns, "")
            yield Row(where=where, image=image, source=shard / key if image else None, captions=captions, fields=fields)
    except (OSError, ValueError) as e:
        if isinstance(e, DataError):
            raise
        raise DataError(f"{shard}: not a readable webdataset shard ({e})") from e
    if extract:
        done.touch()


def read_rows(path: Path, *, image_column: str, caption_column: str, columns: Sequence[str]) -> Iterator[Row]:
    """The rows of one file, by its suffix (see the module doc).

    Raises:
        DataError: a missing or unreadable file, an unknown suffix, or a column the file lacks.
    """
    require_file(path, hint="check benchmark.files (paths relative to benchmark.root)")
    suffix = path.suffix.lower()
    if suffix in (".csv", ".tsv"):
        return _csv_rows(path, image_column, caption_column, columns)
    if suffix in (".jsonl", ".ndjson"):
        return _jsonl_rows(path, image_column, caption_column, columns)
    if suffix == ".parquet":
        return _parquet_rows(path, image_column, caption_column, columns)
    if suffix == ".arrow":
        return _arrow_rows(path, image_column, caption_column, columns)
    if suffix == ".tar":
        return _shard_rows(path, caption_column, columns)
    raise DataError(f"{path}: unknown format {suffix!r}; expected one of {', '.join(TABLE_SUFFIXES)}")
