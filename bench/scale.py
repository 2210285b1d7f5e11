"""Scaling of the Ray executor (not a test): measured on this machine, then simulated.

(a) Measured: the same suite run with ``--executor local`` and with the Ray
    executor on 1 and 2 worker slots, each into a fresh store with the
    artifact cache warmed first (so the runs time cells, not artifact
    building; worker processes are started before the clock starts).
    Printed: wall times, the ratio to local, and the overhead per cell
    ((ray 1 worker - local) / cells).  The rows of every run are compared
    with the local run's (they must be equal).
(b) Ray's scheduling overhead for a cell that does nothing: ``--noop`` generator
    tasks shaped like a cell task (start, one batch, summary), one after
    another (latency) and on every slot (throughput), against the mean
    measured cell time.
(c) Simulated: the MSU-sized grid (15 models x 9 attacks -- 6 per-image, 3
    universal with 3 amplitude cells each -- x 3 datasets) on 8, 64 and 512
    GPUs from the per-cell costs measured in (a): a model's preparation (build
    + clean range) per (model, dataset), a UAP fit per (model, dataset,
    universal attack) that its amplitude cells wait for, the per-image and
    universal cells, each task paying (b)'s overhead plus a worker's re-plan of
    the cell (measured in (a)); once as measured and once with the cells and
    fits scaled linearly to ``--msu-images`` images (the methodology attacks
    whole test splits; the small suite's cells attack ``--limit``).  Models differ in speed (a seeded log-normal
    factor, sigma ``--spread``).  Tasks start as they become ready, longest
    cell first as the executor does, and for comparison in submission order
    (Ray's FIFO).  Printed: makespan and efficiency against the
    ideal (total work / GPUs) and against the dependency bound (the larger of
    that and the critical path).

    python bench/scale.py [--suite FILE|NAME] [--limit 8] [--noop 100] [--gpus 8 64 512]

Without ``--suite`` a small suite on the default model and the embedded data
(FGSM, I-FGSM, MI-FGSM, an optimised UAP: 6 cells) keeps the measurement
within a few CPU minutes; ``--suite default`` measures the default suite (about
20 minutes per run on 2 cores: 4 runs).
"""
from __future__ import annotations

import argparse
import heapq
import json
import os
import random
import sqlite3
import statistics
import sys
import tempfile
import time
from pathlib import Path

os.environ.setdefault("IQABENCH_PROGRESS", "0")
os.environ.setdefault("OMP_NUM_THREADS", "1")
if "--keep-cache" not in sys.argv:  # a fresh artifact cache: the first run times building every artifact
    os.environ["IQABENCH_CACHE"] = tempfile.mkdtemp(prefix="iqabench-scale-cache-")

SMALL = """
models = ["cnniqa"]
datasets = ["embedded"]
attacks = ["fgsm", "ifgsm", "mifgsm", "uap"]
batch_size = 4
params.ifgsm = { iters = 3 }
params.mifgsm = { iters = 3 }
params.uap = { epochs = 1, size = 192 }
"""


def cells_of(suite: str | None, limit: int):
    from iqabench.run.plan import validate_cell, wildcard_attacks
    from iqabench.run.suite import expand, load_suite, load_suite_text

    if suite:
        data, _ = load_suite(suite)
    else:
        data = load_suite_text(SMALL + f"limit = {limit}\ntrain_limit = {limit}\n", "bench/scale.py")
    return expand(data, suite or "bench/scale.py", wildcard_attacks, validate_cell)


def rows(path: Path):
    db = sqlite3.connect(path)
    out = db.execute("SELECT cell_key, name, clean, attacked, psnr, ssim, linf, bound FROM images"
                     " ORDER BY cell_key, idx").fetchall()
    db.close()
    return out


def timed_run(runner, cells) -> tuple[float, dict]:
    started = time.perf_counter()
    runner.run(cells)
    wall = time.perf_counter() - started
    (run,) = runner.store.runs()
    return wall, run["manifest"]


def noop_cell(i: int):
    yield "start", {"pid": os.getpid()}
    yield "batch", (0, [{"name": str(i)}])
    yield "summary", {"summary": {}}


def warm_workers(ray, n: int) -> None:
    @ray.remote(num_cpus=1)
    def load() -> int:
        import iqabench.run.worker  # noqa: F401  (torch, the registry, the experiments)
        from iqabench.registry import registry

        registry("attack")
        time.sleep(0.5)  # hold the slot so each warm-up lands on its own worker
        return os.getpid()

    ray.get([load.remote() for _ in range(n)])


def noop_overhead(ray, n: int, slots: int) -> tuple[float, float]:
    task = ray.remote(num_cpus=1)(noop_cell)
    started = time.perf_counter()
    for i in range(n):  # one after another: the latency of a cell that does nothing
        for ref in task.remote(i):
            ray.get(ref)
    latency = (time.perf_counter() - started) / n
    started = time.perf_counter()
    gens = [task.remote(i) for i in range(n)]
    for gen in gens:
        for ref in gen:
            ray.get(ref)
    throughput = (time.perf_counter() - started) / n * slots  # slot-seconds per no-op cell
    return latency, throughput


def measure(args) -> dict:
    import ray
    import torch

    from iqabench.run.ray_executor import RayOptions, RayRunner
    from iqabench.run.runner import Runner, open_run

    torch.set_num_threads(1)  # as each Ray task runs
    cells = cells_of(args.suite, args.limit)
    tmp = Path(tempfile.mkdtemp(prefix="iqabench-scale-"))
    from iqabench.registry import build

    started = time.perf_counter()  # the dataset (the embedded one is generated into the cache once)
    data = build("dataset", cells[0].dataset, cells[0].dataset_params)
    data.load(next(iter(data.items(cells[0].split))))
    dataset_seconds = time.perf_counter() - started
    # the first run builds and caches every other artifact: its plan times are the artifacts' costs
    _, warm = timed_run(Runner(open_run(tmp / "warm.sqlite", progress=False)), cells)
    walls = []
    for r in range(args.repeats):  # the machine is shared: the fastest of the repeats
        walls.append(timed_run(Runner(open_run(tmp / f"local{r}.sqlite", progress=False)), cells))
    local_wall, local_manifest = min(walls, key=lambda w: w[0])
    out = {"cells": len(local_manifest["cells"]), "local": local_wall, "dataset_seconds": dataset_seconds,
           "cell_seconds": [c["seconds"] for c in local_manifest["cells"]],
           "cell_kinds": [c["config"]["kind"] for c in local_manifest["cells"]],
           "plan_seconds": {}, "ray": {}}
    for c in warm["cells"]:
        out["plan_seconds"].setdefault(c["config"]["kind"], []).append(c["plan_seconds"])
    for workers in args.workers:
        ray.init(num_cpus=workers, include_dashboard=False, logging_level="warning", log_to_driver=False)
        warm_workers(ray, workers)
        walls = []
        for r in range(args.repeats):
            store = tmp / f"ray{workers}-{r}.sqlite"
            walls.append(timed_run(RayRunner(open_run(store, progress=False), options=RayOptions()), cells))
            assert rows(store) == rows(tmp / "local0.sqlite"), "ray rows differ from local"
        wall, manifest = min(walls, key=lambda w: w[0])
        latency, slot_seconds = noop_overhead(ray, args.noop, workers)
        out["ray"][workers] = {"wall": wall, "ratio": wall / local_wall,
                               "worker_seconds": [c["seconds"] for c in manifest["cells"]],
                               "replan_seconds": [c["replan_seconds"] for c in manifest["cells"]],
                               "noop_latency": latency, "noop_slot_seconds": slot_seconds}
        ray.shutdown()
    return out


# ------------------------------------------------------------------ simulation
def msu_grid(costs: dict, spread: float, seed: int = 0):
    """Tasks (id, cost, deps) of 15 models x 9 attacks x 3 datasets: a dataset
    artifact per dataset, a model preparation per (model, dataset) waiting for it."""
    rng = random.Random(seed)
    speed = [rng.lognormvariate(0, spread) for _ in range(15)]
    tasks: list[tuple[str, float, list[str]]] = [(f"prep-data-{d}", costs["dataset"], []) for d in range(3)]
    for m in range(15):
        for d in range(3):
            prep = f"prep-{m}-{d}"
            tasks.append((prep, costs["prepare"] * speed[m], [f"prep-data-{d}"]))
            for a in range(6):
                tasks.append((f"cell-{m}-{d}-{a}", costs["adversarial"] * speed[m], [prep]))
            for u in range(3):
                fit = f"uap-{m}-{d}-{u}"
                tasks.append((fit, costs["uap_fit"] * speed[m], [prep]))
                for amp in range(3):
                    tasks.append((f"ucell-{m}-{d}-{u}-{amp}", costs["universal"] * speed[m], [fit]))
    return tasks


def simulate(tasks, gpus: int, overhead: float, policy: str = "longest-first") -> dict:
    """List scheduling as tasks become ready, each paying ``overhead``: ``fifo`` starts
    them in submission order (Ray's own queue); ``longest-first`` is the executor's
    (:mod:`iqabench.run.schedule`): planning steps (model preparations, UAP fits) in
    submission order before any cell -- Ray gets them all at once -- and cells longest
    first (the estimate of a model x attack is exact once one of its cells has run:
    taken as exact here)."""
    cost = {t[0]: t[1] for t in tasks}
    if policy == "fifo":
        order = {t[0]: (0, i) for i, t in enumerate(tasks)}
    else:
        order = {t[0]: (0, i) if t[0].startswith(("prep", "uap")) else (1, -t[1], i) for i, t in enumerate(tasks)}
    waiting = {t[0]: set(t[2]) for t in tasks}
    children: dict[str, list[str]] = {}
    for tid, _, deps in tasks:
        for d in deps:
            children.setdefault(d, []).append(tid)
    ready = [(order[t], t) for t, deps in waiting.items() if not deps]
    heapq.heapify(ready)
    running: list[tuple[float, str]] = []
    free, now, finish = gpus, 0.0, {}
    while ready or running:
        while ready and free:
            _, tid = heapq.heappop(ready)
            heapq.heappush(running, (now + cost[tid] + overhead, tid))
            free -= 1
        now, tid = heapq.heappop(running)
        free += 1
        finish[tid] = now
        for child in children.get(tid, []):
            waiting[child].discard(tid)
            if not waiting[child]:
                heapq.heappush(ready, (order[child], child))
    total = sum(cost.values())
    path: dict[str, float] = {}
    for tid, c, deps in tasks:  # tasks are listed after their deps
        path[tid] = c + max((path[d] for d in deps), default=0.0)
    ideal = total / gpus
    bound = max(ideal, max(path.values()))
    return {"gpus": gpus, "policy": policy, "makespan": now, "ideal": ideal, "bound": bound,
            "efficiency": ideal / now, "efficiency_vs_bound": bound / now}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--suite", default=None, help="a suite file or registered name (default: a small suite)")
    ap.add_argument("--limit", type=int, default=8, help="images per cell of the small suite")
    ap.add_argument("--workers", type=int, nargs="+", default=[1, 2])
    ap.add_argument("--repeats", type=int, default=2, help="timed runs per executor (the fastest counts)")
    ap.add_argument("--noop", type=int, default=100, help="no-op cells timed per worker count")
    ap.add_argument("--gpus", type=int, nargs="+", default=[8, 64, 512])
    ap.add_argument("--spread", type=float, default=0.5, help="sigma of the models' log-normal speed factor")
    ap.add_argument("--msu-images", type=int, default=1000,
                    help="images per cell (and UAP training set) of the simulated grid's second run: the small "
                         "suite's cell costs scaled linearly from --limit")
    ap.add_argument("--json", type=Path, default=None, help="also write the figures here")
    ap.add_argument("--keep-cache", action="store_true",
                    help="use $IQABENCH_CACHE (artifacts built earlier are not timed) instead of a fresh cache")
    args = ap.parse_args()

    m = measure(args)
    mean_cell = statistics.mean(m["cell_seconds"])
    print(f"{m['cells']} cells; local {m['local']:.2f} s (mean cell {mean_cell:.3f} s)")
    for w, r in m["ray"].items():
        per_cell = (r["wall"] - m["local"]) / m["cells"]
        on_worker, replan = statistics.mean(r["worker_seconds"]), statistics.mean(r["replan_seconds"])
        print(f"ray, {w} worker(s): {r['wall']:.2f} s, ratio to local {r['ratio']:.3f}, "
              f"overhead per cell {per_cell:+.3f} s (mean cell on a worker {on_worker:.3f} s, "
              f"of which re-planning {replan:.3f} s); no-op cell: latency {1e3 * r['noop_latency']:.1f} ms, "
              f"{1e3 * r['noop_slot_seconds']:.1f} slot-ms each ({100 * r['noop_slot_seconds'] / mean_cell:.2f}% "
              f"of the mean cell)")
    plans = m["plan_seconds"]
    by_kind = {k: [s for s, kk in zip(m["cell_seconds"], m["cell_kinds"]) if kk == k] for k in set(m["cell_kinds"])}
    adv = by_kind.get("adversarial") or m["cell_seconds"]
    # the first plan builds the model's artifacts; a universal plan fits its UAP (the median
    # adversarial plan, which only loads, is subtracted)
    loads = statistics.median(plans.get("adversarial", [0.0])[1:] or [0.0])
    costs = {"dataset": m["dataset_seconds"], "prepare": plans[m["cell_kinds"][0]][0],
             "adversarial": statistics.mean(adv), "universal": statistics.mean(by_kind.get("universal") or adv),
             "uap_fit": max(0.0, statistics.mean(plans.get("universal", [statistics.mean(adv)])) - loads)}
    first = m["ray"][min(m["ray"])]
    replan = statistics.mean(first["replan_seconds"])  # a worker re-plans (loads) each cell
    overhead = first["noop_slot_seconds"] + replan
    print("simulation costs (s): " + ", ".join(f"{k} {v:.3f}" for k, v in costs.items())
          + f"; per-task overhead {overhead:.3f} (no-op {first['noop_slot_seconds']:.4f} + re-plan {replan:.3f})")
    # the measured cells attack --limit images; the methodology's cells attack whole test splits
    scale = args.msu_images / args.limit if not args.suite else 1.0
    sims = []
    for label, factor in (("as measured", 1.0), (f"cells x {scale:g} ({args.msu_images} images)", scale)):
        grown = {k: v * factor if k in ("adversarial", "universal", "uap_fit") else v for k, v in costs.items()}
        tasks = msu_grid(grown, args.spread)
        for policy in ("longest-first", "fifo"):
            for g in args.gpus:
                s = {**simulate(tasks, g, overhead, policy), "costs": label}
                sims.append(s)
                print(f"MSU grid ({len(tasks)} tasks, {label}) on {g} GPUs, {policy}: makespan "
                      f"{s['makespan']:.1f} s, ideal {s['ideal']:.1f} s -> efficiency {100 * s['efficiency']:.1f}%; "
                      f"against the dependency bound {s['bound']:.1f} s: {100 * s['efficiency_vs_bound']:.1f}%")
    if args.json:
        args.json.write_text(json.dumps({"measured": m, "costs": costs, "overhead": overhead, "simulated": sims},
                                        indent=2))


if __name__ == "__main__":
    main()
