"""Blended baseline (Chen et al., 2017) as the BAIQA paper ran it.

``(1 - w) x + w p`` with ``p`` a uniform-noise pattern and ``w = alpha *
weight`` (REFERENCES.md 2: ``weight`` 0.1 at alpha = 1; halve it for
KonIQ-10k).  Written ``x + w (p - x)``: for a negative alpha the same
closed form extrapolates *away* from the pattern, ``x - |w| (p - x)``, the
mirror image of the positive trigger.  The BAIQA release does not include
its baseline code, so this sign convention is ours: it keeps the trigger
linear in alpha (as the DCT triggers are) and makes ``-alpha`` undo
``+alpha`` to first order.  The result is clamped to [0, 1] (needed only for
negative alpha or ``|w| > 1``).

The pattern is ``pattern_size x pattern_size`` uniform noise in [0, 1) from
a CPU generator seeded with ``seed`` (the same pattern on every device),
tiled over images larger than that and cropped at the top-left corner, so
that a pixel's pattern value depends only on its position.
"""
from __future__ import annotations

from dataclasses import dataclass, field

import torch

from iqabench.contracts import Trigger, check_positive
from iqabench.errors import ParameterError
from .. import bib


@dataclass
class Blended(Trigger):
    """Blended: ``(1 - w) x + w * noise`` with ``w = alpha * weight``."""

    name = "blended"
    citation = bib.BLENDED
    description = "Blended baseline: (1-w) x + w * uniform noise pattern, w = alpha * weight."
    differentiable = True

    weight: float = 0.1
    seed: int = 0
    pattern_size: int = 512
    _noise: torch.Tensor | None = field(default=None, init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        check_positive(self, "pattern_size")
        if not self.weight == self.weight or abs(self.weight) == float("inf"):
            raise ParameterError(f"trigger {self.name!r} parameter 'weight' must be finite, got {self.weight!r}")

    def noise(self) -> torch.Tensor:
        """The ``3 x S x S`` float32 noise pattern (S = ``pattern_size``), on the CPU."""
        if self._noise is None:
            g = torch.Generator().manual_seed(self.seed)
            self._noise = torch.rand(3, self.pattern_size, self.pattern_size, generator=g)
        return self._noise

    def pattern(self, h: int, w: int, device="cpu", dtype=torch.float32) -> torch.Tensor:
        """The pattern for an ``h x w`` image: ``3 x h x w``."""
        n = self.noise()
        s = self.pattern_size
        reps = (1, -(-h // s), -(-w // s))
        return n.repeat(*reps)[:, :h, :w].to(device=device, dtype=dtype)

    def apply(self, x: torch.Tensor, alpha=1.0, clamp: bool = True) -> torch.Tensor:
        self.check_input(x)
        w = self.alphas(alpha, x) * self.weight
        p = self.pattern(x.shape[-2], x.shape[-1], x.device, x.dtype)
        out = x + w.view(-1, 1, 1, 1) * (p.unsqueeze(0) - x)
        return out.clamp(0.0, 1.0) if clamp else out
