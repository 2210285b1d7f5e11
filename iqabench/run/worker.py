"""What an executor's worker does: plan a cell (building its artifacts) and
compute a store cell's missing batches -- without ever opening the store.

A worker gets a cell spec and returns plain data: the planned store cells
(key, configuration, label) with the cache files planning wrote (to ship to
workers on other machines), or (a dataset step) the files building a shared
dataset wrote, or streams a store cell's new batches of rows,
each as soon as it is computed, and then its summary, computed from the rows the driver had already stored plus the new
ones, in the form the store gives them back (:func:`.store.stored_form`), so
the summary is the one a local run stores.  The driver commits every batch
(:mod:`.ray_executor`).  What a cell writes beside its rows -- its gallery,
its saved images -- is written in a folder of the worker's own and sent back
with the batches and the summary, for the driver to write (:class:`Outputs`).
Models and datasets a worker process built are reused by its next tasks (:meth:`iqabench.contracts.RunContext.reuse`).
"""
from __future__ import annotations

import os
import signal
import tempfile
import time
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any, Iterator

from ..artifacts import atomic_write_bytes, cache_files, materialise, recording_writes
from ..contracts import CellSpec, Experiment, PlannedCell, RunContext
from ..contracts.context import gallery_dir
from ..data.shipping import run_dataset
from ..registry import build_attack
from .plan import experiment_kind
from .store import stored_form

#: test hook: the path of a marker file; the first cell computed after it is
#: set kills its own worker (SIGKILL) after one batch and leaves the marker,
#: so the retried task must end with exactly the uninterrupted rows
KILL_HOOK = "IQABENCH_TEST_KILL_WORKER"

_CONTEXTS: dict[str, RunContext] = {}


def context(device: str) -> RunContext:
    """This worker process's context on ``device`` (what it built is kept for its next tasks)."""
    return _CONTEXTS.setdefault(device, RunContext(device=device, progress=False))


def planned(spec: CellSpec, device: str) -> tuple[Experiment, list[PlannedCell], RunContext]:
    ctx = context(device).for_cell(spec)
    attack = build_attack(spec.attack, spec.attack_params)
    experiment = experiment_kind(attack, spec.attack)()
    return experiment, experiment.plan(spec, attack, ctx), ctx


def prepare(spec: CellSpec, device: str, files: dict[str, bytes]) -> dict:
    """Plan ``spec`` (after writing the artifacts ``files`` other steps built, when missing
    here): its store cells and the cache files planning wrote."""
    materialise(files)
    started = time.perf_counter()
    with recording_writes() as written:
        _, cells, _ = planned(spec, device)
    seconds = time.perf_counter() - started
    return {"cells": [{"key": c.key, "kind": c.kind, "config": c.config, "label": c.label,
                       "manifest": {**c.manifest, "plan_seconds": seconds}} for c in cells],
            "files": cache_files(written)}


def load_dataset(name: str, params: dict, device: str) -> dict:
    """A dataset step (:class:`.graph.DatasetStep`): build or load dataset ``name``
    with ``params`` -- the items of every split, so that whatever it caches is
    written now -- and nothing else; the cache files that wrote."""
    with recording_writes() as written:
        dataset = run_dataset(context(device), name, params)
        for split in dataset.splits():
            dataset.items(split)
    return {"files": cache_files(written)}


@dataclass
class Outputs:
    """What a cell writes beside its rows, which the driver's machine must
    receive: ``gallery`` (thumbnails kept per cell, 0: none) with
    ``gallery_files`` (the cell's gallery as the driver has it, by name: a
    resumed cell keeps earlier batches' thumbnails), and ``save_images``
    (whether each attacked image is saved, ``--save-images``)."""

    gallery: int = 0
    gallery_files: dict[str, bytes] = field(default_factory=dict)
    save_images: bool = False


@dataclass
class Beside:
    """The store as a worker's cell sees it: only its ``path``, beside which the
    cell's gallery is written (in the worker's own folder; the store itself
    is the driver's alone)."""

    path: Path


def folder_files(folder: Path, remove: bool = False) -> dict[str, bytes]:
    """The files under ``folder`` by relative path (``remove``: deleted once read)."""
    out = {}
    for path in sorted(folder.rglob("*")) if folder.is_dir() else []:
        if path.is_file():
            out[str(path.relative_to(folder))] = path.read_bytes()
            if remove:
                path.unlink()
    return out


def compute(spec: CellSpec, key: str, device: str, done: set[int], stored: list[dict],
            files: dict[str, bytes], outputs: Outputs | None = None) -> Iterator[tuple[str, Any]]:
    """Store cell ``key`` (planned from ``spec``), streamed: ``("batch", (index,
    rows))`` for each batch not in ``done`` (the batches the driver had stored,
    with their rows ``stored``) as soon as it is computed -- after ``("saved",
    files)``, the images it saved by path relative to the ``--save-images``
    folder, when ``outputs`` asks for them -- then ``("summary", summary)``
    over all the cell's rows, with the cell's final gallery (``gallery``: its
    files by name) when ``outputs`` asks for one."""
    outputs = outputs or Outputs()
    started = time.perf_counter()
    materialise(files)
    experiment, cells, ctx = planned(spec, device)
    plan_seconds = time.perf_counter() - started  # loading what the planning step built
    cell = next(c for c in cells if c.key == key)
    with tempfile.TemporaryDirectory(prefix="iqabench-cell-") as here:
        saved, store = Path(here) / "saved", Beside(Path(here) / "store")
        ctx = replace(ctx, store=store, gallery=outputs.gallery,
                      save_images=saved if outputs.save_images else None)
        gallery = gallery_dir(store.path, key)
        for name, blob in outputs.gallery_files.items():
            atomic_write_bytes(gallery / name, blob)
        new: list[dict] = []
        for batch, rows in experiment.evaluate(cell, ctx, set(done)):
            new += rows
            if outputs.save_images:
                yield "saved", folder_files(saved, remove=True)
            yield "batch", (batch, rows)
            _kill_hook()
        summary = experiment.summarise(cell, stored_form([*stored, *new]), ctx)
        yield "summary", {"summary": summary, "seconds": time.perf_counter() - started,
                          "plan_seconds": plan_seconds, "device": device,
                          **({"gallery": folder_files(gallery)} if outputs.gallery else {})}


def _kill_hook() -> None:
    marker = os.environ.get(KILL_HOOK)
    if not marker:
        return
    try:
        fd = os.open(marker, os.O_CREAT | os.O_EXCL | os.O_WRONLY)
    except FileExistsError:
        return
    os.close(fd)
    os.kill(os.getpid(), signal.SIGKILL)
