"""Image side: torchvision ResNets without their classifier (`resnet18`, `resnet34`, `resnet50`, `resnet152`).

Pretrained weights come from a local state-dict file, or from a torchvision weights
name downloaded on demand into the torch hub cache (TORCH_HOME), as torchvision does;
offline (`CCRBENCH_OFFLINE=1` or `HF_HUB_OFFLINE=1`) only the cached file is read.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import torch
from annotated_types import Ge
from torch import Tensor, nn

from ccrbench.models.hub import OFFLINE_VARIABLES, offline
from ccrbench.registry import ConfigError, register_encoder

IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)
STAGES = ("layer1", "layer2", "layer3", "layer4")


def load_weights(arch: str, weights: str) -> dict[str, Tensor]:
    """The state dict named by `weights`: a local file, or a torchvision weights name of `arch`.

    A name (e.g. "IMAGENET1K_V1") is read from the torch hub cache, where torchvision
    downloads it first if it is missing and the machine is not offline (`hub.offline()`).

    Raises:
        ConfigError: the file does not exist, the name is unknown, or its file is neither
            cached nor downloadable (offline, or the download failed).
    """
    path = Path(weights).expanduser()
    if path.suffix in (".pth", ".pt") or path.exists():
        if not path.is_file():
            raise ConfigError(f"{arch}.weights: no file {path}")
        return torch.load(path, map_location="cpu", weights_only=True)
    import torchvision  # imported here: a second of imports that listing and checking configs do not need

    names = torchvision.models.get_model_weights(arch).__members__
    if weights not in names:
        raise ConfigError(
            f"{arch}.weights: {weights!r} is neither a .pth/.pt file nor a torchvision weights name "
            f"(known: {', '.join(names)})"
        )
    url = names[weights].url
    cached = Path(torch.hub.get_dir()) / "checkpoints" / Path(url).name
    if cached.is_file():
        return torch.load(cached, map_location="cpu", weights_only=True)
    provide = f"copy {url} to {cached} (TORCH_HOME sets the cache), or pass a local file: weights: /path/to/{Path(url).name}"
    if offline():
        raise ConfigError(
            f"{arch}.weights: torchvision weights {weights!r} are not in the torch cache ({cached}) and downloads are off "
            f"({' / '.join(OFFLINE_VARIABLES)} set): {provide}"
        )
    try:
        return torch.hub.load_state_dict_from_url(url, map_location="cpu", progress=True, check_hash=True, weights_only=True)
    except OSError as e:  # urllib's URLError and socket errors
        raise ConfigError(f"{arch}.weights: downloading torchvision weights {weights!r} from {url} failed ({e}): {provide}") from e


def frozen_norms_eval(module: nn.Module) -> None:
    """Puts the BatchNorm layers whose parameters are frozen in eval mode (their running statistics stay)."""
    for m in module.modules():
        if isinstance(m, nn.modules.batchnorm._BatchNorm) and m.weight is not None and not m.weight.requires_grad:
            m.eval()


class ResNetEncoder(nn.Module):
    """A torchvision ResNet without its fc layer: the globally pooled feature of layer4.

    Input: float images [N, 3, H, W] in [0, 1]; the ImageNet mean/std normalisation
    is done here, so pretrained weights see what they were trained on.

    Frozen parameters have requires_grad=False (the optimizer is built from the
    trainable ones only), and BatchNorm layers whose parameters are frozen stay in
    eval mode even while the model trains: their running statistics (from the weights
    file) are used, never re-estimated on the benchmark's batches.

    Args:
        weights: None (random initialisation), a local state-dict file (.pth/.pt, a
            torchvision ResNet's; its fc keys are ignored) or a torchvision weights name
            such as "IMAGENET1K_V1", downloaded on demand into the torch hub cache
            (offline: read from the cache only).
        freeze: freeze the whole backbone (only the projection on top trains).
        train_top_blocks: train only the top N of the residual stages layer1..layer4
            (0-4); the stem and the stages below are frozen. None trains everything.
    """

    modality = "image"
    arch = "resnet18"

    def __init__(self, *, weights: str | None = None, freeze: bool = False, train_top_blocks: Annotated[int, Ge(0)] | None = None) -> None:
        super().__init__()
        if train_top_blocks is not None and not 0 <= train_top_blocks <= len(STAGES):
            raise ConfigError(f"{self.arch}.train_top_blocks: expected 0 to {len(STAGES)}, got {train_top_blocks}")
        if freeze and train_top_blocks:
            raise ConfigError(f"{self.arch}: freeze freezes every block; use train_top_blocks alone to train the top ones")
        import torchvision  # as in load_weights

        self.backbone = torchvision.models.get_model(self.arch, weights=None)
        self.output_dim = self.backbone.fc.in_features
        self.backbone.fc = nn.Identity()
        if weights is not None:
            state = {k: v for k, v in load_weights(self.arch, weights).items() if not k.startswith("fc.")}
            self.backbone.load_state_dict(state)
        self.register_buffer("mean", torch.tensor(IMAGENET_MEAN).view(1, 3, 1, 1), persistent=False)
        self.register_buffer("std", torch.tensor(IMAGENET_STD).view(1, 3, 1, 1), persistent=False)
        trained = 0 if freeze else train_top_blocks
        if trained is not None:
            self.backbone.requires_grad_(False)
            for stage in STAGES[len(STAGES) - trained :]:
                getattr(self.backbone, stage).requires_grad_(True)

    def train(self, mode: bool = True) -> "ResNetEncoder":
        """Sets the training mode, keeping frozen BatchNorm layers in eval mode."""
        super().train(mode)
        frozen_norms_eval(self)
        return self

    def forward(self, images: Tensor) -> Tensor:
        return self.backbone((images - self.mean) / self.std)  # [N, output_dim]


@register_encoder("resnet18")
class ResNet18Encoder(ResNetEncoder):
    arch = "resnet18"


@register_encoder("resnet34")
class ResNet34Encoder(ResNetEncoder):
    arch = "resnet34"


@register_encoder("resnet50")
class ResNet50Encoder(ResNetEncoder):
    arch = "resnet50"


@register_encoder("resnet152")
class ResNet152Encoder(ResNetEncoder):
    arch = "resnet152"
