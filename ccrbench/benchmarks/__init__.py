"""Benchmarks (registry `benchmark`): each returns a RetrievalBenchmark.

Every registered benchmark is also a function of this package returning it, with the
benchmark's config keys as keyword arguments: `ccrbench.benchmarks.shapes(train_images=200)`,
`ccrbench.benchmarks.secoco(root=...)`, `ccrbench.benchmarks.sevige(root=...)`. The result's
`train_stream` / `test_stream` are Avalanche streams (`.scenario` is the Avalanche benchmark).
"""

from ccrbench.benchmarks import captions, coco, flickr, shapes, visual_genome  # noqa: F401
from ccrbench.benchmarks.base import RetrievalBenchmark, TaskSplit, make_benchmark
from ccrbench.registry import BENCHMARKS

# After the modules above registered them: each benchmark's name is its function (the modules
# stay importable by their full name, e.g. `from ccrbench.benchmarks.shapes import DOMAINS`).
globals().update({name: BENCHMARKS.get(name) for name in BENCHMARKS.names()})

__all__ = ["RetrievalBenchmark", "TaskSplit", "make_benchmark", *BENCHMARKS.names()]
