"""Input gradients of a model's quality objective, shared by every attack.

Attacks *maximise* ``normalised_gain`` (REFERENCES.md 1 minimises
``J = 1 - s/range``, which is the same up to a constant), so the orientation
of a lower-is-better model is handled here once, not by each attack.
"""
from __future__ import annotations

import torch

from .contracts import IQAModel, normalised_gain


def gain_and_grad(model: IQAModel, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Per-image normalised gain and its gradient w.r.t. ``x``.

    The per-image gains are summed before back-propagation: in eval mode
    images do not interact, so the gradient of the sum is each image's own
    gradient and one backward pass serves the whole batch.
    """
    x = x.detach().requires_grad_(True)
    with torch.enable_grad():
        gain = normalised_gain(model, model(x))
        (grad,) = torch.autograd.grad(gain.sum(), x)
    return gain.detach(), grad


def project_linf(x_adv: torch.Tensor, x: torch.Tensor, eps: torch.Tensor | float) -> torch.Tensor:
    """Clip the perturbation to ``[-eps, eps]`` (per image when ``eps`` is a
    tensor of shape B) and the image to [0, 1]."""
    if isinstance(eps, torch.Tensor):
        eps = eps.view(-1, *([1] * (x.ndim - 1)))
    delta = torch.clamp(x_adv - x, -eps, eps)
    return (x + delta).clamp_(0.0, 1.0)
