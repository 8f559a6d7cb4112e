import math

import pytest
from torch.utils.tensorboard import SummaryWriter
import torch
from torch import nn

from ccrbench.config import from_dict
from ccrbench.tokens import TokenBatch
from ccrbench.models.two_branch import TwoBranchModel, projection_head
from ccrbench.registry import ConfigError
from ccrbench.models.build import model_from_config


class Features(nn.Module):
    """A stand-in encoder: a fixed feature of size `output_dim`."""

    def __init__(self, output_dim):
        super().__init__()
        self.output_dim = output_dim
        self.weight = nn.Parameter(torch.ones(output_dim))

    def tokenize(self, captions):
        ids = torch.ones(len(captions), 1, dtype=torch.long)
        return TokenBatch(ids, ids != 0)

    def forward(self, x):
        return self.weight * torch.ones(len(x.ids if isinstance(x, TokenBatch) else x), self.output_dim)


def test_linear_projection_is_the_default():
    model = TwoBranchModel(image_encoder=Features(6), text_encoder=Features(4), embed_dim=3)
    assert isinstance(model.image_proj, nn.Linear) and (model.image_proj.in_features, model.image_proj.out_features) == (6, 3)
    assert from_dict({}).model.projection == "linear"


def test_mlp_projection_is_linear_relu_linear():
    model = TwoBranchModel(image_encoder=Features(6), text_encoder=Features(4), embed_dim=3, projection="mlp")
    assert [type(m) for m in model.text_proj] == [nn.Linear, nn.ReLU, nn.Linear]
    assert (model.text_proj[0].in_features, model.text_proj[0].out_features, model.text_proj[2].out_features) == (4, 4, 3)
    image, text = model(torch.zeros(2, 1), model.tokenize(["a", "b", "c"]))
    assert image.shape == (2, 3) and text.shape == (3, 3)
    assert set(model.branch_parameters("image")) == {n for n, _ in model.named_parameters() if n.startswith("image_")}
    with pytest.raises(ValueError, match="'linear', 'mlp' or 'identity'"):
        projection_head(4, 3, "conv")


def test_projection_comes_from_the_config():
    config = from_dict({"model": {"projection": "mlp", "embed_dim": 8, "image_encoder": {"name": "small_cnn", "width": 8, "output_dim": 16}}})
    model = model_from_config(config.model, ("a red square",))
    assert isinstance(model.image_proj, nn.Sequential) and model.image_proj[2].out_features == 8
    with pytest.raises(ConfigError, match="model.projection: expected one of 'linear', 'mlp'"):
        from_dict({"model": {"projection": "deep"}})


def test_learnable_temperature_is_a_model_parameter():
    model = TwoBranchModel(image_encoder=Features(6), text_encoder=Features(4), embed_dim=3)
    assert model.logit_inputs() == {} and model.pretrained_logits() == {}
    model.add_logit_parameters({"logit_scale": 2.0, "logit_bias": -1.0})
    assert set(model.logit_inputs()) == {"logit_scale", "logit_bias"} and float(model.logit_scale) == 2.0
    assert {"logit_scale", "logit_bias"} <= set(model.state_dict())  # checkpoints hold it
    assert "logit_scale" in model.branch_parameters("both") and "logit_scale" not in model.branch_parameters("image")
    with pytest.raises(ValueError, match="unknown logit parameter"):
        model.add_logit_parameters({"temperature": 1.0})


def test_identity_projection_keeps_the_encoders_space():
    model = TwoBranchModel(image_encoder=Features(4), text_encoder=Features(4), embed_dim=4, projection="identity")
    assert isinstance(model.image_proj, nn.Identity) and isinstance(model.text_proj, nn.Identity)
    with pytest.raises(ConfigError, match="model.projection: 'identity' needs model.embed_dim equal"):
        TwoBranchModel(image_encoder=Features(6), text_encoder=Features(4), embed_dim=4, projection="identity")


def test_old_learnable_infonce_config_trains_the_model_temperature(tmp_path):
    """`loss: {name: infonce, learnable: true}` keeps working: the optimizer, clipping and checkpoints see it."""
    from ccrbench.benchmarks.shapes import shapes_benchmark
    from ccrbench.build import build_learner

    config = from_dict({"benchmark": {"train_images": 8, "test_images": 4, "image_size": 32}, "model": {"embed_dim": 8}, "loss": {"name": "infonce", "temperature": 0.05, "learnable": True}})
    learner = build_learner(config, shapes_benchmark(**config.benchmark.options), SummaryWriter(tmp_path), directions=("i2t", "t2i"), progress=False)
    model, optimizer = learner.strategy.model, learner.strategy.optimizer
    assert float(model.logit_scale) == pytest.approx(math.log(20.0))
    assert any(p is model.logit_scale for group in optimizer.param_groups for p in group["params"])
    assert list(learner.strategy._criterion.parameters()) == []
