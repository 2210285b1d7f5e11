"""Two `iqabench run` processes on one store at once: the store ends with
exactly the rows of a single run, no duplicates, and no batch of any cell was
computed twice (each cell is claimed in the store before it is computed; a
crashed claimer's cell is taken over)."""
import os
import sqlite3
import subprocess
import time

from conftest import iqabench_exe

# an attack that sleeps and logs every batch it perturbs (pid, the batch's images), so
# the test sees who computed what; three of them make three cells.  Its first batch in
# each process waits (up to a minute) until two processes have reached one: the runs
# overlap however late the second one starts
LOGGING_PLUGIN = '''
import glob
import os
import time
from dataclasses import dataclass

import torch
from iqabench import hookimpl
from iqabench.contracts import Attack, AttackResult

_met = []


def _meet():
    log = os.environ["SLOW_NOISE_LOG"]
    open(f"{log}.{os.getpid()}", "w").close()
    deadline = time.time() + 60
    while len(glob.glob(log + ".*")) < int(os.environ.get("SLOW_NOISE_MEET", "1")) and time.time() < deadline:
        time.sleep(0.05)
    _met.append(1)


@dataclass
class SlowNoise(Attack):
    name = "slow-noise-a"
    eps: float = 4 / 255

    def perturb(self, model, x):
        if not _met:
            _meet()
        time.sleep(0.2)
        with open(os.environ["SLOW_NOISE_LOG"], "a") as f:
            f.write(f"{os.getpid()} {self.name} {float(x.sum()):.6f}\\n")
        g = torch.Generator().manual_seed(int(x.sum() * 1000) % 1000)
        noise = (torch.rand(x.shape, generator=g) * 2 - 1) * self.eps
        return AttackResult((x + noise).clamp(0, 1), torch.full((x.shape[0],), self.eps), "linf")


class SlowNoiseB(SlowNoise):
    name = "slow-noise-b"


class SlowNoiseC(SlowNoise):
    name = "slow-noise-c"


@hookimpl
def register_attacks(register):
    for cls in (SlowNoise, SlowNoiseB, SlowNoiseC):
        register(cls)
'''


def install_plugin(tmp_path, name="slownoise", text=LOGGING_PLUGIN):
    site = tmp_path / "site"
    (site / name).mkdir(parents=True)
    (site / name / "__init__.py").write_text(text)
    info = site / f"{name}-1.0.dist-info"
    info.mkdir()
    (info / "METADATA").write_text(f"Metadata-Version: 2.1\nName: {name}\nVersion: 1.0\n")
    (info / "entry_points.txt").write_text(f"[iqabench]\n{name} = {name}\n")
    return site


ARGS = ["run", "--model", "example-sharpness", "--dataset", "embedded", "--attack", "slow-noise-a",
        "--attack", "slow-noise-b", "--attack", "slow-noise-c", "--limit", "6", "--batch-size", "2",
        "--no-leaderboard", "-q"]


def _env(tmp_path, cli_env, log):
    from conftest import EXAMPLE_PLUGIN

    return dict(cli_env, PYTHONPATH=f"{install_plugin(tmp_path)}:{EXAMPLE_PLUGIN}:{cli_env.get('PYTHONPATH', '')}",
                SLOW_NOISE_LOG=str(log))


def store_contents(db_path):
    """Every image row and every cell (configuration, status, summary) of a store, in key order."""
    db = sqlite3.connect(db_path)
    rows = db.execute("SELECT cell_key, name, idx, batch, clean, attacked, psnr, ssim, linf, bound, extra"
                      " FROM images ORDER BY cell_key, idx").fetchall()
    cells = db.execute("SELECT key, kind, config, status, summary FROM cells ORDER BY key").fetchall()
    db.close()
    return rows, cells


def test_two_runs_on_one_store_compute_each_batch_once_and_store_a_single_runs_rows(tmp_path, cli_env):
    shared, single = tmp_path / "shared.sqlite", tmp_path / "single.sqlite"
    log = tmp_path / "calls.log"
    env = _env(tmp_path, cli_env, log)
    procs = [subprocess.Popen([iqabench_exe(), *ARGS, "--store", str(shared)], env=dict(env, SLOW_NOISE_MEET="2"),
                              stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True) for _ in range(2)]
    outs = [p.communicate(timeout=300)[0] for p in procs]
    assert [p.returncode for p in procs] == [0, 0], outs
    calls = log.read_text().split()
    calls = list(zip(calls[0::3], calls[1::3], calls[2::3]))
    log.unlink()
    subprocess.run([iqabench_exe(), *ARGS, "--store", str(single)], env=env, check=True, capture_output=True)
    single_calls = log.read_text().splitlines()
    assert len(single_calls) == 3 * 3  # three cells of three batches
    batches = [(name, digest) for _, name, digest in calls]
    assert sorted(batches) == sorted(tuple(c.split()[1:]) for c in single_calls)  # each batch computed once
    assert len({pid for pid, _, _ in calls}) == 2, "one run did all the work: the runs did not overlap"
    assert store_contents(shared) == store_contents(single)


def test_a_dead_claimers_cell_is_taken_over(tmp_path):
    from iqabench.run.claims import Claims

    path = str(tmp_path / "s.sqlite")
    dead = subprocess.Popen(["true"])
    dead.wait()
    crashed = Claims(path, "crashed", pid=dead.pid)
    assert crashed.claim("k") is None
    live = Claims(path, "live")
    assert live.claim("k") is None  # its claimer's process is gone: taken over at once
    assert Claims(path, "third").claim("k") == "live"
    remote = Claims(path, "remote", host="elsewhere", lease=60)
    assert remote.claim("k2") is None
    assert live.claim("k2") == "remote"  # another host's claim: alive while it beats
    live.db.execute("UPDATE claims SET heartbeat = ? WHERE cell_key = 'k2'", (time.time() - 61,))
    live.lease = 60
    assert live.claim("k2") is None  # lease expired
    live.close()
    assert Claims(path, "fourth").claim("k") is None  # released
    for c in (crashed, remote):
        c.close()
    assert os.path.exists(path)
