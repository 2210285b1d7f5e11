"""Published weights files: fetched once, verified at every use, never unpickled.

A model names the files it needs as :class:`RemoteFile` s (the URL its
publisher serves and the path in the cache the publishing library itself
reads, e.g. ``<torch hub dir>/pyiqa/`` or ``<torch hub dir>/checkpoints/``,
so pyiqa and torchvision users share one copy).  :func:`ensure` returns the
local copy, downloading it first when it is missing and the machine may
connect.

* **Offline**: ``IQABENCH_OFFLINE=1`` (or Hugging Face's ``HF_HUB_OFFLINE`` /
  ``TRANSFORMERS_OFFLINE``) -- no connection is ever attempted; a missing
  file is a one-line :class:`~iqabench.errors.WeightsError` naming the
  owner, the file, where it was looked for and the ``iqabench fetch``
  command to run on a connected machine.
* **Mirror**: ``IQABENCH_WEIGHTS_MIRROR=URL`` fetches ``<URL>/<file name>``
  instead of the publisher's URL.
* **Integrity**: a download goes to a temporary file beside the target and
  is renamed only when complete (its length as announced, its hash as
  pinned); anything else leaves nothing behind.  A pinned hash (torchvision's
  file names carry a sha256 prefix) is checked at download and at every use;
  otherwise the sha256 is recorded at first sight in a small lock file
  beside the cache (:data:`LOCK_NAME`) and every later use checks it: a file
  that changed since is refused.
* **No hang**: connect and read timeouts (``IQABENCH_CONNECT_TIMEOUT``,
  ``IQABENCH_READ_TIMEOUT``, seconds); a dead server is a one-line error.

Every file :func:`ensure` or :func:`record_use` vouches for is listed, with
its sha256, by :func:`used_files` (the run manifest records them).
"""
from __future__ import annotations

import hashlib
import http.client
import json
import os
import re
import socket
import ssl
import tempfile
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urljoin, urlsplit

from .errors import WeightsError, WeightsUnavailable
from .progress import download_progress

#: the lock file in each cache directory: file name -> sha256 and source
LOCK_NAME = ".iqabench-sha256.json"
#: torch.hub's convention: ``name-<sha256 prefix>.ext``
HASH_IN_NAME = re.compile(r"-([a-f0-9]{8,64})\.")
CONNECT_TIMEOUT_S = 10.0
READ_TIMEOUT_S = 60.0
MAX_REDIRECTS = 5
_TRUE = {"1", "true", "yes", "on"}

_used: dict[str, str] = {}


@dataclass(frozen=True)
class RemoteFile:
    """One published file a model needs.

    ``path``: where it is kept (and first looked for); ``search``: other
    places an existing copy is accepted from; ``sha256``: the publisher's
    hash or a prefix of it (None: recorded at first sight); ``role``:
    ``"weights"`` (the model's own checkpoint) or ``"backbone"`` (the
    ImageNet network a training recipe starts from)."""

    url: str
    path: Path
    sha256: str | None = None
    role: str = "weights"
    search: tuple[Path, ...] = ()

    @property
    def name(self) -> str:
        return self.path.name

    @classmethod
    def hash_named(cls, url: str, folder: Path, role: str = "backbone", name: str | None = None) -> "RemoteFile":
        """A file kept as ``name`` (default: the URL's) whose name may carry its
        sha256 prefix (torchvision's ``resnet50-0676ba61.pth``: then it is checked)."""
        name = name or os.path.basename(urlsplit(url).path)
        pinned = HASH_IN_NAME.search(name)
        return cls(url, Path(folder) / name, pinned.group(1) if pinned else None, role)


# ---------------------------------------------------------------- settings ---
def offline() -> bool:
    """True when no connection may be attempted."""
    return any(os.environ.get(k, "").strip().lower() in _TRUE
               for k in ("IQABENCH_OFFLINE", "HF_HUB_OFFLINE", "TRANSFORMERS_OFFLINE"))


def timeouts() -> tuple[float, float]:
    """(connect, read) timeouts in seconds, from the environment."""
    out = []
    for var, default in (("IQABENCH_CONNECT_TIMEOUT", CONNECT_TIMEOUT_S), ("IQABENCH_READ_TIMEOUT", READ_TIMEOUT_S)):
        raw = os.environ.get(var)
        try:
            value = float(raw) if raw else default
        except ValueError:
            raise WeightsError(f"{var}={raw!r}: expected a number of seconds") from None
        if value <= 0:
            raise WeightsError(f"{var}={raw!r}: expected a positive number of seconds")
        out.append(value)
    return out[0], out[1]


def source_url(file: RemoteFile) -> str:
    """The publisher's URL, or ``<IQABENCH_WEIGHTS_MIRROR>/<file name>``."""
    mirror = os.environ.get("IQABENCH_WEIGHTS_MIRROR", "").strip()
    return f"{mirror.rstrip('/')}/{file.name}" if mirror else file.url


# --------------------------------------------------------------- integrity ---
def sha256_of(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def _lock_path(path: Path) -> Path:
    return path.parent / LOCK_NAME


def _read_lock(path: Path) -> dict:
    lock = _lock_path(path)
    try:
        return json.loads(lock.read_text()) if lock.is_file() else {}
    except (OSError, ValueError):
        raise WeightsError(f"{lock}: unreadable lock file (delete it to re-record the hashes)") from None


def _record(path: Path, digest: str, url: str) -> None:
    """Add ``path``'s hash to its lock file (a read-only shared cache keeps
    none: its files are then checked against their pinned hash only)."""
    entries = _read_lock(path)
    entries[path.name] = {"sha256": digest, "size": path.stat().st_size, "source": url}
    try:
        _atomic_text(_lock_path(path), json.dumps(entries, indent=2, sort_keys=True) + "\n")
    except OSError:
        pass


def _atomic_text(path: Path, text: str) -> None:
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=path.name, suffix=".tmp")
    try:
        with os.fdopen(fd, "w") as f:
            f.write(text)
        os.chmod(tmp, 0o644)  # mkstemp's 0600 would hide a shared cache's lock
        os.replace(tmp, path)
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)


def verify(path: Path, pinned: str | None = None, url: str = "") -> str:
    """``path``'s sha256, checked against ``pinned`` (a prefix) and against
    the lock file beside it (recorded there at first sight)."""
    digest = sha256_of(path)
    if pinned and not digest.startswith(pinned.lower()):
        raise WeightsError(f"{path}: sha256 {digest[:16]}... is not the published {pinned} "
                           f"(delete the file and fetch it again)")
    known = _read_lock(path).get(path.name)
    if known is None:
        _record(path, digest, url or "found in the cache")
    elif known.get("sha256") != digest:
        raise WeightsError(f"{path}: changed since it was fetched (sha256 {digest[:16]}..., recorded "
                           f"{str(known.get('sha256'))[:16]}... in {_lock_path(path)}); refused")
    record_use(path, digest)
    return digest


def record_use(path: Path, digest: str) -> None:
    """Note that the weights file ``path`` (sha256 ``digest``) was used."""
    _used[str(Path(path).resolve())] = digest


def used_files() -> dict[str, str]:
    """Every weights file used in this process: path -> sha256."""
    return dict(_used)


# ---------------------------------------------------------------- fetching ---
def local_copy(file: RemoteFile) -> Path | None:
    for candidate in (file.path, *(Path(d) / file.name for d in file.search)):
        if candidate.is_file():
            return candidate
    return None


def ensure(file: RemoteFile, owner: str, fetch_command: str, progress: bool = True) -> Path:
    """The verified local copy of ``file``, downloaded first if missing and
    allowed (``owner``, e.g. ``"model 'hyperiqa'"``, and ``fetch_command``
    name what a user must do when it is missing offline)."""
    path = local_copy(file)
    if path is None:
        if offline():
            places = ", ".join(str(p) for p in dict.fromkeys([file.path.parent, *file.search]))
            raise WeightsUnavailable(f"{owner}: {file.name} is not on this machine (looked in {places}) and downloads are "
                               f"off (IQABENCH_OFFLINE/HF_HUB_OFFLINE); run `{fetch_command}` on a connected machine "
                               f"and copy the file to {file.path.parent}")
        path = download(file, progress)
    verify(path, file.sha256, file.url)
    return path


def download(file: RemoteFile, progress: bool = True) -> Path:
    """Fetch ``file`` to a temporary file beside ``file.path``; renamed only when complete and its pinned hash matches."""
    url = source_url(file)
    if offline():
        raise WeightsError(f"{file.name}: downloads are off (IQABENCH_OFFLINE/HF_HUB_OFFLINE); not fetching {url}")
    file.path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=file.path.parent, prefix=f".{file.name}.", suffix=".part")
    try:
        with os.fdopen(fd, "wb") as out:
            digest = _transfer(url, out, file.name, progress)
        if file.sha256 and not digest.startswith(file.sha256.lower()):
            raise WeightsError(f"{url}: sha256 {digest[:16]}... is not the published {file.sha256}; discarded")
        os.chmod(tmp, 0o644)
        os.replace(tmp, file.path)
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)
    _record(file.path, digest, url)
    return file.path


def _transfer(url: str, out, label: str, progress: bool) -> str:
    """Stream ``url`` into ``out``; returns the sha256 of the bytes."""
    connect_s, read_s = timeouts()
    conn, resp = _open(url, connect_s, read_s)
    try:
        total = resp.getheader("Content-Length")
        total = int(total) if total and total.isdigit() else None
        h, got = hashlib.sha256(), 0
        with download_progress(progress) as bar:
            task = bar.add_task(label, total=total)
            while True:
                try:
                    chunk = resp.read(1 << 16)
                except (socket.timeout, TimeoutError):
                    raise WeightsError(f"{url}: no data for {read_s:g} s (IQABENCH_READ_TIMEOUT); "
                                       f"download abandoned after {got} bytes") from None
                except (http.client.IncompleteRead, OSError) as exc:
                    raise WeightsError(f"{url}: transfer broken after {got} bytes ({type(exc).__name__})") from None
                if not chunk:
                    break
                out.write(chunk)
                h.update(chunk)
                got += len(chunk)
                bar.advance(task, len(chunk))
        if total is not None and got != total:
            raise WeightsError(f"{url}: truncated transfer ({got} of {total} bytes); discarded")
        return h.hexdigest()
    finally:
        conn.close()


def _open(url: str, connect_s: float, read_s: float) -> tuple[http.client.HTTPConnection, http.client.HTTPResponse]:
    """GET ``url`` (following redirects) with separate connect and read timeouts."""
    for _ in range(MAX_REDIRECTS + 1):
        parts = urlsplit(url)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise WeightsError(f"{url}: not an http(s) URL (check IQABENCH_WEIGHTS_MIRROR)")
        cls = http.client.HTTPSConnection if parts.scheme == "https" else http.client.HTTPConnection
        kwargs = {"context": ssl.create_default_context()} if parts.scheme == "https" else {}
        conn = cls(parts.hostname, parts.port, timeout=connect_s, **kwargs)
        try:
            conn.connect()
            conn.sock.settimeout(read_s)
            conn.request("GET", (parts.path or "/") + (f"?{parts.query}" if parts.query else ""),
                         headers={"User-Agent": "iqabench", "Accept-Encoding": "identity"})
            resp = conn.getresponse()
        except (socket.timeout, TimeoutError):
            conn.close()
            raise WeightsError(f"{url}: the server did not answer within the timeouts (connect {connect_s:g} s, "
                               f"read {read_s:g} s; IQABENCH_CONNECT_TIMEOUT/IQABENCH_READ_TIMEOUT)") from None
        except (OSError, http.client.HTTPException) as exc:
            conn.close()
            raise WeightsError(f"{url}: cannot connect ({type(exc).__name__}: {str(exc).strip() or 'no detail'})") from None
        if resp.status in (301, 302, 303, 307, 308) and resp.getheader("Location"):
            url = urljoin(url, resp.getheader("Location"))
            conn.close()
            continue
        if resp.status != 200:
            conn.close()
            raise WeightsError(f"{url}: HTTP {resp.status} {resp.reason}")
        return conn, resp
    raise WeightsError(f"{url}: more than {MAX_REDIRECTS} redirects")
