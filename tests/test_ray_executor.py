"""The Ray executor on a real local Ray instance (two worker slots): a suite
with an adversarial attack, a universal one (one UAP artifact shared by its
amplitude cells) and a defended model (plus its baseline) stores exactly the
rows and summaries of the local runner, bit for bit on CPU; a worker killed
mid-cell (the executor's test hook) is retried and the store still ends with
exactly the uninterrupted rows.  Ray starts once for the module; the workers
see the tiny test model and dataset through an installed plugin, and use an
artifact cache of their own (what they need travels through Ray)."""
import sys
from pathlib import Path

import pytest

ray = pytest.importorskip("ray")

from iqabench.contracts import CellSpec  # noqa: E402
from iqabench.run.ray_executor import RayOptions, RayRunner  # noqa: E402
from iqabench.run.runner import Runner, open_run  # noqa: E402
from iqabench.run.worker import KILL_HOOK  # noqa: E402
from test_concurrency import install_plugin, store_contents  # noqa: E402

TESTS = Path(__file__).resolve().parent
PLUGIN = f'''
import sys
sys.path.insert(0, {str(TESTS)!r})
from iqabench import hookimpl
from backdoor_fixtures import TinyCNN, TinyNoise
from models_for_tests import NaNModel, TinyConvIQA, TinyData

Data = TinyData.make()


@hookimpl
def register_models(register):
    register(TinyConvIQA)
    register(NaNModel)
    register(TinyCNN)


@hookimpl
def register_datasets(register):
    register(Data)
    register(TinyNoise)
'''

CELLS = [CellSpec(model="test-tiny-cnn", dataset="test-tiny-data", attack=a, batch_size=4, train_limit=4,
                  attack_params=p, defense=d, defense_params=dp)
         for a, p in (("ifgsm", {"iters": 2}), ("uap", {"epochs": 1, "size": 32}))
         for d, dp in (("none", {}), ("prune", {"rate": 0.5}))]


@pytest.fixture(scope="module")
def cluster(tmp_path_factory):
    root = tmp_path_factory.mktemp("ray")
    site = install_plugin(root, "tinyray", PLUGIN)
    marker = root / "killed"
    marker.touch()  # the kill hook is armed only when a test removes it
    import os

    env = {"PYTHONPATH": f"{site}:{os.environ.get('PYTHONPATH', '')}", KILL_HOOK: str(marker),
           "IQABENCH_CACHE": str(root / "worker-cache"), "OMP_NUM_THREADS": "1", "IQABENCH_PROGRESS": "0"}
    ray.init(num_cpus=2, include_dashboard=False, logging_level="warning", log_to_driver=False,
             runtime_env={"env_vars": env})
    from iqabench.registry import register_plugin, unregister_plugin

    import importlib.util

    spec = importlib.util.spec_from_file_location("tinyray", site / "tinyray" / "__init__.py")
    tinyray = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(tinyray)
    register_plugin(tinyray, "tinyray")  # in this process (the driver); the workers find it installed
    yield marker
    unregister_plugin("tinyray")
    ray.shutdown()


def _local(tmp_path, cells=CELLS):
    """The store a local run of ``cells`` leaves, on one thread as each Ray task runs
    (Ray sets OMP_NUM_THREADS to a task's CPUs)."""
    import torch

    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        Runner(open_run(tmp_path / "local.sqlite", progress=False)).run(cells)
    finally:
        torch.set_num_threads(threads)
    return store_contents(tmp_path / "local.sqlite")


def test_ray_run_stores_exactly_the_local_rows(cluster, tmp_path):
    summaries = RayRunner(open_run(tmp_path / "ray.sqlite", progress=False), options=RayOptions()).run(CELLS)
    ray_rows, ray_cells = store_contents(tmp_path / "ray.sqlite")
    local_rows, local_cells = _local(tmp_path)
    assert len(local_cells) == 2 + 2 * 3  # ifgsm x {none, prune}; uap x {none, prune} x three amplitudes
    assert ray_rows == local_rows and ray_cells == local_cells
    assert len(summaries) == len(local_cells)
    from iqabench.run.store import Store

    (run,) = Store(tmp_path / "ray.sqlite").runs()
    m = run["manifest"]
    assert m["executor"] == "ray" and len(m["ray"]["nodes"]) == 1
    assert all(c["worker"]["device"] == "cpu" and c["worker"]["pid"] for c in m["cells"])


def test_a_dataset_of_files_the_workers_cannot_see_reaches_them_and_gives_the_local_rows(cluster, tmp_path,
                                                                                        monkeypatch):
    """No shared filesystem: the ``folder`` dataset lies under the driver's working
    directory (``root=/proc/self/cwd/imgs``: each process's own), which the
    workers' (started before) does not hold."""
    import numpy as np
    from PIL import Image

    if not Path("/proc/self/cwd").exists():
        pytest.skip("needs /proc")
    (tmp_path / "imgs").mkdir()
    rng = np.random.default_rng(0)
    for i in range(6):
        Image.fromarray(rng.integers(0, 256, (32, 32, 3), dtype=np.uint8)).save(tmp_path / "imgs" / f"im{i}.png")
    monkeypatch.chdir(tmp_path)
    cells = [CellSpec(model="test-tiny-cnn", dataset="folder", dataset_params={"root": "/proc/self/cwd/imgs"},
                      split="all",
                      attack="ifgsm", attack_params={"iters": 2}, batch_size=4)]
    RayRunner(open_run(tmp_path / "ray.sqlite", progress=False), options=RayOptions()).run(cells)
    ray_rows, ray_cells = store_contents(tmp_path / "ray.sqlite")
    local_rows, local_cells = _local(tmp_path, cells)
    assert len(ray_rows) == 6 and ray_rows == local_rows and ray_cells == local_cells


def _folder(root: Path) -> dict[str, bytes]:
    return {str(p.relative_to(root)): p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file()}


def test_galleries_and_saved_images_of_ray_cells_are_the_local_runs(cluster, tmp_path):
    """Written on the workers, they reach the driver's machine: the gallery beside
    the store, each attacked image under --save-images, byte for byte a local run's."""
    import torch

    cell = CellSpec(model="test-tiny-cnn", dataset="test-tiny-data", attack="ifgsm", batch_size=4,
                    attack_params={"iters": 2})
    (tmp_path / "ray").mkdir()
    (tmp_path / "local").mkdir()
    RayRunner(open_run(tmp_path / "ray" / "s.sqlite", progress=False, save_images=tmp_path / "ray" / "saved"),
              options=RayOptions()).run([cell])
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        Runner(open_run(tmp_path / "local" / "s.sqlite", progress=False,
                        save_images=tmp_path / "local" / "saved")).run([cell])
    finally:
        torch.set_num_threads(threads)
    assert store_contents(tmp_path / "ray" / "s.sqlite") == store_contents(tmp_path / "local" / "s.sqlite")
    saved, gallery = _folder(tmp_path / "local" / "saved"), _folder(tmp_path / "local" / "images")
    assert len(saved) == 8 and any(name.endswith("gallery.json") for name in gallery)
    assert _folder(tmp_path / "ray" / "saved") == saved and _folder(tmp_path / "ray" / "images") == gallery


def test_backdoor_cells_plain_and_pruned_on_ray_are_the_local_runs(cluster, tmp_path):
    """P-BAIQA (trigger search, poisoned and clean training, pruning) on the
    workers: the same cells, rows and summaries as a local run -- but the
    summaries' measured ``timings``; the summary names its weights by file name
    and digest, never by a path of one machine's cache."""
    import json

    tiny = dict(profile="quick", search_epochs=1, search_crops=1, search_crop=32, search_batch=16, eval_images=3)
    cells = [CellSpec("test-backdoor-cnn", "test-tiny-noise", "baiqa-p", attack_params=tiny, defense=d,
                      defense_params=p) for d, p in (("none", {}), ("prune", {"rate": 0.5}))]
    RayRunner(open_run(tmp_path / "ray.sqlite", progress=False), options=RayOptions()).run(cells)
    ray_rows, ray_cells = store_contents(tmp_path / "ray.sqlite")
    local_rows, local_cells = _local(tmp_path, cells)

    def untimed(cells):
        return [(*c[:4], {k: v for k, v in json.loads(c[4]).items() if k != "timings"}) for c in cells]

    assert len(local_cells) == 3  # the clean model, the backdoored victim, the pruned victim
    assert ray_rows == local_rows and untimed(ray_cells) == untimed(local_cells)


def test_a_worker_killed_mid_cell_is_retried_to_exactly_the_uninterrupted_rows(cluster, tmp_path):
    cluster.unlink()  # arm the hook: the first cell computed kills its worker after one batch
    RayRunner(open_run(tmp_path / "ray.sqlite", progress=False), options=RayOptions()).run(CELLS[:1])
    assert cluster.exists(), "the hook did not fire"
    ray_rows, _ = store_contents(tmp_path / "ray.sqlite")
    local_rows, _ = _local(tmp_path, CELLS[:1])
    assert ray_rows == local_rows and len(ray_rows) == 8


def test_a_driver_that_dies_mid_run_resumes_to_exactly_the_uninterrupted_rows(cluster, tmp_path, monkeypatch):
    from iqabench.run.store import Store

    calls = []
    add_batch = Store.add_batch

    def dying(self, *args):
        if len(calls) == 3:  # the driver dies with three batches stored
            raise KeyboardInterrupt
        calls.append(args[:2])
        add_batch(self, *args)

    monkeypatch.setattr(Store, "add_batch", dying)
    with pytest.raises(KeyboardInterrupt):
        RayRunner(open_run(tmp_path / "ray.sqlite", progress=False), options=RayOptions()).run(CELLS[2:])
    monkeypatch.setattr(Store, "add_batch", add_batch)
    partial, _ = store_contents(tmp_path / "ray.sqlite")
    assert len(partial) == 3 * 4
    RayRunner(open_run(tmp_path / "ray.sqlite", progress=False), options=RayOptions()).run(CELLS[2:])
    assert store_contents(tmp_path / "ray.sqlite") == _local(tmp_path, CELLS[2:])
    assert set(partial) <= set(store_contents(tmp_path / "ray.sqlite")[0])


def test_a_workers_error_is_the_local_runs_one_line_error(cluster, tmp_path):
    from iqabench.errors import IQABenchError
    from iqabench.run.store import Store

    cell = CellSpec(model="test-nan", dataset="test-tiny-data", attack="fgsm", batch_size=4)
    with pytest.raises(IQABenchError, match="test-nan.*non-finite"):
        RayRunner(open_run(tmp_path / "ray.sqlite", progress=False), options=RayOptions()).run([cell])
    store = Store(tmp_path / "ray.sqlite")
    assert store.cells() == [] and store.db.execute("SELECT count(*) FROM claims").fetchone()[0] == 0


def test_without_ray_the_executor_is_a_one_line_error_naming_the_extra(invoke, monkeypatch, tmp_path):
    monkeypatch.setitem(sys.modules, "ray", None)  # as if Ray were not installed
    result = invoke(["run", "-m", "cnniqa", "-a", "fgsm", "--executor", "ray", "--store", str(tmp_path / "s.sqlite"),
                     "--no-leaderboard", "-q"])
    assert result.exit_code != 0
    assert 'Ray is not installed (pip install "iqabench[ray]")' in result.output
    assert len(result.output.strip().splitlines()) == 1


def test_ray_options_need_the_ray_executor(invoke, tmp_path):
    result = invoke(["run", "-m", "cnniqa", "-a", "fgsm", "--gpus-per-cell", "0.5", "--store",
                     str(tmp_path / "s.sqlite"), "--no-leaderboard", "-q"])
    assert result.exit_code != 0 and "--gpus-per-cell needs --executor ray" in result.output


def test_help_does_not_import_ray():
    import subprocess

    code = "import sys; from iqabench.cli import cli; cli.main(['run', '--help'], standalone_mode=False); " \
           "print('ray' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert "--executor" in out and out.strip().endswith("False")


def test_the_command_line_runs_on_ray(cluster, invoke, tmp_path):
    from iqabench.run.store import Store

    store = tmp_path / "cli.sqlite"
    result = invoke(["run", "-m", "test-tiny-cnn", "-d", "test-tiny-data", "-a", "fgsm", "--executor", "ray",
                     "--cpus-per-cell", "1", "--batch-size", "4", "--store", str(store), "--no-leaderboard", "-q"])
    assert result.exit_code == 0, result.output
    (run,) = Store(store).runs()
    assert run["manifest"]["executor"] == "ray" and run["manifest"]["ray"]["cpus_per_cell"] == 1
    assert [c["status"] for c in Store(store).cells()] == ["done"]


def test_trust_store_plans_only_unfinished_cells_and_their_dependencies_build_what_skipped_ones_built(
        cluster, tmp_path, monkeypatch):
    """``--trust-store`` on Ray: a finished NT-defended cell (and its baseline)
    gets no planning step; a new cell on the same defended models, whose step
    depended on the skipped ones', trains them itself (the workers' cache is
    emptied) and stores the local run's rows."""
    import shutil

    from iqabench.run import ray_executor
    from iqabench.run.store import Store

    nt = dict(model="test-tiny-cnn", dataset="test-tiny-data", batch_size=4, defense="nt",
              defense_params={"lam": 0.01})
    done, new = CellSpec(attack="ifgsm", attack_params={"iters": 2}, **nt), CellSpec(attack="fgsm", **nt)
    RayRunner(open_run(tmp_path / "ray.sqlite", progress=False), options=RayOptions()).run([done])
    shutil.rmtree(cluster.parent / "worker-cache", ignore_errors=True)
    graphs = []
    steps = ray_executor.steps
    monkeypatch.setattr(ray_executor, "steps", lambda cells, *indices: graphs.append(cells) or steps(cells, *indices))
    summaries = RayRunner(open_run(tmp_path / "ray.sqlite", progress=False), options=RayOptions(),
                          trust_store=True).run([done, new])
    assert [[c.attack for c in cells] for cells in graphs] == [["fgsm", "fgsm"]]  # the new cell and its baseline
    assert len(summaries) == 4 and len(Store(tmp_path / "ray.sqlite").table("plans")) == 4
    second = Store(tmp_path / "ray.sqlite").runs()[-1]["manifest"]
    assert sum(bool(c.get("resumed_by_spec")) for c in second["cells"]) == 2
    assert store_contents(tmp_path / "ray.sqlite") == _local(tmp_path, [done, new])
