"""Indexing, querying and retrieval metrics.

The Avalanche parts (`RetrievalMetrics`, `TrainingLoss`, `MetricCSVLogger`, `build_loggers`) are
imported on first use: reports and `import ccrbench.evaluation` do not import Avalanche (seconds).
"""

from importlib import import_module

from ccrbench.evaluation.protocol import TaskEmbeddings, evaluate_stage
from ccrbench.evaluation.retrieval import evaluate_retrieval, rank_metrics, retrieval_ranks

_LAZY = {
    "RetrievalMetrics": "ccrbench.evaluation.plugin",
    "TrainingLoss": "ccrbench.evaluation.training_loss",
    "MetricCSVLogger": "ccrbench.evaluation.loggers",
    "build_loggers": "ccrbench.evaluation.loggers",
}

__all__ = ["TaskEmbeddings", "evaluate_retrieval", "evaluate_stage", "rank_metrics", "retrieval_ranks", *_LAZY]


def __getattr__(name: str):  # noqa: ANN202 - PEP 562 lazy attributes
    if name in _LAZY:
        return getattr(import_module(_LAZY[name]), name)
    raise AttributeError(f"module 'ccrbench.evaluation' has no attribute {name!r}")
