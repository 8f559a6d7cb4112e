import pytest


@pytest.fixture(autouse=True)
def _isolated_cache(tmp_path_factory, monkeypatch):
    """Generated benchmark data goes to one per-session cache, never the user's."""
    monkeypatch.setenv("CCRBENCH_CACHE", str(tmp_path_factory.getbasetemp() / "cache"))
