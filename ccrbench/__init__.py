"""ccrbench: continual cross-modal (image-text) retrieval benchmarks on Avalanche."""

import warnings

warnings.filterwarnings("ignore", message="no QP solver found", module="qpsolvers")

from ccrbench import benchmarks, evaluation, models, strategies  # noqa: E402,F401 - fill the registries
from ccrbench.evaluation.retrieval import evaluate_retrieval  # noqa: E402

__all__ = ["evaluate_retrieval"]
