"""Weights files are byte-for-byte reproducible: their digest is part of cell keys."""
import subprocess
import sys

import torch

from iqabench.artifacts import file_digest, load_state

SAVE = """
import sys, torch
from pathlib import Path
from iqabench.artifacts import save_state
save_state(Path(sys.argv[1]), {"w": torch.arange(6.0).view(2, 3), "b": torch.ones(4)},
           {"role": "victim", "model": "m", "key": "k", "dataset": "d", "seed": 0})
"""


def test_the_same_tensors_and_metadata_give_the_same_file_in_every_process(tmp_path):
    # safetensors orders __metadata__ by a per-process random hash: several
    # processes would write several digests without the canonical header
    paths = [tmp_path / f"w{i}.safetensors" for i in range(4)]
    for p in paths:
        subprocess.run([sys.executable, "-c", SAVE, str(p)], check=True)
    assert len({file_digest(p) for p in paths}) == 1
    state = load_state(paths[0])
    assert torch.equal(state["w"], torch.arange(6.0).view(2, 3)) and torch.equal(state["b"], torch.ones(4))
    from safetensors import safe_open

    with safe_open(str(paths[0]), framework="pt") as f:
        assert f.metadata() == {"role": "victim", "model": "m", "key": "k", "dataset": "d", "seed": "0"}
