import os

import pytest
import torch

torch.set_num_threads(max(1, min(2, os.cpu_count() or 1)))


@pytest.fixture(autouse=True)
def _isolated_cache(tmp_path_factory, monkeypatch):
    """Generated benchmark data goes to one per-session cache, never the user's."""
    monkeypatch.setenv("CCRBENCH_CACHE", str(tmp_path_factory.getbasetemp() / "cache"))
