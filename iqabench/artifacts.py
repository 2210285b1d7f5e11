"""Content-addressed cache of expensive products: datasets, trained models,
UAPs, triggers.  An artifact's key is the hash of the configuration that
produced it, so the same configuration is never computed twice.

The cache lives in ``$IQABENCH_CACHE`` or, by default, the user cache
directory (``$XDG_CACHE_HOME/iqabench``, i.e. ``~/.cache/iqabench``).
Weights are written as safetensors and read back without unpickling.
"""
from __future__ import annotations

import hashlib
import json
import os
import sys
import tempfile
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Callable, Iterator

from .errors import WeightsError


def cache_dir(*parts: str) -> Path:
    root = os.environ.get("IQABENCH_CACHE")
    if root:
        base = Path(root)
    else:
        base = Path(os.environ.get("XDG_CACHE_HOME", Path.home() / ".cache")) / "iqabench"
    path = base.joinpath(*parts)
    path.mkdir(parents=True, exist_ok=True)
    return path


def canonical_json(obj: Any) -> str:
    return json.dumps(obj, sort_keys=True, separators=(",", ":"), default=_jsonable)


def _jsonable(obj: Any) -> Any:
    if isinstance(obj, (tuple, set)):
        return list(obj)
    if isinstance(obj, Path):
        return str(obj)
    if hasattr(obj, "item"):
        return obj.item()
    return repr(obj)


def config_key(config: Any, length: int = 16) -> str:
    """Stable hash of a JSON-able configuration."""
    return hashlib.sha256(canonical_json(config).encode()).hexdigest()[:length]


def file_digest(path: str | Path, length: int = 16) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()[:length]


_RECORDERS: list[list[Path]] = []


@contextmanager
def recording_writes() -> Iterator[list[Path]]:
    """The files written through :func:`atomic_write_bytes` inside the block
    (every artifact of the cache is), so that an executor can ship what one
    worker built to the others."""
    written: list[Path] = []
    _RECORDERS.append(written)
    try:
        yield written
    finally:
        _RECORDERS.remove(written)


def cache_files(paths: list[Path]) -> dict[str, bytes]:
    """The contents of those of ``paths`` that lie in the cache, by path relative to it."""
    root = cache_dir().resolve()
    out = {}
    for p in dict.fromkeys(Path(p).resolve() for p in paths):
        if p.is_relative_to(root) and p.is_file():
            out[str(p.relative_to(root))] = p.read_bytes()
    return out


def materialise(files: dict[str, bytes]) -> None:
    """Write into this process's cache the files (path relative to the cache ->
    contents) it does not have yet."""
    root = cache_dir()
    for rel, blob in files.items():
        path = root / rel
        if not path.exists():
            atomic_write_bytes(path, blob)


@contextmanager
def building(path: str | Path, ready: Callable[[], bool] | None = None) -> Iterator[bool]:
    """Build the artifact ``path`` at most once among the processes that share the cache.

    Yields False when the artifact is ``ready()`` (default: ``path`` exists),
    else True while this process holds the artifact's lock -- it builds and
    writes it inside the block.  A second process that needs it meanwhile
    waits for the lock (saying who holds it), then finds it ready and loads
    it.  The lock is ``fcntl.flock`` on ``<path>.lock`` (which names the
    holder's host and pid, and is removed when the holder is done): the kernel
    releases it when its holder dies, so a killed builder's lock is taken
    over at once.  Where no lock file can be
    made (a read-only cache) the artifact is built without one.
    """
    import fcntl
    import socket

    path = Path(path)
    ready = ready or path.exists
    if ready():
        yield False
        return
    lock = path.with_name(path.name + ".lock")
    while True:
        try:
            lock.parent.mkdir(parents=True, exist_ok=True)
            fd = os.open(lock, os.O_RDWR | os.O_CREAT, 0o666)
        except OSError:
            yield not ready()
            return
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            holder = os.pread(fd, 200, 0).decode(errors="replace").strip() or "another process"
            print(f"waiting for {holder} building {path.name}", file=sys.stderr)
            fcntl.flock(fd, fcntl.LOCK_EX)
        try:  # the holder removes the lock file before it lets go: a lock on a removed file is stale
            if os.stat(lock).st_ino == os.fstat(fd).st_ino:
                break
        except FileNotFoundError:
            pass
        os.close(fd)
    try:
        os.ftruncate(fd, 0)
        os.pwrite(fd, f"{socket.gethostname()} pid {os.getpid()}".encode(), 0)
        yield not ready()
    finally:
        try:
            os.unlink(lock)  # no lock files are left in the cache
        finally:
            os.close(fd)  # releases the lock


def atomic_write_bytes(path: Path, data: bytes) -> None:
    """Write ``data`` so that a crash leaves either the old file or the new."""
    for written in _RECORDERS:
        written.append(Path(path))
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=path.name, suffix=".tmp")
    umask = os.umask(0)
    os.umask(umask)
    os.chmod(tmp, 0o666 & ~umask)  # mkstemp's 0600 would hide shared artifacts
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise


def write_json(path: Path, obj: Any) -> None:
    atomic_write_bytes(path, (json.dumps(obj, indent=2, sort_keys=True, default=_jsonable) + "\n").encode())


def save_state(path: Path, state: dict, metadata: dict | None = None) -> None:
    """Save a tensor dict as safetensors (atomically), byte-for-byte reproducibly.

    safetensors writes its ``__metadata__`` in a per-process random order,
    so the same tensors would get a different file digest in every process
    -- and weights digests are part of cell keys.  The header is rewritten
    with sorted keys (the data block and its offsets are unchanged).
    """
    from safetensors.torch import save

    tensors = {k: v.detach().contiguous().cpu() for k, v in state.items()}
    meta = {k: str(v) for k, v in (metadata or {}).items()}
    atomic_write_bytes(path, canonical_safetensors(save(tensors, metadata=meta)))


def canonical_safetensors(blob: bytes) -> bytes:
    """``blob`` with its JSON header re-serialised with sorted keys (padded to 8 bytes, as the format does)."""
    size = int.from_bytes(blob[:8], "little")
    header = json.dumps(json.loads(blob[8 : 8 + size]), sort_keys=True, separators=(",", ":")).encode()
    header += b" " * (-len(header) % 8)
    return len(header).to_bytes(8, "little") + header + blob[8 + size :]


def load_state(path: str | Path) -> dict:
    """Load weights safely: safetensors, or a torch file with ``weights_only``.

    A pickle that needs arbitrary code to load is refused, never executed.
    """
    import torch

    path = Path(path)
    if not path.exists():
        raise WeightsError(f"weights file not found: {path}")
    if path.suffix == ".safetensors":
        from safetensors.torch import load_file

        try:
            return load_file(str(path))
        except Exception as exc:
            raise WeightsError(f"{path}: not a readable safetensors file ({exc})") from None
    try:
        obj = torch.load(str(path), map_location="cpu", weights_only=True)
    except Exception as exc:
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise WeightsError(
            f"{path}: refused to load (only tensors are accepted, with weights_only=True): {first}"
        ) from None
    for key in ("state_dict", "model", "params", "net"):
        if isinstance(obj, dict) and isinstance(obj.get(key), dict):
            obj = obj[key]
            break
    if not isinstance(obj, dict):
        raise WeightsError(f"{path}: expected a dict of tensors, found {type(obj).__name__}")
    return obj
