"""Query-based black-box attacks: they see the model only through a score
oracle (:class:`iqabench.contracts.BlackBoxAttack`), never a gradient.

Defaults are those of the MSU defences benchmark's released code
(``metrics/methods/<name>/run.py``); where its authors' papers differ, the
difference is a typed parameter.  All work on a batch at once (one oracle
call scores the candidates of every image) and spend at most ``queries``
scores per image, the clean image's included.
"""
from __future__ import annotations

import heapq
import math
from dataclasses import dataclass
from typing import Literal

import torch
import torch.nn.functional as F

from iqabench.contracts import BlackBoxAttack, ScoreOracle, check_positive
from .. import bib


def square_fraction(p_init: float, it: int, n_iters: int) -> float:
    """The Square Attack schedule: the fraction of pixels a square covers,
    halved at fixed fractions of the run (iteration rescaled to 10 000)."""
    it = int(it / n_iters * 10000)
    for limit, div in ((10, 1), (50, 2), (200, 4), (500, 8), (1000, 16), (2000, 32), (4000, 64), (6000, 128),
                       (8000, 256), (10000, 512)):
        if it <= limit:
            return p_init / div
    return p_init


@dataclass
class SquareAttack(BlackBoxAttack):
    """Random search over squares (Andriushchenko et al. 2020), L-inf: each query
    sets a random square of the current perturbation to +-eps per channel and
    keeps it if the score moved towards "better".

    The MSU code starts from the clean image (``init="clean"``) and runs
    10 000 queries at eps 0.1; the paper starts from vertical stripes of
    +-eps (``init="stripes"``)."""

    name = "square-attack"
    citation = bib.SQUARE
    description = "Square Attack (black-box, L-inf random search over squares); queries = score calls per image."

    eps: float = 0.1
    queries: int = 10000
    p_init: float = 0.05
    init: Literal["clean", "stripes"] = "clean"

    def __post_init__(self) -> None:
        check_positive(self, "eps", "queries", "p_init")

    def search(self, oracle: ScoreOracle, x: torch.Tensor) -> None:
        b, c, h, w = x.shape
        best, best_gain = x.clone(), oracle.best_gain.clone().to(x.device)
        if self.init == "stripes" and self.queries > 1:
            stripes = self.eps * torch.randint(0, 2, (b, c, 1, w), device=x.device).mul(2).sub(1)
            best = (x + stripes).clamp(0, 1)
            best_gain = oracle(best).double().to(x.device)
        for it in range(int(oracle.used.max()), self.queries):
            side = int(round(math.sqrt(square_fraction(self.p_init, it, self.queries) * h * w)))
            side = min(max(side, 1), min(h, w) - 1)
            top = torch.randint(0, h - side, (b,)).tolist()
            left = torch.randint(0, w - side, (b,)).tolist()
            delta = best - x
            for i in range(b):  # redraw until the square changes the image (as the reference does)
                win = (slice(None), slice(top[i], top[i] + side), slice(left[i], left[i] + side))
                for _ in range(100):
                    delta[i][win] = self.eps * torch.randint(0, 2, (c, 1, 1), device=x.device).mul(2).sub(1)
                    if ((x[i][win] + delta[i][win]).clamp(0, 1) - best[i][win]).abs().max() >= 1e-7:
                        break
            cand = (x + delta).clamp(0, 1)
            gain = oracle(cand).double().to(x.device)
            better = gain > best_gain
            best[better], best_gain[better] = cand[better], gain[better]


@dataclass
class GradEst(BlackBoxAttack):
    """Gradient estimation (NES, Ilyas et al. 2018) and steps along it, L-inf.

    Each iteration estimates the gradient of the normalised gain with
    respect to a ``tile`` x ``tile`` perturbation tiled over the image, from
    ``samples`` antithetic Gaussian pairs at radius ``sigma`` (2 x samples
    queries), steps by ``eta`` along it and projects on the eps ball; the
    iterate is scored once (one query) so that the result is the best
    iterate.  The MSU code's step is the estimate normalised to unit L2
    norm (``step="l2"``, eta 0.1, 250 iterations of 40 queries at eps 0.1;
    the default budget of 10 000 queries gives 243 iterations here, each
    scoring its iterate once more);
    ``step="sign"`` takes eta x its sign, the sign-step variant (then use an
    eta near 1/255)."""

    name = "grad-est"
    citation = bib.NES
    description = "NES gradient estimation (black-box) and steps along it, L-inf; queries = score calls per image."

    eps: float = 0.1
    queries: int = 10000
    sigma: float = 0.001
    samples: int = 20
    tile: int = 32
    eta: float = 0.1
    step: Literal["l2", "sign"] = "l2"

    def __post_init__(self) -> None:
        check_positive(self, "eps", "queries", "sigma", "samples", "tile", "eta")

    def search(self, oracle: ScoreOracle, x: torch.Tensor) -> None:
        b, c, h, w = x.shape
        n, t = self.samples, self.tile
        lower, upper = (x - self.eps).clamp(0, 1), (x + self.eps).clamp(0, 1)
        cur = x.clone()
        owner = torch.arange(b).repeat_interleave(2 * n)
        while int(oracle.left().min()) >= 2 * n + 1:
            u = torch.randn(b, n, c, t, t, device=x.device)
            pm = torch.cat([u, -u], 1)  # b x 2n x c x t x t: +u then -u
            probes = (cur.unsqueeze(1) + self.sigma * tiled(pm, h, w)).clamp(0, 1).flatten(0, 1)
            f = oracle(probes, owner).to(x.device).view(b, 2 * n)
            g = ((f[:, :n] - f[:, n:]).view(b, n, 1, 1, 1) * u).sum(1) / (2 * n * self.sigma)
            if self.step == "l2":
                g = g / g.flatten(1).norm(dim=1).clamp_min(1e-12).view(b, 1, 1, 1)
            else:
                g = g.sign()
            cur = torch.max(torch.min((cur + self.eta * tiled(g.unsqueeze(1), h, w)[:, 0]).clamp(0, 1), upper), lower)
            oracle(cur)


def tiled(p: torch.Tensor, h: int, w: int) -> torch.Tensor:
    """``... x c x t x t`` patterns repeated over an ``h x w`` image from the top-left corner."""
    reps = (-(-h // p.shape[-2]), -(-w // p.shape[-1]))
    return p.repeat(*([1] * (p.ndim - 2)), *reps)[..., :h, :w]


@dataclass
class Parsimonious(BlackBoxAttack):
    """Parsimonious black-box attack (Moon et al. 2019), L-inf: the
    perturbation is +-eps on square blocks of a ``grid`` x ``grid`` noise
    (nearest-resized to the image), starting at -eps; blocks are visited in
    random mini-batches of ``block_batch``, each improved by a lazy-greedy
    local search (flip the blocks that raise the score most, re-checking a
    candidate's gain before accepting it, then the same for flipping back),
    and the blocks are halved (32, 16, ... 1) once all have been visited.

    The MSU code's defaults: eps 0.05, 10 000 queries, blocks of 32 on a 256
    grid, mini-batches of 64, one insert/delete round per mini-batch.  Its
    running score after the first accepted flip of each round is
    miscomputed (a sign error when it adapted the minimising original); the
    running score here is the flipped candidate's measured score."""

    name = "parsimonious"
    citation = bib.PARSIMONIOUS
    description = "Parsimonious attack (black-box, lazy-greedy sign flips of +-eps blocks); queries = score calls per image."

    eps: float = 0.05
    queries: int = 10000
    block: int = 32
    grid: int = 256
    block_batch: int = 64

    def __post_init__(self) -> None:
        check_positive(self, "eps", "queries", "block", "grid", "block_batch")

    def search(self, oracle: ScoreOracle, x: torch.Tensor) -> None:
        b, c, h, w = x.shape
        noise = -self.eps * torch.ones(b, c, self.grid, self.grid, device=x.device)
        cur = oracle.best_gain.clone()
        size = self.block
        while True:
            blocks = [(r, q, ch) for r in range(0, self.grid, size) for q in range(0, self.grid, size) for ch in range(c)]
            order = torch.randperm(len(blocks)).tolist()
            for start in range(0, len(blocks), self.block_batch):
                batch = [blocks[k] for k in order[start: start + self.block_batch]]
                for phase in (1.0, -1.0):  # insert (flip -eps -> +eps), then delete
                    if not self._local_search(oracle, x, noise, cur, batch, size, phase):
                        return
            if size >= 2:
                size //= 2

    def _image(self, x: torch.Tensor, noise: torch.Tensor) -> torch.Tensor:
        return (x + F.interpolate(noise, size=x.shape[-2:], mode="nearest")).clamp(0, 1)

    def _flipped(self, noise: torch.Tensor, blk: tuple[int, int, int], size: int) -> torch.Tensor:
        r, q, ch = blk
        out = noise.clone()
        out[ch, r: r + size, q: q + size] *= -1
        return out

    def _local_search(self, oracle, x, noise, cur, batch, size, phase) -> bool:
        """One lazy-greedy pass over ``batch`` for every image (in place); False when the budget is spent."""
        b = x.shape[0]
        cands = [[k for k, (r, q, ch) in enumerate(batch) if noise[i, ch, r, q] * phase < 0] for i in range(b)]
        if int(oracle.left().min()) < max(len(cs) for cs in cands) + 1:
            return False
        owner = torch.tensor([i for i in range(b) for _ in cands[i]], dtype=torch.long)
        if len(owner):
            imgs = torch.stack([self._image(x[i: i + 1], self._flipped(noise[i], batch[k], size)[None])[0]
                                for i in range(b) for k in cands[i]])
            gains = oracle(imgs, owner).double().tolist()
        heaps, pos = [[] for _ in range(b)], 0
        for i in range(b):
            for k in cands[i]:
                heaps[i].append((-(gains[pos] - float(cur[i])), k))
                pos += 1
            heapq.heapify(heaps[i])
        for i in range(b):  # each image's best flip, if it helps (the reference takes it even if not)
            if heaps[i]:
                margin, k = heapq.heappop(heaps[i])
                if margin < 0:
                    noise[i] = self._flipped(noise[i], batch[k], size)
                    cur[i] = cur[i] - margin
        active = [i for i in range(b) if heaps[i]]
        while active:  # lazy greedy: re-score the most promising flip of each image together
            if int(oracle.left()[active].min()) < 1:
                return False
            picks = [heapq.heappop(heaps[i]) for i in active]
            imgs = torch.stack([self._image(x[i: i + 1], self._flipped(noise[i], batch[k], size)[None])[0]
                                for i, (_, k) in zip(active, picks)])
            gains = oracle(imgs, torch.tensor(active)).double().tolist()
            nxt = []
            for i, (_, k), g in zip(active, picks, gains):
                margin = -(g - float(cur[i]))
                if not heaps[i] or margin <= heaps[i][0][0]:
                    if margin >= 0:
                        continue  # no flip left that helps: this image is done
                    noise[i] = self._flipped(noise[i], batch[k], size)
                    cur[i] = g
                else:
                    heapq.heappush(heaps[i], (margin, k))
                if heaps[i]:
                    nxt.append(i)
            active = nxt
        return True
