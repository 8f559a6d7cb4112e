"""Every third-party package the code imports is declared in pyproject.toml, as a dependency or in an
optional extra (imported lazily, naming the extra when missing); CI installs `.[test]`."""

import ast
import re
import sys
from importlib.metadata import packages_distributions
from pathlib import Path

import pytest

tomllib = pytest.importorskip("tomllib")  # Python 3.11+

ROOT = Path(__file__).parents[1]


def normalise(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def imported_modules(package: Path) -> dict[str, Path]:
    """Top-level names of the absolute imports in a package's files -> one file importing it."""
    found = {}
    for path in sorted(package.rglob("*.py")):
        for node in ast.walk(ast.parse(path.read_text(), filename=str(path))):
            if isinstance(node, ast.Import):
                names = [alias.name for alias in node.names]
            elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
                names = [node.module]
            else:
                continue
            for name in names:
                found.setdefault(name.partition(".")[0], path)
    return found


def test_every_imported_third_party_package_is_a_declared_dependency():
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    extras = [dep for name, deps in project.get("optional-dependencies", {}).items() if name != "test" for dep in deps]
    declared = {normalise(re.split(r"[<>=!~\[; ]", dep, maxsplit=1)[0]) for dep in [*project["dependencies"], *extras]}
    providers = packages_distributions()
    missing = []
    for module, path in imported_modules(ROOT / "ccrbench").items():
        if module in sys.stdlib_module_names or module in ("ccrbench", "__future__"):
            continue
        distributions = {normalise(d) for d in providers.get(module, [module])}
        if not distributions & declared:
            missing.append(f"{module} (imported by {path.relative_to(ROOT)}; distribution {', '.join(sorted(distributions))})")
    assert not missing, "declare in pyproject.toml [project] dependencies: " + "; ".join(missing)
