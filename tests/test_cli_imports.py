"""The commands that do not train start without Avalanche: `list` (from its cache), `--help`,
`config`, `report` (`data check`: tests/benchmarks/test_coco.py)."""

import os
import shutil
import subprocess
import sys
from pathlib import Path

from ccrbench.catalog import cached_listing, fingerprint, listing

ROOT = Path(__file__).parents[1]


def heavy_modules_after(args, cache):
    """What `ccrbench ARGS` prints in a fresh interpreter, and which of avalanche / torch it imported."""
    code = (
        "import sys; from ccrbench.cli import main\n"
        f"try:\n    main({args!r})\nexcept SystemExit:\n    pass\n"
        "print(sorted(m for m in ('avalanche', 'torch') if m in sys.modules))"
    )
    env = {**os.environ, "CCRBENCH_CACHE": str(cache), "PYTHONPATH": str(ROOT)}
    done = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, check=True)
    *printed, modules = done.stdout.rstrip("\n").split("\n")
    return "\n".join(printed) + "\n", modules


def test_list_comes_from_the_cache_without_torch_or_avalanche(tmp_path, monkeypatch):
    monkeypatch.setenv("CCRBENCH_CACHE", str(tmp_path))
    text = cached_listing(details=True)  # lists the registries here and caches the text
    assert text == listing(details=True) and "margin: float" in text and "strategies:" in text
    printed, modules = heavy_modules_after(["list", "--details"], tmp_path)
    assert printed == text and modules == "[]"
    for args in (["--help"], ["config", "list"]):
        assert heavy_modules_after(args, tmp_path)[1] == "[]"


def test_a_changed_source_lists_afresh(tmp_path, monkeypatch):
    shutil.copytree(ROOT / "ccrbench" / "strategies", tmp_path / "pkg", ignore=shutil.ignore_patterns("__pycache__"))
    before = fingerprint(tmp_path / "pkg")
    assert fingerprint(tmp_path / "pkg") == before
    with (tmp_path / "pkg" / "ewc.py").open("a") as f:
        f.write("# an edit\n")
    assert fingerprint(tmp_path / "pkg") != before
    monkeypatch.setenv("CCRBENCH_CACHE", str(tmp_path / "cache"))
    stale = tmp_path / "cache" / "list" / f"{'0' * 24}.txt"
    stale.parent.mkdir(parents=True)
    stale.write_text("stale\n")
    assert cached_listing(details=False) == listing(details=False)
    assert not stale.exists()  # the listing of other sources is removed


def test_report_does_not_import_avalanche(tmp_path):
    run = next((ROOT / "results" / "paper_table").glob("strategy-finetune*seed-0"))
    (tmp_path / "runs" / "a").mkdir(parents=True)
    shutil.copy(run / "results.json", tmp_path / "runs" / "a")
    printed, modules = heavy_modules_after(["report", str(tmp_path / "runs")], tmp_path)
    assert "1 runs in runs" in printed and "avalanche" not in modules
