"""Checking config values with pydantic.

A registered callable's keyword parameters, or a config section's fields, become one pydantic
validator (built once per callable or section): types are checked strictly (no bool for an
int, no "3" for a number), limits come from `Annotated[int, annotated_types.Ge(1)]` and alike,
unknown keys are refused. Two things YAML writes differently are accepted: a list for a tuple,
and a float in YAML 1.2 notation ("5e-4", which PyYAML reads as a string). Errors become one
line naming the key, e.g. `train.epochs: must be >= 1, got 0`.
"""

from __future__ import annotations

import functools
import inspect
import re
import types
from collections.abc import Callable, Mapping
from typing import Annotated, Any, Union, get_args, get_origin

import pydantic
from pydantic import BeforeValidator, ConfigDict, TypeAdapter
from typing_extensions import NotRequired, Required, TypedDict  # pydantic needs typing_extensions' TypedDict before 3.12

from ccrbench.registry import ConfigError, config_parameters

# A float as YAML 1.2 writes it ("5e-4"); PyYAML (YAML 1.1) reads those as strings.
_YAML12_FLOAT = re.compile(r"[-+]?(\.[0-9]+|[0-9]+(\.[0-9]*)?)([eE][-+]?[0-9]+)?")
_STRICT = ConfigDict(strict=True, extra="forbid", arbitrary_types_allowed=True)
_LIMITS = {"greater_than": ("gt", ">"), "greater_than_equal": ("ge", ">="), "less_than": ("lt", "<"), "less_than_equal": ("le", "<=")}
_TYPES = {
    "int_type": "int",
    "int_from_float": "int",
    "float_type": "float",
    "string_type": "str",
    "bool_type": "bool",
    "none_required": "None",
    "tuple_type": "a list",
    "dict_type": "a mapping",
}
Fields = Mapping[str, tuple[Any, Any]]  # name -> (annotation, default or inspect.Parameter.empty)


def _yaml12_float(value: Any) -> Any:
    """A string written as a YAML 1.2 float, as that float; any other value unchanged."""
    return float(value) if isinstance(value, str) and _YAML12_FLOAT.fullmatch(value.strip()) else value


def _list_to_tuple(value: Any) -> Any:
    return tuple(value) if isinstance(value, list) else value


def _from_yaml(annotation: Any) -> Any:
    """`annotation` for pydantic's strict mode, also accepting what YAML writes for it."""
    origin, args = get_origin(annotation), get_args(annotation)
    if annotation is float:
        return Annotated[float, BeforeValidator(_yaml12_float)]
    if origin is Annotated:
        return Annotated[(_from_yaml(args[0]), *annotation.__metadata__)]
    if origin in (Union, types.UnionType):
        return Union[tuple(_from_yaml(a) for a in args)]
    if origin is tuple or annotation is tuple:
        inner = tuple[tuple(a if a is Ellipsis else _from_yaml(a) for a in args)] if args else tuple
        return Annotated[inner, BeforeValidator(_list_to_tuple)]
    return annotation


def make_validator(name: str, fields: Fields) -> TypeAdapter:
    """A TypedDict of `fields` (those without a default required), checked strictly."""
    keys = {n: (Required if d is inspect.Parameter.empty else NotRequired)[_from_yaml(a)] for n, (a, d) in fields.items()}
    typed = TypedDict(name, keys)  # type: ignore[misc]
    typed.__pydantic_config__ = _STRICT  # type: ignore[attr-defined]
    return TypeAdapter(typed)


@functools.cache
def _signature_validator(obj: Callable[..., Any], skip: tuple[str, ...]) -> tuple[TypeAdapter, Fields]:
    """The validator of `obj`'s config keys (its keyword parameters less `skip`), built once per callable."""
    fields = {n: (p.annotation, p.default) for n, p in config_parameters(obj, skip=skip).items()}
    return make_validator(getattr(obj, "__name__", "options"), fields), fields


def check_options(obj: Callable[..., Any], options: Mapping[str, Any], *, where: str, skip: tuple[str, ...] = ()) -> dict[str, Any]:
    """Validates `options` against `obj`'s keyword parameters (minus `skip`); returns them with
    defaults filled in, in the parameters' order.

    Raises:
        ConfigError: on an unknown key, a missing required key, a wrong type or a value out of
            its limits, naming `where` and the key.
    """
    validator, fields = _signature_validator(obj, skip)
    checked = check_fields(validator, fields, options, where=where)
    return {n: checked[n] if n in checked else default for n, (_, default) in fields.items()}


def check_fields(validator: TypeAdapter, fields: Fields, data: Mapping[str, Any], *, where: str) -> dict[str, Any]:
    """`data` checked by `validator` (made from `fields`); `where` names it in errors."""
    try:
        return validator.validate_python(dict(data))
    except pydantic.ValidationError as e:
        raise ConfigError(_message(e.errors(), fields, where=where)) from None


def _message(errors: list[dict[str, Any]], fields: Fields, *, where: str) -> str:
    unknown = sorted(str(e["loc"][0]) for e in errors if e["type"] == "extra_forbidden")
    if unknown:
        return f"{where or 'config'}: unknown key(s) {', '.join(unknown)}; valid keys: {', '.join(fields) or '(none)'}"
    missing = [e["loc"][0] for e in errors if e["type"] == "missing"]
    if missing:
        return f"{where or 'config'}: missing required key {missing[0]!r}"
    path = _path(errors[0]["loc"])
    alternatives = [e for e in errors if _path(e["loc"]) == path]  # one per member of a union
    return f"{where + '.' if where else ''}{path}: {_problem(alternatives)}"


def _path(loc: tuple[Any, ...]) -> str:
    """`ks[1]` from ('ks', 1); the names of a union's members in `loc` are left out."""
    return str(loc[0]) + "".join(f"[{i}]" for i in loc[1:] if isinstance(i, int))


def _problem(alternatives: list[dict[str, Any]]) -> str:
    value = alternatives[0]["input"]
    for e in alternatives:  # a value of the right type out of its limits says which limit
        if e["type"] in _LIMITS:
            key, sign = _LIMITS[e["type"]]
            return f"must be {sign} {e['ctx'][key]}, got {e['input']!r}"
        if e["type"] == "too_short":
            return f"give at least {e['ctx']['min_length']} item(s), got {list(e['input'])!r}"
    expected = [_expected(e) for e in alternatives]
    if len(expected) == 1 and alternatives[0]["type"] == "literal_error":
        return f"expected {expected[0]}, got {value!r}"
    return f"expected {' | '.join(expected)}, got {value!r} ({type(value).__name__})"


def _expected(error: dict[str, Any]) -> str:
    if error["type"] == "literal_error":  # pydantic writes "'a', 'b' or 'c'"
        head, _, last = error["ctx"]["expected"].rpartition(" or ")
        return f"one of {head}, {last}" if head else f"one of {last}"
    return _TYPES.get(error["type"], error["msg"].removeprefix("Input should be "))
