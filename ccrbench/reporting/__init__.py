"""Reports of finished runs, read from their results: continual-learning metrics, tables,
grouping and statistics over seeds, findings, plots, drift tables, and TensorBoard.

Above `evaluation` (which measures embeddings) and below `runner` (which writes each run's
results.md from here): it reads results.json's records, never a model or a strategy.
"""

from ccrbench.evaluation.continual import summarize
from ccrbench.reporting.run_report import markdown_report

__all__ = ["markdown_report", "summarize"]
