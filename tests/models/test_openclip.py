import json

import pytest
import torch

from ccrbench.models.openclip import OpenCLIPImageEncoder, OpenCLIPTextEncoder
from ccrbench.registry import ConfigError

TINY = {
    "model_cfg": {
        "embed_dim": 16,
        "vision_cfg": {"image_size": 32, "layers": 1, "width": 32, "patch_size": 16, "head_width": 16},
        "text_cfg": {"context_length": 16, "vocab_size": 49408, "width": 32, "heads": 2, "layers": 1},
    },
    "preprocess_cfg": {"mean": [0.4, 0.5, 0.6], "std": [0.2, 0.3, 0.25]},
}


def tiny_open_clip(folder):
    """A tiny open_clip CLIP (random weights) as "local-dir:FOLDER"."""
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "open_clip_config.json").write_text(json.dumps(TINY))
    return f"local-dir:{folder}"


def full_model(model, seed):
    import open_clip

    torch.manual_seed(seed)
    return open_clip.create_model(model, pretrained=None, load_weights=False).eval()


def test_towers_are_the_models_own_embeddings_with_its_preprocessing(tmp_path):
    model = tiny_open_clip(tmp_path)
    torch.manual_seed(3)
    image = OpenCLIPImageEncoder(model=model).eval()
    torch.manual_seed(3)
    text = OpenCLIPTextEncoder(model=model).eval()
    full = full_model(model, 3)
    images = torch.rand(2, 3, 32, 32)
    mean, std = torch.tensor([0.4, 0.5, 0.6]).view(1, 3, 1, 1), torch.tensor([0.2, 0.3, 0.25]).view(1, 3, 1, 1)
    tokens = text.tokenize(["a red square", "two blue circles on the left"])
    with torch.no_grad():
        assert torch.allclose(image(images), full.encode_image((images - mean) / std), atol=1e-6)
        assert torch.allclose(text(tokens), full.encode_text(tokens.ids), atol=1e-6)
    assert tokens.ids.shape == (2, 16) and tokens.mask.sum(1).tolist() == [5, 8]  # start + words + end; padded to context
    assert image.output_dim == text.output_dim == 16
    assert image.pretrained_logits == pytest.approx({"logit_scale": float(full.logit_scale)})
    assert not any(k.startswith("tower.visual.") for k in text.state_dict())  # the text tower holds no image weights


def test_frozen_tower_stays_in_eval_mode_and_takes_no_gradient(tmp_path):
    encoder = OpenCLIPImageEncoder(model=tiny_open_clip(tmp_path), freeze=True).train()
    assert not encoder.tower.training and not any(p.requires_grad for p in encoder.parameters())


def test_unknown_model_or_missing_weights_are_clear_errors(tmp_path):
    with pytest.raises(ConfigError, match="open_clip_image.model"):
        OpenCLIPImageEncoder(model="no-such-model")
    with pytest.raises(ConfigError, match="open_clip_text.model: .* brings its own weights"):
        OpenCLIPTextEncoder(model=tiny_open_clip(tmp_path), pretrained=str(tmp_path / "missing.pt"))
