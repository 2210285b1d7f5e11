"""The example plugin's model and attack."""
from dataclasses import dataclass

import torch

from iqabench.contracts import Attack, AttackResult, IQAModel


class GradientSharpness(IQAModel):
    """Mean luma gradient magnitude x 100: a crude, differentiable sharpness score."""

    name = "example-sharpness"
    description = "Mean luma gradient magnitude (x100): a crude differentiable sharpness score."
    lower_better = False
    min_size = 8

    def __init__(self, scale: float = 100.0):
        super().__init__()
        self.scale = scale

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = 0.299 * x[:, 0] + 0.587 * x[:, 1] + 0.114 * x[:, 2]
        gx = y[:, :, 1:] - y[:, :, :-1]
        gy = y[:, 1:, :] - y[:, :-1, :]
        return self.scale * (gx.abs().mean((1, 2)) + gy.abs().mean((1, 2)))


@dataclass
class UniformNoise(Attack):
    """Uniform random noise in [-eps, eps]: a gradient-free baseline."""

    name = "example-noise"
    description = "Uniform random noise in [-eps, eps] (gradient-free baseline)."
    eps: float = 8 / 255

    def perturb(self, model, x):
        noise = (torch.rand_like(x) * 2 - 1) * self.eps
        return AttackResult((x + noise).clamp(0, 1), torch.full((x.shape[0],), self.eps), "linf")
