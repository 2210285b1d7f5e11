"""An artifact (a fitted UAP, a trained model) that two processes need at once
is built by one of them; the other waits for its lock and loads it.  A lock
whose holder died is taken over at once."""
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

TESTS = Path(__file__).resolve().parent

# fits the tiny test model's UAP after meeting the other process, logging every fit
FIT = f'''
import os, sys, time
sys.path.insert(0, {str(TESTS)!r})
from pathlib import Path
import torch
from models_for_tests import TinyConvIQA, TinyData
from iqabench.contracts import CellSpec, RunContext
from iqabench.registry import build_attack
from iqabench.experiments.universal import fit_universal

log, meet, me = sys.argv[1:4]
params = {{"epochs": 1, "size": 32}}
attack = build_attack("uap", params)
fit = attack.fit


def logged(*args, **kwargs):
    with open(log, "a") as f:
        f.write(me + "\\n")
    time.sleep(2)  # the other process asks for the UAP meanwhile
    return fit(*args, **kwargs)


attack.fit = logged
torch.manual_seed(0)
model, dataset = TinyConvIQA(), TinyData.make()()
Path(meet, me).touch()
deadline = time.time() + 60
while len(os.listdir(meet)) < 2 and time.time() < deadline:
    time.sleep(0.05)
spec = CellSpec(model="test-tiny-cnn", dataset="test-tiny-data", attack="uap", batch_size=4, train_limit=4,
                attack_params=params)
uap, key = fit_universal(attack, model, dataset, spec, RunContext())
print(key, float(uap.double().abs().sum()))
'''


def test_two_processes_needing_one_uap_fit_it_once(tmp_path):
    script, log, meet = tmp_path / "fit.py", tmp_path / "fits.log", tmp_path / "meet"
    script.write_text(FIT)
    meet.mkdir()
    env = {**os.environ, "IQABENCH_CACHE": str(tmp_path / "cache"), "OMP_NUM_THREADS": "1"}
    procs = [subprocess.Popen([sys.executable, str(script), str(log), str(meet), me], env=env, text=True,
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE) for me in ("a", "b")]
    outs = [p.communicate(timeout=300) for p in procs]
    assert all(p.returncode == 0 for p in procs), [o[1][-2000:] for o in outs]
    assert len(log.read_text().split()) == 1  # one fit; the other process loaded it
    assert outs[0][0] == outs[1][0]  # the same UAP
    assert "waiting for" in outs[0][1] + outs[1][1]


def test_the_lock_of_a_builder_that_died_is_taken_over(tmp_path):
    from iqabench.artifacts import building

    path = tmp_path / "thing.safetensors"
    holder = subprocess.Popen(
        [sys.executable, "-c", ("import sys, time\nfrom iqabench.artifacts import building\n"
                                f"with building({str(path)!r}) as build:\n    print(build, flush=True)\n"
                                "    time.sleep(120)")],
        stdout=subprocess.PIPE, text=True)
    assert holder.stdout.readline().strip() == "True"  # it holds the lock, building
    os.kill(holder.pid, signal.SIGKILL)
    holder.wait()
    started = time.monotonic()
    with building(path) as build:
        assert build  # nothing was built: this process builds it
        path.write_bytes(b"x")
    assert time.monotonic() - started < 5
    with building(path) as build:
        assert not build  # built: loaded
    assert [p.name for p in tmp_path.iterdir()] == ["thing.safetensors"]  # no lock file is left
