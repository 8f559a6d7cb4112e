"""What every scripts/bench_*.py prints alike: a figure's min / median over repeats, and its table."""

from __future__ import annotations

import statistics
from collections.abc import Sequence


def stats(values: Sequence[float], unit: str, digits: int = 1, cpu: Sequence[float] | None = None) -> str:
    """'min / median unit (min / median of n)', with the CPU seconds of the same repeats when given."""
    cpu_s = f"; CPU {min(cpu):.1f} / {statistics.median(cpu):.1f} s" if cpu else ""
    return f"{min(values):.{digits}f} / {statistics.median(values):.{digits}f} {unit} (min / median of {len(values)}{cpu_s})"


def print_table(lines: list[str], header: str = "figure | goal | measured | ratio") -> list[str]:
    """Prints the `figure | goal | measured ...` lines under their header; returns them (for `make bench`)."""
    print(header)
    print("\n".join(lines))
    return lines
