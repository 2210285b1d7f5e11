"""Published weights: fetched once over HTTP, verified, refused when wrong.

A server on 127.0.0.1 stands in for the publishers
(``IQABENCH_WEIGHTS_MIRROR`` points at it); every other test runs with
``IQABENCH_OFFLINE=1`` (tests/conftest.py).  Each failure must be one line
and leave no file behind.
"""
from __future__ import annotations

import hashlib
import http.server
import io
import json
import socket
import threading
import time
from pathlib import Path

import pytest
import torch

import iqabench
from iqabench import downloads
from iqabench.downloads import LOCK_NAME, RemoteFile, ensure
from iqabench.errors import WeightsError

MUSIQ_FILE = "musiq_koniq_ckpt-e95806b9.pth"


class _Handler(http.server.BaseHTTPRequestHandler):
    files: dict[str, bytes] = {}
    truncate: set[str] = set()
    hits: list[str] = []

    def do_GET(self):  # noqa: N802
        name = self.path.rsplit("/", 1)[-1]
        self.hits.append(name)
        if name not in self.files:
            self.send_error(404)
            return
        body = self.files[name]
        self.send_response(200)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        if name in self.truncate:  # half of what it announced, then the connection drops
            self.wfile.write(body[: len(body) // 2])
            self.wfile.flush()
            self.close_connection = True
            return
        self.wfile.write(body)

    def log_message(self, *args):
        pass


@pytest.fixture
def server(tmp_path, monkeypatch):
    """An HTTP server on the loopback serving ``server.files`` (name -> bytes);
    downloads switched on, pointed at it, into caches under ``tmp_path``."""
    handler = type("H", (_Handler,), {"files": {}, "truncate": set(), "hits": []})
    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    for var in ("IQABENCH_OFFLINE", "HF_HUB_OFFLINE", "TRANSFORMERS_OFFLINE", "IQABENCH_PYIQA_CACHE"):
        monkeypatch.delenv(var, raising=False)
    monkeypatch.setenv("IQABENCH_WEIGHTS_MIRROR", f"http://127.0.0.1:{httpd.server_address[1]}/weights")
    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "torch-home"))
    monkeypatch.setenv("IQABENCH_READ_TIMEOUT", "2")
    yield handler
    httpd.shutdown()
    httpd.server_close()


def _pyiqa_dir(tmp_path: Path) -> Path:
    return tmp_path / "torch-home" / "hub" / "pyiqa"


def _musiq_checkpoint(seed: int = 5) -> tuple[bytes, dict, torch.nn.Module]:
    """pyiqa's checkpoint layout ({"params": state_dict of the network}) made
    from the random-init architecture."""
    model = iqabench.get_model("musiq", weights="random", seed=seed, crop_size=0)
    state = {k[4:]: v.clone() for k, v in model.state_dict().items() if k.startswith("net.")}
    buf = io.BytesIO()
    torch.save({"params": state}, buf)
    return buf.getvalue(), state, model


def _only_complete_files(folder: Path) -> list[str]:
    return sorted(p.name for p in folder.iterdir()) if folder.exists() else []


def _file(tmp_path: Path, name: str, sha256: str | None = None) -> RemoteFile:
    return RemoteFile(f"https://publisher.invalid/models/{name}", tmp_path / "cache" / name, sha256)


def _one_line(err) -> str:
    msg = str(err.value)
    assert "\n" not in msg and msg
    return msg


# ----------------------------------------------------------------- success ---
def test_fetch_then_load_offline_as_the_pretrained_file(server, tmp_path, invoke, monkeypatch):
    """``iqabench fetch musiq`` downloads pyiqa's checkpoint into pyiqa's cache
    (where pyiqa looks), records its sha256, and the model then loads it --
    offline, from pyiqa's own layout -- scoring what the network it was made
    from scores (pyiqa's scale: the identity affine)."""
    body, state, source = _musiq_checkpoint()
    server.files[MUSIQ_FILE] = body
    result = invoke(["fetch", "musiq", "--quiet"])
    assert result.exit_code == 0, result.output
    path = _pyiqa_dir(tmp_path) / MUSIQ_FILE
    digest = hashlib.sha256(body).hexdigest()
    assert path.read_bytes() == body and digest in result.output
    assert json.loads((path.parent / LOCK_NAME).read_text())[MUSIQ_FILE]["sha256"] == digest
    assert _only_complete_files(path.parent) == sorted([MUSIQ_FILE, LOCK_NAME])

    monkeypatch.setenv("IQABENCH_OFFLINE", "1")
    hits = len(server.hits)
    model = iqabench.get_model("musiq", crop_size=0)
    assert model.weights == f"{MUSIQ_FILE} (sha256:{digest[:16]})"
    assert len(server.hits) == hits  # nothing fetched again
    x = torch.rand(1, 3, 64, 64, generator=torch.Generator().manual_seed(0))
    with torch.no_grad():
        raw = (source(x) - source.out_offset) / source.out_scale
        torch.testing.assert_close(model(x), raw, rtol=1e-5, atol=1e-5)
    assert downloads.used_files()[str(path.resolve())] == digest


def test_first_use_fetches_and_the_run_manifest_lists_the_file(server, tmp_path):
    """``--weights default`` fetches a missing checkpoint on first use."""
    body, _, _ = _musiq_checkpoint(seed=6)
    server.files[MUSIQ_FILE] = body
    model = iqabench.get_model("musiq", crop_size=0)
    assert model.weights.startswith(MUSIQ_FILE) and server.hits == [MUSIQ_FILE]
    from iqabench.run.manifest import build_manifest

    manifest = build_manifest("r", "cpu", [0])
    assert manifest["weights_files"][str((_pyiqa_dir(tmp_path) / MUSIQ_FILE).resolve())] == \
        hashlib.sha256(body).hexdigest()


# ---------------------------------------------------------------- failures ---
def test_truncated_transfer_leaves_nothing(server, tmp_path):
    server.files["a.pth"] = b"x" * 300_000
    server.truncate.add("a.pth")
    with pytest.raises(WeightsError) as err:
        ensure(_file(tmp_path, "a.pth"), "model 'm'", "iqabench fetch m", progress=False)
    assert "a.pth" in _one_line(err) and ("truncated" in str(err.value) or "broken" in str(err.value))
    assert _only_complete_files(tmp_path / "cache") == []


def test_wrong_sha256_is_discarded(server, tmp_path):
    """A file whose bytes are not the published hash (torchvision's name prefix)."""
    server.files["resnet50-0676ba61.pth"] = b"not the published bytes"
    file = RemoteFile.hash_named("https://download.pytorch.org/models/resnet50-0676ba61.pth", tmp_path / "cache")
    assert file.sha256 == "0676ba61" and file.role == "backbone"
    with pytest.raises(WeightsError) as err:
        ensure(file, "model 'm'", "iqabench fetch m --backbones", progress=False)
    assert "0676ba61" in _one_line(err)
    assert _only_complete_files(tmp_path / "cache") == []


def test_a_pinned_hash_that_matches_is_accepted(server, tmp_path):
    body = b"published bytes"
    digest = hashlib.sha256(body).hexdigest()
    server.files[f"net-{digest[:8]}.pth"] = body
    file = RemoteFile.hash_named(f"https://x.invalid/net-{digest[:8]}.pth", tmp_path / "cache")
    assert ensure(file, "model 'm'", "f", progress=False).read_bytes() == body


def test_a_file_modified_after_fetch_is_refused(server, tmp_path):
    server.files["b.pth"] = b"original bytes"
    file = _file(tmp_path, "b.pth")
    path = ensure(file, "model 'm'", "iqabench fetch m", progress=False)
    assert ensure(file, "model 'm'", "iqabench fetch m") == path  # verified again, same bytes
    path.write_bytes(b"tampered bytes")
    with pytest.raises(WeightsError) as err:
        ensure(file, "model 'm'", "iqabench fetch m")
    assert "changed since it was fetched" in _one_line(err) and "b.pth" in str(err.value)
    assert server.hits == ["b.pth"]  # verified locally, never re-fetched


def test_a_cached_file_found_unrecorded_is_recorded_then_checked(tmp_path, monkeypatch):
    """A copy that pyiqa (or a user) put in the cache is trusted at first
    sight, and its hash recorded then."""
    file = _file(tmp_path, "c.pth")
    file.path.parent.mkdir(parents=True)
    file.path.write_bytes(b"from pyiqa")
    ensure(file, "model 'm'", "f")
    file.path.write_bytes(b"changed")
    with pytest.raises(WeightsError, match="changed since it was fetched"):
        ensure(file, "model 'm'", "f")


def test_http_404_is_one_line_and_leaves_nothing(server, tmp_path, invoke):
    result = invoke(["fetch", "hyperiqa", "--quiet"])
    assert result.exit_code == 1
    lines = [line for line in result.output.splitlines() if line.strip()]
    assert len(lines) == 1 and "HTTP 404" in lines[0] and "HyperIQA-resnet50-koniq10k-c96c41b1.pth" in lines[0]
    assert _only_complete_files(_pyiqa_dir(tmp_path)) == []


def test_a_server_that_never_answers_times_out(tmp_path, monkeypatch):
    """Connection accepted, no byte ever sent: the read timeout ends it."""
    for var in ("IQABENCH_OFFLINE", "HF_HUB_OFFLINE", "TRANSFORMERS_OFFLINE"):
        monkeypatch.delenv(var, raising=False)
    silent = socket.socket()
    silent.bind(("127.0.0.1", 0))
    silent.listen(1)  # the kernel accepts; nobody answers
    monkeypatch.setenv("IQABENCH_WEIGHTS_MIRROR", f"http://127.0.0.1:{silent.getsockname()[1]}")
    monkeypatch.setenv("IQABENCH_READ_TIMEOUT", "0.5")
    start = time.monotonic()
    try:
        with pytest.raises(WeightsError) as err:
            ensure(_file(tmp_path, "d.pth"), "model 'm'", "iqabench fetch m", progress=False)
    finally:
        silent.close()
    assert "did not answer" in _one_line(err) and "IQABENCH_READ_TIMEOUT" in str(err.value)
    assert time.monotonic() - start < 10
    assert _only_complete_files(tmp_path / "cache") == []


def test_bad_timeout_setting_is_named(monkeypatch, tmp_path):
    monkeypatch.delenv("IQABENCH_OFFLINE")
    monkeypatch.setenv("IQABENCH_CONNECT_TIMEOUT", "soon")
    with pytest.raises(WeightsError, match="IQABENCH_CONNECT_TIMEOUT='soon'"):
        ensure(_file(tmp_path, "e.pth"), "model 'm'", "f")


@pytest.mark.parametrize("switch", ["IQABENCH_OFFLINE", "HF_HUB_OFFLINE"])
def test_offline_never_opens_a_socket(switch, server, tmp_path, monkeypatch):
    """Offline, a missing file is one line naming the owner, the file, where
    it was looked for and the fetch command -- and no connection is tried."""
    server.files["f.pth"] = b"would be served"
    monkeypatch.setenv(switch, "1")
    tried = []

    def refuse(self, *args, **kwargs):
        tried.append(args)
        raise OSError("a connection was attempted offline")

    monkeypatch.setattr(socket.socket, "connect", refuse)
    with pytest.raises(WeightsError) as err:
        ensure(_file(tmp_path, "f.pth"), "model 'm'", "iqabench fetch m", progress=False)
    msg = _one_line(err)
    assert "model 'm'" in msg and "f.pth" in msg and str(tmp_path / "cache") in msg and "`iqabench fetch m`" in msg
    assert tried == [] and server.hits == []
    assert _only_complete_files(tmp_path / "cache") == []


def test_fetch_backbones_into_torchvisions_cache_then_training_starts_from_them(server, tmp_path, invoke,
                                                                               monkeypatch):
    """``iqabench fetch hyperiqa --backbones``: pyiqa's checkpoint into pyiqa's
    cache, the ImageNet backbone into torchvision's (``hub/checkpoints``,
    its sha256 prefix checked); offline afterwards, training starts from it."""
    import torchvision

    from iqabench.models.build import training_start
    from iqabench_plugins.zoo import weights

    buf = io.BytesIO()
    torch.manual_seed(7)
    torch.save(torchvision.models.resnet50(weights=None).state_dict(), buf)
    body = buf.getvalue()
    name = f"resnet50-{hashlib.sha256(body).hexdigest()[:8]}.pth"
    monkeypatch.setitem(weights.BACKBONES, "hyperiqa", lambda p: [weights.Backbone(name, "base_model")])
    server.files.update({name: body, "HyperIQA-resnet50-koniq10k-c96c41b1.pth": b"checkpoint bytes"})
    result = invoke(["fetch", "hyperiqa", "--backbones", "--quiet", "--connect-timeout", "3"])
    assert result.exit_code == 0, result.output
    assert (tmp_path / "torch-home" / "hub" / "checkpoints" / name).read_bytes() == body
    assert (_pyiqa_dir(tmp_path) / "HyperIQA-resnet50-koniq10k-c96c41b1.pth").exists()
    assert result.output.count("hyperiqa: ") == 2 and "backbone" in result.output

    monkeypatch.setenv("IQABENCH_OFFLINE", "1")
    model = training_start("hyperiqa")
    assert model.backbone == f"imagenet ({name}, sha256:{hashlib.sha256(body).hexdigest()})"
