"""What `ccrbench list` prints, read from the package's sources without importing them.

Importing the registered modules costs seconds (torch, and Avalanche through the strategies),
so the built-in members are found where their decorator is (`@register_strategy("ewc")` above
`class EWC`, and likewise for the other registries) with `ast`: the constructor's keyword
parameters (a dataclass's fields; inherited from a base class of the package), their
annotations and defaults, the docstring and `modality`. Annotations and defaults are
evaluated from the source text with names from the standard library, `annotated_types` and
constants of the package's modules, so the text is what the imported objects would give
(tests/test_cli_imports.py checks that over every registered member). Members registered at
run time by other code go through the registry (`ccrbench.registry`) as always.
"""

from __future__ import annotations

import ast
import builtins
import importlib
import inspect
import sys
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import Any

from ccrbench.docstrings import describe_keys
from ccrbench.registry import BENCHMARKS, ENCODERS, LOSSES, STRATEGIES, Registry

PACKAGE = Path(__file__).parent
REGISTRIES = (BENCHMARKS, STRATEGIES, ENCODERS, LOSSES)  # in the listing's order
DECORATORS = {
    "register_benchmark": BENCHMARKS,
    "register_file_benchmark": BENCHMARKS,  # a file benchmark is also a benchmark with the same options
    "register_strategy": STRATEGIES,
    "register_encoder": ENCODERS,
    "register_loss": LOSSES,
}
LIGHT_MODULES = frozenset(sys.stdlib_module_names) | {"annotated_types"}  # importable by the reader


class SourceError(ValueError):
    """A registered member's source uses a construct the reader does not evaluate."""


@dataclass(frozen=True)
class Member:
    """What the listing shows of one registered callable.

    Args:
        name: Its registered name.
        modality: Its `modality` attribute ("image" or "text" for an encoder), else None.
        parameters: Its config keys, annotations resolved.
        doc: Its cleaned docstring (`inspect.getdoc`'s).
    """

    name: str
    modality: str | None
    parameters: dict[str, inspect.Parameter]
    doc: str


def listing(members: dict[str, list[Member]] | None = None, *, details: bool) -> str:
    """Every benchmark, strategy, encoder and loss (with `details`: their config keys);
    `members` (by registry plural, sorted by name) default: the package's, read from its sources."""
    members = source_members() if members is None else members
    lines = []
    for registry in REGISTRIES:
        lines.append(f"{registry.plural}:")
        for m in members[registry.plural]:
            lines.append(f"  {m.name}" + (f" ({m.modality})" if m.modality else ""))
            if details:
                lines.extend(f"      {line}" for line in describe_keys(m.parameters, m.doc).splitlines())
    return "\n".join(lines) + "\n"


def source_members(root: Path = PACKAGE) -> dict[str, list[Member]]:
    """The members that the modules of the registries' packages register, read from `root`."""
    found: dict[str, list[Member]] = {r.plural: [] for r in REGISTRIES}
    for registry in REGISTRIES:
        folder = root.joinpath(*registry.package.split(".")[1:])
        for path in sorted(folder.rglob("*.py")):
            if "@register_" not in path.read_text(encoding="utf-8"):
                continue
            module = _module(root, ".".join(path.relative_to(root.parent).with_suffix("").parts))
            for node, decorator, name in module.registrations():
                if DECORATORS[decorator] is registry:
                    found[registry.plural].append(module.member(node, name, skip=registry.context))
    empty = [plural for plural, members in found.items() if not members]
    if empty:  # e.g. an installation without its .py files
        raise SourceError(f"no registered {', '.join(empty)} in the sources under {root}")
    return {plural: sorted(members, key=lambda m: m.name) for plural, members in found.items()}


def _import_name(node: ast.ImportFrom, module: str) -> str:
    """The absolute module name of a `from ... import` in `module`."""
    if not node.level:
        return node.module or ""
    base = module.split(".")[: -node.level]
    return ".".join(base + ([node.module] if node.module else []))


@cache
def _module(root: Path, name: str) -> _Module:
    path = root.parent.joinpath(*name.split("."))
    path = path / "__init__.py" if path.is_dir() else path.with_suffix(".py")
    return _Module(name, path, root)


class _Module:
    """One source file of the package: its top-level classes, functions, constants and imports."""

    def __init__(self, name: str, path: Path, root: Path) -> None:
        self.name, self.path, self.root = name, path, root
        tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
        self.tree = tree
        self.defined: dict[str, ast.AST] = {}  # name -> ClassDef, FunctionDef or the assigned expression
        self.imported: dict[str, tuple[str, str | None]] = {}  # name -> (module, attribute or None: the module)
        for node in tree.body:
            if isinstance(node, (ast.ClassDef, ast.FunctionDef)):
                self.defined[node.name] = node
            elif isinstance(node, ast.Assign) and len(node.targets) == 1 and isinstance(node.targets[0], ast.Name):
                self.defined[node.targets[0].id] = node.value
            elif isinstance(node, ast.AnnAssign) and isinstance(node.target, ast.Name) and node.value is not None:
                self.defined[node.target.id] = node.value
            elif isinstance(node, ast.ImportFrom):
                for alias in node.names:
                    self.imported[alias.asname or alias.name] = (_import_name(node, name), alias.name)
            elif isinstance(node, ast.Import):
                for alias in node.names:
                    self.imported[alias.asname or alias.name.partition(".")[0]] = (alias.name if alias.asname else alias.name.partition(".")[0], None)

    def where(self, node: ast.AST) -> str:
        return f"{self.path}:{getattr(node, 'lineno', '?')}"

    def registrations(self) -> Iterator[tuple[ast.ClassDef | ast.FunctionDef, str, str]]:
        """(definition, decorator, registered name) of each `@register_...("name")` at the top level."""
        for node in self.tree.body:
            if not isinstance(node, (ast.ClassDef, ast.FunctionDef)):
                continue
            for d in node.decorator_list:
                if isinstance(d, ast.Call) and _last_name(d.func) in DECORATORS:
                    if len(d.args) != 1 or not isinstance(d.args[0], ast.Constant) or not isinstance(d.args[0].value, str):
                        raise SourceError(f"{self.where(d)}: a registry decorator takes the name as one string literal")
                    yield node, _last_name(d.func), d.args[0].value

    # -- values -----------------------------------------------------------------------------

    def value(self, name: str, at: ast.AST) -> Any:
        """The value of a top-level `name`: a constant of the package, or an object of a light module."""
        if name in self.defined:
            node = self.defined[name]
            if isinstance(node, (ast.ClassDef, ast.FunctionDef)):  # e.g. in a constant whose keys alone are used
                return _Opaque(f"{self.name}.{name}", self.where(at))
            return self._constant(name)
        if name in self.imported:
            module, attribute = self.imported[name]
            if module.split(".")[0] == self.root.name:
                if attribute is None:
                    raise SourceError(f"{self.where(at)}: module {module} used as a value")
                return _module(self.root, module).value(attribute, at)
            if module.split(".")[0] not in LIGHT_MODULES:
                raise SourceError(f"{self.where(at)}: {name} comes from {module}, which the listing does not import")
            imported = importlib.import_module(module)
            return imported if attribute is None else getattr(imported, attribute)
        if hasattr(builtins, name):
            return getattr(builtins, name)
        raise SourceError(f"{self.where(at)}: {name} is not defined at the top level of {self.name}")

    @cache  # noqa: B019 - one evaluation per module constant (modules live as long as the process)
    def _constant(self, name: str) -> Any:
        return self.evaluate(self.defined[name])

    def evaluate(self, node: ast.expr) -> Any:
        """`node` evaluated with the names it reads resolved at this module's top level."""
        names = {n.id for n in ast.walk(node) if isinstance(n, ast.Name) and isinstance(n.ctx, ast.Load)}
        namespace = {"__builtins__": {}, **{n: self.value(n, node) for n in names}}
        code = compile(ast.fix_missing_locations(ast.Expression(node)), str(self.path), "eval")
        return eval(code, namespace)  # noqa: S307 - an expression of the package's own source, names resolved as above

    def annotation(self, node: ast.expr | None) -> Any:
        """An annotation's object (a string annotation parsed first); `Any` when there is none."""
        if node is None:
            return Any
        if isinstance(node, ast.Constant) and isinstance(node.value, str):
            node = ast.parse(node.value, mode="eval").body
        return self.evaluate(node)

    # -- classes ----------------------------------------------------------------------------

    def resolve_class(self, node: ast.expr) -> tuple[_Module, ast.ClassDef] | None:
        """A base class of the package (its module and definition); None for one from elsewhere."""
        if isinstance(node, ast.Name):
            if isinstance(self.defined.get(node.id), ast.ClassDef):
                return self, self.defined[node.id]  # type: ignore[return-value]
            module, attribute = self.imported.get(node.id, ("", None))
            if module.split(".")[0] == self.root.name and attribute is not None:
                return _module(self.root, module).resolve_class(ast.Name(attribute, ast.Load()))
        return None

    def mro(self, node: ast.ClassDef) -> list[tuple[_Module, ast.ClassDef]]:
        """The class and its bases of the package, in method resolution order (C3)."""
        bases = [b for b in (self.resolve_class(e) for e in node.bases) if b is not None]
        sequences = [[*m.mro(c)] for m, c in bases] + [bases]
        order = [(self, node)]
        while any(sequences):
            for seq in (s for s in sequences if s):
                head = seq[0]
                if not any(head in s[1:] for s in sequences):
                    break
            else:
                raise SourceError(f"{self.where(node)}: no consistent method resolution order")
            order.append(head)
            sequences = [s[1:] if s and s[0] == head else s for s in sequences]
        return order

    def member(self, node: ast.ClassDef | ast.FunctionDef, name: str, *, skip: Sequence[str]) -> Member:
        """What the listing shows of the class or function `node` registered as `name`."""
        if isinstance(node, ast.FunctionDef):
            return Member(name, None, self._signature(node, skip), ast.get_docstring(node) or "")
        chain = self.mro(node)
        doc = next((d for _, c in chain if (d := ast.get_docstring(c))), "")
        modality = None
        for module, cls in chain:
            assigned = _class_assignments(cls)
            if "modality" in assigned:
                modality = module.evaluate(assigned["modality"])
                break
        for i, (module, cls) in enumerate(chain):
            init = next((s for s in cls.body if isinstance(s, ast.FunctionDef) and s.name == "__init__"), None)
            if init is not None:
                return Member(name, modality, module._signature(init, skip, bound=True), doc)
            if any(_last_name(d.func if isinstance(d, ast.Call) else d) == "dataclass" for d in cls.decorator_list):
                return Member(name, modality, _dataclass_fields(chain[i:], skip), doc)
        return Member(name, modality, {}, doc)  # a constructor of a base from elsewhere (Avalanche's, torch's): no keys

    def _signature(self, node: ast.FunctionDef, skip: Sequence[str], *, bound: bool = False) -> dict[str, inspect.Parameter]:
        """The keyword parameters of `node` (without `self` when `bound`) minus `skip`."""
        args = node.args
        positional = [*args.posonlyargs, *args.args]
        defaults = [None] * (len(positional) - len(args.defaults)) + list(args.defaults)
        pairs = list(zip(positional, defaults))[1 if bound else 0 :] + list(zip(args.kwonlyargs, args.kw_defaults))
        out = {}
        for arg, default in pairs:
            if arg.arg in skip:
                continue
            value = inspect.Parameter.empty if default is None else self.evaluate(default)
            out[arg.arg] = inspect.Parameter(arg.arg, inspect.Parameter.KEYWORD_ONLY, default=value, annotation=self.annotation(arg.annotation))
        return out


class _Opaque:
    """Stands for a class or function of the package (and what it returns) inside an evaluated
    constant: the listing may use what surrounds it (a dict's keys), never show it."""

    def __init__(self, name: str, where: str) -> None:
        self._name, self._where = name, where

    def __call__(self, *args: Any, **kwargs: Any) -> _Opaque:
        return self

    def __getattr__(self, attribute: str) -> _Opaque:
        return self

    def __repr__(self) -> str:
        raise SourceError(f"{self._where}: the listing would show {self._name} (or what it returns), which needs its module imported")

    def __format__(self, spec: str) -> str:
        return repr(self)

    __str__ = __repr__


def _dataclass_fields(chain: list[tuple[_Module, ast.ClassDef]], skip: Sequence[str]) -> dict[str, inspect.Parameter]:
    """A dataclass's `__init__` keys: the annotated class attributes of it and its dataclass
    bases, the bases' first (a redeclared field keeps its place)."""
    fields: dict[str, inspect.Parameter] = {}
    for module, cls in reversed(chain):
        if not any(_last_name(d.func if isinstance(d, ast.Call) else d) == "dataclass" for d in cls.decorator_list):
            continue
        for s in cls.body:
            if isinstance(s, ast.AnnAssign) and isinstance(s.target, ast.Name) and s.target.id not in skip:
                if _last_name(s.annotation.value if isinstance(s.annotation, ast.Subscript) else s.annotation) == "ClassVar":
                    continue
                if isinstance(s.value, ast.Call) and _last_name(s.value.func) == "field":
                    raise SourceError(f"{module.where(s)}: dataclasses.field() defaults are not read; give the default as a value")
                value = inspect.Parameter.empty if s.value is None else module.evaluate(s.value)
                fields[s.target.id] = inspect.Parameter(s.target.id, inspect.Parameter.KEYWORD_ONLY, default=value, annotation=module.annotation(s.annotation))
    return fields


def _class_assignments(cls: ast.ClassDef) -> dict[str, ast.expr]:
    """name -> value of the plain assignments in a class body."""
    out = {}
    for s in cls.body:
        if isinstance(s, ast.Assign) and len(s.targets) == 1 and isinstance(s.targets[0], ast.Name):
            out[s.targets[0].id] = s.value
        elif isinstance(s, ast.AnnAssign) and isinstance(s.target, ast.Name) and s.value is not None:
            out[s.target.id] = s.value
    return out


def _last_name(node: ast.expr) -> str:
    """`b` of `a.b` or of `b`; "" for other expressions."""
    return node.id if isinstance(node, ast.Name) else node.attr if isinstance(node, ast.Attribute) else ""


def registered_members(registries: Sequence[Registry] = REGISTRIES) -> dict[str, list[Member]]:
    """The members of the live registries (importing their packages: seconds)."""
    return {
        r.plural: [Member(n, getattr(r.get(n), "modality", None), r.parameters(n), inspect.getdoc(r.get(n)) or "") for n in r.names()]
        for r in registries
    }
