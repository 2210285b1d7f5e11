"""Training is reproducible: the same seed, data and recipe give bit-identical
weights in separate processes, whatever thread count the process starts with.

Two runs of ``make demo`` trained different NT models from one configuration:
torch's default thread count comes from the environment (``OMP_NUM_THREADS``,
the cores it sees), and multi-threaded CPU kernels split their reductions by
thread count.  Each run here is a fresh interpreter; the digest is of every
tensor of the trained state dict.
"""
from __future__ import annotations

import os
import subprocess
import sys

import pytest
import torch

from iqabench.errors import ModelError
from iqabench.models.training import reproducible

TRAIN = r"""
import hashlib
from dataclasses import replace

import torch
import iqabench
from iqabench.models.build import build_model
from iqabench.models.training import train_model


def penalty(forward, x, pred):  # an NT-like regulariser: a second, replayed forward
    return 1e-7 * ((forward(x.detach() + 1e-2) - pred) / 1e-2).pow(2).mean()


started_with = torch.get_num_threads()
model = build_model("cnniqa", {}, "random", "cpu", 0)
# a few steps of the demo's NT training: dropout, random patches, the replayed forward
recipe = replace(model.recipe("quick"), epochs=2, batch_size=4, crop=64, extra={"steps_per_epoch": 3})
data = iqabench.get_dataset("embedded", crop_size=96, crops_per_ref=1)  # small: generated in seconds
train_model(model, data, recipe, seed=0, progress=False, regulariser=penalty)
h = hashlib.sha256()
for name, tensor in sorted(model.state_dict().items()):
    h.update(name.encode())
    h.update(tensor.contiguous().numpy().tobytes())
print(started_with, torch.get_num_threads(), h.hexdigest())
"""


def _train_in_fresh_process(threads: int) -> tuple[int, int, str]:
    env = dict(os.environ, OMP_NUM_THREADS=str(threads), MKL_NUM_THREADS=str(threads))
    out = subprocess.run([sys.executable, "-c", TRAIN], env=env, capture_output=True, text=True, timeout=600)
    assert out.returncode == 0, out.stderr[-2000:]
    started, after, digest = out.stdout.split()[-3:]
    return int(started), int(after), digest


def test_training_gives_the_same_weights_in_separate_processes_at_any_thread_count():
    first = _train_in_fresh_process(1)
    again = _train_in_fresh_process(1)
    other = _train_in_fresh_process(2)
    assert (first[0], other[0]) == (1, 2)  # the processes really started with different counts
    assert (first[1], other[1]) == (1, 2)  # and training gave the caller's count back
    assert first[2] == again[2]
    assert first[2] == other[2], "the thread count of the process changed the trained weights"


def test_reproducible_restores_the_callers_settings_and_checks_threads():
    before = (torch.get_num_threads(), torch.are_deterministic_algorithms_enabled())
    with reproducible(1):
        assert torch.get_num_threads() == 1 and torch.are_deterministic_algorithms_enabled()
    assert (torch.get_num_threads(), torch.are_deterministic_algorithms_enabled()) == before
    for bad in (0, -2, 1.5):
        with pytest.raises(ModelError, match="threads"):
            with reproducible(bad):
                pass
