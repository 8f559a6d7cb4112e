"""Run configuration: frozen dataclasses loaded from YAML, with strict checking.

Components (benchmark, encoders, loss, strategy) are written as a registered name
plus that component's own keys, e.g. `strategy: {name: ewc, branches: image}` or
just `strategy: finetune`. Their keys are checked against the registered callable's
signature and filled with its defaults, so the saved config is fully resolved.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from types import MappingProxyType
from typing import Any, Literal, get_type_hints

import yaml

from ccrbench.registry import BENCHMARKS, ENCODERS, LOSSES, STRATEGIES, ConfigError, Registry, coerce


@dataclass(frozen=True)
class Component:
    """A registered component and its options.

    Attributes:
        name: the registered name.
        options: keyword arguments of the registered callable (resolved, read-only).
    """

    name: str
    options: Mapping[str, Any] = field(default_factory=lambda: MappingProxyType({}))


def _component(registry: Registry, default: str) -> Any:
    return field(default_factory=lambda: Component(default), metadata={"registry": registry})


@dataclass(frozen=True)
class ModelConfig:
    """The two-branch model.

    Attributes:
        image_encoder: an image encoder from the encoder registry.
        text_encoder: a text encoder from the encoder registry.
        embed_dim: size of the joint embedding space.
        shared_layers: top layers shared by both branches (0 = none).
        projection: per-branch projection head, "linear" or "mlp" (Linear-ReLU-Linear).
    """

    image_encoder: Component = _component(ENCODERS, "small_cnn")
    text_encoder: Component = _component(ENCODERS, "bigru")
    embed_dim: int = 256
    shared_layers: int = 0
    projection: Literal["linear", "mlp"] = "linear"


@dataclass(frozen=True)
class TrainConfig:
    """Optimisation, identical for every experience.

    Attributes:
        epochs: epochs per experience.
        batch_size: image-caption pairs per batch.
        lr: Adam learning rate.
        weight_decay: Adam weight decay.
        grad_clip: gradient norm clipping (0 disables).
        num_workers: data loader worker processes.
    """

    epochs: int = 6
    batch_size: int = 128
    lr: float = 5e-4
    weight_decay: float = 0.0
    grad_clip: float = 2.0
    num_workers: int = 0


@dataclass(frozen=True)
class EvalConfig:
    """Indexing and querying.

    Attributes:
        batch_size: images per batch when embedding a database.
        ks: the K of Recall@K.
    """

    batch_size: int = 256
    ks: tuple[int, ...] = (1, 5, 10)


@dataclass(frozen=True)
class RunConfig:
    """One run: a benchmark, a model, a loss, a strategy and how to train and evaluate.

    Attributes:
        seed: seeds model initialisation and batch order (data has its own seed).
        device: torch device.
        threads: CPU threads for torch (0 keeps torch's default).
        benchmark: a benchmark from the registry.
        model: the two-branch model.
        loss: a loss from the registry.
        strategy: a strategy from the registry.
        decoupled: train two models side by side on the same stream, one answering
            image->text and protecting only its image branch, the other text->image
            protecting only its text branch (the strategy needs a `branches` option).
        train: optimisation.
        eval: indexing and querying.
    """

    seed: int = 0
    device: str = "cpu"
    threads: int = 0
    benchmark: Component = _component(BENCHMARKS, "shapes")
    model: ModelConfig = field(default_factory=ModelConfig)
    loss: Component = _component(LOSSES, "infonce")
    strategy: Component = _component(STRATEGIES, "finetune")
    decoupled: bool = False
    train: TrainConfig = field(default_factory=TrainConfig)
    eval: EvalConfig = field(default_factory=EvalConfig)


def _build(cls: type, data: Any, where: str) -> Any:
    if not isinstance(data, Mapping):
        raise ConfigError(f"{where or 'config'}: expected a mapping of keys, got {data!r}")
    fields = {f.name: f for f in dataclasses.fields(cls)}
    unknown = sorted(set(data) - set(fields))
    if unknown:
        raise ConfigError(
            f"{where or 'config'}: unknown key(s) {', '.join(unknown)}; valid keys: {', '.join(fields)}"
        )
    hints = get_type_hints(cls)
    kwargs = {}
    for name, value in data.items():
        path = f"{where}.{name}" if where else name
        f, hint = fields[name], hints[name]
        if "registry" in f.metadata:
            kwargs[name] = _build_component(f.metadata["registry"], value, path, default=f.default_factory().name)
        elif dataclasses.is_dataclass(hint):
            kwargs[name] = _build(hint, value, path)
        else:
            kwargs[name] = coerce(value, hint, where=path)
    config = cls(**kwargs)
    for f in dataclasses.fields(cls):  # resolve defaults of components that were not given
        if "registry" in f.metadata and f.name not in data:
            name = getattr(config, f.name).name
            config = dataclasses.replace(config, **{f.name: _build_component(f.metadata["registry"], name, f.name, default=name)})
    return config


def _build_component(registry: Registry, value: Any, where: str, *, default: str) -> Component:
    if isinstance(value, str):
        value = {"name": value}
    if isinstance(value, Mapping) and "name" not in value:
        value = {"name": default, **value}
    if not isinstance(value, Mapping) or not isinstance(value.get("name"), str):
        raise ConfigError(f"{where}: expected a {registry.kind} name or a mapping with 'name', got {value!r}")
    options = {k: v for k, v in value.items() if k != "name"}
    resolved = registry.resolve(value["name"], options, where=where)
    return Component(value["name"], MappingProxyType(resolved))


def from_dict(data: Mapping[str, Any]) -> RunConfig:
    """Builds and checks a RunConfig (missing keys take their defaults)."""
    return _build(RunConfig, data or {}, "")


def to_dict(config: Any) -> Any:
    """Plain dict of a config (components as {name, **options}), for YAML and JSON."""
    if isinstance(config, Component):
        return {"name": config.name, **{k: to_dict(v) for k, v in config.options.items()}}
    if dataclasses.is_dataclass(config):
        return {f.name: to_dict(getattr(config, f.name)) for f in dataclasses.fields(config)}
    if isinstance(config, (tuple, list)):
        return [to_dict(v) for v in config]
    return config


def apply_overrides(data: dict[str, Any], overrides: Sequence[str]) -> dict[str, Any]:
    """Applies `key.sub=value` overrides (values parsed as YAML) to a raw config dict."""
    data = yaml.safe_load(yaml.safe_dump(data)) or {}  # deep copy
    for item in overrides:
        key, sep, raw = item.partition("=")
        if not sep or not key:
            raise ConfigError(f"--set {item!r}: expected key=value, e.g. train.epochs=3")
        node = data
        parts = key.split(".")
        for part in parts[:-1]:
            child = node.get(part, {})
            if isinstance(child, str):  # a component given by name gains options
                child = {"name": child}
            if not isinstance(child, dict):
                raise ConfigError(f"--set {item!r}: {part!r} is not a section")
            node[part] = child
            node = child
        node[parts[-1]] = yaml.safe_load(raw)
    return data


def _merge(base: dict[str, Any], top: dict[str, Any]) -> dict[str, Any]:
    """`top` over `base`, recursively; a component named anew replaces the old one's options."""
    out = dict(base)
    for key, value in top.items():
        old = out.get(key)
        if isinstance(old, dict) and isinstance(value, dict) and value.get("name", old.get("name")) == old.get("name"):
            out[key] = _merge(old, value)
        else:
            out[key] = value
    return out


def read_yaml(path: Path, _seen: tuple[Path, ...] = ()) -> dict[str, Any]:
    """A config file as a dict; `base: other.yaml` (relative to the file) is loaded first."""
    if not path.exists():
        raise ConfigError(f"config file {path} does not exist; see configs/ for the standard ones")
    if path.resolve() in _seen:
        raise ConfigError(f"{path}: 'base' chain loops back to itself")
    try:
        data = yaml.safe_load(path.read_text()) or {}
    except yaml.YAMLError as e:
        raise ConfigError(f"{path}: not valid YAML: {e}") from e
    if not isinstance(data, dict):
        raise ConfigError(f"{path}: expected a mapping of config keys at the top level")
    base = data.pop("base", None)
    if base is None:
        return data
    return _merge(read_yaml(path.parent / base, (*_seen, path.resolve())), data)


def load_config(path: str | Path | None, overrides: Sequence[str] = ()) -> RunConfig:
    """Reads a YAML config (None: all defaults), applies overrides, checks everything.

    Raises:
        ConfigError: naming the file and the offending key.
    """
    data = read_yaml(Path(path)) if path is not None else {}
    try:
        return from_dict(apply_overrides(data, overrides))
    except ConfigError as e:
        raise ConfigError(f"{path or 'config'}: {e}") from e
