"""Korhonen et al.: Adam on the image, gradient masked by spatial activity
(REFERENCES.md section 1; MSU reference ``methods/korhonen-et-al/run.py``).

The activity map of each clean image: Sobel 3x3 horizontal and vertical
derivatives of its luma, magnitude ``sqrt(gx^2 + gy^2)``, 1-pixel border set
to 0, divided by its maximum (an image without any edge gets a map of ones),
then dilated with the reference's 5x5 structuring element (the 5x5 square
without its four corners).  Ten Adam steps (lr 0.005) on the image, each
with the score gradient multiplied by the map, the image clamped to [0,1]
after each step.

Differences from the reference code, on purpose: the reference applies
``scipy.ndimage.sobel`` along one axis only and keeps its sign (REFERENCES
asks for the horizontal-and-vertical magnitude), and it divides the map by
a further 255, which only rescales the gradient that Adam normalises anyway.

The bound: the method has no norm constraint -- Adam's per-step change is
about lr, so ``iters * lr`` is the natural scale (0.05 by default).  We record
the bound honestly as the *realised* L-inf distance of each attacked image
from its source (``norm="linf"``), not as an imposed budget.
"""
from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F

from iqabench.contracts import Attack, AttackResult, IQAModel, check_positive
from iqabench.gradients import gain_and_grad

_LUMA = (0.299, 0.587, 0.114)  # BT.601, as the reference's cv2 YCrCb conversion


def activity_map(x: torch.Tensor) -> torch.Tensor:
    """Spatial-activity map of each image, B x 1 x H x W in [0, 1]."""
    y = _LUMA[0] * x[:, 0:1] + _LUMA[1] * x[:, 1:2] + _LUMA[2] * x[:, 2:3]
    sx = torch.tensor([[-1.0, 0.0, 1.0], [-2.0, 0.0, 2.0], [-1.0, 0.0, 1.0]], device=x.device, dtype=x.dtype)
    kernels = torch.stack([sx, sx.T]).unsqueeze(1)  # horizontal, vertical derivatives
    grad = F.conv2d(F.pad(y, (1, 1, 1, 1), mode="replicate"), kernels)
    mag = grad.pow(2).sum(1, keepdim=True).sqrt()
    border = torch.zeros_like(mag)
    border[..., 1:-1, 1:-1] = 1.0
    mag = mag * border
    top = mag.flatten(1).amax(1).view(-1, 1, 1, 1)
    mag = torch.where(top > 0, mag / top.clamp_min(torch.finfo(x.dtype).tiny), torch.ones_like(mag))
    # dilation by the 5x5 disc = union of a 3x5 and a 5x3 box (-inf padding)
    return torch.maximum(F.max_pool2d(mag, (3, 5), 1, (1, 2)), F.max_pool2d(mag, (5, 3), 1, (2, 1)))


@dataclass
class Korhonen(Attack):
    """Adam on the image with the gradient masked by a Sobel spatial-activity map."""

    name = "korhonen"
    description = "Korhonen et al.: Adam steps on the image, gradient masked by Sobel spatial activity (bound = realised L-inf)."

    iters: int = 10
    lr: float = 0.005

    def __post_init__(self) -> None:
        check_positive(self, "iters", "lr")

    def perturb(self, model: IQAModel, x: torch.Tensor) -> AttackResult:
        mask = activity_map(x)
        img = x.clone().requires_grad_(True)
        # Adam is element-wise, so one optimiser over the batch is exactly one
        # optimiser per image (the reference runs one image at a time).
        opt = torch.optim.Adam([img], lr=self.lr)
        for _ in range(self.iters):
            _, grad = gain_and_grad(model, img.detach())
            img.grad = -grad * mask  # Adam minimises: descend on -gain
            opt.step()
            with torch.no_grad():
                img.clamp_(0.0, 1.0)
        adv = img.detach()
        bound = (adv - x).abs().flatten(1).amax(1)
        return AttackResult(adv, bound, "linf")
