"""NT: training with a finite-difference gradient-norm penalty (Liu et al., CVPR 2024).

An attack moves the score by about ``||grad_x f||_1 * eps`` under an L-inf
budget, so penalising the input-gradient norm during training makes the
model's score flatter around natural images.  Computing that norm exactly
needs double back-propagation; NT instead estimates it with one extra
forward along the gradient's sign (REFERENCES.md 3):

    L = L_IQA(f(x), y) + lambda * mean(((f(x + h d) - f(x)) / h)^2) / 2,
    d = sign(grad_x f(x)), detached.

For a model linear in x the estimate is exact: ``(f(x + h d) - f(x)) / h
= ||grad_x f||_1``.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

import torch

from iqabench.contracts import Defense, IQADataset, IQAModel, check_positive
from iqabench.errors import ParameterError

from .common import model_recipe


def gradient_norm_penalty(forward: Callable[[torch.Tensor], torch.Tensor], x: torch.Tensor, pred: torch.Tensor,
                          lam: float, h: float) -> torch.Tensor:
    """``lam * mean(((f(x + h d) - f(x)) / h)^2) / 2`` with ``d = sign(grad_x f(x))`` detached.

    ``x`` must require grad and ``pred = f(x)`` be computed from it; the
    graph of ``pred`` is kept for the training loss.  Gradients of the
    penalty reach the parameters through both forwards, never through ``d``.
    """
    (grad,) = torch.autograd.grad(pred.sum(), x, retain_graph=True)
    d = grad.sign().detach()
    shifted = forward(x.detach() + h * d)
    slope = (shifted - pred) / h
    return lam * slope.pow(2).mean() / 2


@dataclass
class NT(Defense):
    """Retrain the model with the NT gradient-norm regulariser (training-time defence).

    ``lam`` is the paper's lambda and ``h`` its finite-difference step
    (HyperIQA on LIVEC: 1e-3 and 1e-2).  ``profile`` names the model's own
    training recipe: the defended model is trained exactly like the plain
    one, with the penalty added -- ``lam=0`` reproduces plain training with
    the same seed, which is the fair baseline for the defence.  ``epochs``
    > 0 shortens the recipe (CPU suites; compare with ``lam=0`` at the same
    ``epochs``).

    Random patch sampling and dropout inside ``training_forward`` are
    replayed identically in the shifted forward (see
    ``iqabench.training._replaying_forward``), so ``f(x + h d) - f(x)``
    measures the input sensitivity only.  Batch-norm running statistics see
    both forwards, as in the released code.
    """

    name = "nt"
    description = "NT: retrain with a finite-difference input-gradient-norm penalty (Liu et al. CVPR 2024)"
    kind = "training"

    lam: float = 1e-3
    h: float = 1e-2
    profile: str = "default"
    epochs: int = 0

    def __post_init__(self) -> None:
        check_positive(self, "h")
        if self.lam < 0:
            raise ParameterError(f"'nt' parameter 'lam' must be >= 0, got {self.lam!r}")
        if self.epochs < 0:
            raise ParameterError(f"'nt' parameter 'epochs' must be >= 0, got {self.epochs!r}")

    def baseline_params(self) -> dict:
        """``lam = 0``: the same recipe, seed and pipeline without the penalty (plain training)."""
        return {"lam": 0.0}

    def regulariser(self):
        return lambda forward, x, pred: gradient_norm_penalty(forward, x, pred, self.lam, self.h)

    def apply(self, model: IQAModel, dataset: IQADataset, seed: int, device: str = "cpu",
              progress: bool = True) -> dict:
        from iqabench.training import train_model

        recipe = model_recipe(model, self.profile, self.epochs, self.name)
        summary = train_model(model, dataset, recipe, seed, device, progress, regulariser=self.regulariser())
        return {"recipe_profile": self.profile, "epochs": summary["epochs"],
                "final_train_loss": summary["loss_history"][-1], "train_time_s": round(summary["train_time_s"], 1)}
