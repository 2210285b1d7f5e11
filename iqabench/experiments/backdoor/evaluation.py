"""Evaluating a (backdoored) model under its trigger: the benign metrics on
clean test images and the score shift at every test strength
(:mod:`iqabench.metrics.backdoor`: mMAE, mMRA).

A prediction is either one forward pass of the whole (triggered) image --
the default, and what every CPU profile does: the model's own pooling (for
``cnniqa`` the mean over every patch on its grid, for a zoo model its crop
policy) -- or, with :class:`EvalCrops` (BAIQA's ``profile=paper``), what the
release's test loop does (``HyperIQASolver_*.test_backdoor``): trigger the
whole image, then average the model over ``n`` = 25 random crops of the
training-crop size, each flipped horizontally with probability 1/2, drawn
afresh for every alpha and for the clean prediction y0 (the release draws
them from its running global RNG; here from a generator seeded per cell
seed, image and alpha, so a result depends on neither the batching nor the
other images evaluated).

:func:`evaluate_backdoor` is the one entry point that a defence reuses: give
it any model (backdoored, fine-tuned, pruned) and the trigger.
"""
from __future__ import annotations

import zlib
from dataclasses import dataclass
from typing import Any, Sequence

import numpy as np
import torch

from ...contracts import IQADataset, IQAModel, Item, Trigger
from ...data.sampling import subset_indices
from ...errors import ModelError
from ...metrics import images as imagemetrics
from ...metrics.backdoor import TEST_ALPHAS, shift_metrics
from ...metrics.scores import correlations
from ...models.evaluation import predict

#: how the cell summary describes whole-image evaluation
WHOLE_IMAGE = {"mode": "whole image"}


@dataclass(frozen=True)
class EvalCrops:
    """Predictions as the mean over ``n`` random ``size`` crops (the release's 25 x 224).

    The crops of image ``name`` for slot ``k`` (0: the clean prediction y0,
    ``1 + j``: the j-th alpha of the evaluation) come from
    ``numpy.random.default_rng([seed, crc32(name), k])``: first ``n`` tops,
    then ``n`` lefts (uniform over every position, as torchvision's
    ``RandomCrop``), then ``n`` uniforms, a crop being flipped horizontally
    when its uniform is below 1/2 (``hflip``).  A crop larger than the image
    is the whole image (only the flips vary).
    """

    n: int
    size: int
    hflip: bool = True
    seed: int = 0

    def __post_init__(self) -> None:
        if self.n < 1 or self.size < 1:
            raise ValueError(f"evaluation crops need n >= 1 and size >= 1, got n={self.n}, size={self.size}")

    def describe(self) -> dict:
        """The policy as recorded in a cell's configuration (its key) and summary."""
        return {"n": self.n, "size": self.size, "hflip": self.hflip, "seed": self.seed, "draw": "per image and alpha"}

    def draws(self, name: str, slot: int, h: int, w: int) -> tuple[np.ndarray, np.ndarray, np.ndarray, int, int]:
        """Tops, lefts, flips and the crop's height and width for one image and slot."""
        sh, sw = min(self.size, h), min(self.size, w)
        rng = np.random.default_rng([self.seed, zlib.crc32(name.encode()), slot])
        tops = rng.integers(0, h - sh + 1, self.n)
        lefts = rng.integers(0, w - sw + 1, self.n)
        flips = rng.random(self.n) < 0.5
        return tops, lefts, flips & self.hflip, sh, sw

    @torch.no_grad()
    def predict(self, model: IQAModel, x: torch.Tensor, names: Sequence[str], slot: int) -> torch.Tensor:
        """Per image of batch ``x``, the mean score over its crops for ``slot``."""
        out = []
        for img, name in zip(x, names):
            tops, lefts, flips, sh, sw = self.draws(name, slot, *img.shape[-2:])
            crops = [img[:, t:t + sh, s:s + sw] for t, s in zip(tops.tolist(), lefts.tolist())]
            crops = [c.flip(-1) if f else c for c, f in zip(crops, flips.tolist())]
            out.append(model(torch.stack(crops)).mean())
        return torch.stack(out)



def evaluation_crops(attack: Any, recipe_crop: int, seed: int) -> EvalCrops | None:
    """How ``attack``'s cells make predictions: ``eval_crops`` random crops of
    side ``eval_crop`` (None: the recipe's training crop ``recipe_crop``, as
    the release's ``patch_size`` serves both), or None: whole images."""
    n = int(getattr(attack, "eval_crops", 0) or 0)
    if not n:
        return None
    return EvalCrops(n, int(getattr(attack, "eval_crop", None) or recipe_crop), seed=seed)


def from_description(described: dict | None) -> EvalCrops | None:
    """The :class:`EvalCrops` a cell configuration records (:meth:`EvalCrops.describe`), or None."""
    if not described:
        return None
    return EvalCrops(described["n"], described["size"], described["hflip"], described["seed"])


@torch.no_grad()
def triggered_scores(model: IQAModel, x: torch.Tensor, trigger: Trigger, alphas: Sequence[float], clean: bool = False,
                     crops: EvalCrops | None = None, names: Sequence[str] = ()):
    """Per alpha, the scores of batch ``x`` under the trigger and its PSNR
    (and the clean scores first, with ``clean=True``); with ``crops``, each
    score is the mean over the crops of image ``names[i]`` (slot 0 for the
    clean scores, ``1 + j`` for ``alphas[j]``)."""

    def score(v: torch.Tensor, slot: int) -> torch.Tensor:
        return model(v) if crops is None else crops.predict(model, v, names, slot)

    y0 = score(x, 0) if clean else None
    out = {}
    for j, a in enumerate(alphas):
        xa = trigger.apply(x, float(a))
        out[float(a)] = (score(xa, 1 + j), imagemetrics.psnr(xa, x))
    return y0, out


def evaluate_backdoor(model: IQAModel, dataset: IQADataset, items: Sequence[Item], trigger: Trigger,
                      delta_max: float, alphas: Sequence[float] = TEST_ALPHAS, device: str = "cpu",
                      batch_size: int = 16, bar=None, label: str = "backdoor eval", trigger_images: int = 0,
                      crops: EvalCrops | None = None, seed: int = 0) -> dict:
    """Benign and backdoor metrics of ``model`` on labelled ``items``.

    Benign PLCC / SROCC / RMSE use every item; the trigger is evaluated on
    ``trigger_images`` of them (0: all; a subset stratified by content and
    distortion, drawn with ``seed``: :func:`iqabench.data.sampling.subset`), since
    it costs one forward pass per alpha (20) -- the CPU profiles use a
    subset.  ``delta_max`` is in the dataset's MOS units.  Returns
    ``{"metrics", "images": names, "mos", "y0": clean scores (all items),
    "subset": indices of the triggered items, "y": {alpha: scores of the
    subset}, "psnr": {alpha: PSNR of the subset}}``; the PSNR is of the
    (clamped) triggered image against the clean one.  ``bar``: an optional
    rich Progress to report on.  ``crops``: predictions as the mean over
    seeded random crops (:class:`EvalCrops`), the clean ones included;
    None: one forward pass of the whole image.
    """
    model.to(device).eval()
    items = [it for it in items if it.mos is not None]
    if not items:
        raise ModelError(f"dataset {dataset.name!r}: no labelled images to evaluate the backdoor on")
    if crops is None:
        y0 = predict(model, dataset, items, device, batch_size)
    else:
        y0 = np.array([float(crops.predict(model, dataset.load(it).unsqueeze(0).to(device), [it.name], 0)[0])
                       for it in items])
        if not np.isfinite(y0).all():
            raise ModelError(f"model {model.name!r} produced a non-finite score on a clean image")
    subset = subset_indices(items, trigger_images, seed)
    y_all = {float(a): np.empty(len(subset)) for a in alphas}
    p_all = {float(a): np.empty(len(subset)) for a in alphas}
    task = bar.add_task(label, total=len(subset)) if bar is not None else None
    for start in range(0, len(subset), batch_size):
        chunk = list(range(start, min(start + batch_size, len(subset))))
        imgs = [dataset.load(items[subset[k]]) for k in chunk]
        for shape in dict.fromkeys(tuple(im.shape) for im in imgs):  # equal sizes stack
            pos = [j for j, im in enumerate(imgs) if tuple(im.shape) == shape]
            x = torch.stack([imgs[j] for j in pos]).to(device)
            names = [items[subset[chunk[j]]].name for j in pos]
            _, res = triggered_scores(model, x, trigger, alphas, crops=crops, names=names)
            for a, (ya, pa) in res.items():
                y_all[a][[chunk[j] for j in pos]] = ya.double().cpu().numpy()
                p_all[a][[chunk[j] for j in pos]] = pa.double().cpu().numpy()
        if task is not None:
            bar.advance(task, len(chunk))
    if not all(np.isfinite(v).all() for v in y_all.values()):
        raise ModelError(f"model {model.name!r} produced a non-finite score under the trigger")
    mos = np.array([it.mos for it in items], dtype=np.float64)
    metrics = {"benign": correlations(y0, mos), **shift_metrics(y0[subset], y_all, delta_max),
               "delta_max": float(delta_max), "n": len(items), "n_triggered": len(subset)}
    if 1.0 in p_all:
        finite = p_all[1.0][np.isfinite(p_all[1.0])]
        metrics["psnr_alpha1"] = float(finite.mean()) if finite.size else float("inf")
    return {"metrics": metrics, "images": [it.name for it in items], "mos": mos, "y0": y0, "subset": subset,
            "y": y_all, "psnr": p_all}
