"""A fitted universal perturbation does not depend on the thread count the
process starts with: the same configuration (the same artifact key) gives a
bit-identical perturbation in separate processes at 1 and 2 threads.

Found comparing two campaign stores: the generative UAP's cell had the same
key at 1 and 2 threads but a different perturbation (multi-threaded CPU
kernels split their reductions by thread count, and Adam amplifies the
difference), so a cached artifact depended on the shell that made it.
"""
from __future__ import annotations

import hashlib
import os
import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = pytest.mark.slow


def _fit_in_fresh_process(tmp: Path, threads: int) -> tuple[str, str]:
    cache = tmp / f"cache-{threads}"
    env = dict(os.environ, OMP_NUM_THREADS=str(threads), MKL_NUM_THREADS=str(threads), IQABENCH_CACHE=str(cache))
    cmd = [sys.executable, "-m", "iqabench.cli", "run", "-q", "--model", "cnniqa", "--weights", "random",
           "--attack", "generative-uap", "--param", "size=64", "--param", "ngf=16", "--param", "depth=4",
           "--dataset-param", "crop_size=96", "--dataset-param", "crops_per_ref=1",
           "--limit", "2", "--train-limit", "8", "--batch-size", "4",
           "--store", str(tmp / f"store-{threads}.sqlite"), "--no-leaderboard"]
    out = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=900)
    assert out.returncode == 0, out.stderr[-2000:]
    (uap,) = (cache / "uaps").glob("generative-uap-*.safetensors")
    return uap.name, hashlib.sha256(uap.read_bytes()).hexdigest()


def test_a_generative_uap_is_the_same_at_one_and_two_threads(tmp_path):
    one, two = _fit_in_fresh_process(tmp_path, 1), _fit_in_fresh_process(tmp_path, 2)
    assert one[0] == two[0]  # the same configuration, the same key
    assert one[1] == two[1]  # ... and the same perturbation
