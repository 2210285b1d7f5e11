"""The poison subset and the MOS scale of a backdoor experiment.

The same seeded subset serves the surrogate, the trigger search and the
poisoning (REFERENCES.md 2: the 20% poison subset); backdoor shifts are
specified on a 0-100 MOS scale and scaled to the dataset's own range.
"""
from __future__ import annotations

import torch

from ...contracts import IQADataset
from ...errors import DatasetError, ParameterError

#: the nominal MOS span on which backdoor shifts are specified (REFERENCES.md 2: 0-100)
REFERENCE_SPAN = 100.0


def mos_scale(dataset: IQADataset) -> float:
    """How much wider the dataset's MOS range is than 0-100: ``Delta_max = 40``
    on 0-100 becomes ``40 * scale`` on the dataset's own range."""
    lo, hi = dataset.mos_range
    if not hi > lo:
        raise DatasetError(f"dataset {dataset.name!r} has an empty MOS range {dataset.mos_range}")
    return (hi - lo) / REFERENCE_SPAN


def poison_indices(n: int, ratio: float, seed: int) -> list[int]:
    """``round(ratio * n)`` distinct indices of ``0..n-1``, seeded, sorted.

    The same subset serves the surrogate, the trigger search and the
    poisoning (REFERENCES.md 2: the 20% poison subset).
    """
    if not 0.0 < ratio <= 1.0:
        raise ParameterError(f"poison ratio must be in (0, 1], got {ratio!r}")
    k = int(round(ratio * n))
    if k < 1:
        raise DatasetError(f"poison ratio {ratio} of {n} training images selects no image")
    gen = torch.Generator().manual_seed(seed)
    return sorted(torch.randperm(n, generator=gen)[:k].tolist())

