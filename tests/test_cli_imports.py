"""The commands that do not train start without Avalanche or torch: `list` (read from the
sources), `--help`, `config`; `report` without Avalanche (`data check`: tests/benchmarks/test_coco.py)."""

import os
import shutil
import subprocess
import sys
import textwrap
from pathlib import Path
from typing import Annotated, Literal

import pytest
from annotated_types import Ge

from ccrbench.catalog import SourceError, listing, registered_members, source_members
from ccrbench.cli import main

ROOT = Path(__file__).parents[1]


def heavy_modules_after(args):
    """What `ccrbench ARGS` prints in a fresh interpreter, and which heavy packages it imported."""
    code = (
        "import sys; from ccrbench.cli import main\n"
        f"try:\n    main({args!r})\nexcept SystemExit:\n    pass\n"
        "print(sorted(m for m in ('avalanche', 'torch', 'torchvision', 'matplotlib') if m in sys.modules))"
    )
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    done = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, check=True)
    *printed, modules = done.stdout.rstrip("\n").split("\n")
    return "\n".join(printed) + "\n", modules


@pytest.fixture(scope="module")
def live():
    """Every registered member, from the imported registries."""
    return registered_members()


def test_the_listing_read_from_the_sources_is_the_registries(live):
    static = source_members()
    assert {k: [m.name for m in v] for k, v in static.items()} == {k: [m.name for m in v] for k, v in live.items()}
    by_name = {(k, m.name): m for k, v in live.items() for m in v}
    for plural, members in static.items():  # member by member, for a readable failure
        for m in members:
            assert m == by_name[plural, m.name], f"{plural} {m.name}"
    for details in (False, True):
        assert listing(static, details=details) == listing(live, details=details)


def test_list_imports_neither_torch_nor_avalanche(live):
    printed, modules = heavy_modules_after(["list", "--details"])
    assert printed == listing(live, details=True) and "margin: float" in printed and modules == "[]"
    for args in (["list"], ["--help"], ["config", "list"], ["report", "--help"]):
        assert heavy_modules_after(args)[1] == "[]"


def write_package(root, source):
    """A package `ccrbench` under `root` whose strategies/x.py is `source` (and one member of
    each other registry); returns its folder."""
    folder = root / "ccrbench"
    for sub, decorators in (("strategies", ()), ("benchmarks", ("benchmark",)), ("models", ("encoder", "loss"))):
        (folder / sub).mkdir(parents=True)
        members = "".join(f'@register_{kind}("{kind}")\ndef {kind}():\n    pass\n' for kind in decorators)
        (folder / sub / "other.py").write_text(members)
    (folder / "strategies" / "x.py").write_text(textwrap.dedent(source))
    return folder


def test_the_reader_follows_bases_dataclasses_and_constants_of_other_modules(tmp_path):
    folder = write_package(tmp_path, '''
        from dataclasses import dataclass
        from typing import Annotated, Literal
        from annotated_types import Ge
        import torch
        from ccrbench.strategies.y import Base, KINDS
        from ccrbench.registry import register_strategy

        @register_strategy("x")
        @dataclass(kw_only=True)
        class X(Base):
            lam: Annotated[float, Ge(0)] = 2.0
            kind: Literal[KINDS] = KINDS[1]
    ''')
    (folder / "strategies" / "y.py").write_text(textwrap.dedent('''
        from dataclasses import dataclass
        import torch
        KINDS = tuple(sorted({"b": 1, "a": 2}))

        @dataclass(kw_only=True)
        class Base(torch.nn.Module):
            """Base.

            Args:
                lam: the weight.
                steps: how many.
            """
            modality = "image"
            lam: float
            steps: int = 3
    '''))
    [x] = source_members(folder)["strategies"]
    assert x.name == "x" and x.modality == "image" and x.doc.startswith("Base.")
    assert [(p.name, p.annotation, p.default) for p in x.parameters.values()] == [
        ("lam", Annotated[float, Ge(0)], 2.0), ("steps", int, 3), ("kind", Literal["a", "b"], "b")
    ]


@pytest.mark.parametrize(
    ("default", "message"),
    [("torch.zeros(1)", "x.py:5: torch comes from torch, which the listing does not import"),
     ("helper()", "x.py:5: the listing would show ccrbench.strategies.x.helper")],
)
def test_what_the_reader_cannot_show_is_an_error_naming_the_line(tmp_path, default, message):
    folder = write_package(tmp_path, f'''
        import torch
        from ccrbench.registry import register_strategy
        @register_strategy("x")
        def x(*, a=1, b={default}):
            """X."""
        def helper():
            pass
    ''')
    with pytest.raises(SourceError, match=message):
        listing(source_members(folder), details=True)


def test_a_package_without_sources_is_an_error(tmp_path):
    with pytest.raises(SourceError, match="no registered benchmarks, strategies, encoders, losses in the sources"):
        source_members(tmp_path / "ccrbench")


def test_list_falls_back_to_the_imported_registries(live, monkeypatch, capsys):
    def unreadable(*args, **kwargs):
        raise SourceError("x.py:1: something new")

    monkeypatch.setattr("ccrbench.catalog.source_members", unreadable)
    assert main(["list"]) == 0
    out, err = capsys.readouterr()
    assert out == listing(live, details=False) and "x.py:1: something new" in err


def test_report_imports_neither_avalanche_nor_torch(tmp_path):
    for seed in (0, 1):  # two seeds: the report also writes a mean-over-seeds TensorBoard run (tensorboard.EventWriter)
        run = next((ROOT / "results" / "paper_table").glob(f"strategy-finetune*shared_layers-0__seed-{seed}"))
        (tmp_path / "runs" / run.name).mkdir(parents=True)
        shutil.copy(run / "results.json", tmp_path / "runs" / run.name)
    printed, modules = heavy_modules_after(["report", str(tmp_path / "runs")])
    assert "2 runs in runs" in printed and "1 mean-over-seeds runs" in printed
    assert "avalanche" not in modules and "torch" not in modules and "torchvision" not in modules
