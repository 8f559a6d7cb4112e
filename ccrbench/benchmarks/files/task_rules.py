"""Task rules: which task an image belongs to, from a column, keywords or a time.

- `ColumnRule`: a column's value; each task is a group of values (one task per value
  when no group is given).
- `KeywordRule`: a file mapping each task to its words (YAML or JSON, `{task: [words]}`,
  in training order), matched against the words of an image's captions or of a label
  column (plurals in -s/-es match their singular). An image matching several tasks,
  or none, is left out and counted, as SeViGe's vocabulary does.
- `TimeRule`: a time column (numbers, e.g. years, or ISO dates) cut into periods at
  given boundaries: a stream ordered in time, as TiC-CLIP's.

`task_of` returns the task index, or the reason the image is in no task (a string),
which the loader counts; a value that cannot be read at all raises `ValueError`.
"""

from __future__ import annotations

import datetime
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import yaml

from ccrbench.benchmarks.files.reading import DataError, require_file
from ccrbench.registry import ConfigError
from ccrbench.tokens import split_words


@dataclass(frozen=True)
class ColumnRule:
    """Tasks from a column's value.

    Attributes:
        names: one name per task.
        groups: the column values of each task.
    """

    names: tuple[str, ...]
    groups: tuple[tuple[str, ...], ...]

    @classmethod
    def from_options(cls, groups: Sequence[Sequence[str]], names: Sequence[str], values: Sequence[str]) -> "ColumnRule":
        """Groups as given (named by `names`, else by their values joined with '+'); without groups,
        one task per distinct value in `values`, sorted."""
        if not groups:
            distinct = sorted(set(values) - {""})
            groups = [(v,) for v in distinct]
        names = tuple(names) or tuple("+".join(g) for g in groups)
        rule = cls(names=names, groups=tuple(tuple(g) for g in groups))
        check_names(rule.names, len(rule.groups))
        seen: dict[str, int] = {}
        for t, group in enumerate(rule.groups):
            for value in group:
                if value in seen:
                    raise ConfigError(f"tasks: value {value!r} is in groups {seen[value]} and {t}; a value belongs to one task")
                seen[value] = t
        return rule

    def task_of(self, value: str) -> int | str:
        for t, group in enumerate(self.groups):
            if value in group:
                return t
        return "task value outside every task"


def word_forms(word: str) -> set[str]:
    """A lower-cased word and its singular candidates (-s, -es)."""
    word = word.lower()
    return {word, *([word[:-1]] if word.endswith("s") else []), *([word[:-2]] if word.endswith("es") else [])}


@dataclass(frozen=True)
class KeywordRule:
    """Tasks from words: an image belongs to the one task whose words its text contains.

    Attributes:
        names: one name per task, in the file's order.
        words: the (lower-case, singular) words of each task.
    """

    names: tuple[str, ...]
    words: tuple[frozenset[str], ...]

    @classmethod
    def from_file(cls, path: Path) -> "KeywordRule":
        """Reads `{task: [words]}` (YAML or JSON; a word may be a phrase of one token only).

        Raises:
            DataError: a missing file, or not a mapping of task names to lists of words.
        """
        require_file(path, hint="write a YAML file mapping each task to its words, e.g. {animals: [dog, cat]}")
        try:
            data = yaml.safe_load(path.read_text(encoding="utf-8"))
        except yaml.YAMLError as e:
            raise DataError(f"{path}: not YAML/JSON ({e})") from e
        return cls.from_mapping(data, where=str(path))

    @classmethod
    def from_mapping(cls, data: object, *, where: str) -> "KeywordRule":
        """`{task: [words]}` in training order; `where` names its source in errors.

        Raises:
            DataError: not a mapping of task names to non-empty lists of words, or a word of two tasks.
        """
        if not isinstance(data, dict) or not data or not all(isinstance(w, (list, tuple)) and w for w in data.values()):
            raise DataError(f"{where}: expected a mapping of each task to a non-empty list of words, e.g. {{animals: [dog, cat]}}")
        words = tuple(frozenset(str(w).strip().lower() for w in ws) for ws in data.values())
        seen: dict[str, str] = {}
        for name, ws in zip(data, words):
            for w in ws:
                if w in seen:
                    raise DataError(f"{where}: word {w!r} is listed for tasks {seen[w]!r} and {name!r}; a word belongs to one task")
                seen[w] = str(name)
        return cls(names=tuple(map(str, data)), words=words)

    def task_of(self, texts: Sequence[str]) -> int | str:
        found = set().union(*(word_forms(w) for text in texts for w in split_words(text) if w.isalnum()))
        tasks = [t for t, ws in enumerate(self.words) if found & ws]
        if len(tasks) > 1:
            return "words of several tasks"
        return tasks[0] if tasks else "no task's words"


def parse_time(value: str) -> float | datetime.datetime:
    """A number (e.g. a year) or an ISO date/time.

    Raises:
        ValueError: neither.
    """
    try:
        return float(value)
    except ValueError:
        return datetime.datetime.fromisoformat(value)


@dataclass(frozen=True)
class TimeRule:
    """Tasks from a time: period t holds the times in [boundaries[t-1], boundaries[t]).

    Attributes:
        names: one name per period (len(boundaries) + 1).
        boundaries: the times at which a new period starts, ascending.
    """

    names: tuple[str, ...]
    boundaries: tuple[float | datetime.datetime, ...]

    @classmethod
    def from_options(cls, boundaries: Sequence[str], names: Sequence[str]) -> "TimeRule":
        if not boundaries:
            raise ConfigError("period_boundaries: give at least one time at which a new period starts (e.g. [2015, 2020])")
        try:
            parsed = tuple(parse_time(b) for b in boundaries)
        except (ValueError, TypeError) as e:
            raise ConfigError(f"period_boundaries: {list(boundaries)} are not all numbers or all ISO dates ({e})") from e
        try:
            ordered = all(a < b for a, b in zip(parsed, parsed[1:]))
        except TypeError as e:
            raise ConfigError(f"period_boundaries: mix numbers and dates ({list(boundaries)}); use one kind") from e
        if not ordered:
            raise ConfigError(f"period_boundaries: must increase strictly, got {list(boundaries)}")
        edges = ["", *boundaries, ""]
        names = tuple(names) or tuple(f"{a or '...'}-{b or '...'}" for a, b in zip(edges, edges[1:]))
        check_names(names, len(parsed) + 1)
        return cls(names=names, boundaries=parsed)

    def task_of(self, value: str) -> int:
        """The period of `value`.

        Raises:
            ValueError: not a time of the boundaries' kind.
        """
        time = parse_time(value)
        try:
            return sum(time >= b for b in self.boundaries)
        except TypeError as e:
            raise ValueError(f"{value!r} is not a time of the same kind as the period boundaries") from e


def check_names(names: Sequence[str], tasks: int) -> None:
    """One distinct name per task, or a ConfigError."""
    if tasks < 1:
        raise ConfigError("tasks: the rule gives no task (no group, no value in the files)")
    if len(names) != tasks:
        raise ConfigError(f"task_names: {len(names)} names for {tasks} tasks; give one name per task")
    if len(set(names)) != len(names):
        raise ConfigError(f"task_names: names must differ, got {list(names)}")
