"""Run configuration: frozen dataclasses loaded from YAML, with strict checking.

Components (benchmark, encoders, loss, strategy) are written as a registered name
plus that component's own keys, e.g. `strategy: {name: ewc, branches: image}` or
just `strategy: finetune`. Their keys are checked against the registered callable's
signature and filled with its defaults, so the saved config is fully resolved.
"""

from __future__ import annotations

import dataclasses
import functools
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from types import MappingProxyType
from typing import Annotated, Any, Literal, get_type_hints

import yaml
from annotated_types import Ge, Gt, Interval, MinLen

from ccrbench.options import Fields, check_fields, check_options, make_validator
from ccrbench.packaged import resolve
from ccrbench.registry import BENCHMARKS, ENCODERS, LOSSES, STRATEGIES, ConfigError, Registry


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
        projection: per-branch projection head, "linear", "mlp" (Linear-ReLU-Linear) or
            "identity" (none: the encoders' joint space, e.g. CLIP's; embed_dim must match it).
        init_from: start from a trained model instead of the encoders' own initialisation: a
            run directory (its checkpoint.pt: the model after its last finished stage) or a
            checkpoint file (a ccrbench checkpoint.pt or a saved `model.state_dict()`); the
            model section must build the same architecture. None: no such start.
    """

    image_encoder: Component = _component(ENCODERS, "small_cnn")
    text_encoder: Component = _component(ENCODERS, "bigru")
    embed_dim: Annotated[int, Ge(1)] = 256
    shared_layers: Annotated[int, Ge(0)] = 0
    projection: Literal["linear", "mlp", "identity"] = "linear"
    init_from: str | None = None


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
        precision: "fp32", or mixed precision for the training step's forward pass:
            "bf16" (torch.autocast) or "fp16" (autocast with a gradient scaler; for GPUs without bf16).
    """

    epochs: Annotated[int, Ge(1)] = 6
    batch_size: Annotated[int, Ge(1)] = 128
    lr: Annotated[float, Gt(0)] = 5e-4
    weight_decay: Annotated[float, Ge(0)] = 0.0
    grad_clip: Annotated[float, Ge(0)] = 2.0
    num_workers: Annotated[int, Ge(0)] = 0
    precision: Literal["fp32", "bf16", "fp16"] = "fp32"


@dataclass(frozen=True)
class RetentionSet:
    """A held-out retrieval set, never trained on, evaluated before training and after every stage.

    Attributes:
        label: its name in results.json, reports and TensorBoard (e.g. "pretraining").
        benchmark: the benchmark whose `eval.split` items (every task's, as one database) it is.
    """

    label: Annotated[str, MinLen(1)] = "retention"
    benchmark: Component = _component(BENCHMARKS, "shapes")


@dataclass(frozen=True)
class EvalConfig:
    """Indexing and querying.

    Attributes:
        batch_size: images per batch when embedding a database.
        ks: the K of Recall@K.
        split: the split evaluated after every stage: "test", or "val" (the benchmark's
            validation split, for choosing hyper-parameters: see `ccrbench tune`).
        reindex_budget: budgeted partial reindexing, evaluated beside reindex / no reindex:
            after every stage re-embed this much of the stored database, a fraction of the
            stored items (a float in [0, 1], e.g. 0.25) or an item count (an int); one
            policy per budget and rule, e.g. `budget0.25_random` (none by default).
        reindex_rules: which items a budget re-embeds: oldest_first, random,
            most_drifted_first (see ccrbench/evaluation/reindexing.py).
        reindex_probe: most_drifted_first: fraction of every task's items re-embedded at
            every stage to estimate the drift of the others (part of the budget).
        retention: held-out retrieval sets never trained on (another benchmark's split, a
            files benchmark, the pretraining data of the run's start), each `{label, benchmark}`:
            measured before training and after every stage, under both policies (its no-reindex
            database is the one embedded before training); the report gives their retention.
    """

    batch_size: Annotated[int, Ge(1)] = 256
    ks: Annotated[tuple[Annotated[int, Ge(1)], ...], MinLen(1)] = (1, 5, 10)
    split: Literal["test", "val"] = "test"
    reindex_budget: tuple[Annotated[int, Ge(0)] | Annotated[float, Interval(ge=0, le=1)], ...] = ()
    reindex_rules: Annotated[tuple[Literal["oldest_first", "random", "most_drifted_first"], ...], MinLen(1)] = (
        "oldest_first",
        "random",
        "most_drifted_first",
    )
    reindex_probe: Annotated[float, Interval(gt=0, le=1)] = 0.05
    retention: tuple[RetentionSet, ...] = field(default=(), metadata={"sections": RetentionSet})


@dataclass(frozen=True)
class RunConfig:
    """One run: a benchmark, a model, a loss, a strategy and how to train and evaluate.

    Attributes:
        seed: seeds model initialisation and batch order (data has its own seed).
        device: torch device.
        threads: CPU threads for torch; 0 (the default) is resolved when the run starts
            to torch's current count and recorded, since results depend on it.
        benchmark: a benchmark from the registry.
        model: the two-branch model.
        loss: a loss from the registry.
        strategy: a strategy from the registry.
        decoupled: train two models side by side on the same stream, one answering
            image->text and protecting only its image branch, the other text->image
            protecting only its text branch (the strategy needs a `branches` option).
        train: optimisation.
        eval: indexing and querying.
        logging: Avalanche loggers receiving every metric, beside ccrbench's own files and TensorBoard
            layout: csv (metrics.csv), text (log.txt), tensorboard (tb/avalanche), wandb (needs the
            `wandb` extra; WANDB_MODE=offline keeps it local); see ccrbench/evaluation/loggers.py.
    """

    seed: Annotated[int, Ge(0)] = 0
    device: str = "cpu"
    threads: Annotated[int, Ge(0)] = 0
    benchmark: Component = _component(BENCHMARKS, "shapes")
    model: ModelConfig = field(default_factory=ModelConfig)
    loss: Component = _component(LOSSES, "infonce")
    strategy: Component = _component(STRATEGIES, "finetune")
    decoupled: bool = False
    train: TrainConfig = field(default_factory=TrainConfig)
    eval: EvalConfig = field(default_factory=EvalConfig)
    logging: tuple[Literal["csv", "text", "tensorboard", "wandb"], ...] = ()


def build_section(cls: type, data: Any, where: str) -> Any:
    """A frozen config dataclass `cls` from a mapping, every key checked (`where` names it in errors)."""
    if not isinstance(data, Mapping):
        raise ConfigError(f"{where or 'config'}: expected a mapping of keys, got {data!r}")
    validator, fields = _section_validator(cls)
    kwargs = {}
    hints = get_type_hints(cls, include_extras=True)
    for name, value in check_fields(validator, fields, data, where=where).items():
        path = f"{where}.{name}" if where else name
        f = next(f for f in dataclasses.fields(cls) if f.name == name)
        if "registry" in f.metadata:
            kwargs[name] = _build_component(f.metadata["registry"], value, path, default=f.default_factory().name)
        elif "sections" in f.metadata:
            if not isinstance(value, Sequence) or isinstance(value, str):
                raise ConfigError(f"{path}: expected a list of sections, got {value!r}")
            kwargs[name] = tuple(build_section(f.metadata["sections"], item, f"{path}[{i}]") for i, item in enumerate(value))
        elif dataclasses.is_dataclass(hints[name]):
            kwargs[name] = build_section(hints[name], value, path)
        else:
            kwargs[name] = value
    config = cls(**kwargs)
    for f in dataclasses.fields(cls):  # resolve defaults of components that were not given
        if "registry" in f.metadata and f.name not in data:
            name = getattr(config, f.name).name
            config = dataclasses.replace(config, **{f.name: _build_component(f.metadata["registry"], name, f.name, default=name)})
    return config


@functools.cache
def _section_validator(cls: type) -> tuple[Any, Fields]:
    """The pydantic validator of a config dataclass's keys, built once: its plain fields by their
    type hints; components and sub-sections pass through (`build_section` checks them)."""
    hints = get_type_hints(cls, include_extras=True)
    nested = {f.name for f in dataclasses.fields(cls) if {"registry", "sections"} & set(f.metadata) or dataclasses.is_dataclass(hints[f.name])}
    fields = {f.name: (Any if f.name in nested else hints[f.name], None) for f in dataclasses.fields(cls)}  # all have defaults
    return make_validator(cls.__name__, fields), fields


def _build_component(registry: Registry, value: Any, where: str, *, default: str) -> Component:
    if isinstance(value, str):
        value = {"name": value}
    if isinstance(value, Mapping) and "name" not in value:
        value = {"name": default, **value}
    if not isinstance(value, Mapping) or not isinstance(value.get("name"), str):
        raise ConfigError(f"{where}: expected a {registry.kind} name or a mapping with 'name', got {value!r}")
    options = {k: v for k, v in value.items() if k != "name"}
    resolved = check_options(registry.get(value["name"]), options, where=where, skip=registry.context)
    return Component(value["name"], MappingProxyType(resolved))


def from_dict(data: Mapping[str, Any]) -> RunConfig:
    """Builds and checks a RunConfig (missing keys take their defaults)."""
    config = build_section(RunConfig, data or {}, "")
    _check_combination(config)
    return config


def _check_combination(config: RunConfig) -> None:
    """What no single key's type can check: encoder modalities, decoupled runs, the device."""
    for modality in ("image", "text"):
        name = getattr(config.model, f"{modality}_encoder").name
        found = getattr(ENCODERS.get(name), "modality", None)
        if found != modality:
            fitting = [n for n in ENCODERS.names() if getattr(ENCODERS.get(n), "modality", None) == modality]
            raise ConfigError(
                f"model.{modality}_encoder: {name!r} is {f'a {found}' if found else 'not an'} encoder; "
                f"{modality} encoders: {', '.join(fitting)}"
            )
    if config.decoupled and "branches" not in STRATEGIES.parameters(config.strategy.name):
        raise ConfigError(
            f"decoupled: strategy {config.strategy.name!r} has no 'branches' option to restrict to a query branch; "
            "use a regularisation strategy (e.g. ewc, mas) or decoupled: false"
        )
    labels = [s.label for s in config.eval.retention]
    for i, label in enumerate(labels):
        if label in labels[:i] or label.isdigit() or label in ("average", "all"):
            raise ConfigError(
                f"eval.retention[{i}].label: {label!r} is {'used twice' if label in labels[:i] else 'a task scope name'}; "
                "give each retention set its own name, e.g. label: pretraining"
            )
    _check_device(config.device)


def _check_device(device: str) -> None:
    import torch

    try:
        kind = torch.device(device)
    except RuntimeError as e:
        raise ConfigError(f"device: {device!r} is not a torch device; use e.g. cpu, cuda or cuda:1") from e
    if kind.type == "cpu":
        return
    backend = getattr(torch, kind.type, None)  # torch.cuda, torch.mps, torch.xpu
    available = backend.device_count() if hasattr(backend, "device_count") and backend.is_available() else 0
    if (kind.index or 0) >= available:
        raise ConfigError(f"device: {device!r} requested but this machine has {available} {kind.type} device(s); use device: cpu")


def to_dict(config: Any) -> Any:
    """Plain dict of a config (components as {name, **options}), for YAML and JSON."""
    if isinstance(config, Component):
        return {"name": config.name, **{k: to_dict(v) for k, v in config.options.items()}}
    if dataclasses.is_dataclass(config):
        return {f.name: to_dict(getattr(config, f.name)) for f in dataclasses.fields(config)}
    if isinstance(config, (tuple, list)):
        return [to_dict(v) for v in config]
    return config


def flatten(data: Mapping[str, Any], prefix: str = "") -> dict[str, Any]:
    """A nested dict with dotted keys, e.g. {"train": {"lr": 0.1}} -> {"train.lr": 0.1}."""
    out: dict[str, Any] = {}
    for key, value in data.items():
        if isinstance(value, Mapping):
            out.update(flatten(value, f"{prefix}{key}."))
        else:
            out[f"{prefix}{key}"] = value
    return out


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
        try:
            node[parts[-1]] = yaml.safe_load(raw)
        except yaml.YAMLError as e:
            raise ConfigError(f"--set {item!r}: the value is not valid YAML ({_one_line(e)}); quote it if it is text") from e
    return data


def _one_line(error: Exception) -> str:
    return " ".join(str(error).split())


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
        raise ConfigError(f"config file {path} does not exist; `ccrbench config list` lists the standard ones")
    if path.is_dir():
        raise ConfigError(f"config file {path} is a directory; give a YAML file, e.g. one of configs/*.yaml")
    if path.resolve() in _seen:
        raise ConfigError(f"{path}: 'base' chain loops back to itself")
    try:
        data = yaml.safe_load(path.read_text())
    except (yaml.YAMLError, UnicodeDecodeError) as e:
        raise ConfigError(f"{path}: not valid YAML: {_one_line(e)}") from e
    if data is None:  # not silently the default benchmark
        raise ConfigError(f"{path}: the file is empty (or only comments); write the config keys (see configs/), or leave out --config to run every default")
    if not isinstance(data, dict):
        raise ConfigError(f"{path}: expected a mapping of config keys at the top level")
    base = data.pop("base", None)
    if base is None:
        return data
    target = path.parent / str(base)
    if not isinstance(base, str) or not target.is_file():
        problem = "is a directory" if target.is_dir() else "does not exist"
        raise ConfigError(f"{path}: base: {base} {problem} (looked for {target}); base is relative to {path.parent}")
    return _merge(read_yaml(target, (*_seen, path.resolve())), data)


def load_config(path: str | Path | None, overrides: Sequence[str] = ()) -> RunConfig:
    """Reads a YAML config (None: all defaults), applies overrides, checks everything.

    Raises:
        ConfigError: naming the file and the offending key.
    """
    data = read_yaml(resolve(path, "config")) if path is not None else {}
    try:
        return from_dict(apply_overrides(data, overrides))
    except ConfigError as e:
        raise ConfigError(f"{path or 'config'}: {e}") from e


def load_benchmark(path: str | Path | None, overrides: Sequence[str] = ()) -> Component:
    """Only the `benchmark` section of a run config, checked (`load_component`)."""
    return load_component(path, overrides, "benchmark")


def load_component(path: str | Path | None, overrides: Sequence[str], key: Literal["benchmark", "model.image_encoder"]) -> Component:
    """Only one component of a run config, checked (the other sections' top-level keys must
    exist, their contents are not read): for commands that read data only, such as
    `ccrbench data check`, since checking a strategy imports Avalanche (seconds).

    Raises:
        ConfigError: naming the file and the offending key.
    """
    data = apply_overrides(read_yaml(resolve(path, "config")) if path is not None else {}, overrides)
    fields = {f.name: f for f in dataclasses.fields(RunConfig)}
    section, _, name = key.partition(".")
    try:
        unknown = sorted(set(data) - set(fields))
        if unknown:
            raise ConfigError(f"unknown key(s) {', '.join(unknown)}; valid keys: {', '.join(fields)}")
        if not name:
            return _build_component(BENCHMARKS, data.get(section, {}), section, default=fields[section].default_factory().name)
        value = data.get(section, {}).get(name, {}) if isinstance(data.get(section, {}), Mapping) else {}
        return _build_component(ENCODERS, value, key, default=getattr(ModelConfig(), name).name)
    except ConfigError as e:
        raise ConfigError(f"{path or 'config'}: {e}") from e
