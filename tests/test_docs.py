"""The documentation cannot rot: the site (docs/, mkdocs.yml, the API reference from the docstrings)
builds with `mkdocs build --strict`, and the README's links lead to files that exist."""

import re
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parent.parent
LINK = re.compile(r"\]\(([^)\s#]+)(?:#[^)\s]*)?\)")


def mkdocs_build(config: Path, site: Path) -> subprocess.CompletedProcess:
    pytest.importorskip("mkdocs", reason="mkdocs is not installed: pip install -e '.[test]' to build the docs")
    pytest.importorskip("mkdocstrings_handlers.python", reason="mkdocstrings-python is not installed: pip install -e '.[test]'")
    command = [sys.executable, "-m", "mkdocs", "build", "--strict", "--config-file", str(config), "--site-dir", str(site)]
    return subprocess.run(command, capture_output=True, text=True, timeout=300, cwd=config.parent)


def test_the_docs_build_strictly_with_the_api_reference(tmp_path):
    build = mkdocs_build(ROOT / "mkdocs.yml", tmp_path / "site")
    assert build.returncode == 0, build.stdout + build.stderr
    api = (tmp_path / "site" / "api" / "evaluation" / "index.html").read_text()
    assert 'id="ccrbench.evaluation.retrieval.evaluate_retrieval"' in api  # rendered from the docstring
    results = (tmp_path / "site" / "results" / "index.html").read_text()
    assert 'href="../repo/results/paper_table/report.md"' in results  # a link out of docs/ resolves
    assert (tmp_path / "site" / "repo" / "results" / "paper_table" / "report.md").is_file()


def test_a_link_to_a_missing_repository_file_fails_the_strict_build(tmp_path):
    config = yaml.safe_load((ROOT / "mkdocs.yml").read_text())
    (tmp_path / "docs").mkdir()
    (tmp_path / "docs" / "index.md").write_text("# Home\n\n[the README](../README.md), [gone](../results/nothing_here.md)\n")
    (tmp_path / "README.md").write_text("# Readme\n")
    config.update(docs_dir="docs", hooks=[str(ROOT / "docs" / "hooks.py")], plugins=[], nav=[{"Home": "index.md"}])
    (tmp_path / "mkdocs.yml").write_text(yaml.safe_dump(config))
    build = mkdocs_build(tmp_path / "mkdocs.yml", tmp_path / "site")
    assert build.returncode != 0
    assert "'../results/nothing_here.md', but the target is not found" in build.stderr
    assert "README.md" not in build.stderr  # the existing file outside docs/ is found


def test_the_readmes_links_lead_to_files():
    readme = (ROOT / "README.md").read_text()
    targets = [target for target in LINK.findall(readme) if "://" not in target]
    assert "docs/results.md" in targets and "docs/tensorboard_time_series.png" in targets
    assert [target for target in targets if not (ROOT / target).is_file()] == []


def test_every_docs_page_is_in_the_readmes_pointers():
    readme = (ROOT / "README.md").read_text()
    pages = sorted(path.relative_to(ROOT).as_posix() for path in (ROOT / "docs").glob("*.md") if path.name != "index.md")
    assert [page for page in pages if f"]({page})" not in readme] == []
