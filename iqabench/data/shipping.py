"""A dataset's files for a worker that cannot see them (no shared filesystem).

A dataset read from files (``folder``, the real databases with
``data_root=DIR``) names them in its parameters.  The driver of a run packs,
for each dataset its cells use, every parameter whose value names a file or
folder it can see (:func:`pack`): the files' contents, their digest, and the
dataset's fingerprint as the driver computes it.  A worker that sees the
same path with the same contents uses it as it is; one that does not (another
node, another home directory, an older copy) writes the files into its
artifact cache (``data/<digest>/``, once per node) and builds the dataset
from there (:func:`receive`, :func:`build_dataset`) -- with the driver's
fingerprint, so the cells' keys, which hold the dataset's parameters and
fingerprint, are the driver's and the rows are identical.  The contents
travel only to the workers that need them (``fetch`` is called only then).
"""
from __future__ import annotations

import hashlib
from pathlib import Path
from typing import Any, Callable

from ..artifacts import atomic_write_bytes, cache_dir, canonical_json
from ..contracts import IQADataset
from ..registry import build

#: (dataset, params) -> (the parameters this worker builds it with, the driver's fingerprint)
_RELOCATED: dict[str, tuple[dict, str]] = {}
#: (path as given, digest) -> whether this process saw those contents there
_SEEN: dict[tuple[str, str], bool] = {}
#: the marker of a complete copy in the cache
DONE = ".complete"


def _ident(name: str, params: dict) -> str:
    return canonical_json([name, params])


def _local(value: str) -> Path:
    return Path(value).expanduser()


def _files(path: Path) -> dict[str, bytes]:
    """A file's contents (under its name) or a folder's files (by path relative to it)."""
    if path.is_file():
        return {path.name: path.read_bytes()}
    return {str(p.relative_to(path)): p.read_bytes() for p in sorted(path.rglob("*")) if p.is_file()}


def digest(files: dict[str, bytes]) -> str:
    h = hashlib.sha256()
    for rel in sorted(files):
        h.update(f"{rel}\0{len(files[rel])}\0".encode())
        h.update(files[rel])
    return h.hexdigest()[:32]


def _names_path(value: str) -> bool:
    """Whether ``value`` names a file or folder here: an absolute (or ``~``) path
    that exists, or an existing folder relative to the working directory.  A
    relative file name is not taken for one: it may be relative to something
    else (``folder``'s ``csv`` is relative to its root) -- give files absolute."""
    if not value:
        return False
    path = _local(value)
    return path.exists() if path.is_absolute() else path.is_dir()


def path_params(params: dict) -> list[str]:
    """The values of ``params`` that name a file or folder on this machine."""
    return sorted({v for v in params.values() if isinstance(v, str) and _names_path(v)})


def pack(name: str, params: dict) -> tuple[dict, dict[str, dict[str, bytes]]] | None:
    """What a worker needs to see dataset ``name`` as this process does: a small
    manifest (the dataset, its fingerprint here, each path's kind and digest) and
    the files by path; None when the dataset names no file."""
    paths = path_params(params)
    if not paths:
        return None
    files = {v: _files(_local(v)) for v in paths}
    manifest = {"dataset": name, "params": params, "fingerprint": build("dataset", name, params).fingerprint(),
                "paths": {v: {"folder": _local(v).is_dir(), "digest": digest(files[v])} for v in paths}}
    return manifest, files


def _sees(value: str, want: str) -> bool:
    """Whether this process sees ``value`` with the contents of digest ``want``."""
    if (value, want) not in _SEEN:
        path = _local(value)
        _SEEN[(value, want)] = path.exists() and digest(_files(path)) == want
    return _SEEN[(value, want)]


def receive(manifests: list[dict], fetch: Callable[[dict], dict[str, dict[str, bytes]]]) -> None:
    """On a worker: for each packed dataset, the paths it cannot see (with the
    driver's contents) are written into the cache (``fetch(manifest)``: the
    files, called only then) and the dataset is built from there."""
    for m in manifests:
        moved: dict[str, str] = {}
        files = None
        for value, info in m["paths"].items():
            if _sees(value, info["digest"]):
                continue
            home = cache_dir("data", info["digest"])
            if not (home / DONE).exists():
                files = files if files is not None else fetch(m)
                for rel, blob in files[value].items():
                    atomic_write_bytes(home / rel, blob)
                atomic_write_bytes(home / DONE, b"")
            moved[value] = str(home if info["folder"] else home / _local(value).name)
        if moved:
            params = {k: moved.get(v, v) if isinstance(v, str) else v for k, v in m["params"].items()}
            _RELOCATED[_ident(m["dataset"], m["params"])] = (params, m["fingerprint"])


def run_dataset(ctx: Any, name: str, params: dict) -> IQADataset:
    """Dataset ``name`` with ``params``, built once per run context (``ctx.reuse``,
    under the dataset's identity in ``Experiment.shares``): by a cell's plan, or by
    the step that builds a dataset several cells share (:mod:`iqabench.run.graph`)."""
    return ctx.reuse(["dataset", name, params], lambda: build_dataset(name, params))


def build_dataset(name: str, params: dict) -> IQADataset:
    """Dataset ``name`` with ``params``, from this worker's copy of its files
    when :func:`receive` made one (its fingerprint: the driver's)."""
    moved = _RELOCATED.get(_ident(name, params))
    if moved is None:
        return build("dataset", name, params)
    dataset: Any = build("dataset", name, moved[0])
    fingerprint = moved[1]
    dataset.fingerprint = lambda: fingerprint  # the key's: where the files lie here is no part of it
    return dataset
