"""The runner and the store: reruns skip, --force recomputes, a SIGKILLed
run resumes to exactly the rows of an uninterrupted one, manifests record
what was used."""
import json
import os
import signal
import sqlite3
import subprocess
import time


from iqabench.experiments import evasion
from iqabench.experiments.components import cell_model
from iqabench.run.runner import Runner, open_run
from iqabench.contracts import CellSpec
from conftest import iqabench_exe


def _rows(db_path):
    db = sqlite3.connect(db_path)
    rows = db.execute("SELECT name, idx, batch, clean, attacked, psnr, ssim, linf, bound FROM images ORDER BY idx").fetchall()
    db.close()
    return rows


def test_rerun_skips_finished_cells_and_force_recomputes(tmp_path):
    spec = CellSpec(model="cnniqa", dataset="embedded", attack="ifgsm", limit=8, batch_size=4,
                    attack_params={"iters": "2"})
    runner = Runner(open_run(tmp_path / "s.sqlite", progress=False))
    first = runner.run([spec])[0]
    calls = []
    original = evasion.attack_batch
    evasion.attack_batch = lambda *a, **k: calls.append(1) or original(*a, **k)
    try:
        again = runner.run([spec])[0]
        assert calls == [] and again == first  # nothing recomputed
        Runner(open_run(tmp_path / "s.sqlite", force=True, progress=False)).run([spec])
        assert len(calls) == 2  # two batches of four
    finally:
        evasion.attack_batch = original
    assert first["n"] == 8 and first["abs_gain"] > 0


def test_manifest_records_versions_seed_device_params_and_weights(tmp_path):
    spec = CellSpec(model="cnniqa", dataset="embedded", attack="ifgsm", limit=4, seed=7, attack_params={"iters": "2"})
    runner = Runner(open_run(tmp_path / "s.sqlite", progress=False))
    runner.run([spec])
    (manifest_file,) = (tmp_path / "manifests").glob("*.json")
    m = json.loads(manifest_file.read_text())
    assert m["device"] == "cpu" and m["seeds"] == [7] and m["packages"]["torch"]
    cell = m["cells"][0]["config"]
    assert cell["attack"]["params"] == {"eps": 10 / 255, "alpha": 1 / 255, "iters": 2}
    assert cell["model"]["weights"] == cell_model(spec, runner.ctx).weights  # the weights actually used
    assert cell["model"]["weights"].startswith(("cnniqa_embedded.safetensors (sha256:", "random-init (seed 7)"))
    assert runner.store.runs()[0]["manifest"]["run_id"] == m["run_id"]


SLOW_PLUGIN = '''
import time
import torch
from iqabench import hookimpl
from iqabench.contracts import IQAModel


class SlowSharpness(IQAModel):
    """A sharpness score that sleeps, so that a run can be killed mid-way."""
    name = "slow-sharpness"
    min_size = 8

    def forward(self, x):
        time.sleep(0.03)
        y = x.mean(1)
        return 100 * ((y[:, :, 1:] - y[:, :, :-1]).abs().mean((1, 2)) + (y[:, 1:] - y[:, :-1]).abs().mean((1, 2)))


@hookimpl
def register_models(register):
    register(SlowSharpness)
'''


def _install_slow_plugin(tmp_path):
    site = tmp_path / "site"
    (site / "slowplug").mkdir(parents=True)
    (site / "slowplug" / "__init__.py").write_text(SLOW_PLUGIN)
    info = site / "slowplug-1.0.dist-info"
    info.mkdir()
    (info / "METADATA").write_text("Metadata-Version: 2.1\nName: slowplug\nVersion: 1.0\n")
    (info / "entry_points.txt").write_text("[iqabench]\nslowplug = slowplug\n")
    return site


def test_sigkill_then_restart_gives_exactly_the_uninterrupted_rows(tmp_path, cli_env):
    env = dict(cli_env, PYTHONPATH=str(_install_slow_plugin(tmp_path)))
    args = ["run", "--model", "slow-sharpness", "--dataset", "embedded", "--attack", "ifgsm", "--limit", "24",
            "--batch-size", "2", "--no-leaderboard", "-q"]
    killed_db, clean_db = tmp_path / "killed.sqlite", tmp_path / "clean.sqlite"

    proc = subprocess.Popen([iqabench_exe(), *args, "--store", str(killed_db)], env=env,
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)
    deadline = time.time() + 120
    done = 0
    while time.time() < deadline and proc.poll() is None:
        time.sleep(0.05)
        if killed_db.exists():
            try:
                done = len(_rows(killed_db))
            except sqlite3.OperationalError:
                continue
            if done >= 4:
                break
    assert proc.poll() is None, "the run finished before it could be killed"
    os.killpg(proc.pid, signal.SIGKILL)
    proc.wait()
    partial = _rows(killed_db)
    assert 4 <= len(partial) < 24

    subprocess.run([iqabench_exe(), *args, "--store", str(killed_db)], env=env, check=True, capture_output=True)
    subprocess.run([iqabench_exe(), *args, "--store", str(clean_db)], env=env, check=True, capture_output=True)
    resumed, uninterrupted = _rows(killed_db), _rows(clean_db)
    assert len(resumed) == 24
    assert resumed == uninterrupted
    assert set(partial) <= set(resumed)  # finished rows were kept, not recomputed differently
