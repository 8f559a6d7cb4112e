"""Training: the retrieval template on Avalanche and the plugins every run trains with
(progress bar, data-wait meter, training curves). Below `strategies`, which build on it."""

from ccrbench.training.template import NonFiniteLossError, RetrievalBatch, RetrievalTemplate

__all__ = ["NonFiniteLossError", "RetrievalBatch", "RetrievalTemplate"]
