"""Reading a dataset's files: paths, JSON, required fields; a `DataError` naming the file and the fix."""

from __future__ import annotations

import hashlib
import json
import mmap
import os
import pickle
import re
from collections import Counter
from collections.abc import Callable, Hashable, Iterable, Sequence
from pathlib import Path
from typing import Any, TypeVar

import msgspec

from ccrbench.io import cache_dir, write_atomic
from ccrbench.registry import ConfigError

T = TypeVar("T")
_MISSING_FIELD = re.compile(r"Object missing required field `(.+)` - at `\$\.?(.*)`")
_BYTE = re.compile(r"\(byte (\d+)\)")


class DataError(ConfigError):
    """A data file is missing, malformed or inconsistent with the others."""


def under(root: str | Path, path: str) -> Path:
    """`path` relative to the benchmark's `root` (an absolute path stays as it is)."""
    return Path(root).expanduser() / Path(path).expanduser()


def require_file(path: Path, *, hint: str) -> Path:
    """`path` if it is a file; otherwise a DataError naming it, where it was looked for, and `hint`."""
    if not path.is_file():
        where = path.parent.resolve()
        found = "the folder does not exist" if not where.is_dir() else "not there"
        raise DataError(f"missing file {path.name}: looked for {path} (in {where}: {found}); {hint}")
    return path


def refuse_repeated(path: Path, what: str, values: Iterable[Hashable], *, hint: str) -> None:
    """Raises a DataError naming `path` and the values of `values` that occur more than once
    (`what`: what they are, e.g. "image id(s)"): a repeated id would pair one image's data
    with another's, or put an image in two splits."""
    repeated = [v for v, n in Counter(values).items() if n > 1]
    if repeated:
        raise DataError(f"{path}: {what} {repeated[:5]}{' ...' if len(repeated) > 5 else ''} appear more than once; {hint}")


def load_json(path: Path, *, hint: str, schema: Any = Any) -> Any:
    """Reads a JSON file, decoded into `schema` (msgspec Structs, lists, dicts; default: any JSON).

    Fields a Struct does not name are skipped while parsing, never built: a COCO
    instances file is read without its segmentation polygons.

    Raises:
        DataError: a missing file, malformed or non-UTF-8 JSON (naming the line and
            column), or an entry that lacks a field of `schema` or has another type.
    """
    require_file(path, hint=hint)
    with open(path, "rb") as f:
        if os.fstat(f.fileno()).st_size == 0:
            raise DataError(f"{path}: empty file, so not JSON; download it again ({hint})")
        with mmap.mmap(f.fileno(), 0, access=mmap.ACCESS_READ) as data:
            try:
                return msgspec.json.decode(data, type=schema)
            except UnicodeDecodeError as e:
                raise DataError(f"{path}: not UTF-8 text, so not JSON ({e}); download it again ({hint})") from e
            except msgspec.ValidationError as e:
                raise DataError(f"{path}: {_schema_error(e)}; is this the original, unmodified file? ({hint})") from e
            except msgspec.DecodeError as e:
                at = _BYTE.search(str(e))
                offset = int(at[1]) if at else len(data)
                if offset < len(data) and data[offset] >= 0x80:
                    raise DataError(f"{path}: not UTF-8 text, so not JSON ({e}); download it again ({hint})") from e
                line = data[:offset].count(b"\n") + 1
                column = offset - data.rfind(b"\n", 0, offset)
                raise DataError(
                    f"{path}: malformed JSON at line {line}, column {column} ({e}); the file is damaged "
                    f"or incomplete: download it again ({hint})"
                ) from e


def _schema_error(e: msgspec.ValidationError) -> str:
    """msgspec's "Object missing required field `x` - at `$.a[3]`" as "a[3] has no 'x' field"."""
    missing = _MISSING_FIELD.fullmatch(str(e))
    if not missing:
        return str(e)
    where = missing[2]
    where = "the top level" if not where else f"entry {where}" if where.startswith("[") else where
    return f"{where} has no {missing[1]!r} field"


def cached_index(kind: str, sources: Sequence[Path], build: Callable[[], T], *, version: str = "") -> T:
    """`build()`, cached under `cache_dir()/index` for as long as the `sources` keep their size and
    modification time (and the code's `version` of the derivation stays the same).

    `build` reads the sources and derives a compact index from them (e.g. each image's
    captions and categories), so a repeated load reads one small file instead of the
    sources. A damaged cache file is rebuilt.
    """
    stats = [(str(p.resolve()), p.stat().st_size, p.stat().st_mtime_ns) for p in sources]
    key = hashlib.sha1(json.dumps([kind, version, stats]).encode()).hexdigest()[:20]
    path = cache_dir() / "index" / f"{kind}-{key}.pickle"
    if path.is_file():
        try:
            with open(path, "rb") as f:
                return pickle.load(f)
        except (OSError, EOFError, pickle.UnpicklingError, AttributeError, ImportError):
            pass  # damaged or written by an incompatible version: rebuild it
    index = build()
    path.parent.mkdir(parents=True, exist_ok=True)
    write_atomic(path, lambda f: pickle.dump(index, f, protocol=pickle.HIGHEST_PROTOCOL), binary=True)
    return index


def find_image(name: str, folders: Sequence[Path]) -> Path:
    """The first `folder / name` that exists, or a DataError naming every folder searched."""
    for folder in folders:
        if (folder / name).is_file():
            return folder / name
    looked = ", ".join(str(f) for f in folders)
    raise DataError(f"missing image {name}: looked in {looked}; download the images into that folder")


def clean_caption(text: str) -> str:
    """A caption on one line: runs of whitespace (newlines included) become one space."""
    return " ".join(text.split())
