"""What `ccrbench list` prints, cached: listing the registries imports every registered module
(torch, and Avalanche through the strategies: seconds), so the text is kept in the cache
(`CCRBENCH_CACHE`, default ~/.cache/ccrbench) under a fingerprint of the package's sources; any
change to them (a new strategy, an edited docstring) lists afresh."""

from __future__ import annotations

import hashlib
import sys
from pathlib import Path

from ccrbench.io import cache_dir, write_atomic
from ccrbench.docstrings import describe
from ccrbench.registry import BENCHMARKS, ENCODERS, LOSSES, STRATEGIES

PACKAGE = Path(__file__).parent


def listing(*, details: bool) -> str:
    """Every registered benchmark, strategy, encoder and loss (with `details`: their config keys)."""
    lines = []
    for registry in (BENCHMARKS, STRATEGIES, ENCODERS, LOSSES):
        lines.append(f"{registry.plural}:")
        for name in registry.names():
            obj = registry.get(name)
            modality = getattr(obj, "modality", None)
            lines.append(f"  {name}" + (f" ({modality})" if modality else ""))
            if details:
                lines.extend(f"      {line}" for line in describe(obj, skip=registry.context).splitlines())
    return "\n".join(lines) + "\n"


def fingerprint(root: Path = PACKAGE) -> str:
    """SHA-256 of the Python version and every source file under `root` (paths and contents)."""
    digest = hashlib.sha256(sys.version.encode())
    for path in sorted(root.rglob("*.py")):
        digest.update(str(path.relative_to(root)).encode() + b"\0" + path.read_bytes() + b"\0")
    return digest.hexdigest()


def cached_listing(*, details: bool) -> str:
    """`listing(details=...)` from the cache when the sources have not changed since it was written."""
    key = fingerprint()[:24]
    path = cache_dir() / "list" / f"{key}{'-details' if details else ''}.txt"
    if path.is_file():
        return path.read_text(encoding="utf-8")
    text = listing(details=details)
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        write_atomic(path, lambda f: f.write(text))
        for old in path.parent.glob("*.txt"):  # listings of earlier sources
            if not old.name.startswith(key):
                old.unlink(missing_ok=True)
    except OSError:  # a read-only cache: list without keeping it
        pass
    return text
