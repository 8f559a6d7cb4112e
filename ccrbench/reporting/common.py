"""What every report module shares: the missing value, the mean, number cells."""

from __future__ import annotations

import math
from collections.abc import Iterable

NAN = float("nan")


def missing(x: float | None) -> bool:
    """None or NaN: a value not measured (results.json writes NaN as null)."""
    return x is None or (isinstance(x, float) and math.isnan(x))


def mean(xs: Iterable[float | None]) -> float:
    """Mean of the values that are not missing (NaN when none is)."""
    kept = [x for x in xs if not missing(x)]
    return sum(kept) / len(kept) if kept else NAN


def fmt(x: float | None, digits: int = 1) -> str:
    """A table cell: the value with `digits` decimals, '-' when missing."""
    return "-" if missing(x) else f"{x:.{digits}f}"


def seeds(n: int) -> str:
    """'1 seed', '3 seeds'."""
    return f"{n} seed{'s' if n > 1 else ''}"
