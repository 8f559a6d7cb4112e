"""Strategies (registry `strategy`): Avalanche plugins, one small file each, for `RetrievalTemplate`.

`avalanche.training.Naive` (or any template on Avalanche's SupervisedTemplate as it is) cannot train
on retrieval batches: it moves every batch element to the device with `.to()` (captions are
tokenised per batch), calls `model(x)` with one input and `criterion(output, y)` with class
targets. `RetrievalTemplate` is that template for two-branch models; with no strategy plugin (or
`Finetune()`) it is naive fine-tuning, and these plugins add the continual-learning strategies.
"""

from ccrbench.strategies.base import StrategyPlugin
from ccrbench.strategies.compatible import Compatible
from ccrbench.strategies.ewc import EWC
from ccrbench.strategies.finetune import Finetune
from ccrbench.strategies.joint import Joint
from ccrbench.strategies.joint_no_ctnp import JointNoCTNP
from ccrbench.strategies.lora import LoRA
from ccrbench.strategies.lwf import LwF
from ccrbench.strategies.mas import MAS
from ccrbench.strategies.replay import Replay
from ccrbench.strategies.wise_ft import WiseFT
from ccrbench.strategies.zscl import ZSCL
from ccrbench.training.template import RetrievalTemplate

__all__ = ["EWC", "MAS", "ZSCL", "Compatible", "Finetune", "Joint", "JointNoCTNP", "LoRA", "LwF", "Replay", "RetrievalTemplate", "StrategyPlugin", "WiseFT"]
