"""Finished batches of a long computation, kept so that a killed run resumes.

Why: C-BAIQA's release-sized poisoning runs PGD over 25 crops for 20 steps
on every poisoned image -- hours on a CPU -- and builds one artifact at the
end.  A kill (a laptop's out-of-memory killer, a lost cluster worker, the
end of a session) would otherwise lose every finished batch.  Each batch's
output is written to the cache as it finishes, with the torch random state
after it; a rerun loads the finished batches, restores that state and goes
on, so its result is the uninterrupted run's to the bit.  The batches are
removed once the whole computation has been built into its artifact.
"""
from __future__ import annotations

import shutil
from pathlib import Path

import torch

from .artifacts import cache_dir, config_key, load_state, save_state

_CPU_RNG = "__rng_cpu__"
_CUDA_RNG = "__rng_cuda__"


class BatchCheckpoints:
    """Per-batch outputs of the computation described by ``config`` (a JSON-able
    dict: everything the outputs depend on), in ``<cache>/partial/<key>/``."""

    def __init__(self, config: dict, device: str | torch.device = "cpu") -> None:
        self.key = config_key(config)
        self.device = torch.device(device)
        self.dir: Path = cache_dir("partial", self.key)

    def _path(self, k: int) -> Path:
        return self.dir / f"{k:06d}.safetensors"

    def finished(self) -> int:
        """How many batches, from the first, are saved."""
        k = 0
        while self._path(k).exists():
            k += 1
        return k

    def save(self, k: int, tensors: dict[str, torch.Tensor]) -> None:
        """Save batch ``k``'s ``tensors`` and the random state after it."""
        state = dict(tensors)
        state[_CPU_RNG] = torch.get_rng_state()
        if self.device.type == "cuda":
            state[_CUDA_RNG] = torch.cuda.get_rng_state(self.device)
        save_state(self._path(k), state)

    def load(self, k: int, restore_rng: bool = False) -> dict[str, torch.Tensor]:
        """Batch ``k``'s tensors (without the random state); with ``restore_rng``
        the random state is also set to what it was right after batch ``k``."""
        state = load_state(self._path(k))
        if restore_rng:
            torch.set_rng_state(state[_CPU_RNG])
            if _CUDA_RNG in state:
                torch.cuda.set_rng_state(state[_CUDA_RNG], self.device)
        return {name: t for name, t in state.items() if name not in (_CPU_RNG, _CUDA_RNG)}

    def clear(self) -> None:
        """Remove the saved batches (the finished computation has its artifact)."""
        shutil.rmtree(self.dir, ignore_errors=True)
