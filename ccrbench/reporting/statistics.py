"""Statistics over seeds: mean and standard deviation, Student t intervals, and their table cells."""

from __future__ import annotations

import functools
import math
from collections.abc import Sequence
from typing import Any

from ccrbench.reporting.common import NAN, missing


def mean_std(values: Sequence[float | None]) -> tuple[float, float, int]:
    """Mean, sample standard deviation (0 for one value) and count of the non-missing values."""
    xs = [v for v in values if not missing(v)]
    if not xs:
        return NAN, NAN, 0
    mean = sum(xs) / len(xs)
    std = math.sqrt(sum((x - mean) ** 2 for x in xs) / (len(xs) - 1)) if len(xs) > 1 else 0.0
    return mean, std, len(xs)


def confidence_interval(mean: float, std: float, n: int, *, level: float = 0.95) -> tuple[float, float]:
    """Student t interval of a mean from the sample standard deviation of n values (NaN if n < 2)."""
    if n < 2:
        return NAN, NAN
    half = _t_quantile(0.5 + level / 2, n - 1) * std / math.sqrt(n)
    return mean - half, mean + half


@functools.cache
def _t_quantile(q: float, df: int) -> float:
    """Student t quantile: scipy.stats.t.ppf's own function (scipy.stats takes a second to import)."""
    from scipy.special import stdtrit  # imported here: only reports need it

    return float(stdtrit(df, q))


def stat_cell(stat: tuple[float, float, int], bold: bool = False, *, digits: int = 1) -> str:
    """'mean', or 'mean ± std [95% CI]' over several seeds; in bold when `bold`."""
    mean, std, n = stat
    text = "-" if math.isnan(mean) else f"{mean:.{digits}f}"
    if n > 1:
        low, high = confidence_interval(mean, std, n)
        text += f" ± {std:.{digits}f} [{low:.{digits}f}, {high:.{digits}f}]"
    return f"**{text}**" if bold else text


def final_stat(runs: Sequence[dict[str, Any]], policy: str, scope: str, key: str) -> tuple[float, float, int]:
    """`mean_std` over the runs of one final value: `key` under `policy` in `scope`."""
    return mean_std([r["final"][policy].get(scope, {}).get(key) for r in runs])
