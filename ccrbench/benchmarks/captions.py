"""`image_captions`: a benchmark over image-caption files people keep (CSV/TSV, JSON Lines,
Parquet, Arrow / Hugging Face `save_to_disk`, webdataset shards), with tasks from a column,
keywords or a time.

Files: `files` under `root` (glob patterns allowed, e.g. `shards/*.tar`), read by
`files.tables` (image and caption columns named by `image_column` / `caption_column`;
image paths relative to the file naming them). Several captions per image come as
repeated rows of the same image or as a list in one cell; each image keeps its first
`captions_per_image` captions (one with fewer is left out and counted).

Image ids: the `id_column` (integers) when given, else a hash of the image's path
relative to `root` (stable across machines). One id naming two images is an error
naming both rows, and so are two rows of one image that disagree on its split, task,
time or label: an image is in one split and one task, never two, and loaded once.

Splits: the `split_column` (train / val / test) when given, else a hash of
(`split_seed`, image id): test below `test_fraction`, val in the next `val_fraction`
(deterministic, independent of file order). Validation images are assigned to tasks
exactly as test images are.

Tasks (`task_by`): "column" (`task_column`, values grouped by `tasks`), "keywords"
(`keywords` file, over the captions or `label_column`) or "time" (`time_column` cut at
`period_boundaries`); see `files.task_rules`.

Bad rows (no image, a missing image file, an empty caption, no task value, an
unreadable time or split value, a shard sample without caption): `on_bad_row: fail`
stops with an error naming the file and the row, `skip` leaves the row out and counts
it in `ccrbench data check`.
"""

from __future__ import annotations

import glob
import hashlib
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Annotated, Literal

from annotated_types import Ge, Interval

from ccrbench.benchmarks.files.reading import DataError, clean_caption, under
from ccrbench.benchmarks.files.tables import Row, read_rows
from ccrbench.benchmarks.files.task_rules import ColumnRule, KeywordRule, TimeRule
from ccrbench.benchmarks.files.tasks import NO_TASK, SPLITS, Candidate, Exclusions, TaskData, assemble
from ccrbench.benchmarks.visual_genome import split_of
from ccrbench.registry import ConfigError, register_file_benchmark

TaskRule = ColumnRule | KeywordRule | TimeRule


@dataclass
class ImageEntry:
    """One image gathered from its rows: its captions and the values its rows agree on."""

    where: str
    file: str
    image_id: int
    captions: list[str] = field(default_factory=list)
    fields: dict[str, str] = field(default_factory=dict)


def path_id(relative: str) -> int:
    """A stable 63-bit image id from an image's path relative to the benchmark's root."""
    return int.from_bytes(hashlib.sha1(relative.encode()).digest()[:8], "big") >> 1


class BadRows:
    """Fails on a bad row (`on_bad_row: fail`) or counts it by reason (`skip`)."""

    def __init__(self, on_bad_row: Literal["fail", "skip"], excluded: Exclusions) -> None:
        self.on_bad_row = on_bad_row
        self.excluded = excluded

    def __call__(self, where: str, reason: str, fix: str, *, detail: str = "") -> None:
        """Raises naming `where`, `reason` + `detail` and `fix`, or counts the row under `reason`."""
        if self.on_bad_row == "fail":
            raise DataError(f"{where}: {reason}{detail}; {fix}, or set benchmark.on_bad_row=skip to leave such rows out and count them")
        self.excluded.add(NO_TASK, f"bad row: {reason}")


def gather(rows: Iterable[Row], *, root: Path, id_column: str, bad: BadRows) -> list[ImageEntry]:
    """Groups rows by image (repeated rows add captions), checking files, captions and ids.

    Raises:
        DataError: a bad row (with on_bad_row=fail), an id naming two images, or two rows of
            one image that disagree on another column.
    """
    by_source: dict[Path, ImageEntry] = {}
    by_id: dict[int, ImageEntry] = {}
    for row in rows:
        if row.image is None:
            bad(row.where, "no image", "fill in its image column (a shard sample needs a jpg, jpeg or png)")
            continue
        if not row.image.is_file():
            bad(row.where, "image not found", "copy the image there or fix the path (relative to the file)", detail=f": {row.image}")
            continue
        captions = [clean_caption(c) for c in row.captions]
        if not captions or not all(captions):
            bad(row.where, "empty caption", "write its caption")
            continue
        fields = {k: v for k, v in row.fields.items() if k != id_column}
        source = row.source.resolve()  # one image however its files name it
        entry = by_source.get(source)
        if entry is None:
            if id_column:
                try:
                    image_id = int(row.fields[id_column])
                except ValueError:
                    bad(row.where, "id not an integer", f"write an integer in column {id_column!r}", detail=f": {row.fields[id_column]!r}")
                    continue
            else:
                top = root.resolve()
                image_id = path_id((source.relative_to(top) if source.is_relative_to(top) else source).as_posix())
            if image_id in by_id:
                raise DataError(
                    f"{row.where}: image id {image_id} is already the id of {by_id[image_id].file} ({by_id[image_id].where}); "
                    f"an id names one image: fix the ids in column {id_column or '(derived from the path)'!r}"
                )
            entry = by_id[image_id] = by_source[source] = ImageEntry(row.where, str(row.image.resolve()), image_id, fields=fields)
        elif id_column and row.fields[id_column] != str(entry.image_id):
            raise DataError(f"{row.where}: image {row.image} has id {row.fields[id_column]!r} here but {entry.image_id} in {entry.where}")
        else:
            differ = {k: (v, entry.fields[k]) for k, v in fields.items() if v != entry.fields[k]}
            if differ:
                column, (here, there) = next(iter(differ.items()))
                raise DataError(
                    f"{row.where}: image {row.image} has {column}={here!r} here but {there!r} in {entry.where}; the rows "
                    f"of one image must agree (an image is in one split and one task)"
                )
        entry.captions.extend(captions)
    return list(by_source.values())


def to_candidates(
    images: Sequence[ImageEntry],
    *,
    rule: TaskRule,
    task_value: str,
    split_column: str,
    split_seed: int,
    val_fraction: float,
    test_fraction: float,
    captions_per_image: int,
    bad: BadRows,
) -> list[Candidate]:
    """Assigns each image its split and task; counts those left out.

    Args:
        task_value: the field the rule reads ("" for a keyword rule over the captions).
        split_column: the field holding the split ("" for the hash split).
    """
    candidates = []
    for image in sorted(images, key=lambda im: im.image_id):
        if split_column:
            split = {"restval": "train"}.get(image.fields[split_column], image.fields[split_column])
            if split not in SPLITS:
                bad(image.where, "unknown split", f"write one of {', '.join(SPLITS)} in column {split_column!r}", detail=f" {image.fields[split_column]!r}")
                continue
        else:
            split = split_of(image.image_id, seed=split_seed, test_fraction=test_fraction, val_fraction=val_fraction)
        value = image.fields.get(task_value, "")
        if isinstance(rule, KeywordRule):
            task = rule.task_of([value] if task_value else image.captions)
        elif not value:
            bad(image.where, "no task value", f"fill in column {task_value!r}", detail=f" (column {task_value!r} is empty)")
            continue
        elif isinstance(rule, TimeRule):
            try:
                task = rule.task_of(value)
            except ValueError as e:
                bad(image.where, "unreadable time", f"write a number or an ISO date in column {task_value!r}", detail=f" {value!r} ({e})")
                continue
        else:
            task = rule.task_of(value)
        if isinstance(task, str):
            bad.excluded.add(NO_TASK, task)
        elif len(image.captions) < captions_per_image:
            bad.excluded.add(rule.names[task], f"fewer than {captions_per_image} captions")
        else:
            candidates.append(Candidate(image.image_id, task, split, tuple(image.captions[:captions_per_image]), image.file))
    return candidates


def expand_files(base: Path, files: Sequence[str]) -> list[Path]:
    """Each entry of `files` under `base`, glob patterns expanded (sorted); a pattern matching nothing is an error."""
    if not files:
        raise ConfigError("image_captions.files: list at least one file (CSV, TSV, JSONL, Parquet, Arrow or .tar shards)")
    out: list[Path] = []
    for name in files:
        path = under(base, name)
        if glob.has_magic(str(path)):
            matched = sorted(Path(p) for p in glob.glob(str(path)))
            if not matched:
                raise DataError(f"image_captions.files: {name!r} matches no file under {base}")
            out += matched
        else:
            out.append(path)
    return list(dict.fromkeys(out))


def make_rule(
    *,
    task_by: str,
    base: Path,
    tasks: Sequence[Sequence[str]],
    task_names: Sequence[str],
    keywords: str,
    period_boundaries: Sequence[str | int | float],
    values: Iterable[str],
) -> TaskRule:
    """The task rule of the options (`values`: the task column's values, for a column rule without groups)."""
    if task_by == "keywords":
        if not keywords:
            raise ConfigError("task_by=keywords: set benchmark.keywords to a YAML file mapping each task to its words")
        rule = KeywordRule.from_file(under(base, keywords))
        if task_names and tuple(task_names) != rule.names:
            raise ConfigError(f"task_names {list(task_names)} differ from the keywords file's tasks {list(rule.names)}; drop task_names")
        return rule
    if task_by == "time":
        return TimeRule.from_options([str(b) for b in period_boundaries], task_names)
    return ColumnRule.from_options(tasks, task_names, list(values))


@register_file_benchmark("image_captions")
def image_captions(
    *,
    root: str = "data/captions",
    files: tuple[str, ...] = ("captions.csv",),
    image_column: str = "image",
    caption_column: str = "caption",
    id_column: str = "",
    split_column: str = "",
    val_fraction: Annotated[float, Interval(ge=0, lt=1)] = 0.1,
    test_fraction: Annotated[float, Interval(gt=0, lt=1)] = 0.2,
    split_seed: Annotated[int, Ge(0)] = 0,
    task_by: Literal["column", "keywords", "time"] = "column",
    task_column: str = "task",
    tasks: tuple[tuple[str, ...], ...] = (),
    task_names: tuple[str, ...] = (),
    keywords: str = "",
    label_column: str = "",
    time_column: str = "time",
    period_boundaries: tuple[str | int | float, ...] = (),
    captions_per_image: Annotated[int, Ge(1)] = 1,
    on_bad_row: Literal["fail", "skip"] = "fail",
    mode: Literal["images", "features"] = "images",
    features_dir: str = "features",
    image_size: Annotated[int, Ge(8)] = 224,
    on_bad_image: Literal["fail", "skip"] = "fail",
) -> TaskData:
    """Image-caption files as a sequence of tasks (see the module doc).

    Args:
        root: folder the files, the keywords file and features_dir are relative to.
        files: the data files (.csv, .tsv, .jsonl, .parquet, .arrow, .tar shards), glob patterns allowed.
        image_column: the column holding each row's image path (relative to its file).
        caption_column: the column holding its caption, or a list of captions.
        id_column: a column of integer image ids; "" derives them from the image paths.
        split_column: a column of train / val / test; "" splits by a hash of the image id.
        val_fraction: without split_column, the share of images held out for validation.
        test_fraction: without split_column, the share of images held out for testing.
        split_seed: seed of the hash split; another seed holds out other images.
        task_by: "column" (task_column), "keywords" (keywords file) or "time" (time_column).
        task_column: with task_by=column, the column naming each image's task.
        tasks: with task_by=column, the column values of each task in training order (one
            task per distinct value, sorted, when empty); rows of other values are left out.
        task_names: one name per task (column: default the values joined with '+'; time:
            default the periods' bounds; keywords: the file's names).
        keywords: with task_by=keywords, a YAML file {task: [words]} relative to root.
        label_column: with task_by=keywords, match the words in this column instead of the captions.
        time_column: with task_by=time, the column of times (numbers such as years, or ISO dates).
        period_boundaries: with task_by=time, the times at which a new period (task) starts.
        captions_per_image: captions kept per image (its first ones); images with fewer are
            left out and counted.
        on_bad_row: a bad row: "fail" stops with an error naming file and row, "skip" leaves
            it out and counts it.
        mode: "images" reads the image files; "features" reads precomputed features
            ({features_dir}/{train,val,test}_ims.npy, _caps.txt, _ids.txt; `ccrbench features`).
        features_dir: folder of the precomputed features, relative to root.
        image_size: side of the square image crops (mode "images").
        on_bad_image: an image that does not decode (or has no feature row): "fail" or "skip" (counted).
    """
    base = Path(root).expanduser()
    if val_fraction + test_fraction >= 1.0:
        raise ConfigError(f"image_captions: val_fraction ({val_fraction}) + test_fraction ({test_fraction}) must be below 1")
    task_value = {"column": task_column, "time": time_column, "keywords": label_column}[task_by]
    columns = [c for c in dict.fromkeys([task_value, split_column, id_column]) if c]
    excluded = Exclusions()
    bad = BadRows(on_bad_row, excluded)
    rows = (
        row
        for path in expand_files(base, files)
        for row in read_rows(path, image_column=image_column, caption_column=caption_column, columns=columns)
    )
    images = gather(rows, root=base, id_column=id_column, bad=bad)
    rule = make_rule(
        task_by=task_by,
        base=base,
        tasks=tasks,
        task_names=task_names,
        keywords=keywords,
        period_boundaries=period_boundaries,
        values=(im.fields.get(task_value, "") for im in images),
    )
    candidates = to_candidates(
        images,
        rule=rule,
        task_value=task_value,
        split_column=split_column,
        split_seed=split_seed,
        val_fraction=val_fraction,
        test_fraction=test_fraction,
        captions_per_image=captions_per_image,
        bad=bad,
    )
    return assemble(
        candidates=candidates,
        task_names=rule.names,
        excluded=excluded,
        mode=mode,
        image_folders=[base],
        image_size=image_size,
        on_bad_image=on_bad_image,
        features_dir=under(base, features_dir),
    )
