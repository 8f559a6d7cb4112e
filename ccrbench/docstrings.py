"""What `ccrbench list --details` prints of a registered callable: its config keys with their
types, defaults and Google-style `Args:` texts."""

from __future__ import annotations

import inspect
from collections.abc import Callable, Mapping
from typing import Annotated, Any, get_args, get_origin

from ccrbench.registry import config_parameters


def describe(obj: Callable[..., Any], *, skip: tuple[str, ...] = ()) -> str:
    """One line per config key: name, type, default and the Google-style 'Args' text."""
    return describe_keys(config_parameters(obj, skip=skip), inspect.getdoc(obj) or "")


def describe_keys(parameters: Mapping[str, inspect.Parameter], doc: str) -> str:
    """`describe`'s lines from the config keys (annotations resolved) and the cleaned docstring."""
    docs = arg_docs(doc)
    lines = []
    for name, p in parameters.items():
        default = "required" if p.default is inspect.Parameter.empty else f"default {p.default!r}"
        lines.append(f"{name}: {type_name(p.annotation)} ({default}) {docs.get(name, '')}".rstrip())
    return "\n".join(lines)


def type_name(annotation: Any) -> str:
    """`int` for int and for Annotated[int, ...]; typing's text for the others."""
    if get_origin(annotation) is Annotated:
        return type_name(get_args(annotation)[0])
    if get_origin(annotation) is None and hasattr(annotation, "__name__"):
        return annotation.__name__
    return str(annotation).replace("typing.", "")


def arg_docs(doc: str) -> dict[str, str]:
    """Parameter name -> its text under `Args:` (or `Arguments:`) of a Google-style docstring."""
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
