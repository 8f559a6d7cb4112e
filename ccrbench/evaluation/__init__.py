"""Indexing, querying and retrieval metrics."""

from ccrbench.evaluation.protocol import TaskEmbeddings, evaluate_stage
from ccrbench.evaluation.retrieval import evaluate_retrieval, rank_metrics, retrieval_ranks

__all__ = ["TaskEmbeddings", "evaluate_retrieval", "evaluate_stage", "rank_metrics", "retrieval_ranks"]
