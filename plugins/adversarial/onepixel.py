"""The one-pixel attack (Su et al. 2019) for a score: differential evolution
over the positions and colours of a few pixels, black-box.

The MSU defences benchmark's code calls SciPy's ``differential_evolution``
per image: 3 pixels, each ``(row, col, r, g, b)`` with bounds ``[0, H) x
[0, W) x [0, 256)^3`` floored to integers, population multiplier ``300 //
15 = 20`` (300 candidates), 10 generations, strategy ``best1bin`` with
mutation dithered in [0.5, 1) and recombination 1 (a trial is its mutant),
out-of-bound coordinates redrawn uniformly, no polishing.  Here the same
evolution runs for every image of the batch at once (one oracle call per
generation); the initial population is a Latin hypercube as SciPy's.
``queries`` sets the generations: the default 3301 is the clean image and
the reference's 300 x 11 evaluations (the initial population and 10
generations).
"""
from __future__ import annotations

from dataclasses import dataclass

import torch

from iqabench.contracts import BlackBoxAttack, ScoreOracle, check_positive
from .. import bib


@dataclass
class OnePixel(BlackBoxAttack):
    """Set ``pixels`` pixels to any colour, found by differential evolution (L0 bound)."""

    name = "onepixel"
    citation = bib.ONEPIXEL
    description = "One-pixel attack (black-box differential evolution over a few pixels' positions and colours, L0)."
    norm = "l0"

    pixels: int = 3
    queries: int = 3301
    popsize: int = 300

    def __post_init__(self) -> None:
        check_positive(self, "pixels", "queries", "popsize")

    def bound(self) -> float:
        return float(self.pixels)

    def admissible(self, x: torch.Tensor):
        return lambda c, owner: (c - x[owner]).abs().amax(1).flatten(1).gt(0).sum(1) <= self.pixels

    def population(self) -> int:
        dims = 5 * self.pixels
        return max(1, self.popsize // dims) * dims

    def search(self, oracle: ScoreOracle, x: torch.Tensor) -> None:
        b, c, h, w = x.shape
        pop, dims = self.population(), 5 * self.pixels
        hi = torch.tensor([h, w, 256, 256, 256] * self.pixels, dtype=torch.float64)
        if int(oracle.left().min()) < pop:
            return
        strata = torch.argsort(torch.rand(b, pop, dims), dim=1).double()  # Latin hypercube
        members = (strata + torch.rand(b, pop, dims, dtype=torch.float64)) / pop * hi
        fitness = self._score(oracle, x, members)
        while int(oracle.left().min()) >= pop:
            best = members[torch.arange(b), fitness.argmax(1)]  # b x dims
            r = torch.stack([torch.randperm(pop)[:2] for _ in range(b * pop)]).view(b, pop, 2)
            f = 0.5 + 0.5 * torch.rand(b, 1, 1, dtype=torch.float64)  # dither per generation
            pick = lambda k: torch.gather(members, 1, r[..., k: k + 1].expand(b, pop, dims))
            trial = best.unsqueeze(1) + f * (pick(0) - pick(1))
            out = (trial < 0) | (trial >= hi)
            trial = torch.where(out, torch.rand_like(trial) * hi, trial)
            gain = self._score(oracle, x, trial)
            keep = gain >= fitness
            members = torch.where(keep.unsqueeze(-1), trial, members)
            fitness = torch.where(keep, gain, fitness)

    def _score(self, oracle: ScoreOracle, x: torch.Tensor, members: torch.Tensor) -> torch.Tensor:
        """Each member's image scored: b x pop normalised gains."""
        b, pop, _ = members.shape
        v = members.floor().long().view(b, pop, self.pixels, 5)
        imgs = x.unsqueeze(1).repeat(1, pop, 1, 1, 1)
        v = v.to(x.device)
        bi = torch.arange(b, device=x.device).view(b, 1, 1).expand(b, pop, self.pixels)
        pi = torch.arange(pop, device=x.device).view(1, pop, 1).expand(b, pop, self.pixels)
        rgb = v[..., 2:].clamp(max=255).to(x.dtype) / 255
        for ch in range(3):
            imgs[bi, pi, ch, v[..., 0], v[..., 1]] = rgb[..., ch]
        owner = torch.arange(b).repeat_interleave(pop)
        return oracle(imgs.flatten(0, 1), owner).double().view(b, pop)
