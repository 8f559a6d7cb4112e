"""Strategies (registry `strategy`): Avalanche plugins, one small file each."""

from ccrbench.strategies import compatible, ewc, finetune, joint, joint_no_ctnp, lwf, mas, replay  # noqa: F401
from ccrbench.strategies.base import StrategyPlugin

__all__ = ["StrategyPlugin"]
