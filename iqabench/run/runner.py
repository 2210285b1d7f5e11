"""The runner: plans, executes and stores the cells of a run; never recomputes.

For each cell the runner builds the attack, asks the experiment registered
for its kind (``register_experiments``; :mod:`iqabench.contracts.experiments`)
to plan the store cells it yields, and for each of them: records it in the
manifest, skips it if it is finished (``--force`` recomputes), stores each
batch of rows the experiment evaluates as it comes (a killed run resumes
after the last one), and stores the summary.  It holds no experiment-specific
code and imports no experiment.

A cell is computed only under a claim in the store (:mod:`.claims`): two
runs started at once on one store never compute the same cell at the same
time; a cell another process holds is left for later, and the run ends by
waiting for it (taking it over if its claimer dies).

A cell's key is the hash of its resolved configuration (model with its
weights, dataset with its content fingerprint, split and image limit, attack
with all parameters, seed, batch size).  Learning it means planning the cell
(training what it needs when the cache lacks it), so the runner records, per
cell spec, the keys its plan yielded (the store's ``plans`` table); with
``trust_store`` (``--trust-store``) a spec whose recorded cells are all
finished is skipped without planning (:mod:`.resume`).
"""
from __future__ import annotations

import os
import socket
import time
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import torch

from ..artifacts import write_json
from ..contracts import CellSpec, Experiment, PlannedCell, RunContext
from ..downloads import used_files
from ..errors import IQABenchError
from ..progress import console, progress, work_ahead
from ..registry import build_attack, notify_result
from .claims import Claims
from .manifest import build_manifest, new_run_id
from .plan import experiment_kind, validate, with_baselines
from .resume import spec_key
from .store import Store


def announce_skip(label: str, key: str, ctx: RunContext) -> None:
    """Say that a finished cell is skipped -- and, with ``--save-images``, that
    its images are not written (they are saved while a cell is computed)."""
    saving = "; its images are not saved: --force recomputes and saves them" if ctx.save_images else ""
    console.print(f"[dim]skip {label} (finished earlier, cell {key}; --force recomputes){saving}[/dim]")


def resolve_device(device: str) -> str:
    if device.startswith("cuda") and not torch.cuda.is_available():
        raise IQABenchError(f"--device {device}: CUDA is not available on this machine")
    if device not in ("cpu",) and not device.startswith("cuda"):
        raise IQABenchError(f"--device {device!r}: expected cpu or cuda[:N]")
    return device


def open_run(store: str | Path, device: str = "cpu", force: bool = False, progress: bool = True,
             save_images: str | Path | None = None) -> RunContext:
    """The context of a run that writes to the results store at ``store`` (and
    each attacked image under ``save_images``, if given)."""
    return RunContext(device=resolve_device(device), progress=progress, force=force, store=Store(store),
                      save_images=None if save_images is None else Path(save_images))


@dataclass
class Waiting:
    """A planned cell another process holds a claim on (see :meth:`Runner.execute`)."""

    experiment: Experiment
    cell: PlannedCell
    ctx: RunContext
    holder: str


class Runner:
    """Runs cells in ``ctx`` (its ``store`` receives the results); ``baselines``:
    add each defended cell's like-for-like baseline (:func:`.plan.with_baselines`);
    ``poll``: seconds between looks at cells other processes hold; ``trust_store``:
    skip a spec whose recorded cells are all finished without planning it
    (:meth:`resumed`)."""

    def __init__(self, ctx: RunContext, baselines: bool = True, poll: float = 0.5, trust_store: bool = False):
        self.ctx = ctx
        self.baselines = baselines
        self.poll = poll
        self.trust_store = trust_store
        self._experiments: dict[type, Experiment] = {}
        self.claims: Claims | None = None

    @property
    def store(self) -> Store:
        return self.ctx.store

    def run(self, cells: list[CellSpec]) -> list[dict]:
        """Run every cell; returns one summary per evaluated store cell (a
        universal attack yields one per amplitude, a backdoor two)."""
        validate(cells)
        if self.ctx.save_images is not None:  # score what is saved: the 8-bit files
            cells = [replace(c, quantise=True) for c in cells]
        if self.baselines:
            cells = with_baselines(cells)
        run_id = new_run_id()
        manifest = build_manifest(run_id, self.ctx.device, sorted({c.seed for c in cells}), self.executor_record())
        self.claims = Claims(str(self.store.path), f"{socket.gethostname()}:{os.getpid()}:{run_id}")
        try:
            with progress(self.ctx.progress) as bar:
                return self.execute_all(cells, replace(self.ctx, bar=bar), run_id, manifest)
        finally:
            self.claims.close()
            manifest["weights_files"] = used_files()
            write_json(self.store.path.parent / "manifests" / f"{run_id}.json", manifest)
            self.store.add_run(run_id, manifest)

    def executor_record(self) -> dict:
        """What the manifest records about the executor."""
        return {"executor": "local"}

    def execute_all(self, cells: list[CellSpec], ctx: RunContext, run_id: str, manifest: dict) -> list[dict]:
        """Plan and evaluate every cell in this process, in order."""
        results: list[Any] = []
        for spec in cells:
            results.extend(self.run_cell(spec, ctx.for_cell(spec), run_id, manifest))
        return self.wait_for_others(results, run_id)

    def resumed(self, spec_id: str, ctx: RunContext, manifest: dict) -> list[dict] | None:
        """With ``trust_store`` and without ``--force``: the stored summaries of the
        spec ``spec_id`` (:func:`.resume.spec_key`) when every cell a run planned
        for it is finished, each announced as skipped -- nothing is planned; else None."""
        if not self.trust_store or ctx.force:
            return None
        finished = self.store.finished_plan(spec_id)
        if finished is None:
            return None
        out = []
        for key, label in finished:
            stored = self.store.cells_by_key(key)
            announce_skip(label, key, ctx)
            manifest["cells"].append({"key": key, "config": stored["config"], "spec": spec_id,
                                      "resumed_by_spec": True})
            out.append(stored["summary"])
        return out

    def run_cell(self, spec: CellSpec, ctx: RunContext, run_id: str, manifest: dict) -> list[dict]:
        spec_id = spec_key(spec)
        finished = self.resumed(spec_id, ctx, manifest)
        if finished is not None:
            return finished
        attack = build_attack(spec.attack, spec.attack_params)
        kind = experiment_kind(attack, spec.attack)
        experiment = self._experiments.setdefault(kind, kind())
        with work_ahead():  # what the cell's experiment declares it may train (the cost estimate)
            started = time.perf_counter()
            planned = experiment.plan(spec, attack, ctx)
            plan_seconds = time.perf_counter() - started
            self.store.record_plan(spec_id, [c.key for c in planned], [c.label for c in planned], run_id)
            out = []
            for cell in planned:
                record = {"key": cell.key, "config": cell.config, **cell.manifest, "plan_seconds": plan_seconds}
                manifest["cells"].append(record)
                started = time.perf_counter()
                out.append(self.execute(experiment, cell, ctx, run_id))
                record["seconds"] = time.perf_counter() - started  # evaluate + summarise (~0 when skipped)
            return out

    def execute(self, experiment: Experiment, cell: PlannedCell, ctx: RunContext, run_id: str) -> dict | Waiting:
        """Evaluate and store one planned cell, resuming from the store; a
        :class:`Waiting` when another process holds the cell's claim."""
        store, key = self.store, cell.key
        if store.cell_status(key) == "done" and not ctx.force:
            announce_skip(cell.label, key, ctx)
            return store.cells_by_key(key)["summary"]
        holder = self.claims.claim(key)
        if holder is not None:
            return Waiting(experiment, cell, ctx, holder)
        try:
            if store.cell_status(key) == "done" and not ctx.force:  # finished by another process meanwhile
                return store.cells_by_key(key)["summary"]
            if ctx.force:
                store.reset_cell(key)
            store.start_cell(key, cell.kind, cell.config, run_id)
            for batch, rows in experiment.evaluate(cell, ctx, store.done_batches(key)):
                store.add_batch(key, batch, rows)
            store.finish_cell(key, experiment.summarise(cell, store.images(key), ctx))
        finally:
            self.claims.release(key)
        summary = store.cells_by_key(key)["summary"]  # the stored form, as a rerun returns it
        notify_result({"key": key, "config": cell.config, "summary": summary})
        return summary

    def wait_for_others(self, results: list[dict | Waiting], run_id: str) -> list[dict]:
        """``results`` with every cell other processes held finished (by them,
        or here once their claim lapses), in order."""
        told: set[str] = set()
        while any(isinstance(r, Waiting) for r in results):
            for i, r in enumerate(results):
                if isinstance(r, Waiting):
                    if r.cell.key not in told:
                        told.add(r.cell.key)
                        console.print(f"[dim]wait {r.cell.label} (cell {r.cell.key} is being computed by "
                                      f"{r.holder})[/dim]")
                    results[i] = self.execute(r.experiment, r.cell, replace(r.ctx, force=False), run_id)
            if any(isinstance(r, Waiting) for r in results):
                time.sleep(self.poll)
        return results
