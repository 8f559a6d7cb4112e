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


def test_strided_first_block_computes_every_other_position_of_the_full_convolution():
    """strided_first: the first convolution (stride 2) gives the stride-1 convolution's values
    at the even positions, with no max-pool after it; the other blocks are unchanged."""
    torch.manual_seed(0)
    strided, full = SmallCNN(width=4, output_dim=16, strided_first=True), SmallCNN(width=4, output_dim=16)
    assert [p.shape for p in strided.parameters()] == [p.shape for p in full.parameters()]  # only a stride differs
    strided.features[1].weight.data.copy_(full.features[1].weight)
    kinds = [type(m) for m in strided.features]
    assert kinds.count(nn.MaxPool2d) == 2 and kinds[1:4] == [nn.Conv2d, nn.GroupNorm, nn.ReLU]
    x = nn.PixelUnshuffle(2)(torch.rand(2, 3, 32, 32))  # [2, 12, 16, 16]
    torch.testing.assert_close(strided.features[1](x), full.features[1](x)[:, :, ::2, ::2])
    assert strided(torch.rand(2, 3, 32, 32)).shape == (2, 16)
