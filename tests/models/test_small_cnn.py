import copy

import pytest
import torch
from torch import nn

from ccrbench.models.image import SmallCNN


@pytest.mark.parametrize("norm", ["group", "batch"])
def test_pool_then_relu_is_bit_for_bit_relu_then_pool(norm):
    """The ReLU runs after the max-pool (on a quarter of the activations): outputs and every
    parameter's gradient equal those of the usual conv-norm-ReLU-pool order exactly."""
    torch.manual_seed(0)
    model = SmallCNN(width=4, output_dim=16, norm=norm)
    usual = copy.deepcopy(model)
    layers = list(usual.features)
    for i in range(len(layers) - 1):
        if isinstance(layers[i], nn.MaxPool2d) and isinstance(layers[i + 1], nn.ReLU):
            layers[i], layers[i + 1] = layers[i + 1], layers[i]
    usual.features = nn.Sequential(*layers)
    assert [type(m) for m in usual.features] != [type(m) for m in model.features]
    images, weights = torch.rand(6, 3, 32, 32), torch.randn(6, 16)
    grads = []
    for m in (model, usual):
        out = m(images)
        (out * weights).sum().backward()
        grads.append((out.detach(), {n: p.grad for n, p in m.named_parameters()}))
    assert torch.equal(grads[0][0], grads[1][0])
    assert all(torch.equal(grads[0][1][n], grads[1][1][n]) for n in grads[0][1])
