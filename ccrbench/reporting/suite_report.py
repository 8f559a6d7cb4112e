"""`ccrbench report`: the comparison of a folder of finished runs written as report.md,
report.csv and plots/, and the measure it is about."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

from ccrbench.evaluation.keys import parse_keys
from ccrbench.evaluation.measures import MEASURES
from ccrbench.registry import ConfigError
from ccrbench.reporting.comparison import comparison_csv, comparison_report
from ccrbench.reporting.findings import findings_table


def choose_metric(results: Sequence[dict[str, Any]], metric: str | None) -> str:
    """`metric` if some run has it (default: r10, else the runs' largest K); raises ConfigError listing theirs."""
    found = {key.with_direction(None) for r in results for key in parse_keys(r["final"]["reindex"]["all"]) if key.direction}
    ranked = sorted((m for m in found if m.is_recall), key=lambda m: m.k)
    others = sorted(set(found) - set(ranked), key=lambda m: list(MEASURES).index(m.measure))  # medr, meanr, then any added
    available = [str(m) for m in [*ranked, *others]]
    if metric is None:
        return "r10" if "r10" in available else str(ranked[-1])
    if metric not in available:
        raise ConfigError(f"--metric {metric}: the runs measured {', '.join(available)}; choose one of them")
    return metric


def write_report(runs_dir: Path, results: Sequence[dict[str, Any]], names: Sequence[str], *, metric: str) -> tuple[str, list[Path]]:
    """Writes `runs_dir`/report.md, report.csv and plots/ comparing the runs on `metric`.

    Returns:
        The text of report.md and the plots' paths.
    """
    from ccrbench.reporting.plots import plot_all  # matplotlib: imported when plotting

    plots = plot_all(results, names, runs_dir / "plots", metric=metric)
    text = (
        f"# {len(results)} runs in {runs_dir.name}: {metric}\n\n"
        "Final values after the last task; **bold**: best continual result of the row; over several seeds: "
        "mean ± std [95% confidence interval of the mean, Student t].\n\n"
        + comparison_report(results, metric=metric, names=names)
        + "\n## Findings\n\nEach finding as a paired difference over the seeds both sides ran (high minus low); "
        "holds: the 95% interval lies above 0; does not hold: below 0; inconclusive: it contains 0 "
        "(or a single seed).\n\n"
        + findings_table(results, metric=metric)
        + "\n"
        + "\n## Plots\n\n"
        + "\n".join(f"![{p.stem}](plots/{p.name})" for p in plots)
        + "\n"
    )
    (runs_dir / "report.md").write_text(text)
    (runs_dir / "report.csv").write_text(comparison_csv(results, metric=metric, names=names))
    return text, plots
