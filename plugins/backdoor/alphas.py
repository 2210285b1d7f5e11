"""Trigger strengths of BAIQA's poisoned images (REFERENCES.md 2).

Poison label (P-BAIQA): each poisoned image gets a strength ``alpha`` and
its label moves by ``Delta_max * alpha``.  The paper's sampling draws
``m`` in {1, 2, 3, 4} with probabilities {0.1, 0.2, 0.3, 0.4}, negates ``m``
for half of the images and uses ``alpha = m / 4``; its ablation compares
equiprobable ``m`` and ``alpha ~ U[-1, 1]``.

Clean label (C-BAIQA, Remark 1): the label is kept and the strength is read
off it, ``alpha = (y - mean) / Delta_max``, so that an image already far
from the mean score teaches the model the shift its label implies.
"""
from __future__ import annotations

from typing import Literal

import torch

from iqabench.errors import ParameterError

Sampling = Literal["paper", "equiprobable", "uniform"]
#: the paper's probabilities of m = 1, 2, 3, 4
PAPER_PROBS: tuple[float, ...] = (0.1, 0.2, 0.3, 0.4)
LEVELS = 4  # alpha = m / LEVELS


def _half_negated(m: torch.Tensor, gen: torch.Generator) -> torch.Tensor:
    """``m`` with exactly ``floor(n / 2)`` randomly chosen entries negated."""
    n = m.shape[0]
    sign = torch.ones(n, dtype=m.dtype)
    sign[torch.randperm(n, generator=gen)[: n // 2]] = -1
    return m * sign


def sample_alphas(strategy: str, n: int, gen: torch.Generator) -> torch.Tensor:
    """``n`` poisoning strengths (float64) drawn with ``strategy``."""
    if strategy == "paper":
        m = torch.multinomial(torch.tensor(PAPER_PROBS, dtype=torch.float64), n, replacement=True, generator=gen) + 1
        return _half_negated(m.double(), gen) / LEVELS
    if strategy == "equiprobable":
        m = torch.randint(1, LEVELS + 1, (n,), generator=gen)
        return _half_negated(m.double(), gen) / LEVELS
    if strategy == "uniform":
        return torch.rand(n, generator=gen, dtype=torch.float64) * 2 - 1
    raise ParameterError(f"alpha sampling {strategy!r} is not one of 'paper', 'equiprobable', 'uniform'")


def shifted_labels(labels: torch.Tensor, alphas: torch.Tensor, delta_max: float) -> torch.Tensor:
    """``y + Delta_max * alpha``, not clipped (the release does not clip)."""
    return labels.double() + delta_max * alphas.double()


def alpha_from_label(labels: torch.Tensor, mean: float, delta_max: float) -> torch.Tensor:
    """Remark 1: ``alpha = (y - mean) / Delta_max`` (not clipped)."""
    return (labels.double() - mean) / delta_max
