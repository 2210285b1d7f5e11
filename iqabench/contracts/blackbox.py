"""The black-box attack contract: a search that sees only scores.

A :class:`BlackBoxAttack` never receives the model.  ``perturb`` wraps it in
a :class:`ScoreOracle` and hands that to the attack's ``search``: the oracle
scores candidate images without building a gradient graph (the model runs
under ``torch.no_grad`` and its outputs are detached, so any ``backward``
fails; an input that asks for a gradient is refused), counts the queries of
every image against the attack's budget ``queries`` (exceeding it is an
error: a budget is a promise), and keeps, per image, the best admissible
candidate it has scored and the best score after each query -- the attack's
result is that image, and the row records the queries used and the curve of
the best score against the queries spent (at :func:`checkpoints`).
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Callable, ClassVar

import torch

from ..errors import PluginError
from .attacks import Attack, AttackResult, normalised_gain
from .models import IQAModel


def checkpoints(budget: int) -> list[int]:
    """Query counts at which a row records its best score: 1, 2, 5, 10, 20, 50, ... and the budget."""
    out, scale = [], 1
    while scale <= budget:
        out += [q for q in (scale, 2 * scale, 5 * scale) if q <= budget]
        scale *= 10
    return sorted({*out, budget})


class ScoreOracle:
    """Scores of candidate images for the images of one batch, nothing else.

    ``oracle(candidates, owner)`` returns each candidate's normalised gain
    (higher is always "better quality", :func:`normalised_gain`);
    ``owner[k]`` is the batch position of the image candidate ``k`` is for
    (default: candidate k is for image k).  ``admissible(candidates, owner)``
    says which candidates respect the attack's bound; only those can become
    an image's best.
    """

    def __init__(self, model: IQAModel, x: torch.Tensor, budget: int,
                 admissible: Callable[[torch.Tensor, torch.Tensor], torch.Tensor], chunk: int = 64):
        self.__model = model
        self.budget, self.chunk, self._admissible = int(budget), chunk, admissible
        n = x.shape[0]
        self.used = torch.zeros(n, dtype=torch.long)
        self.best = x.detach().clone()
        self.best_gain = torch.full((n,), -float("inf"), dtype=torch.float64)
        self._trace: list[list[tuple[int, float]]] = [[] for _ in range(n)]

    def __call__(self, candidates: torch.Tensor, owner: torch.Tensor | None = None) -> torch.Tensor:
        if candidates.requires_grad:
            raise PluginError("a black-box attack asked the score oracle for a gradient")
        owner = torch.arange(candidates.shape[0]) if owner is None else owner.reshape(-1).cpu()
        counts = torch.bincount(owner, minlength=len(self.used))
        if ((self.used + counts) > self.budget).any():
            raise PluginError(f"a black-box attack exceeded its budget of {self.budget} queries per image")
        with torch.no_grad():
            model = self.__model
            gains = torch.cat([normalised_gain(model, model(c)).detach().reshape(-1)
                               for c in candidates.detach().split(self.chunk)])
            ok = self._admissible(candidates, owner.to(candidates.device)).reshape(-1).cpu()
        g64 = gains.double().cpu()
        for k in range(candidates.shape[0]):  # in query order: the curve is the best after each query
            i = int(owner[k])
            self.used[i] += 1
            if ok[k] and g64[k] > self.best_gain[i]:
                self.best_gain[i] = g64[k]
                self.best[i] = candidates[k].detach()
            self._trace[i].append((int(self.used[i]), float(self.best_gain[i])))
        return gains

    def left(self) -> torch.Tensor:
        """Queries each image has left."""
        return self.budget - self.used

    def curves(self, span: float, direction: int) -> list[list[list[float]]]:
        """Per image, ``[queries, best score in the model's units]`` at each checkpoint it reached and at the end."""
        out = []
        for trace in self._trace:
            best = dict(trace)
            points = sorted({*(q for q in checkpoints(self.budget) if q <= len(trace)), len(trace)})
            out.append([[q, best[q] * span * direction] for q in points])
        return out


@dataclass
class BlackBoxAttack(Attack):
    """A query-based attack: ``search(oracle, x)`` spends at most ``queries``
    scores per image; the result is the best admissible image the oracle saw
    (an L-inf ball of radius ``eps`` unless :meth:`admissible` says otherwise)."""

    black_box: ClassVar[bool] = True
    family: ClassVar[str] = "black-box"  # the overview's column (iqabench.board.overview)
    in_wildcard: ClassVar[bool] = False  # thousands of queries per image: named, never implied by '*'
    norm: ClassVar[str] = "linf"

    def search(self, oracle: ScoreOracle, x: torch.Tensor) -> None:
        raise NotImplementedError

    def bound(self) -> float:
        return float(getattr(self, "eps"))

    def admissible(self, x: torch.Tensor) -> Callable[[torch.Tensor, torch.Tensor], torch.Tensor]:
        eps = self.bound() * (1 + 1e-6)
        return lambda c, owner: ((c - x[owner]).flatten(1).abs().amax(1) <= eps) & (c.flatten(1).amin(1) >= 0) & (
            c.flatten(1).amax(1) <= 1)

    def perturb(self, model: IQAModel, x: torch.Tensor) -> AttackResult:
        oracle = ScoreOracle(model, x, getattr(self, "queries"), self.admissible(x))
        with torch.no_grad():
            oracle(x)  # the clean image: the first query, and the best until beaten
            self.search(oracle, x.detach())
        lo, hi = model.score_range or (0.0, 1.0)
        curves = oracle.curves((hi - lo) or 1.0, model.direction)
        extra = [{"queries": int(q), "query_curve": c} for q, c in zip(oracle.used, curves)]
        return AttackResult(oracle.best, torch.full((x.shape[0],), self.bound()), self.norm, extra)
