"""Projected gradient descent, L-inf or L2, untargeted or targeted to a score,
with optional expectation over transformations (random crops + hflip).

Untargeted PGD maximises the normalised gain (the score pushed towards
"better", REFERENCES.md section 1).  Targeted PGD minimises
``(f(x) - target)^2`` in the model's own score units (the clean-label BAIQA
recipe of REFERENCES.md section 2 targets 50: L-inf eps 2/255, step
0.00627, 20 iterations, the loss summed over 25 random 224 crops with a
random horizontal flip, redrawn every iteration -- ``eot_crops=25,
crop_size=224``).  The defaults are that recipe without the crops.

Steps: L-inf ``x += step * sign(g)``; L2 ``x += step * g / ||g||_2`` per
image.  Projection after each step: L-inf clip of the perturbation to
``[-eps, eps]``, L2 rescaling of the perturbation to norm ``<= eps`` (the
L2 norm over all pixels and channels of an image in [0,1]), then the image
is clamped to [0,1] (which only shrinks either norm).  ``random_start``
draws the start uniformly in the L-inf ball, or (L2) as a Gaussian
direction with a uniform radius in [0, eps].

EOT: every iteration draws, per image, ``eot_crops`` crop positions and
flips (global torch RNG, on the images' device), then scores them
``eot_batch`` crops per forward pass (whole images; a memory bound that
leaves the result unchanged).  A crop larger than the image is reduced to
the image's size.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar, Literal

import torch

from iqabench.contracts import Attack, AttackResult, IQAModel, check_positive, normalised_gain
from iqabench.errors import ParameterError
from iqabench.gradients import input_grad, input_grad_in_parts, project_linf
from .. import bib


def crop_positions(x: torch.Tensor, n: int, size: int) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """``n`` random crop corners (top, left) and flips per image, each B x n,
    drawn from the global torch RNG on ``x``'s device (top, then left, then flip)."""
    b, _, h, w = x.shape
    sh, sw = min(size, h), min(size, w)
    top = torch.randint(0, h - sh + 1, (b, n), device=x.device)
    left = torch.randint(0, w - sw + 1, (b, n), device=x.device)
    flip = torch.rand(b, n, device=x.device) < 0.5
    return top, left, flip


def take_crops(x: torch.Tensor, size: int, top: torch.Tensor, left: torch.Tensor, flip: torch.Tensor
               ) -> torch.Tensor:
    """The crops at :func:`crop_positions` of each image: (B n) x C x s x s,
    image-major, differentiable."""
    b, c, h, w = x.shape
    n = top.shape[1]
    sh, sw = min(size, h), min(size, w)
    dev = x.device
    ar_h = torch.arange(sh, device=dev)
    ar_w = torch.arange(sw, device=dev)
    cols_w = torch.where(flip.unsqueeze(-1), ar_w.flip(0), ar_w)  # b x n x sw
    rows = (top.unsqueeze(-1) + ar_h).reshape(b * n, sh)
    cols = (left.unsqueeze(-1) + cols_w).reshape(b * n, sw)
    img = torch.arange(b, device=dev).repeat_interleave(n)
    # advanced indexing: (b n) x sh x sw x c -> (b n) x c x sh x sw
    crops = x.permute(0, 2, 3, 1)[img[:, None, None], rows[:, :, None], cols[:, None, :]]
    return crops.permute(0, 3, 1, 2)


def random_crops(x: torch.Tensor, n: int, size: int) -> torch.Tensor:
    """``n`` random ``size`` crops of each image, each flipped horizontally
    with probability 1/2: (B n) x C x s x s, image-major, differentiable."""
    return take_crops(x, size, *crop_positions(x, n, size))


def _per_image(v: torch.Tensor, like: torch.Tensor) -> torch.Tensor:
    return v.view(-1, *([1] * (like.ndim - 1)))


def project_l2(x_adv: torch.Tensor, x: torch.Tensor, eps: float) -> torch.Tensor:
    """Rescale each perturbation to L2 norm <= eps, then clamp to [0,1]."""
    d = x_adv - x
    norm = d.flatten(1).norm(dim=1)
    factor = torch.clamp(eps / norm.clamp_min(1e-12), max=1.0)
    return (x + d * _per_image(factor, d)).clamp_(0.0, 1.0)


@dataclass
class PGD(Attack):
    """PGD (L-inf or L2), untargeted or towards a target score, optional EOT over random crops."""

    name = "pgd"
    family = "iterative"
    citation = bib.PGD
    description = "PGD, L-inf or L2, untargeted (gain) or targeted (MSE to a score), optional EOT over random crops + hflip."

    norm: Literal["linf", "l2"] = "linf"
    eps: float = 2 / 255
    step: float = 0.00627
    iters: int = 20
    random_start: bool = False
    target: float | None = None
    eot_crops: int = 0
    crop_size: int = 224
    #: crops per forward/backward pass under EOT (whole images at a time, at
    #: least one): bounds the memory, not the result -- 32 images x 25 crops
    #: of 192 px in one pass held 20.7 GiB on the default model.  A class
    #: setting, not a parameter: it is no part of a cell's key.
    eot_batch: ClassVar[int] = 128

    def __post_init__(self) -> None:
        check_positive(self, "eps", "step", "iters", "crop_size")
        if self.norm not in ("linf", "l2"):
            raise ParameterError(f"'pgd' parameter 'norm' must be 'linf' or 'l2', got {self.norm!r}")
        if self.eot_crops < 0:
            raise ParameterError(f"'pgd' parameter 'eot_crops' must be >= 0, got {self.eot_crops!r}")

    # --- objective --------------------------------------------------------
    def objective(self, model: IQAModel, x_adv: torch.Tensor,
                  positions: tuple[torch.Tensor, torch.Tensor, torch.Tensor] | None = None) -> torch.Tensor:
        """Per-image value to MAXIMISE (summed over the crops under EOT, at
        ``positions`` from :func:`crop_positions`, else drawn here)."""
        b = x_adv.shape[0]
        if self.eot_crops:
            if positions is None:
                positions = crop_positions(x_adv, self.eot_crops, self.crop_size)
            scores = model(take_crops(x_adv, self.crop_size, *positions)).reshape(b, self.eot_crops)
        else:
            scores = model(x_adv).reshape(b, 1)
        if self.target is None:
            return normalised_gain(model, scores).mean(1)
        return -(scores - float(self.target)).pow(2).sum(1)

    def _grad(self, model: IQAModel, x_adv: torch.Tensor) -> torch.Tensor:
        if not self.eot_crops:
            return input_grad(lambda z: self.objective(model, z), x_adv)[1]
        # every image's crops drawn at once (the RNG stream does not depend on
        # eot_batch), then scored eot_batch crops at a time
        pos = crop_positions(x_adv, self.eot_crops, self.crop_size)
        part = max(1, self.eot_batch // self.eot_crops)
        return input_grad_in_parts(lambda z, rows: self.objective(model, z, tuple(p[rows] for p in pos)),
                                   x_adv, part)[1]

    # --- attack -----------------------------------------------------------
    def _start(self, x: torch.Tensor) -> torch.Tensor:
        if not self.random_start:
            return x.clone()
        if self.norm == "linf":
            return project_linf(x + (torch.rand_like(x) * 2 - 1) * self.eps, x, self.eps)
        d = torch.randn_like(x)
        d = d / _per_image(d.flatten(1).norm(dim=1).clamp_min(1e-12), d)
        r = torch.rand(x.shape[0], device=x.device, dtype=x.dtype) * self.eps
        return project_l2(x + d * _per_image(r, d), x, self.eps)

    def perturb(self, model: IQAModel, x: torch.Tensor) -> AttackResult:
        x_adv = self._start(x)
        for _ in range(self.iters):
            g = self._grad(model, x_adv)
            if self.norm == "linf":
                x_adv = project_linf(x_adv + self.step * g.sign(), x, self.eps)
            else:
                gn = g.flatten(1).norm(dim=1).clamp_min(1e-12)
                x_adv = project_l2(x_adv + self.step * g / _per_image(gn, g), x, self.eps)
        bound = torch.full((x.shape[0],), float(self.eps), device=x.device, dtype=x.dtype)
        return AttackResult(x_adv.detach(), bound, self.norm)
