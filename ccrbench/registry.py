"""Registries: one per extension point, filled by decorators in the defining files.

Example:
    >>> from ccrbench.registry import register_loss
    >>> @register_loss("my_loss")
    ... class MyLoss(torch.nn.Module): ...

Every registered object is a callable (class or function) with keyword-only,
type-hinted parameters; those parameters are the config keys it accepts.
"""

from __future__ import annotations

import functools
import importlib
import inspect
import operator
import re
import types
import typing
from collections.abc import Callable, Iterator, Mapping, Sequence
from typing import Annotated, Any, Literal, TypeVar, Union, get_args, get_origin

import annotated_types

T = TypeVar("T")
# A float as YAML 1.2 writes it ("5e-4"); PyYAML (YAML 1.1) reads those as strings.
_YAML12_FLOAT = re.compile(r"[-+]?(\.[0-9]+|[0-9]+(\.[0-9]*)?)([eE][-+]?[0-9]+)?")
_BOUNDS = (
    (annotated_types.Gt, "gt", operator.gt, ">"),
    (annotated_types.Ge, "ge", operator.ge, ">="),
    (annotated_types.Lt, "lt", operator.lt, "<"),
    (annotated_types.Le, "le", operator.le, "<="),
)


class ConfigError(ValueError):
    """A config value is unknown, of the wrong type, or inconsistent."""


class Registry:
    """Name -> callable mapping for one extension point.

    Args:
        kind: What the registry holds, used in messages (e.g. "strategy").
        plural: The plural of `kind`, for listings.
        context: Parameter names that the suite passes itself (never config keys).
        package: The package whose modules register the built-in entries, imported on the
            first lookup (not before: importing it costs seconds of torch/Avalanche).
    """

    def __init__(self, kind: str, *, plural: str, context: tuple[str, ...] = (), package: str | None = None) -> None:
        self.kind = kind
        self.plural = plural
        self.context = context
        self.package = package
        self._items: dict[str, Callable[..., Any]] = {}

    def _fill(self) -> None:
        """Imports the built-in entries' package once (its modules register themselves)."""
        if self.package is not None:
            package, self.package = self.package, None
            importlib.import_module(package)

    def register(self, name: str) -> Callable[[T], T]:
        """Decorator that registers a callable under `name` (duplicates are errors)."""

        def decorator(obj: T) -> T:
            if name in self._items:
                raise ValueError(
                    f"{self.kind} {name!r} is already registered by {_qualname(self._items[name])}; "
                    f"choose another name for {_qualname(obj)}"
                )
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
            raise ConfigError(
                f"unknown {self.kind} {name!r}; registered: {', '.join(self.names()) or '(none)'}"
            )
        return self._items[name]

    def names(self) -> list[str]:
        self._fill()
        return sorted(self._items)

    def __contains__(self, name: str) -> bool:
        self._fill()
        return name in self._items

    def __iter__(self) -> Iterator[str]:
        return iter(self.names())

    def parameters(self, name: str) -> dict[str, inspect.Parameter]:
        """The config keys of `name`: its keyword parameters minus the suite's context."""
        return config_parameters(self.get(name), skip=self.context)

    def resolve(self, name: str, options: Mapping[str, Any], *, where: str) -> dict[str, Any]:
        """Checks `options` against `name`'s parameters and fills in defaults.

        Raises:
            ConfigError: on an unknown key, a missing required key or a wrong type.
        """
        return check_options(self.get(name), options, where=where, skip=self.context)

    def build(self, name: str, options: Mapping[str, Any], **context: Any) -> Any:
        """Calls the registered callable with checked options plus the context it declares."""
        obj = self.get(name)
        kwargs = self.resolve(name, options, where=f"{self.kind} {name!r}")
        accepted = inspect.signature(obj).parameters
        kwargs.update({k: v for k, v in context.items() if k in accepted})
        return obj(**kwargs)


def _import_object(spec: str, kind: str) -> Callable[..., Any]:
    module_name, _, attr = spec.partition(":")
    try:
        module = importlib.import_module(module_name)
    except ImportError as e:
        raise ConfigError(f"{kind} {spec!r}: cannot import module {module_name!r} ({e}); is it on PYTHONPATH?") from e
    try:
        return getattr(module, attr)
    except AttributeError as e:
        raise ConfigError(f"{kind} {spec!r}: module {module_name!r} has no attribute {attr!r}") from e


def _qualname(obj: Any) -> str:
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


def check_options(
    obj: Callable[..., Any], options: Mapping[str, Any], *, where: str, skip: tuple[str, ...] = ()
) -> dict[str, Any]:
    """Validates `options` against `obj`'s signature; returns them with defaults filled in."""
    params = config_parameters(obj, skip=skip)
    unknown = sorted(set(options) - set(params))
    if unknown:
        raise ConfigError(
            f"{where}: unknown key(s) {', '.join(unknown)}; valid keys: {', '.join(params) or '(none)'}"
        )
    resolved: dict[str, Any] = {}
    for name, p in params.items():
        if name in options:
            resolved[name] = coerce(options[name], p.annotation, where=f"{where}.{name}")
        elif p.default is inspect.Parameter.empty:
            raise ConfigError(f"{where}: missing required key {name!r}")
        else:
            resolved[name] = p.default
    return resolved


def coerce(value: Any, annotation: Any, *, where: str) -> Any:
    """Checks `value` against a type annotation; converts int->float, numeric strings->float
    and list->tuple; checks the bounds of `Annotated[int, annotated_types.Ge(1)]` and alike.

    Raises:
        ConfigError: naming `where`, the expected type and the value found.
    """
    if annotation is Any or annotation is inspect.Parameter.empty:
        return value
    origin, args = get_origin(annotation), get_args(annotation)
    if origin is Annotated:
        value = coerce(value, args[0], where=where)
        _check_constraints(value, args[1:], where=where)
        return value
    if origin in (Union, types.UnionType):
        errors = []
        for arg in args:
            try:
                return coerce(value, arg, where=where)
            except ConfigError as e:
                errors.append(str(e))
        raise ConfigError(f"{where}: expected {_type_name(annotation)}, got {value!r}")
    if origin is Literal:
        if value in args:
            return value
        raise ConfigError(f"{where}: expected one of {', '.join(map(repr, args))}, got {value!r}")
    if annotation is type(None):
        if value is None:
            return None
        raise ConfigError(f"{where}: expected None, got {value!r}")
    if origin in (tuple, list) or annotation in (tuple, list):
        if not isinstance(value, (list, tuple)):
            raise ConfigError(f"{where}: expected a list, got {value!r}")
        if origin is tuple and len(args) == 2 and args[1] is Ellipsis:
            items = [coerce(v, args[0], where=f"{where}[{i}]") for i, v in enumerate(value)]
        elif origin is tuple and args:
            if len(args) != len(value):
                raise ConfigError(f"{where}: expected {len(args)} items, got {value!r}")
            items = [coerce(v, a, where=f"{where}[{i}]") for i, (v, a) in enumerate(zip(value, args))]
        elif args:
            items = [coerce(v, args[0], where=f"{where}[{i}]") for i, v in enumerate(value)]
        else:
            items = list(value)
        return tuple(items)
    if origin is dict or annotation is dict:
        if not isinstance(value, Mapping):
            raise ConfigError(f"{where}: expected a mapping, got {value!r}")
        return dict(value)
    if annotation is float:
        if isinstance(value, (int, float)) and not isinstance(value, bool):
            return float(value)
        if isinstance(value, str) and _YAML12_FLOAT.fullmatch(value.strip()):
            return float(value)
    elif annotation is int:
        if isinstance(value, int) and not isinstance(value, bool):
            return value
    elif isinstance(annotation, type) and isinstance(value, annotation):
        return value
    raise ConfigError(f"{where}: expected {_type_name(annotation)}, got {value!r} ({type(value).__name__})")


def _check_constraints(value: Any, constraints: Sequence[Any], *, where: str) -> None:
    for c in constraints:
        if isinstance(c, annotated_types.GroupedMetadata):  # e.g. Interval(ge=1, le=9)
            _check_constraints(value, list(c), where=where)
        elif isinstance(c, annotated_types.MinLen) and len(value) < c.min_length:
            raise ConfigError(f"{where}: give at least {c.min_length} item(s), got {list(value)!r}")
        for kind, attr, compare, sign in _BOUNDS:
            if isinstance(c, kind) and not compare(value, getattr(c, attr)):
                raise ConfigError(f"{where}: must be {sign} {getattr(c, attr)}, got {value!r}")


def _type_name(annotation: Any) -> str:
    if get_origin(annotation) is Annotated:
        return _type_name(get_args(annotation)[0])
    if get_origin(annotation) is None and hasattr(annotation, "__name__"):
        return annotation.__name__
    return str(annotation).replace("typing.", "")


def describe(obj: Callable[..., Any], *, skip: tuple[str, ...] = ()) -> str:
    """One line per config key: name, type, default and the Google-style 'Args' text."""
    docs = _arg_docs(inspect.getdoc(obj) or "")
    lines = []
    for name, p in config_parameters(obj, skip=skip).items():
        default = "required" if p.default is inspect.Parameter.empty else f"default {p.default!r}"
        lines.append(f"{name}: {_type_name(p.annotation)} ({default}) {docs.get(name, '')}".rstrip())
    return "\n".join(lines)


def _arg_docs(doc: str) -> dict[str, str]:
    out: dict[str, str] = {}
    in_args, current = False, None
    for line in doc.splitlines():
        if line.strip() in ("Args:", "Arguments:"):
            in_args = True
            continue
        if in_args:
            if line and not line.startswith(" "):
                break
            stripped = line.strip()
            head, sep, rest = stripped.partition(":")
            if sep and line.startswith("    ") and not line.startswith("      ") and " " not in head.split("(")[0].strip():
                current = head.split("(")[0].strip()
                out[current] = rest.strip()
            elif current and stripped:
                out[current] += " " + stripped
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
