import pytest
import torch
import torchvision
from torch import nn

from ccrbench.models.resnet import IMAGENET_MEAN, IMAGENET_STD, STAGES, ResNetEncoder
from ccrbench.registry import ENCODERS, ConfigError


def build(name="resnet18", **options):
    torch.manual_seed(0)
    return ENCODERS.build(name, options)


def reference_features(model: nn.Module, images: torch.Tensor) -> torch.Tensor:
    """torchvision's own forward without fc, on ImageNet-normalised images."""
    model.fc = nn.Identity()
    mean, std = torch.tensor(IMAGENET_MEAN).view(1, 3, 1, 1), torch.tensor(IMAGENET_STD).view(1, 3, 1, 1)
    return model.eval()((images - mean) / std)


def trainable_prefixes(encoder):
    return sorted({n.split(".")[1] for n, p in encoder.named_parameters() if p.requires_grad})


def test_every_depth_is_registered_as_an_image_encoder():
    for name in ("resnet18", "resnet34", "resnet50", "resnet152"):
        cls = ENCODERS.get(name)
        assert issubclass(cls, ResNetEncoder) and cls.arch == name and cls.modality == "image"
        assert set(ENCODERS.parameters(name)) == {"weights", "freeze", "train_top_blocks"}


@pytest.mark.parametrize("name, dim", [("resnet18", 512), ("resnet50", 2048)])
def test_output_is_the_pooled_backbone_feature(name, dim):
    encoder = build(name)
    assert encoder.output_dim == dim
    assert encoder(torch.rand(2, 3, 32, 32)).shape == (2, dim)


def test_everything_trains_by_default():
    encoder = build()
    assert all(p.requires_grad for p in encoder.parameters())
    encoder.train()
    assert all(m.training for m in encoder.modules())


def test_freeze_freezes_the_backbone_and_its_batchnorm_statistics():
    encoder = build(freeze=True)
    assert not any(p.requires_grad for p in encoder.parameters())
    encoder.train()
    assert encoder.training
    assert all(not m.training for m in encoder.modules() if isinstance(m, nn.BatchNorm2d))
    stats = encoder.backbone.bn1.running_mean.clone()
    encoder(torch.rand(4, 3, 32, 32))
    assert torch.equal(encoder.backbone.bn1.running_mean, stats)


@pytest.mark.parametrize("top", [0, 1, 2, 4])
def test_train_top_blocks_trains_only_the_top_stages(top):
    encoder = build(train_top_blocks=top)
    assert trainable_prefixes(encoder) == sorted(STAGES[len(STAGES) - top :])
    encoder.train()
    for name, m in encoder.backbone.named_modules():
        if isinstance(m, nn.BatchNorm2d):
            assert m.training == (name.split(".")[0] in STAGES[len(STAGES) - top :]), name


def test_the_optimizer_gets_only_the_trainable_parameters(tmp_path):
    from ccrbench.benchmarks.shapes import shapes_benchmark
    from ccrbench.config import from_dict
    from ccrbench.build import build_learner

    config = from_dict(
        {
            "benchmark": {"train_images": 8, "test_images": 4, "image_size": 32},
            "model": {"image_encoder": {"name": "resnet18", "train_top_blocks": 1}, "embed_dim": 8},
        }
    )
    learner = build_learner(config, shapes_benchmark(**config.benchmark.options), tmp_path, directions=("i2t", "t2i"), progress=False)
    model = learner.strategy.model
    optimised = {id(p) for group in learner.strategy.optimizer.param_groups for p in group["params"]}
    expected = {id(p) for n, p in model.named_parameters() if not n.startswith("image_encoder.") or ".layer4." in n}
    assert optimised == expected


@pytest.mark.parametrize("options, message", [({"train_top_blocks": 5}, "expected 0 to 4"), ({"freeze": True, "train_top_blocks": 1}, "use train_top_blocks alone")])
def test_inconsistent_freezing_is_an_error(options, message):
    with pytest.raises(ConfigError, match=message):
        build(**options)


def test_local_weights_file_round_trip(tmp_path):
    torch.manual_seed(1)
    source = torchvision.models.resnet18()  # a state dict as torchvision saves it, fc included
    torch.save(source.state_dict(), tmp_path / "r18.pth")
    images = torch.rand(3, 3, 32, 32)
    a = build(weights=str(tmp_path / "r18.pth")).eval()
    b = build(weights=str(tmp_path / "r18.pth")).eval()
    with torch.no_grad():
        expected = reference_features(source, images)
        assert torch.allclose(a(images), expected, atol=1e-5)
        assert torch.equal(a(images), b(images))
        assert not torch.allclose(build().eval()(images), expected, atol=1e-3)  # random init differs


def test_missing_weights_file_is_an_error(tmp_path):
    with pytest.raises(ConfigError, match="no file"):
        build(weights=str(tmp_path / "missing.pth"))


def test_unknown_weights_name_lists_the_known_ones():
    with pytest.raises(ConfigError, match="known: IMAGENET1K_V1, DEFAULT"):
        build(weights="IMAGENET_V9")


def test_named_weights_are_read_from_the_torch_cache(tmp_path, monkeypatch):
    monkeypatch.setenv("TORCH_HOME", str(tmp_path))
    torch.manual_seed(2)
    source = torchvision.models.resnet18()
    (tmp_path / "hub" / "checkpoints").mkdir(parents=True)
    torch.save(source.state_dict(), tmp_path / "hub" / "checkpoints" / "resnet18-f37072fd.pth")
    images = torch.rand(2, 3, 32, 32)
    with torch.no_grad():
        assert torch.allclose(build(weights="IMAGENET1K_V1").eval()(images), reference_features(source, images), atol=1e-5)
