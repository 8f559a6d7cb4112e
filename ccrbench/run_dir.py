"""The run directory: who holds it, whether a run wrote it, and what --resume and --overwrite may do.

A run marks its directory with MARKER when it takes it; ccrbench deletes only what is in a
directory so marked (a non-empty directory without it is refused, whatever the flags). While
a run is live it holds an `fcntl.flock` on LOCK, whose text is its PID; the run empties the
file when it ends, and the kernel drops the lock however the run ends (even `kill -9`), so
`lock_holder` (the lock, not the text) is what says whether the run is live.
"""

from __future__ import annotations

import fcntl
import os
import shutil
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import yaml

from ccrbench.config import RunConfig, flatten, from_dict, to_dict
from ccrbench.io import read_json
from ccrbench.registry import ConfigError

LOCK = ".lock"
MARKER = ".ccrbench-run"  # written by the run that takes the directory: only such a directory is ever emptied
NOT_RESULTS = ("config.yaml", "tb", MARKER)  # what a run that failed before its first stage leaves: replaced freely


def check_out(out: Path, *, resume: bool) -> None:
    """Checks, before anything is written, that `out` may become a run directory: absent, empty,
    marked as a run's (MARKER), or, with `resume`, holding a saved config.yaml.

    Raises:
        ConfigError: `out` is a file, or a directory holding files that no run wrote (named).
    """
    if out.exists() and not out.is_dir():
        raise ConfigError(f"--out {out} is a file, not a directory; give the run's directory (e.g. runs/my_run)")
    if not out.is_dir() or (out / MARKER).exists() or (resume and (out / "config.yaml").exists()):
        return
    foreign = sorted(p.name for p in out.iterdir() if p.name != LOCK)
    if foreign:
        shown = ", ".join(foreign[:5]) + (", ..." if len(foreign) > 5 else "")
        raise ConfigError(
            f"--out {out} holds files that no run wrote ({shown}; no {MARKER} marker): ccrbench writes and deletes only "
            "its own run directories; choose a new or empty --out"
        )


@contextmanager
def locked_run_dir(out: Path) -> Iterator[None]:
    """Holds an exclusive lock on run directory `out` (created if missing) while the block runs.

    The lock is `fcntl.flock` on out/.lock, which records the holder's PID while it holds it
    (emptied when the block ends); the kernel releases the lock when the holder exits,
    however it exits: `lock_holder` tells whether a run is live.

    Raises:
        ConfigError: another process holds the lock (naming its PID).
    """
    out.mkdir(parents=True, exist_ok=True)
    fd = os.open(out / LOCK, os.O_RDWR | os.O_CREAT, 0o644)
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            holder = os.pread(fd, 32, 0).decode(errors="replace").strip() or "(unknown)"
            raise ConfigError(
                f"run directory {out} is in use by process {holder} (lock file {out / LOCK}); "
                "wait for that run to end or choose another --out"
            ) from None
        os.ftruncate(fd, 0)
        os.pwrite(fd, f"{os.getpid()}\n".encode(), 0)
        try:
            yield
        finally:
            os.ftruncate(fd, 0)  # no PID is left behind for anyone to signal
    finally:
        os.close(fd)


def lock_holder(out: Path) -> int | None:
    """The PID of the live process holding run directory `out`'s lock; None when no process holds it."""
    try:
        fd = os.open(out / LOCK, os.O_RDONLY)
    except FileNotFoundError:
        return None
    try:
        fcntl.flock(fd, fcntl.LOCK_SH | fcntl.LOCK_NB)
        return None
    except BlockingIOError:
        text = os.pread(fd, 32, 0).decode(errors="replace").strip()
        return int(text) if text.isdigit() else -1  # -1: held, its PID not written yet
    finally:
        os.close(fd)


def check_same_config(saved: Path, config: RunConfig) -> None:
    """Checks that run directory config `saved` is `config` (keys added since take defaults).

    Raises:
        ConfigError: `saved` is damaged, or differs (naming the differing keys).
    """
    try:
        data = yaml.safe_load(saved.read_text())
        if not isinstance(data, dict):
            raise ConfigError(f"expected a mapping of config keys, got {data!r}")
        old = from_dict(data)
    except (OSError, UnicodeDecodeError, yaml.YAMLError, ConfigError) as e:
        raise ConfigError(f"--resume: {saved} is damaged ({' '.join(str(e).split())}); start the run again with --overwrite") from e
    if old != config:
        a, b = flatten(to_dict(old)), flatten(to_dict(config))
        differ = [f"{k} (saved {a.get(k)}, given {b.get(k)})" for k in sorted(a.keys() | b.keys()) if a.get(k) != b.get(k)]
        raise ConfigError(
            f"--resume: {saved} was written by another config: {', '.join(differ)}; resume with the same config, "
            "start again with --overwrite, or choose another --out"
        )


def open_run_dir(out: Path, config: RunConfig, *, overwrite: bool, resume: bool) -> bool:
    """Checks the (locked) run directory: without results (emptied), emptied with `overwrite`, or resumed
    with the same config; a directory that is not resumed is marked as this run's (MARKER).

    Returns:
        Whether the run continues a saved one.

    Raises:
        FileExistsError: results exist and neither `resume` nor `overwrite` was asked for.
        ConfigError: `resume` with a config that differs from the saved one; files that no run wrote.
    """
    saved = out / "config.yaml"
    if resume and saved.exists():
        check_same_config(saved, config)
        return True
    check_out(out, resume=False)
    entries = [p for p in out.iterdir() if p.name != LOCK]
    if not overwrite and any(p.name not in NOT_RESULTS for p in entries):
        raise FileExistsError(
            f"run directory {out} already holds results; pass --resume to continue it, --overwrite to replace it, "
            "or choose another --out"
        )
    for p in entries:
        shutil.rmtree(p) if p.is_dir() and not p.is_symlink() else p.unlink()
    (out / MARKER).write_text("written by a ccrbench run: `--overwrite` may empty this directory\n")
    return False


def open_run(out: Path, config: RunConfig, *, overwrite: bool, resume: bool) -> tuple[bool, dict | None]:
    """(whether the run continues a saved one, its results when it is already complete) (`open_run_dir`)."""
    resumed = open_run_dir(out, config, overwrite=overwrite, resume=resume)
    return resumed, finished_results(out) if resumed else None


def saved_stage_seconds(out: Path) -> list[float]:
    """The stage times of the run's results.json (written before each checkpoint); [] without it."""
    try:
        return list(read_json(out / "results.json").get("stage_seconds", []))
    except ConfigError:  # only the checkpoint is there (copied, or results.json lost): the times are not
        return []


def finished_results(out: Path) -> dict | None:
    """The results of the finished run in `out`; None when it is unfinished, absent or unreadable."""
    try:
        results = read_json(out / "results.json")
    except ConfigError:
        return None
    return results if isinstance(results, dict) and results.get("complete") else None
