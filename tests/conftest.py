"""Test configuration: offline, isolated caches, and no network access at all."""

import ipaddress
import os
import socket

import pytest
import torch

# Before anything imports huggingface_hub/transformers (they read these at import time).
os.environ.update(CCRBENCH_OFFLINE="1", HF_HUB_OFFLINE="1", TRANSFORMERS_OFFLINE="1")


if os.environ.get("PYTEST_XDIST_WORKER"):
    torch.set_num_threads(1)  # workers x threads = cores: several multi-threaded workers only contend


def pytest_xdist_auto_num_workers(config: pytest.Config) -> int:
    """`-n auto`: one worker per core, at most 4 (each imports torch and Avalanche, ~0.5 GiB)."""
    return min(os.cpu_count() or 1, 4)


class NetworkAccessError(OSError):
    """A test tried to open a network connection."""


_connect = socket.socket.connect


def _no_network(sock: socket.socket, address) -> None:
    if sock.family in (socket.AF_INET, socket.AF_INET6):
        raise NetworkAccessError(f"tests must not use the network (connect to {address!r})")
    _connect(sock, address)  # local (AF_UNIX) sockets, e.g. DataLoader workers, stay allowed


def _no_lookup(host, *args, **kwargs):
    if host not in (None, "localhost") and not _is_address(host):
        raise NetworkAccessError(f"tests must not use the network (name lookup of {host!r})")
    return _getaddrinfo(host, *args, **kwargs)


def _is_address(host) -> bool:
    try:
        ipaddress.ip_address(host.decode() if isinstance(host, bytes) else host)
    except ValueError:
        return False
    return True


_getaddrinfo = socket.getaddrinfo
# For the whole session (collection and fixtures included): no DNS lookup, no internet connection.
socket.socket.connect, socket.getaddrinfo = _no_network, _no_lookup


@pytest.fixture(autouse=True)
def _isolated_cache(tmp_path_factory, monkeypatch):
    """Generated benchmark data goes to one per-session cache, never the user's."""
    monkeypatch.setenv("CCRBENCH_CACHE", str(tmp_path_factory.getbasetemp() / "cache"))
