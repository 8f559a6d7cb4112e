"""Indexing, querying and retrieval metrics.

Every name here is imported on first use (PEP 562): reports and the typed keys
(`ccrbench.evaluation.keys`) import neither torch nor Avalanche, which cost seconds.
"""

from importlib import import_module

_LAZY = {
    "TaskEmbeddings": "ccrbench.evaluation.protocol",
    "evaluate_stage": "ccrbench.evaluation.protocol",
    "evaluate_retrieval": "ccrbench.evaluation.retrieval",
    "rank_metrics": "ccrbench.evaluation.retrieval",
    "retrieval_ranks": "ccrbench.evaluation.retrieval",
    "RetrievalMetrics": "ccrbench.evaluation.plugin",
    "retention_stream": "ccrbench.evaluation.plugin",
    "TrainingLoss": "ccrbench.evaluation.training_loss",
    "MetricCSVLogger": "ccrbench.evaluation.loggers",
    "build_loggers": "ccrbench.evaluation.loggers",
}

__all__ = list(_LAZY)


def __getattr__(name: str):  # noqa: ANN202 - PEP 562 lazy attributes
    if name in _LAZY:
        return getattr(import_module(_LAZY[name]), name)
    raise AttributeError(f"module 'ccrbench.evaluation' has no attribute {name!r}")
