"""What an executor's worker does: plan a cell (building its artifacts) and
compute a store cell's missing batches -- without ever opening the store.

A worker gets a cell spec and returns plain data: the planned store cells
(key, configuration, label) with the cache files planning wrote (to ship to
workers on other machines), or streams a store cell's new batches of rows,
each as soon as it is computed, and then its summary, computed from the rows the driver had already stored plus the new
ones, in the form the store gives them back (:func:`.store.stored_form`), so
the summary is the one a local run stores.  The driver commits every batch
(:mod:`.ray_executor`).  Models and datasets a worker process built are
reused by its next tasks (:meth:`iqabench.contracts.RunContext.reuse`).
"""
from __future__ import annotations

import os
import signal
import time
from typing import Any, Iterator

from ..artifacts import cache_files, materialise, recording_writes
from ..contracts import CellSpec, Experiment, PlannedCell, RunContext
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


def compute(spec: CellSpec, key: str, device: str, done: set[int], stored: list[dict],
            files: dict[str, bytes]) -> Iterator[tuple[str, Any]]:
    """Store cell ``key`` (planned from ``spec``), streamed: ``("batch", (index,
    rows))`` for each batch not in ``done`` (the batches the driver had stored,
    with their rows ``stored``) as soon as it is computed, then ``("summary",
    summary)`` over all the cell's rows."""
    started = time.perf_counter()
    materialise(files)
    experiment, cells, ctx = planned(spec, device)
    plan_seconds = time.perf_counter() - started  # loading what the planning step built
    cell = next(c for c in cells if c.key == key)
    new: list[dict] = []
    for batch, rows in experiment.evaluate(cell, ctx, set(done)):
        new += rows
        yield "batch", (batch, rows)
        _kill_hook()
    summary = experiment.summarise(cell, stored_form([*stored, *new]), ctx)
    yield "summary", {"summary": summary, "seconds": time.perf_counter() - started, "plan_seconds": plan_seconds,
                      "device": device}


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
