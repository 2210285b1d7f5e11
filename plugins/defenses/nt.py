"""NT: training with a finite-difference gradient-norm penalty (Liu et al., CVPR 2024).

An attack moves the score by about ``||grad_x f||_1 * eps`` under an L-inf
budget, so penalising the input-gradient norm during training makes the
model's score flatter around natural images.  Computing that norm exactly
needs double back-propagation; NT instead estimates it with one extra
forward along the gradient's sign (REFERENCES.md 3):

    L = L_IQA(f(z), y) + lambda * mean(((f(z + h d) - f(z)) / h)^2) / 2,
    d = sign(grad_z f(z)), detached,

with the mean over the batch.  For a model linear in z the estimate is
exact: ``(f(z + h d) - f(z)) / h = ||grad_z f||_1``.

Which input ``z``: the released code (``HyperIQASolver.loss_grad``) takes
the gradient of the ImageNet-NORMALISED image ``z = (x - mean) / std`` (its
data loader normalises) and steps ``h`` in those units.  Here every model
takes [0,1] pixels ``x`` and declares the normalisation it applies
internally (:meth:`~iqabench.contracts.IQAModel.input_normalisation`), and
the penalty is computed where the release computes it (``space =
"normalised"``): ``d = sign(grad_x f) = sign(grad_z f)`` (std > 0), the
shifted image is ``x + h * std * d`` in pixels, and the slope is divided by
``h``.  ``space = "pixel"`` computes it on the pixels instead (this
defence's first version): on an ImageNet-normalised model that is a penalty
``1 / 0.226^2 = 19.6`` times stronger and a step 4.4 times larger at the
same (lambda, h).

How lambda transfers between models.  The slope ``||grad_z f||_1 = sum_c
std_c ||grad_{x_c} f||_1`` is in score units per normalised-input unit, so

* score range: scores ``k`` times larger make the slope ``k`` times, the
  penalty ``k^2`` times, but the L1 loss (the release's) only ``k`` times
  larger: the same balance needs ``lambda / k``.  The release trains
  HyperIQA on LIVEC MOS (about 0-100, not rescaled), so models scoring on
  0-100 use lambda as it is, models scoring on 0-1 ``100 x lambda``;
* input space: a model normalising with std ``s`` (identity: ``s = 1``)
  penalises ``s * ||grad_x f||_1``; to penalise the pixel gradient as
  HyperIQA's ``s_ImageNet = 0.226`` (mean of 0.229, 0.224, 0.225) does,
  use ``lambda * (0.226 / s)^2`` and ``h * 0.226 / s`` (the same pixel step).

The default model ``cnniqa`` (0-100 scores, [0,1] pixel input, declared
identity: its local contrast normalisation is data-dependent, not a fixed
per-channel affine, so there is no other input space to point at) thus
corresponds to the paper's (1e-3, 1e-2) at ``lam = 1e-3 * 0.226^2 = 5.1e-5``
and ``h = 1e-2 * 0.226 = 2.26e-3``.  This converts units only: how strong a
given lambda is depends on the model's own gradient norm, which is what NT
changes -- sweep lambda around the converted value.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Callable, Literal

import torch

from iqabench.contracts import Defense, IQADataset, IQAModel, check_positive
from iqabench.errors import ParameterError

from .common import model_recipe
from .. import bib

Space = Literal["normalised", "pixel"]


def gradient_norm_penalty(forward: Callable[[torch.Tensor], torch.Tensor], x: torch.Tensor, pred: torch.Tensor,
                          lam: float, h: float, std: "torch.Tensor | float" = 1.0) -> torch.Tensor:
    """``lam * mean(((f(x + h std d) - f(x)) / h)^2) / 2`` with ``d = sign(grad_x f(x))`` detached.

    ``std`` is the model's input normalisation (per channel, broadcast on
    ``x``): the finite difference is taken with a step ``h`` in the
    normalised input, i.e. ``h * std`` in pixels (1: on the pixels).
    ``x`` must require grad and ``pred = f(x)`` be computed from it; the
    graph of ``pred`` is kept for the training loss.  Gradients of the
    penalty reach the parameters through both forwards, never through ``d``.
    """
    (grad,) = torch.autograd.grad(pred.sum(), x, retain_graph=True)
    d = grad.sign().detach()
    shifted = forward(x.detach() + h * std * d)
    slope = (shifted - pred) / h
    return lam * slope.pow(2).mean() / 2


def input_std(model: IQAModel, space: Space) -> "torch.Tensor | float":
    """The pixel size of one unit of the input ``space``, per channel (1 x C x 1 x 1; 1.0 for pixels)."""
    if space == "pixel":
        return 1.0
    return torch.tensor(model.input_normalisation()[1], dtype=torch.float64).view(1, -1, 1, 1)


@dataclass
class NT(Defense):
    """Retrain the model with the NT gradient-norm regulariser (training-time defence).

    ``lam`` is the paper's lambda and ``h`` its finite-difference step
    (HyperIQA on LIVEC: 1e-3 and 1e-2), both in the model's normalised
    input (``space = "normalised"``, as the release; ``"pixel"``: on the
    [0,1] pixels).  They transfer to another model with the conversions in
    this module's docstring (cnniqa: ``lam`` 5.1e-5, ``h`` 2.26e-3).
    ``profile`` names the model's own training recipe: the defended model is
    trained exactly like the plain one, with the penalty added -- ``lam=0``
    reproduces plain training with the same seed, which is the fair baseline
    for the defence.  ``epochs`` > 0 shortens the recipe (CPU suites;
    compare with ``lam=0`` at the same ``epochs``).

    Random patch sampling and dropout inside ``training_forward`` are
    replayed identically in the shifted forward (see
    ``iqabench.models.training._replaying_forward``), so ``f(x + h d) - f(x)``
    measures the input sensitivity only.  Batch-norm running statistics see
    both forwards, as in the released code.
    """

    name = "nt"
    citation = bib.NT
    description = "NT: retrain with a finite-difference input-gradient-norm penalty (Liu et al. CVPR 2024)"
    kind = "training"

    lam: float = 1e-3
    h: float = 1e-2
    space: Space = "normalised"
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

    def regulariser(self, model: IQAModel):
        """The penalty for ``model`` (its input normalisation fixes the step's units);
        None at ``lam = 0``: the penalty is then exactly zero, so plain training is
        the same model for a third of the cost (a test checks it is bit-identical)."""
        if self.lam == 0:
            return None
        std = input_std(model, self.space)

        def penalty(forward, x, pred):
            s = std if isinstance(std, float) else std.to(x.device, x.dtype)
            return gradient_norm_penalty(forward, x, pred, self.lam, self.h, s)

        return penalty

    def apply(self, model: IQAModel, dataset: IQADataset, seed: int, device: str = "cpu",
              progress: bool = True) -> dict:
        from iqabench.models.training import train_model

        recipe = model_recipe(model, self.profile, self.epochs, self.name)
        summary = train_model(model, dataset, recipe, seed, device, progress, regulariser=self.regulariser(model))
        return {"recipe_profile": self.profile, "epochs": summary["epochs"],
                "final_train_loss": summary["loss_history"][-1], "train_time_s": round(summary["train_time_s"], 1)}
