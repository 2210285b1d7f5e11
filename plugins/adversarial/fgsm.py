"""FGSM and I-FGSM, with the defaults of the MSU benchmark's reference code
(REFERENCES.md section 1): eps 10/255; I-FGSM step 1/255 for 10 iterations.

Both push the score towards "better" (down for a lower-is-better model; see
``iqabench.gradients``) and keep ``||x_adv - x||_inf <= eps`` with the image
in [0, 1].
"""
from __future__ import annotations

from dataclasses import dataclass

import torch

from iqabench.contracts import Attack, AttackResult, IQAModel, check_positive
from iqabench.gradients import gain_and_grad, project_linf
from .. import bib


@dataclass
class FGSM(Attack):
    """Fast gradient sign method: one signed-gradient step of size eps (L-inf)."""

    name = "fgsm"
    family = "one-step"
    citation = bib.FGSM
    description = "Fast gradient sign method: one signed-gradient step of size eps (L-inf)."

    eps: float = 10 / 255

    def __post_init__(self) -> None:
        check_positive(self, "eps")

    def perturb(self, model: IQAModel, x: torch.Tensor) -> AttackResult:
        _, grad = gain_and_grad(model, x)
        x_adv = project_linf(x + self.eps * grad.sign(), x, self.eps)
        return AttackResult(x_adv, torch.full((x.shape[0],), self.eps), "linf")


@dataclass
class IFGSM(Attack):
    """Iterative FGSM: `iters` signed steps of size `alpha`, projected on the eps ball."""

    name = "ifgsm"
    family = "iterative"
    citation = bib.IFGSM
    description = "Iterative FGSM: signed steps of size alpha, projected on the L-inf eps ball."

    eps: float = 10 / 255
    alpha: float = 1 / 255
    iters: int = 10

    def __post_init__(self) -> None:
        check_positive(self, "eps", "alpha", "iters")

    def perturb(self, model: IQAModel, x: torch.Tensor) -> AttackResult:
        x_adv = x.clone()
        for _ in range(self.iters):
            _, grad = gain_and_grad(model, x_adv)
            x_adv = project_linf(x_adv + self.alpha * grad.sign(), x, self.eps)
        return AttackResult(x_adv, torch.full((x.shape[0],), self.eps), "linf")
