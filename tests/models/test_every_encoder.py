"""The encoder contract (ccrbench.models.base), checked for every registered encoder: a new
encoder is covered by registering it and adding its tiny options to TINY below."""

from collections.abc import Callable
from pathlib import Path

import pytest
import torch

import ccrbench  # noqa: F401 - fills the registries
from ccrbench.models.base import ImageEncoder, TextEncoder
from ccrbench.registry import ENCODERS
from ccrbench.tokens import TokenBatch
from tests.contract import assert_documented_keyword_keys
from tests.models.test_clip import save_tiny
from tests.models.test_openclip import tiny_open_clip

# Per encoder: the options that make it small and offline (no weights, a shipped model), or a
# function that writes what it needs under a temporary folder and returns them.
TINY: dict[str, dict | Callable[[Path], dict]] = {
    "small_cnn": {"width": 8, "output_dim": 16},
    "feature_mlp": {"input_dim": 12, "hidden_dim": 16, "output_dim": 16},
    "resnet18": {},
    "resnet34": {},
    "resnet50": {},
    "resnet152": {},
    "bigru": {"word_dim": 8, "hidden_dim": 8},
    "hf_text": {"model": "minilm", "max_length": 16},
    "hf_clip_image": lambda tmp: {"model": save_tiny("clip", tmp)},
    "hf_clip_text": lambda tmp: {"model": save_tiny("siglip", tmp), "max_length": 16},
    "timm": {"model": "test_efficientnet"},
    "open_clip_image": lambda tmp: {"model": tiny_open_clip(tmp)},
    "open_clip_text": lambda tmp: {"model": tiny_open_clip(tmp)},
}
# Image encoders whose input is not an image: name -> a batch of 3 inputs.
INPUTS = {"feature_mlp": lambda: torch.rand(3, 12)}
IMAGES = (3, 3, 32, 32)
CORPUS = ("a red square on the left", "two blue circles", "a red circle", "a big red star")
OTHER_CORPUS = ("one green heart at the top", "three tiny plain arrows", "a green ring")  # as many words, other ones
CAPTIONS = ("a red square", "two blue circles on the left and a star", "an unseen word")


@pytest.fixture(scope="module")
def tiny_options(tmp_path_factory):
    """name -> its tiny options (files written once per module)."""
    resolved = {}

    def get(name):
        if name not in TINY:
            pytest.fail(
                f"encoder {name!r} has no tiny options: add it to TINY in {__file__} "
                "(options that build it small and without downloads)"
            )
        if name not in resolved:
            options = TINY[name]
            resolved[name] = options(tmp_path_factory.mktemp(name)) if callable(options) else options
        return resolved[name]

    return get


@pytest.fixture(scope="module")
def build(tiny_options):
    """(name, seed, corpus) -> the encoder with its tiny options in eval mode, built once per module."""
    built = {}

    def get(name, *, seed=0, corpus=CORPUS, fresh=False):
        key = (name, seed, corpus)
        if fresh or key not in built:
            torch.manual_seed(seed)
            built[key] = ENCODERS.build(name, tiny_options(name), corpus=corpus).eval()
        return built[key]

    return get


def inputs(encoder, name):
    """A batch of 3 inputs: token ids of CAPTIONS for text encoders, else images or features."""
    if encoder.modality == "text":
        return encoder.tokenize(CAPTIONS)
    return INPUTS.get(name, lambda: torch.rand(*IMAGES))()


NAMES = ENCODERS.names()


def test_the_tiny_options_are_of_registered_encoders():
    assert sorted(set(TINY) - set(NAMES)) == [], "remove options of encoders that are no longer registered"


@pytest.mark.parametrize("name", NAMES)
def test_is_an_encoder_whose_keys_are_keyword_only_typed_and_documented(name, build):
    encoder = build(name)
    protocol = {"image": ImageEncoder, "text": TextEncoder}.get(getattr(encoder, "modality", None))
    assert protocol is not None, f"{name}.modality must be 'image' or 'text'"
    assert isinstance(encoder, protocol) and isinstance(encoder, torch.nn.Module)
    assert isinstance(encoder.output_dim, int) and encoder.output_dim > 0
    assert_documented_keyword_keys(ENCODERS, name)


@pytest.mark.parametrize("name", NAMES)
def test_output_is_one_finite_feature_per_input(name, build):
    encoder = build(name)
    with torch.no_grad():
        out = encoder(inputs(encoder, name))
    assert out.shape == (3, encoder.output_dim) and out.dtype == torch.float32
    assert torch.isfinite(out).all()


@pytest.mark.parametrize("name", [n for n in NAMES if getattr(ENCODERS.get(n), "modality", None) == "text"])
def test_tokenize_pads_captions_into_ids_and_mask(name, build):
    encoder = build(name)
    tokens = encoder.tokenize(CAPTIONS)
    assert isinstance(tokens, TokenBatch)
    assert tokens.ids.dtype == torch.long and tokens.mask.dtype == torch.bool
    assert tokens.ids.shape == tokens.mask.shape and tokens.ids.shape[0] == len(CAPTIONS)
    lengths = tokens.mask.sum(1)
    assert (lengths >= 1).all() and lengths[1] > lengths[0]  # the longer caption has more tokens
    assert (tokens.mask == (torch.arange(tokens.ids.shape[1]) < lengths[:, None])).all()  # real tokens first, then padding
    again = encoder.tokenize(CAPTIONS[:1])
    assert again.ids[0, : lengths[0]].tolist() == tokens.ids[0, : lengths[0]].tolist()  # independent of the other captions


@pytest.mark.parametrize("name", NAMES)
def test_state_dict_round_trip_gives_the_same_outputs(name, build):
    """Weights and any other state (e.g. the BiGRU vocabulary) travel with the state dict: an
    encoder built with another seed (and, for text, from other captions) gives the same outputs."""
    source, target = build(name), build(name, seed=1, corpus=OTHER_CORPUS, fresh=True)
    batch = inputs(source, name)
    target.load_state_dict(source.state_dict())
    if source.modality == "text":
        assert torch.equal(target.tokenize(CAPTIONS).ids, batch.ids)
    with torch.no_grad():
        assert torch.allclose(target(batch), source(batch), atol=1e-6)
