"""Tests never touch the network: conftest.py switches downloads off and makes every
internet connection and name lookup fail; pretrained weights then come from caches only."""

import os
import socket

import pytest
import torch
import torchvision

from ccrbench.models import hf_text, hub
from ccrbench.registry import ENCODERS, ConfigError
from tests.conftest import NetworkAccessError


@pytest.fixture
def attempts(monkeypatch):
    """Records every internet connection attempt (which the conftest guard still refuses)."""
    seen = []
    guard = socket.socket.connect

    def connect(sock, address):
        seen.append(address)
        guard(sock, address)

    monkeypatch.setattr(socket.socket, "connect", connect)
    return seen


def test_the_test_session_is_offline():
    assert hub.offline() and os.environ["HF_HUB_OFFLINE"] == "1"
    with pytest.raises(NetworkAccessError):
        socket.create_connection(("203.0.113.1", 443), timeout=1)
    with pytest.raises(NetworkAccessError):
        socket.getaddrinfo("download.pytorch.org", 443)


@pytest.mark.parametrize("value, expected", [("1", True), ("true", True), ("0", False), ("", False)])
def test_offline_switches(monkeypatch, value, expected):
    monkeypatch.delenv("HF_HUB_OFFLINE")
    monkeypatch.setenv("CCRBENCH_OFFLINE", value)
    assert hub.offline() == expected
    monkeypatch.delenv("CCRBENCH_OFFLINE")
    monkeypatch.setenv("HF_HUB_OFFLINE", value)
    assert hub.offline() == expected


def test_offline_named_weights_missing_from_the_cache_are_a_clear_error_without_network(tmp_path, monkeypatch, attempts):
    monkeypatch.setenv("TORCH_HOME", str(tmp_path))
    cached = tmp_path / "hub" / "checkpoints" / "resnet18-f37072fd.pth"
    with pytest.raises(ConfigError, match=f"resnet18.weights: .*'IMAGENET1K_V1' are not in the torch cache \\({cached}\\).*downloads are off"):
        ENCODERS.build("resnet18", {"weights": "IMAGENET1K_V1"})
    assert attempts == []


def test_online_named_weights_are_downloaded_on_demand(tmp_path, monkeypatch, attempts):
    """Online, the weights are fetched into TORCH_HOME (here the guard refuses, and the error says so)."""
    monkeypatch.setenv("TORCH_HOME", str(tmp_path))
    monkeypatch.delenv("CCRBENCH_OFFLINE")
    monkeypatch.delenv("HF_HUB_OFFLINE")
    with pytest.raises(ConfigError, match="downloading torchvision weights 'IMAGENET1K_V1' from https://download.pytorch.org/.*failed.*tests must not use the network"):
        ENCODERS.build("resnet18", {"weights": "IMAGENET1K_V1"})


def test_cached_named_weights_load_offline(tmp_path, monkeypatch, attempts):
    monkeypatch.setenv("TORCH_HOME", str(tmp_path))
    torch.manual_seed(2)
    source = torchvision.models.resnet18()
    (tmp_path / "hub" / "checkpoints").mkdir(parents=True)
    torch.save(source.state_dict(), tmp_path / "hub" / "checkpoints" / "resnet18-f37072fd.pth")
    encoder = ENCODERS.build("resnet18", {"weights": "IMAGENET1K_V1"})
    assert torch.equal(encoder.backbone.conv1.weight, source.conv1.weight) and attempts == []


@pytest.mark.parametrize("switch, local_only", [("1", True), ("0", False)])
def test_hugging_face_models_download_unless_offline(monkeypatch, switch, local_only):
    calls = []

    class Loader:
        @staticmethod
        def from_pretrained(location, **kwargs):
            calls.append((location, kwargs))
            return location

    monkeypatch.setenv("CCRBENCH_OFFLINE", switch)
    monkeypatch.setenv("HF_HUB_OFFLINE", switch)
    assert hf_text.load_pretrained("k", "org/model", Loader) == ["org/model"]
    assert calls == [("org/model", {"local_files_only": local_only})]


def test_offline_hub_model_missing_from_the_cache_names_the_cache(tmp_path, monkeypatch, attempts):
    monkeypatch.setenv("HF_HOME", str(tmp_path))
    with pytest.raises(ConfigError, match=f"hf_text.model: 'no-such-org/no-such-model' is neither .* in the Hugging Face cache \\({tmp_path / 'hub'}\\)"):
        ENCODERS.build("hf_text", {"model": "no-such-org/no-such-model"})
    assert attempts == []
