"""Algorithm 1 of BAIQA: the UAP-DCT trigger pattern ``t`` optimised on a surrogate.

The pattern should move the surrogate's score as much as possible while
staying invisible: minimise, with alpha = 1,

    -MSE(f(T(x, t)), f(x))  +  penalty * max(MSE(T(x, t), x), eps^2)

(pixel MSE in [0, 1], ``f(x)`` detached).  The hinge makes the pixel term
constant -- so gradient-free -- inside the ``eps`` ball and steep outside it:
a *soft* PSNR bound of ``-20 log10(eps)`` dB (30.07 dB for 8/255; the
released trigger sits at 29.8 dB).  As in the release: Adam with ``lr``
re-created for every batch, ``steps`` steps per batch, batches of random
crops (flipped with probability 1/2) of the poison subset, ``t`` initialised
uniformly in ``[-init, init]`` from its own seed.
"""
from __future__ import annotations

import math
from dataclasses import dataclass

import torch
import torch.nn.functional as F

from iqabench.contracts import IQAModel

from ..adversarial.pgd import crop_positions, take_crops
from .uap_dct import MID64_POSITIONS, inject_dct


@dataclass
class TriggerSearch:
    """The settings of Algorithm 1 (defaults: REFERENCES.md 2)."""

    eps: float = 8 / 255
    penalty: float = 1e8
    lr: float = 1.0
    steps: int = 10
    epochs: int = 50
    batch: int = 128
    crops: int = 25
    crop: int = 224
    init: float = 300.0
    seed: int = 919

    @property
    def psnr_bound(self) -> float:
        return -20.0 * math.log10(self.eps)

    def loss(self, model: IQAModel, x: torch.Tensor, t: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        """The objective on crops ``x`` whose clean scores are ``y``."""
        xt = inject_dct(x, 1.0, t)
        pixel = F.mse_loss(xt, x)
        return -F.mse_loss(model(xt), y) + self.penalty * torch.clamp(pixel, min=self.eps ** 2)

    def fit(self, model: IQAModel, images: list[torch.Tensor], device: str = "cpu", bar=None) -> torch.Tensor:
        """The optimised ``3 x 64`` pattern (float32, CPU)."""
        gen = torch.Generator().manual_seed(self.seed)
        t = ((torch.rand(3, len(MID64_POSITIONS), generator=gen, dtype=torch.float64) * 2 - 1) * self.init)
        t = t.float().to(device).requires_grad_(True)
        model.eval()
        cpu_state = torch.get_rng_state()
        torch.manual_seed(self.seed)  # the crops draw from the global RNG (as PGD's EOT)
        size = max(self.crop, getattr(model, "min_size", 1))  # never below what the model accepts
        per_epoch = -(-len(images) * self.crops // self.batch)
        images = [img.to(device) for img in images]  # once: every batch cuts its crops from them
        task = bar.add_task("UAP-DCT trigger search", total=self.epochs * per_epoch) if bar is not None else None
        try:
            for _ in range(self.epochs):
                where = _crop_positions(images, self.crops, size, device)
                order = torch.randperm(len(where[0]))
                for b in range(per_epoch):
                    sel = order[b * self.batch: (b + 1) * self.batch]
                    x = _take(images, size, *(w[sel.to(w.device)] for w in where))
                    opt = torch.optim.Adam([t], lr=self.lr)
                    with torch.no_grad():
                        y = model(x)  # f(x) is detached: once per batch
                    for _ in range(self.steps):
                        opt.zero_grad(set_to_none=True)
                        self.loss(model, x, t, y).backward()
                        opt.step()
                    if task is not None:
                        bar.advance(task)
        finally:
            torch.set_rng_state(cpu_state)
        return t.detach().float().cpu()


def _crop_positions(images: list[torch.Tensor], n: int, size: int, device: str
                    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
    """Image index, top, left and flip of ``n`` random crops of every image,
    image-major, each flat: the draws ``random_crops`` makes on the stacked
    images (or image by image, where their sizes differ).  Only positions:
    an epoch's crops are cut batch by batch (:func:`_take`), since all of
    them at once -- 374 images x 25 crops of 224 px with ``--profile paper``
    -- would take 5.6 GB."""
    shapes = {tuple(img.shape) for img in images}
    groups = [(list(range(len(images))), next(iter(shapes)))] if len(shapes) == 1 else \
        [([i], tuple(img.shape)) for i, img in enumerate(images)]
    out = []
    for members, shape in groups:
        shaped = torch.empty((), device=device).expand(len(members), *shape)  # no memory: draws need the shape
        top, left, flip = crop_positions(shaped, n, size)
        index = torch.tensor(members, device=device).repeat_interleave(n)
        out.append((index, top.flatten(), left.flatten(), flip.flatten()))
    return tuple(torch.cat(parts) for parts in zip(*out))


def _take(images: list[torch.Tensor], size: int, index: torch.Tensor, top: torch.Tensor,
          left: torch.Tensor, flip: torch.Tensor) -> torch.Tensor:
    """The crops at the given positions, in their order (``images`` on the crops' device)."""
    return torch.cat([take_crops(images[int(i)].unsqueeze(0), size, t.view(1, 1), l.view(1, 1),
                                 f.view(1, 1)) for i, t, l, f in zip(index, top, left, flip)])


def trigger_psnr(t: torch.Tensor, images: list[torch.Tensor], alpha: float = 1.0) -> float:
    """PSNR (dB) of the images triggered with ``alpha * t`` against themselves,
    from the MSE pooled over all images (clamped, as a model sees them)."""
    se, n = 0.0, 0
    for img in images:
        x = img.unsqueeze(0).float()
        d = inject_dct(x, alpha, t) - x
        se += float(d.double().pow(2).sum())
        n += d.numel()
    mse = se / n
    return float("inf") if mse == 0 else -10.0 * math.log10(mse)
