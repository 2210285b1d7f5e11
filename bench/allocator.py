"""CPU time lost to page faults with glibc's default malloc, against
:mod:`iqabench.allocator`'s tuning, on the default model (not a test).

Each workload runs in two fresh processes -- one with glibc's defaults
(``IQABENCH_MALLOC=system``), one tuned as the ``iqabench`` command tunes
itself -- since malloc settings are per process.  A workload is input-gradient
passes of ``cnniqa``:

* ``eot``: C-BAIQA's poisoning PGD step, 5 images x 25 random crops of
  192 px per pass (what ``PGD.eot_batch`` = 128 scores at a time);
* ``batch``: an I-FGSM step on 16 whole 256 px images.

Printed: wall, user and system seconds of each, and the ratios tuned /
default (wall below 1.0: the tuning is faster).

    python bench/allocator.py [--threads 1] [--passes 3]
"""
from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys

CHILD = r"""
import json, resource, sys, time
import torch
from iqabench.allocator import keep_freed_memory
tuned = keep_freed_memory()
torch.set_num_threads(int(sys.argv[2]))
import iqabench
from iqabench_plugins.adversarial.pgd import random_crops
model = iqabench.get_model("cnniqa").requires_grad_(False)
torch.manual_seed(0)
if sys.argv[1] == "eot":
    x, view = torch.rand(5, 3, 256, 256), lambda z: random_crops(z, 25, 192)
else:
    x, view = torch.rand(16, 3, 256, 256), lambda z: z
def step():
    z = x.clone().requires_grad_(True)
    model(view(z)).sum().backward()
step()  # warm-up
r0, t0 = resource.getrusage(resource.RUSAGE_SELF), time.perf_counter()
for _ in range(int(sys.argv[3])):
    step()
r1, t1 = resource.getrusage(resource.RUSAGE_SELF), time.perf_counter()
print(json.dumps({"tuned": tuned, "wall": t1 - t0, "user": r1.ru_utime - r0.ru_utime,
                  "sys": r1.ru_stime - r0.ru_stime}))
"""


def measure(workload: str, threads: int, passes: int, tuned: bool) -> dict:
    env = {**os.environ, "OMP_NUM_THREADS": str(threads)}
    if not tuned:
        env["IQABENCH_MALLOC"] = "system"
    out = subprocess.run([sys.executable, "-c", CHILD, workload, str(threads), str(passes)], env=env,
                         check=True, capture_output=True, text=True).stdout
    result = json.loads(out.strip().splitlines()[-1])
    assert result["tuned"] == tuned, result
    return result


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--passes", type=int, default=3)
    ap.add_argument("--workload", choices=["eot", "batch"], action="append")
    args = ap.parse_args()
    print(f"{'workload':9} {'malloc':8} {'wall s':>7} {'user s':>7} {'sys s':>6}")
    for workload in args.workload or ["eot", "batch"]:
        rows = {tuned: measure(workload, args.threads, args.passes, tuned) for tuned in (False, True)}
        for tuned, r in rows.items():
            print(f"{workload:9} {'tuned' if tuned else 'default':8} {r['wall']:7.1f} {r['user']:7.1f} {r['sys']:6.1f}")
        ratio = {k: rows[True][k] / max(rows[False][k], 1e-9) for k in ("wall", "user", "sys")}
        print(f"{workload:9} {'ratio':8} {ratio['wall']:7.2f} {ratio['user']:7.2f} {ratio['sys']:6.2f}  (tuned / default)")


if __name__ == "__main__":
    main()
