"""Checks shared by the registry-wide contract tests (tests/*/test_every_*.py)."""

import inspect
import typing

from ccrbench.docstrings import arg_docs
from ccrbench.registry import Registry


def assert_documented_keyword_keys(registry: Registry, name: str) -> tuple[dict, dict]:
    """Every config key of `name` is keyword-only, type-hinted and documented under Args:;
    returns (its keys, the Args: texts)."""
    obj = registry.get(name)
    params = inspect.signature(obj).parameters.values()
    assert all(p.kind is p.KEYWORD_ONLY for p in params), "config keys must be keyword-only"
    keys = registry.parameters(name)
    hints = typing.get_type_hints(obj.__init__ if inspect.isclass(obj) else obj)
    assert not [k for k in keys if k not in hints], "every config key needs a type hint"
    docs = arg_docs(inspect.getdoc(obj) or "")
    assert not [k for k in keys if not docs.get(k)], "every config key needs an entry under Args: in the docstring"
    return keys, docs
