"""Registries: one per extension point, filled by decorators in the defining files
(e.g. `@register_loss("my_loss")` above `class MyLoss(torch.nn.Module)`).

Every registered object is a callable (class or function) with keyword-only,
type-hinted parameters; those parameters are the config keys it accepts, checked
(types and `Annotated` limits) by `ccrbench.options` when a config is loaded.
"""

from __future__ import annotations

import functools
import importlib
import inspect
import typing
from collections.abc import Callable, Mapping
from typing import Any, TypeVar

T = TypeVar("T")


class ConfigError(ValueError):
    """A config value is unknown, of the wrong type, or inconsistent."""


class Registry:
    """Name -> callable mapping for one extension point.

    Args:
        kind: What the registry holds, used in messages (e.g. "strategy").
        plural: The plural of `kind`, for listings.
        context: Parameter names that the suite passes itself (never config keys).
        package: The package whose modules register the built-in entries, imported on the
            first lookup (importing it costs seconds of torch/Avalanche).
    """

    def __init__(self, kind: str, *, plural: str, context: tuple[str, ...] = (), package: str | None = None) -> None:
        self.kind, self.plural, self.context, self.package = kind, plural, context, package
        self._items: dict[str, Callable[..., Any]] = {}
        self._filled = package is None

    def _fill(self) -> None:
        """Imports the built-in entries' package once (its modules register themselves)."""
        if not self._filled:
            self._filled = True
            importlib.import_module(self.package)  # type: ignore[arg-type]

    def register(self, name: str) -> Callable[[T], T]:
        """Decorator that registers a callable under `name` (duplicates are errors)."""

        def decorator(obj: T) -> T:
            if name in self._items:
                already = _qualname(self._items[name])
                raise ValueError(f"{self.kind} {name!r} is already registered by {already}; choose another name for {_qualname(obj)}")
            self._items[name] = obj  # type: ignore[assignment]
            return obj

        return decorator

    def get(self, name: str) -> Callable[..., Any]:
        """Returns the callable registered as `name`, or `module:attribute` imported from outside
        the package; raises ConfigError listing what exists."""
        self._fill()
        if ":" in name and name not in self._items:
            return _import_object(name, self.kind)
        if name not in self._items:
            raise ConfigError(f"unknown {self.kind} {name!r}; registered: {', '.join(self.names()) or '(none)'}")
        return self._items[name]

    def names(self) -> list[str]:
        """The registered names, sorted."""
        self._fill()
        return sorted(self._items)

    def __contains__(self, name: str) -> bool:
        self._fill()
        return name in self._items

    def parameters(self, name: str) -> dict[str, inspect.Parameter]:
        """The config keys of `name`: its keyword parameters minus the suite's context."""
        return config_parameters(self.get(name), skip=self.context)

    def build(self, name: str, options: Mapping[str, Any], **context: Any) -> Any:
        """Calls `name` with `options` (checked by `ccrbench.options` at load) plus the context it
        declares; raises ConfigError on an option that is no config key (e.g. a context name)."""
        keys = self.parameters(name)
        unknown = sorted(set(options) - set(keys))
        if unknown:
            raise ConfigError(f"{self.kind} {name!r}: unknown key(s) {', '.join(unknown)}; valid keys: {', '.join(keys) or '(none)'}")
        obj = self.get(name)
        accepted = inspect.signature(obj).parameters
        return obj(**options, **{k: v for k, v in context.items() if k in accepted})


def _import_object(spec: str, kind: str) -> Callable[..., Any]:
    """`module:attribute` imported, for components defined outside the package."""
    module_name, _, attr = spec.partition(":")
    try:
        module = importlib.import_module(module_name)
    except ImportError as e:
        raise ConfigError(f"{kind} {spec!r}: cannot import module {module_name!r} ({e}); is it on PYTHONPATH?") from e
    if not hasattr(module, attr):
        raise ConfigError(f"{kind} {spec!r}: module {module_name!r} has no attribute {attr!r}")
    return getattr(module, attr)


def _qualname(obj: Any) -> str:
    """`module.Qualified.name` of a registered object, for messages."""
    return f"{getattr(obj, '__module__', '?')}.{getattr(obj, '__qualname__', repr(obj))}"


def config_parameters(obj: Callable[..., Any], *, skip: tuple[str, ...] = ()) -> dict[str, inspect.Parameter]:
    """Keyword parameters of a callable (a class's __init__), with resolved annotations."""
    target = obj.__init__ if inspect.isclass(obj) else obj  # type: ignore[misc]
    hints = typing.get_type_hints(target, include_extras=True)
    out = {}
    for p in inspect.signature(obj).parameters.values():
        if p.kind in (p.VAR_KEYWORD, p.VAR_POSITIONAL) or p.name in skip:
            continue
        out[p.name] = p.replace(annotation=hints.get(p.name, Any))
    return out


BENCHMARKS = Registry("benchmark", plural="benchmarks", package="ccrbench.benchmarks")
ENCODERS = Registry("encoder", plural="encoders", context=("corpus",), package="ccrbench.models")
LOSSES = Registry("loss", plural="losses", package="ccrbench.models")
STRATEGIES = Registry("strategy", plural="strategies", package="ccrbench.strategies")

register_benchmark = BENCHMARKS.register
register_encoder = ENCODERS.register
register_loss = LOSSES.register
register_strategy = STRATEGIES.register

FILE_BENCHMARKS = Registry("file benchmark", plural="file benchmarks")


def register_file_benchmark(name: str) -> Callable[[T], T]:
    """Registers a loader `(**options) -> TaskData` (benchmarks/files/tasks.py) as file benchmark
    `name`, and the benchmark it gives (`TaskData.benchmark()`) as benchmark `name`, with the same options."""

    def decorator(load: T) -> T:
        FILE_BENCHMARKS.register(name)(load)

        @functools.wraps(load)  # type: ignore[arg-type]
        def benchmark(**options: Any) -> Any:
            return load(**options).benchmark()  # type: ignore[operator]

        register_benchmark(name)(benchmark)
        return load

    return decorator
