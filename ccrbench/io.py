"""File writing shared by the whole suite."""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path
from typing import IO, Any


def write_atomic(path: Path, write: Callable[[IO[Any]], None], *, binary: bool = False) -> None:
    """Writes `path` through a temporary file and os.replace, so it is whole or absent."""
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    with open(tmp, "wb" if binary else "w", encoding=None if binary else "utf-8") as f:
        write(f)
    os.replace(tmp, path)
