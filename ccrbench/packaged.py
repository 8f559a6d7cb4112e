"""The standard configs and suites shipped inside the package (ccrbench/configs, read with importlib.resources).

A config or suite argument is a file path, or the name of a packaged one (`shapes_finetune`,
`paper_table`, with or without `.yaml`), resolved from any directory; a file that exists wins.
`ccrbench config list | show NAME | copy NAME DEST` print and copy them for editing.
"""

from __future__ import annotations

from importlib.resources import files
from pathlib import Path
from typing import Literal

import yaml

from ccrbench.registry import ConfigError

Kind = Literal["config", "suite"]
PATH_KEYS = ("base", "selection")  # keys whose value is a path relative to the file


def packaged_dir(kind: Kind) -> Path:
    """The folder of the packaged configs (kind "config") or suites (kind "suite")."""
    root = Path(str(files("ccrbench").joinpath("configs")))  # a folder on disk: suites read their base beside them
    return root / "suites" if kind == "suite" else root


def packaged_names(kind: Kind) -> list[str]:
    """The names of the packaged configs or suites."""
    return sorted(p.stem for p in packaged_dir(kind).glob("*.yaml"))


def resolve(name: str | Path, kind: Kind) -> Path:
    """`name` as a path when that file exists or it has a folder part; else the packaged config or
    suite of that name (`paper_table` or `paper_table.yaml`); else `name` as given (its reader reports it)."""
    path = Path(name)
    if path.is_file() or len(path.parts) > 1:
        return path
    packaged = packaged_dir(kind) / f"{path.name.removesuffix('.yaml')}.yaml"
    return packaged if packaged.is_file() else path


def packaged_file(name: str) -> Path:
    """The packaged config or suite `name` (configs first).

    Raises:
        ConfigError: no packaged file has that name (listing those that exist).
    """
    for kind in ("config", "suite"):
        path = resolve(name, kind)
        if path.parent == packaged_dir(kind):
            return path
    raise ConfigError(
        f"no packaged config or suite {name!r}; configs: {', '.join(packaged_names('config'))}; suites: {', '.join(packaged_names('suite'))}"
    )


def copy_packaged(name: str, dest: str | Path) -> Path:
    """Writes packaged config or suite `name` to `dest` (a file, or a folder to put NAME.yaml in) for
    editing, its `base:` and `selection:` paths made absolute so they still point at the packaged files.

    Raises:
        ConfigError: unknown name, or `dest` exists already.
    """
    source = packaged_file(name)
    dest = Path(dest)
    if dest.is_dir():
        dest = dest / source.name
    if dest.exists():
        raise ConfigError(f"{dest} exists already; choose another destination or delete it first")
    text = source.read_text()
    data = yaml.safe_load(text) or {}
    lines = []
    for line in text.splitlines():
        key = line.partition(":")[0]
        if key in PATH_KEYS and isinstance(data.get(key), str):
            line = f"{key}: {(source.parent / data[key]).resolve()}"
        lines.append(line)
    dest.write_text("\n".join(lines) + "\n")
    return dest
