"""Shared fixtures.

Every test session uses its own artifact cache (the embedded dataset is
generated once per session into it), no progress bars, and no downloads
(``IQABENCH_OFFLINE=1``).
"""
from __future__ import annotations

import os
import sys
import tempfile
from pathlib import Path

import pytest

_CACHE = tempfile.mkdtemp(prefix="iqabench-test-cache-")
os.environ.setdefault("IQABENCH_CACHE", _CACHE)
os.environ["IQABENCH_PROGRESS"] = "0"
# no test reaches past the loopback: published weights are never fetched
# (tests/test_fetch.py switches this off for its own server on 127.0.0.1)
os.environ["IQABENCH_OFFLINE"] = "1"

ROOT = Path(__file__).resolve().parents[1]
SHARED = ROOT.parent / "shared"
EXAMPLE_PLUGIN = ROOT / "examples" / "iqabench-example-plugin"


def pytest_configure(config):
    import torch

    torch.set_num_threads(min(2, os.cpu_count() or 1))


@pytest.fixture
def plugin():
    """Register plugin objects for one test: ``plugin(module_or_obj, name)``."""
    from iqabench.registry import register_plugin, unregister_plugin

    names = []

    def _register(obj, name):
        register_plugin(obj, name)
        names.append(name)
        return obj

    yield _register
    for name in names:
        unregister_plugin(name)


@pytest.fixture
def cli_env(tmp_path):
    """Environment for subprocess runs of the real ``iqabench`` executable."""
    env = dict(os.environ)
    env["IQABENCH_STORE"] = str(tmp_path / "store.sqlite")
    env.pop("IQABENCH_DISABLE_PLUGINS", None)
    return env


def iqabench_exe() -> str:
    return str(Path(sys.executable).with_name("iqabench"))


@pytest.fixture
def invoke(tmp_path):
    """Run the CLI in-process: ``invoke(["run", ...]) -> click Result``."""
    from click.testing import CliRunner

    from iqabench.cli import cli

    def _invoke(args):
        return CliRunner().invoke(cli, args, catch_exceptions=False)

    return _invoke


@pytest.fixture
def no_network(monkeypatch):
    """Every attempt to open a connection fails, and is recorded."""
    import socket

    attempts = []

    def refuse(*args, **kwargs):
        attempts.append(args[1:] if args else kwargs)
        raise OSError("network access attempted during a test")

    monkeypatch.setattr(socket.socket, "connect", refuse)
    monkeypatch.setattr(socket.socket, "connect_ex", refuse)
    monkeypatch.setattr(socket, "create_connection", refuse)
    monkeypatch.setattr(socket, "getaddrinfo", refuse)
    return attempts


@pytest.fixture
def livec_sample():
    """The shared 120-image LIVEC sample (``../shared/data/livec-sample``):
    its folder, or the test is skipped where it is absent."""
    root = SHARED / "data" / "livec-sample"
    if not (root / "Images").is_dir():
        pytest.skip("../shared/data/livec-sample is not available")
    return root
