"""ccrbench: continual cross-modal (image-text) retrieval benchmarks on Avalanche."""

import warnings

warnings.filterwarnings("ignore", message="no QP solver found", module="qpsolvers")

__all__ = ["evaluate_retrieval"]


def __getattr__(name: str):  # noqa: ANN202 - lazy attributes: `import ccrbench` stays light (no torch, no Avalanche)
    if name == "evaluate_retrieval":
        from ccrbench.evaluation.retrieval import evaluate_retrieval

        return evaluate_retrieval
    raise AttributeError(f"module 'ccrbench' has no attribute {name!r}")
