"""WaNet baseline (Nguyen & Tran, ICLR 2021) as the BAIQA paper ran it.

A smooth warp: ``k x k`` uniform noise in [-1, 1] (from a CPU generator
seeded with ``seed``), divided by its mean absolute value, bicubic-upsampled
(``align_corners=True``) to the image size, added to the identity sampling
grid with strength ``s`` and sampled bilinearly with
``grid_sample(align_corners=True)``::

    grid = clamp(identity + alpha * s * noise / size, -1, 1)

(REFERENCES.md 2: k = 4, s = 0.4 at alpha = 1; halve s for KonIQ-10k.)  As in
WaNet's code, channel 0 of the noise displaces the horizontal coordinate and
channel 1 the vertical one.  WaNet divides both by the image height (its
images are square); here each component is divided by its own axis length
(width for x, height for y), which is the same on square images and keeps
the displacement in pixels isotropic on others: about ``alpha * s *
noise / 2`` pixels.  ``alpha`` scales ``s``, sign included (a negative alpha
warps the other way).  The BAIQA release does not include its baseline
code.  The warp is clamped to the image (the grid clamp) and the output,
a convex combination of pixels, is already in [0, 1].
"""
from __future__ import annotations

from dataclasses import dataclass, field

import torch
import torch.nn.functional as F

from iqabench.contracts import Trigger, check_positive
from iqabench.errors import ParameterError
from .. import bib


@dataclass
class WaNet(Trigger):
    """WaNet: a fixed smooth warp of strength ``alpha * s`` from a k x k noise grid."""

    name = "wanet"
    citation = bib.WANET
    description = "WaNet baseline: smooth warp, identity grid + alpha * s * upsampled k x k noise / size."
    differentiable = True

    k: int = 4
    s: float = 0.4
    seed: int = 0
    _noise: torch.Tensor | None = field(default=None, init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        check_positive(self, "k")
        if not self.s == self.s or abs(self.s) == float("inf"):
            raise ParameterError(f"trigger {self.name!r} parameter 's' must be finite, got {self.s!r}")

    def noise(self) -> torch.Tensor:
        """The ``1 x 2 x k x k`` float64 noise, normalised to mean |noise| = 1 (CPU)."""
        if self._noise is None:
            g = torch.Generator().manual_seed(self.seed)
            ins = torch.rand(1, 2, self.k, self.k, generator=g, dtype=torch.float64) * 2 - 1
            self._noise = ins / ins.abs().mean()
        return self._noise

    def displacement(self, h: int, w: int, device="cpu", dtype=torch.float32) -> torch.Tensor:
        """``h x w x 2`` grid offset at alpha = 1 (normalised coordinates, x then y)."""
        up = F.interpolate(self.noise(), size=(h, w), mode="bicubic", align_corners=True)[0]
        scale = torch.tensor([w, h], dtype=torch.float64).view(2, 1, 1)
        return (self.s * up / scale).permute(1, 2, 0).to(device=device, dtype=dtype)

    @staticmethod
    def identity_grid(h: int, w: int, device="cpu", dtype=torch.float32) -> torch.Tensor:
        """``h x w x 2`` sampling grid of ``grid_sample(align_corners=True)`` returning the input."""
        ys = torch.linspace(-1.0, 1.0, h, dtype=torch.float64)
        xs = torch.linspace(-1.0, 1.0, w, dtype=torch.float64)
        gy, gx = torch.meshgrid(ys, xs, indexing="ij")
        return torch.stack((gx, gy), dim=-1).to(device=device, dtype=dtype)

    def grid(self, alpha, x: torch.Tensor) -> torch.Tensor:
        """The ``B x H x W x 2`` sampling grid for ``x`` at strength ``alpha``."""
        h, w = x.shape[-2:]
        a = self.alphas(alpha, x)
        ident = self.identity_grid(h, w, x.device, x.dtype)
        disp = self.displacement(h, w, x.device, x.dtype)
        return (ident.unsqueeze(0) + a.view(-1, 1, 1, 1) * disp.unsqueeze(0)).clamp(-1.0, 1.0)

    def apply(self, x: torch.Tensor, alpha=1.0, clamp: bool = True) -> torch.Tensor:
        self.check_input(x)
        out = F.grid_sample(x, self.grid(alpha, x), mode="bilinear", padding_mode="zeros", align_corners=True)
        return out.clamp(0.0, 1.0) if clamp else out
