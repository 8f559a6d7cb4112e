"""What every report module shares: the missing value and the mean (defined with the
continual-learning maths, `evaluation/continual.py`), number cells."""

from __future__ import annotations

from ccrbench.evaluation.continual import NAN, mean, missing

__all__ = ["NAN", "fmt", "mean", "missing", "seeds"]


def fmt(x: float | None, digits: int = 1) -> str:
    """A table cell: the value with `digits` decimals, '-' when missing."""
    return "-" if missing(x) else f"{x:.{digits}f}"


def seeds(n: int) -> str:
    """'1 seed', '3 seeds'."""
    return f"{n} seed{'s' if n > 1 else ''}"
