"""Adversarial training for IQA (Chistyakova et al., Technologies 2024; release ``wianluna/metrics_at``).

Each training step attacks part of its batch and trains on the adversarial
crops as well: ``ratio`` of the batch's crops (the first ``round(ratio * B)``
of its seeded random order) get an adversarial version, made by ``steps``
signed-gradient steps of size ``step`` from the crop itself (the release's
``mode: zero``), projected on the L-inf ball ``eps``, that INCREASE the
training loss against the crop's label (the release's FGSM maximises its
loss: the score is pushed away from the MOS, either way).  With
``keep_clean`` (the release) the adversarial crops are added beside the clean
batch; without, they replace their clean crops.  The release's preset
(``presets/train.yaml``): one step, eps 4/255, step 5/255, every crop
(``ratio`` 1, added).

Labels of the adversarial crops (``relabel``): ``none`` keeps the clean MOS
(standard adversarial training, the default here); ``ssim`` -- the release's
``label_strategy: ssim``, its proposed method -- lowers it by ``penalty * (1 -
SSIM(adv, clean)) * (MOS_max - MOS_min)``, clamped to [MOS_min, MOS_max]
(the release's constants are KonIQ-10k's MOS range; here the range of the
train split's MOS); ``min`` labels them MOS_min; ``percent`` lowers by
``penalty`` (a fraction) of the MOS range, the release's "-5% / -10%"
strategies.  SSIM is iqabench's (Gaussian window, sigma 1.5, as
pytorch_msssim's that the release uses).

The attack runs on the model as it trains (training mode: dropout draws,
batch-norm statistics see the attacked forward, as in the release).
``ratio = 0`` is plain training with the same seed, bit for bit: the
like-for-like baseline (:meth:`baseline_params`), as NT's ``lam = 0``.
"""
from __future__ import annotations

from dataclasses import dataclass, fields
from typing import Literal

import torch

from iqabench.contracts import Defense, IQADataset, IQAModel, check_positive
from iqabench.errors import ParameterError
from iqabench.gradients import project_linf
from iqabench.metrics import images as imagemetrics

from .common import model_recipe
from .. import bib

Relabel = Literal["none", "ssim", "min", "percent"]


@dataclass
class AdvTrain(Defense):
    """Retrain with ``ratio`` of each batch attacked by L-inf PGD (training-time defence)."""

    name = "adv-train"
    citation = bib.IQA_ADV_TRAIN
    description = "Adversarial training: PGD crops in each batch, clean MOS or lowered labels (Chistyakova et al. 2024)"
    kind = "training"

    ratio: float = 1.0
    keep_clean: bool = True
    eps: float = 4 / 255
    step: float = 5 / 255
    steps: int = 1
    relabel: Relabel = "none"
    penalty: float = 1.0
    profile: str = "default"
    epochs: int = 0

    def __post_init__(self) -> None:
        if not 0 <= self.ratio <= 1:
            raise ParameterError(f"'adv-train' parameter 'ratio' must be in [0, 1], got {self.ratio!r}")
        check_positive(self, "eps", "step", "steps")
        if self.relabel not in ("none", "ssim", "min", "percent"):
            raise ParameterError(f"'adv-train' parameter 'relabel' must be none, ssim, min or percent, "
                                 f"got {self.relabel!r}")
        if self.penalty < 0:
            raise ParameterError(f"'adv-train' parameter 'penalty' must be >= 0, got {self.penalty!r}")
        if self.epochs < 0:
            raise ParameterError(f"'adv-train' parameter 'epochs' must be >= 0, got {self.epochs!r}")

    def baseline_params(self) -> dict:
        """``ratio = 0``: the same recipe, seed and pipeline without adversarial crops (plain
        training).  The attack and label parameters, idle at ratio 0, go back to their
        defaults, so that every variant with one recipe shares one baseline model."""
        idle = ("keep_clean", "eps", "step", "steps", "relabel", "penalty")
        return {"ratio": 0.0, **{f.name: f.default for f in fields(self) if f.name in idle}}

    def attack(self, model: IQAModel, crops: torch.Tensor, target: torch.Tensor, loss_fn) -> torch.Tensor:
        """L-inf PGD from the crops that maximises ``loss_fn(model(x), target)``."""
        adv = crops.detach()
        for _ in range(self.steps):
            x = adv.clone().requires_grad_(True)
            with torch.enable_grad():
                (grad,) = torch.autograd.grad(loss_fn(model.training_forward(x), target), x)
            adv = project_linf(adv + self.step * grad.sign(), crops.detach(), self.eps)
        return adv.detach()

    def labels(self, adv: torch.Tensor, clean: torch.Tensor, target: torch.Tensor, low: float, high: float):
        """The adversarial crops' labels (``relabel``), from the clean labels ``target``."""
        span = high - low
        if self.relabel == "none":
            return target
        if self.relabel == "min":
            return torch.full_like(target, low)
        drop = self.penalty * span if self.relabel == "percent" else \
            self.penalty * (1 - imagemetrics.ssim(adv, clean).to(target.dtype)) * span
        return (target - drop).clamp(low, high)

    def augmenter(self, model: IQAModel, low: float, high: float):
        """The batch hook of :func:`iqabench.models.training.train_model`; None at ``ratio = 0``."""
        if self.ratio == 0:
            return None

        def augment(crops, target, loss_fn):
            k = round(self.ratio * len(crops))
            if k == 0:
                return crops, target
            adv = self.attack(model, crops[:k], target[:k], loss_fn)
            adv_target = self.labels(adv, crops[:k].detach(), target[:k], low, high)
            if self.keep_clean:
                return torch.cat([adv, crops]), torch.cat([adv_target, target])
            return torch.cat([adv, crops[k:]]), torch.cat([adv_target, target[k:]])

        return augment

    def apply(self, model: IQAModel, dataset: IQADataset, seed: int, device: str = "cpu",
              progress: bool = True) -> dict:
        from iqabench.models.training import TRAIN_SPLIT, train_model

        mos = [it.mos for it in dataset.items(TRAIN_SPLIT) if it.mos is not None]
        low, high = (min(mos), max(mos)) if mos else (0.0, 0.0)
        recipe = model_recipe(model, self.profile, self.epochs, self.name)
        summary = train_model(model, dataset, recipe, seed, device, progress,
                              augment=self.augmenter(model, low, high))
        return {"recipe_profile": self.profile, "epochs": summary["epochs"], "mos_range": [low, high],
                "final_train_loss": summary["loss_history"][-1], "train_time_s": round(summary["train_time_s"], 1)}
