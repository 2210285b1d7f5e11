"""Tiny models with closed-form behaviour, used as independent truth."""
from __future__ import annotations

import torch

from iqabench.contracts import IQAModel


class LinearScore(IQAModel):
    """s(x) = sum(w * x): the FGSM step is exactly eps * sign(w)."""

    name = "test-linear"
    lower_better = False
    min_size = 1

    def __init__(self, seed: int = 0, size: int = 8):
        super().__init__()
        g = torch.Generator().manual_seed(seed)
        self.w = torch.nn.Parameter(torch.randn(1, 3, size, size, generator=g))
        self.score_range = (0.0, 1.0)

    def forward(self, x):
        return (self.w * x).flatten(1).sum(1)


class LowerBetterLinear(LinearScore):
    """The same score, but lower means better: attacks must push it down."""

    name = "test-linear-lower"
    lower_better = True


class NaNModel(LinearScore):
    """Returns NaN for every image: the runner must refuse to store it."""

    name = "test-nan"

    def forward(self, x):
        return x.flatten(1).mean(1) * float("nan")


class MeanLuma(IQAModel):
    """Mean luma x 100 on a fixed 0-100 range: any image size, no weights."""

    name = "test-mean-luma"
    lower_better = False
    min_size = 8

    def __init__(self):
        super().__init__()
        self.score_range = (0.0, 100.0)

    def forward(self, x):
        return 100 * (0.299 * x[:, 0] + 0.587 * x[:, 1] + 0.114 * x[:, 2]).mean((1, 2))
