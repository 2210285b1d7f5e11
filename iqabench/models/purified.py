"""Models behind an input-purification defence, and the model an attacker differentiates.

A cell whose defence is an :class:`~iqabench.contracts.InputDefense` scores
with :class:`PurifiedModel`, ``model(purify(x))``, around the cell's bare
model (the same object the undefended cells use, normalised with its fixed
clean range: a purified row and its baseline are on one scale).

Which model the ATTACK is crafted on is the cell's attacker mode, the
defence's ``adaptive`` parameter (:func:`attacker_model`):

* non-adaptive (default, the defences benchmark's protocol): the bare
  model -- the attack does not know the defence; the purified model scores
  the result.  A universal perturbation is then the undefended model's own,
  the same cached artifact;
* adaptive: :class:`AdaptiveModel`, the purified model made differentiable
  for the attacker -- BPDA (Athalye et al. 2018) back-propagates through a
  non-differentiable purifier as the identity (forward: the purified image,
  backward: ``d purify / dx = I``), and EOT averages the scores of
  ``eot_samples`` independent draws of a random purifier per forward, so
  every gradient is that of the expected score.  Every attack works
  unchanged: it sees one more model.
"""
from __future__ import annotations

from contextlib import contextmanager
from typing import Any, Iterator

import torch
import torch.nn.functional as F

from ..contracts import InputDefense, IQAModel
from ..errors import ModelError
from ..metrics import images as imagemetrics


class _Wrapper(IQAModel):
    """An IQA model around ``inner``: its name, direction, size limit and weights."""

    def __init__(self, inner: IQAModel, purifier: InputDefense):
        super().__init__()
        self.inner = inner
        self.purifier = purifier
        self.name = inner.name
        self.lower_better = inner.lower_better
        self.min_size = inner.min_size
        self.weights = inner.weights
        self.score_range = inner.score_range
        self.params = getattr(inner, "params", {})
        for attr in ("backbone", "range_sampling"):
            if hasattr(inner, attr):
                setattr(self, attr, getattr(inner, attr))
        # the card's test-split figures are the bare model's, not this one's: only its backbone carries over
        self.card = {k: v for k, v in (getattr(inner, "card", None) or {}).items() if k == "backbone"}

    def input_normalisation(self):
        return self.inner.input_normalisation()


class PurifiedModel(_Wrapper):
    """``inner(purifier.purify(x))`` (:meth:`~iqabench.contracts.InputDefense.defend`):
    the defended model that scores a cell.

    Its identity (:func:`iqabench.models.build.model_identity`) is the bare
    model's; the cell key names the defence separately (``"defense"``)."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.purifier.defend(self.inner, x)


def bpda(x: torch.Tensor, purified: torch.Tensor) -> torch.Tensor:
    """``purified`` on the forward pass, the identity's gradient on the backward pass."""
    if purified.shape != x.shape:
        raise ModelError(f"BPDA needs a purifier that keeps the image size: {tuple(x.shape)} -> "
                         f"{tuple(purified.shape)}")
    return x + (purified - x).detach()


class AdaptiveModel(_Wrapper):
    """What an adaptive attacker differentiates: the purified model with BPDA for a
    non-differentiable purifier and the mean over ``eot_samples`` draws of a random one.

    Its identity adds the defence it attacks through (``params["through"]``),
    so a universal perturbation fitted through a defence has its own cached
    artifact."""

    def __init__(self, inner: IQAModel, purifier: InputDefense, defense_identity: dict[str, Any]):
        super().__init__(inner, purifier)
        self.params = {**self.params, "through": defense_identity}
        self.samples = purifier.eot_samples if purifier.random else 1

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        total = None
        for _ in range(self.samples):
            z = self.purifier.purify(x)
            score = self.inner(z if self.purifier.differentiable else bpda(x, z))
            total = score if total is None else total + score
        return total / self.samples


def attacker_model(model: IQAModel) -> IQAModel:
    """The model the cell's attack is crafted on: ``model`` itself unless it is a
    :class:`PurifiedModel`; then the bare model (non-adaptive) or the
    :class:`AdaptiveModel` through its defence (adaptive)."""
    if not isinstance(model, PurifiedModel):
        return model
    if not model.purifier.adaptive:
        return model.inner
    identity = {k: v for k, v in (getattr(model, "defense", None) or {}).items() if k in ("name", "params")}
    return AdaptiveModel(model.inner, model.purifier, identity)


@contextmanager
def same_draws(state: torch.Tensor) -> Iterator[None]:
    """Run the block from torch's CPU generator ``state``, then put back the state it
    found: a random purifier scoring the attacked images draws what it drew for the
    clean ones (the defences benchmark seeds both alike), and the draws of the
    attack that follows are those it would make without the block."""
    after = torch.random.get_rng_state()
    torch.random.set_rng_state(state)
    try:
        yield
    finally:
        torch.random.set_rng_state(after)


def purification_extras(model: IQAModel, x: torch.Tensor, adv: torch.Tensor,
                        draws: torch.Tensor) -> list[dict[str, float]] | None:
    """Per image, what the defence scores (:mod:`iqabench.metrics.defences`) need
    beyond the purified model's clean and attacked scores: the bare model's
    scores of the clean and attacked images, and SSIM / PSNR of the purified
    clean and attacked images (with the batch's draws ``draws``) against the
    clean image -- resized back to its size first when the purifier changes it,
    as the benchmark does (bilinear, antialiased) -- and, for a certified
    defence, the clean image's certified intervals (radius -> [lower, upper]).
    None for other models."""
    if not isinstance(model, PurifiedModel):
        return None
    h, w = x.shape[-2:]

    def purified(z: torch.Tensor) -> torch.Tensor:
        with same_draws(draws):
            p = model.purifier.purify(z)
        if p.shape[-2:] != (h, w):
            p = F.interpolate(p, size=(h, w), mode="bilinear", align_corners=False, antialias=True)
        return p

    with torch.no_grad():
        bare_clean, bare_attacked = model.inner(x), model.inner(adv)
        pc, pa = purified(x), purified(adv)
        figures = {"bare_clean": bare_clean, "bare_attacked": bare_attacked,
                   "ssim_purified_clean": imagemetrics.ssim(pc, x), "psnr_purified_clean": imagemetrics.psnr(pc, x),
                   "ssim_purified_attacked": imagemetrics.ssim(pa, x),
                   "psnr_purified_attacked": imagemetrics.psnr(pa, x)}
        rows = [{k: float(v[j]) for k, v in figures.items()} for j in range(len(x))]
        if model.purifier.certified:  # the clean image's certified intervals, from the clean score's draws
            with same_draws(draws):
                bounds = model.purifier.certify(model.inner, x)
            l2 = (adv - x).flatten(1).norm(dim=1)
            for j, row in enumerate(rows):
                row["certified"] = {f"{r:g}": [float(lo[j]), float(hi[j])] for r, (lo, hi) in bounds.items()}
                row["l2"] = float(l2[j])
    return rows
