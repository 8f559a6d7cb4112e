"""An example image encoder outside the package: `model.image_encoder: example_plugins.my_encoder:PooledPixels`."""

from __future__ import annotations

from typing import Annotated

from annotated_types import Ge
from torch import Tensor, nn


class PooledPixels(nn.Module):
    """Average-pools the image to a small grid of colours and projects them linearly.

    Args:
        grid: side of the pooled grid (grid x grid cells of 3 colours).
        output_dim: width of the features.
    """

    modality = "image"

    def __init__(self, *, grid: Annotated[int, Ge(1)] = 4, output_dim: Annotated[int, Ge(1)] = 64) -> None:
        super().__init__()
        self.output_dim = output_dim
        self.pool = nn.AdaptiveAvgPool2d(grid)
        self.project = nn.Linear(3 * grid * grid, output_dim)

    def forward(self, images: Tensor) -> Tensor:
        """Features [N, output_dim] of images [N, 3, H, W] in [0, 1]."""
        return self.project(self.pool(images).flatten(1))  # [N, 3, grid, grid] -> [N, 3 * grid * grid] -> [N, output_dim]
