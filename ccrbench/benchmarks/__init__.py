"""Benchmarks (registry `benchmark`): each returns a RetrievalBenchmark."""

from ccrbench.benchmarks import captions, coco, flickr, shapes, visual_genome  # noqa: F401
from ccrbench.benchmarks.base import RetrievalBenchmark, TaskSplit, make_benchmark

__all__ = ["RetrievalBenchmark", "TaskSplit", "make_benchmark"]
