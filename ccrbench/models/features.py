"""Image side for precomputed features: an MLP over feature vectors (experiments on real data on CPU)."""

from __future__ import annotations

from typing import Annotated

from annotated_types import Ge
from torch import Tensor, nn

from ccrbench.registry import ConfigError, register_encoder


@register_encoder("feature_mlp")
class FeatureMLP(nn.Module):
    """An MLP over precomputed image features (benchmarks in `mode: features`).

    Input: float features [N, input_dim]. `layers` Linear layers with ReLU between
    them (none after the last: the model's projection follows).

    Args:
        input_dim: width of the precomputed features (the extracting encoder's output_dim).
        hidden_dim: width of the hidden layers.
        output_dim: size of the image feature.
        layers: number of Linear layers (1: a single Linear input_dim -> output_dim).
    """

    modality = "image"

    def __init__(
        self,
        *,
        input_dim: Annotated[int, Ge(1)] = 512,
        hidden_dim: Annotated[int, Ge(1)] = 1024,
        output_dim: Annotated[int, Ge(1)] = 1024,
        layers: Annotated[int, Ge(1)] = 2,
    ) -> None:
        super().__init__()
        widths = [input_dim] + [hidden_dim] * (layers - 1) + [output_dim]
        blocks: list[nn.Module] = []
        for i, (a, b) in enumerate(zip(widths[:-1], widths[1:])):
            blocks += [nn.ReLU()] if i else []
            blocks.append(nn.Linear(a, b))
        self.mlp = nn.Sequential(*blocks)
        self.input_dim = input_dim
        self.output_dim = output_dim

    def forward(self, features: Tensor) -> Tensor:
        if features.ndim != 2 or features.shape[1] != self.input_dim:
            raise ConfigError(
                f"feature_mlp expects features [N, {self.input_dim}], got {tuple(features.shape)}: set "
                f"model.image_encoder.input_dim to the width of the precomputed features, and use a benchmark in mode "
                f"'features'"
            )
        return self.mlp(features)  # [N, output_dim]
