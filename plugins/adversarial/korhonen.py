"""Korhonen et al.: Adam on the image, shaped by spatial activity
(REFERENCES.md section 1; MSU reference ``methods/korhonen-et-al/run.py``).

The activity map of each clean image: Sobel 3x3 horizontal and vertical
derivatives of its luma, magnitude ``sqrt(gx^2 + gy^2)``, 1-pixel border set
to 0, divided by its maximum (an image without any edge gets a map of ones),
then dilated with the reference's 5x5 structuring element (the 5x5 square
without its four corners).  Ten Adam steps (lr 0.005) on the image, the image
clamped to [0,1] after each step.

Where the map acts (``map_on``).  The method's idea is a perturbation hidden
in textured areas: large where the activity is high, small where it is low.

* ``"update"`` (default): Adam runs on the score gradient and the map scales
  the step Adam takes, ``x -= map * adam_step`` -- so ``|delta|`` grows with
  the map (Adam's per-pixel step is about lr whatever the gradient's size).
* ``"gradient"``: the gradient is multiplied by the map before Adam, as the
  reference code writes it (and as this plugin did before).  Adam divides
  each pixel's moment by its own root-mean-square, so a fixed per-pixel
  factor cancels: this is the binary mask ``map > 0``, every pixel with any
  activity moving by the same lr per step.  The reference also divides its
  map by 255; with the score range in its loss that brings some gradients
  near Adam's eps (1e-8), which keeps part of the weighting alive -- by an
  amount that depends on the model's gradient scale, which we do not
  reproduce.

Other differences from the reference code, on purpose: it applies
``scipy.ndimage.sobel`` along one axis only and keeps its sign (REFERENCES
asks for the horizontal-and-vertical magnitude).

The bound: the method has no norm constraint -- Adam's per-step change is
about lr, so ``iters * lr`` is the natural scale (0.05 by default).  We record
the bound honestly as the *realised* L-inf distance of each attacked image
from its source (``norm="linf"``), not as an imposed budget.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

import torch
import torch.nn.functional as F

from iqabench.contracts import Attack, AttackResult, IQAModel, check_positive
from iqabench.errors import ParameterError
from iqabench.gradients import gain_and_grad
from .. import bib

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
    """Adam on the image, its steps scaled by a Sobel spatial-activity map (``map_on="gradient"``: the gradient masked)."""

    name = "korhonen"
    family = "perceptual"
    citation = bib.KORHONEN
    description = ("Korhonen et al.: Adam steps on the image scaled by Sobel spatial activity "
                   "(map_on=gradient: the gradient masked, as the reference writes it); bound = realised L-inf.")

    iters: int = 10
    lr: float = 0.005
    map_on: Literal["update", "gradient"] = "update"  # update: |delta| grows with the map; gradient: a mask

    def __post_init__(self) -> None:
        check_positive(self, "iters", "lr")
        if self.map_on not in ("update", "gradient"):
            raise ParameterError(f"'korhonen' parameter 'map_on' must be 'update' or 'gradient', got {self.map_on!r}")

    def perturb(self, model: IQAModel, x: torch.Tensor) -> AttackResult:
        act = activity_map(x)
        img = x.clone().requires_grad_(True)
        # Adam is element-wise, so one optimiser over the batch is exactly one
        # optimiser per image (the reference runs one image at a time).
        opt = torch.optim.Adam([img], lr=self.lr)
        for _ in range(self.iters):
            _, grad = gain_and_grad(model, img.detach())
            before = img.detach().clone()
            img.grad = -grad * act if self.map_on == "gradient" else -grad  # Adam minimises: descend on -gain
            opt.step()
            with torch.no_grad():
                if self.map_on == "update":
                    img.copy_(before + act * (img - before))
                img.clamp_(0.0, 1.0)
        adv = img.detach()
        bound = (adv - x).abs().flatten(1).amax(1)
        return AttackResult(adv, bound, "linf")
