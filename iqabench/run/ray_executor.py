"""The Ray executor: a run's cells on every GPU of one machine or on a Ray
cluster, with one writer and the local runner's results.

The driver (this process) is the only one that opens the store (it records
each step's planned cells in its ``plans`` table as the step returns).  The
run's plan is a graph (:mod:`.graph`) over the cells to plan (with
``--trust-store`` not those whose recorded cells are all finished,
:mod:`.resume`: what such a cell built is built by the first remaining step
that needs it): each cell's planning step is a Ray task that
waits for the steps that build the artifacts it shares, so each artifact is
built once (a dataset several cells share, by a light task of its own that
builds only the dataset and reserves no GPU); its result lists the store
cells it yields and carries the cache files it wrote, and every later task
of the cells that depend on it gets them through Ray's object store and
writes the missing ones into its own cache (no shared filesystem needed; with a shared ``IQABENCH_CACHE`` they
are simply found).  A dataset read from files travels the same way: the
driver packs the files its parameters name, and a worker that cannot see
them (or sees other contents) fetches and uses its own copy, with the
driver's fingerprint, so keys and rows are the driver's
(:mod:`iqabench.data.shipping`).  A cell's gallery and saved images
(``--save-images``) are written on the worker in a folder of its own and
come back with its batches and summary; the driver writes them where a local
run does (:class:`.worker.Outputs`).  Ready cells wait in the driver, which keeps the cluster's
slots busy with the one expected to take longest (:mod:`.schedule`).  Each
store cell not finished in the store is claimed
(:mod:`.claims`, like a local run) and computed by one Ray generator task that
streams each new batch as soon as it is computed, then the summary
(:mod:`.worker`); the driver commits each batch in its own transaction,
exactly as the local runner does, then the summary.  A worker that dies is
retried by Ray (``max_retries``): the retry recomputes the same rows (each
batch is seeded by its index) and Ray passes on only the items the driver has
not received yet, so no batch is stored twice and a killed worker loses only
the batch it was computing.

Ray is imported only when this executor runs: ``pip install "iqabench[ray]"``.
"""
from __future__ import annotations

import os
import shutil
import socket
import time
from dataclasses import asdict, dataclass
from typing import Any, Callable

from ..allocator import keep_freed_memory
from ..artifacts import atomic_write_bytes, canonical_json
from ..contracts import CellSpec, RunContext
from ..contracts.context import gallery_dir
from ..data import shipping
from ..errors import IQABenchError
from ..registry import notify_result
from . import worker
from .graph import steps
from .resume import spec_key
from .runner import Runner, announce_skip
from .schedule import CellQueue
from .view import PlanView

INSTALL = 'pip install "iqabench[ray]"'


def import_ray():
    try:
        import ray
    except ImportError:
        raise IQABenchError(f"--executor ray: Ray is not installed ({INSTALL})") from None
    return ray


@dataclass
class RayOptions:
    """``address``: None starts a local Ray instance (``num_cpus``/``num_gpus``:
    its size, None: the machine's), ``auto`` joins the running cluster, or a
    ``ray://`` / ``host:port`` address; ``gpus_per_cell`` (fractions share a
    GPU) and ``cpus_per_cell``: what each task reserves; ``max_retries``:
    retries of a task whose worker died; ``ship_data``: pack the files of datasets
    read from files for workers that cannot see them (False: every worker sees
    them, e.g. on a shared filesystem; nothing is packed)."""

    address: str | None = None
    gpus_per_cell: float = 0.0
    cpus_per_cell: float = 1.0
    max_retries: int = 3
    num_cpus: int | None = None
    num_gpus: int | None = None
    ship_data: bool = True

    def __post_init__(self):
        if not self.gpus_per_cell >= 0:
            raise IQABenchError(f"--gpus-per-cell must be >= 0, got {self.gpus_per_cell}")
        if not self.cpus_per_cell > 0:
            raise IQABenchError(f"--cpus-per-cell must be > 0, got {self.cpus_per_cell}")


def _where() -> dict:
    import ray

    return {"node": ray.get_runtime_context().get_node_id(), "host": socket.gethostname(), "pid": os.getpid()}


def _device(run_device: str) -> str:
    import ray

    return "cuda:0" if ray.get_gpu_ids() else run_device  # Ray sets CUDA_VISIBLE_DEVICES to the task's GPUs


def _files(results: tuple[dict, ...]) -> dict[str, bytes]:
    return {rel: blob for r in results for rel, blob in r["files"].items()}


def _receive(data: list[dict]) -> None:
    """The dataset files this worker cannot see, written into its cache (fetched only then);
    the worker's allocator tuned as the CLI's (:mod:`iqabench.allocator`)."""
    import ray

    keep_freed_memory()
    shipping.receive(data, lambda m: ray.get(m["files"][0]))


def prepare_task(spec: CellSpec, device: str, data: list[dict], *deps: dict) -> dict:
    """A planning step on a worker (``data``: its dataset's packed files, :mod:`iqabench.data.shipping`;
    ``deps``: the results of the steps it waits for)."""
    _receive(data)
    return {**worker.prepare(spec, _device(device), _files(deps)), **_where()}


def dataset_task(name: str, params: dict, device: str, data: list[dict]) -> dict:
    """A dataset step on a worker (:class:`.graph.DatasetStep`; ``data``: the dataset's packed files)."""
    _receive(data)
    return worker.load_dataset(name, params, _device(device))


def compute_task(spec: CellSpec, key: str, device: str, done: set[int], stored: list[dict], data: list[dict],
                 outputs: worker.Outputs, *steps_: dict):
    """A store cell on a worker, streamed (a Ray generator task: each item reaches the
    driver as it is yielded; ``steps_``: its planning step's result and that step's deps')."""
    where = _where()
    _receive(data)
    yield "start", where
    for kind, item in worker.compute(spec, key, _device(device), done, stored, _files(steps_), outputs):
        yield kind, {**item, **where} if kind == "summary" else item


class RayRunner(Runner):
    """Runs the cells of ``ctx`` on Ray (see the module docstring)."""

    def __init__(self, ctx: RunContext, baselines: bool = True, options: RayOptions | None = None, poll: float = 0.5,
                 trust_store: bool = False):
        super().__init__(ctx, baselines, poll, trust_store)
        self.options = options or RayOptions()
        if ctx.device.startswith("cuda") and not self.options.gpus_per_cell > 0:
            raise IQABenchError("--executor ray --device cuda needs --gpus-per-cell > 0 (Ray gives a task "
                                "only the GPUs it reserves)")
        self.ray = import_ray()

    def executor_record(self) -> dict:
        ray = self.ray
        if not ray.is_initialized():
            ray.init(address=self.options.address, num_cpus=self.options.num_cpus, num_gpus=self.options.num_gpus,
                     include_dashboard=False, logging_level="warning", log_to_driver=False)
        nodes = [{"node": n["NodeID"], "host": n.get("NodeManagerHostname"), "resources": n.get("Resources", {})}
                 for n in ray.nodes() if n.get("Alive")]
        return {"executor": "ray", "ray": {"version": ray.__version__, "address": self.options.address,
                                           "nodes": nodes, **asdict(self.options)}}

    def slots(self) -> int:
        res = self.ray.cluster_resources()
        if self.options.gpus_per_cell > 0:
            return max(1, int(res.get("GPU", 0) / self.options.gpus_per_cell))
        return max(1, int(res.get("CPU", 1) / self.options.cpus_per_cell))

    def execute_all(self, cells: list[CellSpec], ctx: RunContext, run_id: str, manifest: dict) -> list[dict]:
        ray, opts = self.ray, self.options
        resources = {"num_cpus": opts.cpus_per_cell, "num_gpus": opts.gpus_per_cell, "max_retries": opts.max_retries}
        prepare = ray.remote(**resources)(prepare_task)
        compute = ray.remote(**resources)(compute_task)
        load = ray.remote(num_cpus=opts.cpus_per_cell, max_retries=opts.max_retries)(dataset_task)
        ids = [spec_key(spec) for spec in cells]
        results: dict[tuple[int, int], dict] = {}
        remaining = []  # the cells to plan: with --trust-store, not those whose recorded cells are all finished
        for i, spec_id in enumerate(ids):
            finished = self.resumed(spec_id, ctx, manifest)
            if finished is None:
                remaining.append(i)
            else:
                results.update(((i, pos), summary) for pos, summary in enumerate(finished))
        # indices in the run's cells; a skipped cell's artifacts: built by the first step needing them
        graph = steps([cells[i] for i in remaining], remaining)
        data = self._packer()
        view = PlanView(ctx.bar, self.slots())  # counts cells only: a dataset step yields none
        refs: dict[int, Any] = {}
        loads: dict[str, Any] = {}  # the dataset steps' tasks, by the dataset's identity
        waits: dict[int, list] = {}  # what each cell's step waits for: their results carry the files it needs
        for step in graph:  # Ray starts each step once the steps it waits for have finished
            for d in step.datasets:
                if d.ident not in loads:
                    loads[d.ident] = load.remote(d.name, d.params, ctx.device, data(d.name, d.params))
            waits[step.index] = [*(loads[d.ident] for d in step.datasets), *(refs[d] for d in step.deps)]
            refs[step.index] = prepare.remote(step.spec, ctx.device, data(step.spec.dataset, step.spec.dataset_params),
                                              *waits[step.index])
        preparing = {refs[s.index]: s for s in graph}
        computing: dict[Any, tuple] = {}
        queue = CellQueue()  # ready cells, started longest-expected first while a slot is free
        forced: set[str] = set()

        def start(step, pos, cell) -> bool:
            """Start computing a cell (False: another process, or this run, holds it)."""
            key = cell["key"]
            if self.store.cell_status(key) == "done" and not (ctx.force and key not in forced):
                announce_skip(cell["label"], key, ctx)
                results[(step.index, pos)] = self.store.cells_by_key(key)["summary"]
                view.finish(key)
                return True
            if any(c["key"] == key for *_, c in computing.values()) or self.claims.claim(key) is not None:
                return False
            if ctx.force and key not in forced:
                self.store.reset_cell(key)
            forced.add(key)
            self.store.start_cell(key, cell["kind"], cell["config"], run_id)
            done = self.store.done_batches(key)
            outputs = worker.Outputs(ctx.gallery, worker.folder_files(gallery_dir(self.store.path, key)) if done
                                     else {}, ctx.save_images is not None)
            ref = compute.remote(step.spec, key, ctx.device, done, self.store.images(key),
                                 data(step.spec.dataset, step.spec.dataset_params), outputs,
                                 refs[step.index], *waits[step.index])
            computing[ref] = (step, pos, cell)
            view.start(key, "cluster")
            return True

        def dispatch() -> None:
            held = []
            while queue and len(computing) < view.slots:
                item = queue.pop()
                if not start(*item):
                    held.append(item)
            for item in held:  # held elsewhere: looked at again at the next poll
                queue.push(item[2]["config"], item)

        try:
            while preparing or computing or queue:
                dispatch()
                if not (preparing or computing):
                    time.sleep(self.poll)  # only cells other processes hold are left
                    continue
                ready, _ = ray.wait([*preparing, *computing], num_returns=1, timeout=self.poll)
                for ref in ready:
                    if ref in preparing:
                        step = preparing.pop(ref)
                        planned = self._get(ref)
                        self.store.record_plan(ids[step.index], [c["key"] for c in planned["cells"]],
                                               [c["label"] for c in planned["cells"]], run_id)
                        view.add(len(planned["cells"]))
                        for pos, cell in enumerate(planned["cells"]):
                            manifest["cells"].append({"key": cell["key"], "config": cell["config"], **cell["manifest"]})
                            queue.push(cell["config"], (step, pos, cell))
                        continue
                    step, pos, cell = computing[ref]
                    try:
                        kind, item = self._get(next(ref))
                    except StopIteration:
                        del computing[ref]
                        continue
                    except BaseException:
                        self.claims.release(cell["key"])
                        raise
                    if kind == "start":
                        view.start(cell["key"], item["host"])
                    elif kind == "saved":  # the batch's saved images, written before its rows are stored
                        for rel, blob in item.items():
                            atomic_write_bytes(ctx.save_images / rel, blob)
                    elif kind == "batch":  # each batch in its own transaction, as the local runner stores it
                        self.store.add_batch(cell["key"], *item)
                    else:
                        queue.record(cell["config"], item["seconds"])
                        results[(step.index, pos)] = self._finish(cell, item, manifest, view)
        finally:  # stopped by an error or an interrupt: nothing keeps computing for this run
            for ref in [*loads.values(), *preparing, *computing]:
                try:
                    ray.cancel(ref, force=True)
                except Exception:  # already finished, or gone with its worker
                    pass
        return [results[k] for k in sorted(results)]

    def _packer(self) -> Callable[[str, dict], list[dict]]:
        """``data(name, params)``: the dataset's packed files (:mod:`iqabench.data.shipping`),
        packed once per run: a manifest with the files in the object store, inside a list
        so that Ray hands a task the reference and only a worker that cannot see the
        files fetches them."""
        packed: dict[str, list[dict]] = {}

        def data(name: str, params: dict) -> list[dict]:
            ident = canonical_json([name, params])
            if ident not in packed:
                got = shipping.pack(name, params) if self.options.ship_data else None
                packed[ident] = [] if got is None else [{**got[0], "files": [self.ray.put(got[1])]}]
            return packed[ident]
        return data

    def _get(self, ref) -> dict:
        try:
            return self.ray.get(ref)
        except self.ray.exceptions.RayTaskError as exc:  # the worker's own error, as a local run raises it
            cause = getattr(exc, "cause", None)
            if isinstance(cause, IQABenchError):
                raise cause from None
            raise

    def _finish(self, cell: dict, out: dict, manifest: dict, view: PlanView) -> dict:
        """Store a computed cell's summary (its batches are stored) and record where it ran."""
        key = cell["key"]
        if "gallery" in out:  # the cell's gallery beside the store, as a local run leaves it
            folder = gallery_dir(self.store.path, key)
            shutil.rmtree(folder, ignore_errors=True)
            for name, blob in out["gallery"].items():
                atomic_write_bytes(folder / name, blob)
        try:
            self.store.finish_cell(key, out["summary"])
        finally:
            self.claims.release(key)
        record = next(c for c in reversed(manifest["cells"]) if c["key"] == key)
        record["worker"] = {k: out[k] for k in ("node", "host", "pid", "device")}
        record["seconds"] = out["seconds"]
        record["replan_seconds"] = out["plan_seconds"]  # the worker loading what the cell's planning step built
        view.finish(key, out["host"], out["seconds"])
        summary = self.store.cells_by_key(key)["summary"]
        notify_result({"key": key, "config": cell["config"], "summary": summary})
        return summary
