"""File reading and writing shared by the whole suite."""

from __future__ import annotations

import json
import os
from collections.abc import Callable
from pathlib import Path
from typing import IO, Any

from ccrbench.registry import ConfigError


def cache_dir() -> Path:
    """Where derived data is cached (`CCRBENCH_CACHE`, default ~/.cache/ccrbench)."""
    return Path(os.environ.get("CCRBENCH_CACHE", Path.home() / ".cache" / "ccrbench"))


def write_atomic(path: Path, write: Callable[[IO[Any]], None], *, binary: bool = False) -> None:
    """Writes `path` through a temporary file and os.replace, so it is whole or absent.

    Raises:
        OSError: naming `path` (e.g. a full or read-only disk); the temporary file is removed.
    """
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    try:
        with open(tmp, "wb" if binary else "w", encoding=None if binary else "utf-8") as f:
            write(f)
        os.replace(tmp, path)
    except BaseException as e:
        tmp.unlink(missing_ok=True)
        if isinstance(e, OSError) and e.errno is not None:
            raise OSError(e.errno, e.strerror, str(path)) from e  # the file meant, not the temporary one
        raise


def read_json(path: Path) -> Any:
    """The JSON value in `path`.

    Raises:
        ConfigError: naming the file when it cannot be read or is not valid JSON.
    """
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError) as e:
        raise ConfigError(f"{path}: cannot be read ({e})") from e
    except json.JSONDecodeError as e:
        raise ConfigError(f"{path}: not valid JSON ({e})") from e
