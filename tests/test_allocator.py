"""iqabench.allocator: freed tensor memory stays in the process (glibc only)."""
from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest

from iqabench.allocator import ENV

CHILD = r"""
import json, os, sys
from iqabench.allocator import keep_freed_memory
tuned = keep_freed_memory()
import torch
page = os.sysconf("SC_PAGE_SIZE")
rss = lambda: int(open("/proc/self/statm").read().split()[1]) * page
before = rss()
x = torch.ones(64 << 20)  # 256 MiB, touched
x += 1
del x
print(json.dumps({"tuned": tuned, "kept": rss() - before}))
"""

glibc = pytest.mark.skipif(not sys.platform.startswith("linux") or os.confstr("CS_GNU_LIBC_VERSION") is None,
                           reason="glibc only")


def _child(env: dict) -> dict:
    out = subprocess.run([sys.executable, "-c", CHILD], env={**os.environ, **env}, check=True,
                         capture_output=True, text=True).stdout
    return json.loads(out.strip().splitlines()[-1])


@glibc
def test_tuned_malloc_keeps_a_freed_tensors_pages_and_the_default_returns_them():
    """The default hands a 256 MiB block back to the kernel on free (the next
    pass page-faults it in again); tuned, the pages stay for reuse."""
    tuned, default = _child({ENV: ""}), _child({ENV: "system"})
    assert tuned["tuned"] and not default["tuned"]
    assert tuned["kept"] > 200 << 20
    assert default["kept"] < 50 << 20


def test_the_command_line_tunes_malloc_first(monkeypatch):
    from iqabench import cli

    calls = []
    monkeypatch.setattr(cli, "keep_freed_memory", lambda: calls.append(1))
    monkeypatch.setattr(cli.cli, "main", lambda **kw: None)
    cli.main()
    assert calls == [1]
