"""Naive fine-tuning: train on each task in turn, nothing against forgetting."""

from ccrbench.registry import register_strategy
from ccrbench.strategies.base import StrategyPlugin


@register_strategy("finetune")
class Finetune(StrategyPlugin):
    """Fine-tuning baseline (the paper's "ft"): no hook is overridden."""
