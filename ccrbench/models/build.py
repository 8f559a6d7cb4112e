"""The two-branch model from registered encoders, as a run config's `model` section describes it."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from ccrbench.config import ModelConfig, from_dict
from ccrbench.models.two_branch import TwoBranchModel
from ccrbench.registry import ENCODERS, ConfigError


def build_model(*, corpus: Sequence[str] = (), **options: Any) -> TwoBranchModel:
    """The model of a run config's `model` section, checked as a config is (unknown keys, types).

    Example:
        >>> build_model(corpus=benchmark.train_captions, embed_dim=64, image_encoder={"name": "small_cnn", "width": 8})

    Args:
        corpus: training captions (text encoders may build their vocabularies from them).
        **options: keys of `ccrbench.config.ModelConfig` (image_encoder, text_encoder: a registered
            name or {name, **its options}; embed_dim, shared_layers, projection); others take defaults.

    Raises:
        ConfigError: naming the offending key.
    """
    return model_from_config(from_dict({"model": options}).model, corpus)


def model_from_config(config: ModelConfig, corpus: Sequence[str]) -> TwoBranchModel:
    """The two-branch model with registered encoders (text encoders may build vocabularies from `corpus`)."""
    encoders = {}
    for modality, spec in (("image", config.image_encoder), ("text", config.text_encoder)):
        try:
            encoders[modality] = ENCODERS.build(spec.name, spec.options, corpus=tuple(corpus))
        except ConfigError as e:
            raise ConfigError(f"model.{modality}_encoder: {e}") from e
    return TwoBranchModel(
        image_encoder=encoders["image"],
        text_encoder=encoders["text"],
        embed_dim=config.embed_dim,
        shared_layers=config.shared_layers,
        projection=config.projection,
    )
