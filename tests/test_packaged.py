"""Configs and suites ship inside the package and resolve by name from any directory."""

import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest
import yaml

from ccrbench.cli import main
from ccrbench.config import load_config
from ccrbench.packaged import copy_packaged, packaged_dir, packaged_names, resolve
from ccrbench.registry import ConfigError
from ccrbench.suite import expand_suite

ROOT = Path(__file__).parents[1]


def test_the_wheel_holds_every_config_and_suite(tmp_path):
    """Builds the wheel from a copy of the package (setuptools, no isolation: a second or two)."""
    shutil.copy(ROOT / "pyproject.toml", tmp_path)
    shutil.copy(ROOT / "README.md", tmp_path)
    shutil.copytree(ROOT / "ccrbench", tmp_path / "ccrbench", symlinks=True, ignore=shutil.ignore_patterns("__pycache__"))
    (tmp_path / "results" / "paper_table").mkdir(parents=True)  # the selection link's target
    shutil.copy(ROOT / "results" / "paper_table" / "selection.json", tmp_path / "results" / "paper_table")
    subprocess.run([sys.executable, "-c", "from setuptools import build_meta as b; b.build_wheel('dist')"], cwd=tmp_path, check=True, capture_output=True)
    (wheel,) = (tmp_path / "dist").glob("ccrbench-*.whl")
    names = set(zipfile.ZipFile(wheel).namelist())
    expected = {f"ccrbench/configs/{n}.yaml" for n in packaged_names("config")} | {f"ccrbench/configs/suites/{n}.yaml" for n in packaged_names("suite")}
    assert {"ccrbench/configs/shapes_finetune.yaml", "ccrbench/configs/suites/paper_table.yaml"} <= expected <= names
    selection = zipfile.ZipFile(wheel).read("ccrbench/configs/suites/paper_table_selection.json")
    assert selection == (ROOT / "results" / "paper_table" / "selection.json").read_bytes()  # the link's content, not a link


def test_packaged_names_resolve_from_any_directory(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    assert resolve("shapes_finetune", "config") == resolve("shapes_finetune.yaml", "config") == packaged_dir("config") / "shapes_finetune.yaml"
    assert load_config("shapes_finetune").strategy.name == "finetune"
    runs = expand_suite(resolve("paper_table", "suite"))  # its selection ships beside it
    assert len(runs) == 54 and len({r.config.strategy.options.get("lam") for r in runs if r.config.strategy.name == "ewc"}) == 1
    (tmp_path / "paper_table").mkdir()  # a folder of that name does not hide the packaged suite
    assert resolve("paper_table", "suite").is_file()
    (tmp_path / "mine.yaml").write_text("seed: 3\n")
    assert resolve("mine.yaml", "config") == Path("mine.yaml") and load_config("mine.yaml").seed == 3
    with pytest.raises(ConfigError, match="ccrbench config list"):
        load_config("no_such_config")


def test_suite_by_name_from_an_empty_directory(tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    assert main(["suite", "smoke", "--out", "x", "--status"]) == 0
    count = len(expand_suite(packaged_dir("suite") / "smoke.yaml"))
    assert f"{count} runs in x: 0 done, 0 running, 0 failed, {count} missing" in capsys.readouterr().out


def test_config_show_and_copy(tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    assert main(["config", "show", "smoke"]) == 0
    assert capsys.readouterr().out == (packaged_dir("suite") / "smoke.yaml").read_text()
    assert main(["config", "copy", "smoke", "."]) == 0
    copied = yaml.safe_load((tmp_path / "smoke.yaml").read_text())
    assert Path(copied["base"]).is_absolute() and Path(copied["base"]).is_file()
    original = {r.name: r.config for r in expand_suite(packaged_dir("suite") / "smoke.yaml")}
    assert {r.name: r.config for r in expand_suite(tmp_path / "smoke.yaml")} == original
    assert main(["config", "copy", "smoke", "."]) == 2  # never overwrites
    assert "exists already" in capsys.readouterr().err
    with pytest.raises(ConfigError, match="configs: .*shapes_finetune"):
        copy_packaged("nope", tmp_path)
    assert main(["config", "list"]) == 0
    assert "paper_table" in capsys.readouterr().out


def test_the_repository_configs_path_is_the_package_folder():
    assert (ROOT / "configs").resolve() == packaged_dir("config").resolve()
