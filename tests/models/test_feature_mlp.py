import pytest
import torch
from torch import nn

from ccrbench.models.features import FeatureMLP
from ccrbench.options import check_options
from ccrbench.registry import ENCODERS, ConfigError


def test_layers_and_shapes():
    one = FeatureMLP(input_dim=6, output_dim=4, layers=1)
    assert [type(m) for m in one.mlp] == [nn.Linear]
    three = FeatureMLP(input_dim=6, hidden_dim=5, output_dim=4, layers=3)
    assert [type(m) for m in three.mlp] == [nn.Linear, nn.ReLU, nn.Linear, nn.ReLU, nn.Linear]
    out = three(torch.randn(7, 6))
    assert out.shape == (7, 4) and three.output_dim == 4 and (out < 0).any()  # no ReLU after the last layer


def test_registered_as_an_image_encoder():
    encoder = ENCODERS.build("feature_mlp", {"input_dim": 3, "hidden_dim": 2, "output_dim": 2}, corpus=())
    assert encoder.modality == "image" and isinstance(encoder, FeatureMLP)


def test_bad_input_is_a_clear_error():
    with pytest.raises(ConfigError, match="feature_mlp.layers: must be >= 1, got 0"):
        check_options(FeatureMLP, {"layers": 0}, where="feature_mlp")
    with pytest.raises(ConfigError, match=r"expects features \[N, 6\], got \(2, 3, 8, 8\).*input_dim"):
        FeatureMLP(input_dim=6)(torch.rand(2, 3, 8, 8))
