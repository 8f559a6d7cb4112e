import pytest

import ccrbench  # noqa: F401 - fills the registries
from ccrbench.docstrings import describe
from ccrbench.registry import BENCHMARKS, ENCODERS, LOSSES, STRATEGIES, ConfigError, Registry


def test_duplicate_names_are_errors():
    registry = Registry("thing", plural="things")

    @registry.register("a")
    def a(*, x: int = 1) -> int:
        return x

    with pytest.raises(ValueError, match="already registered"):
        registry.register("a")(lambda: None)


def test_unknown_name_lists_what_exists():
    with pytest.raises(ConfigError, match="registered: .*max_hinge"):
        LOSSES.get("nope")


def test_build_checks_options_and_passes_declared_context():
    registry = Registry("thing", plural="things", context=("corpus",))

    @registry.register("b")
    def b(*, size: int = 2, corpus: tuple = ()) -> tuple:
        return size, corpus

    assert registry.build("b", {"size": 3}, corpus=("x",), unused=1) == (3, ("x",))
    with pytest.raises(ConfigError, match="unknown key"):
        registry.build("b", {"corpus": ()})


def test_the_first_slice_is_registered():
    assert {"shapes"} <= set(BENCHMARKS.names())
    assert {"finetune", "joint"} <= set(STRATEGIES.names())
    assert {"small_cnn", "bigru"} <= set(ENCODERS.names())
    assert {"max_hinge", "infonce", "sum_hinge"} <= set(LOSSES.names())


def test_describe_lists_keys_with_docs():
    text = describe(LOSSES.get("max_hinge"))
    assert "margin: float (default 0.2) the hinge margin." in text
