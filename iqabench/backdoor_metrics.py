"""How well a backdoored IQA model obeys its trigger (REFERENCES.md 2).

A score-shift backdoor asks the model to move its score by ``Delta_max *
alpha`` when the trigger is added with strength ``alpha``.  With ``y0`` the
model's prediction on the clean image and ``y(a)`` on the image triggered
with strength ``a``::

    MAE_a = mean_i |y_i(a) - (y0_i + Delta_max a)|
    MRA_a = mean_i (y_i(a) - y0_i) / (Delta_max a)
    mMAE  = mean_a MAE_a,    mMRA = mean_a MRA_a      (ideal: 0 and 1)

over the test strengths +-0.1, ..., +-1.0.  The benign metrics (PLCC,
SROCC, RMSE against MOS) are of the clean test images.

:func:`evaluate_backdoor` is the one entry point that a defence reuses: give
it any model (backdoored, fine-tuned, pruned) and the trigger.
"""
from __future__ import annotations

from typing import Mapping, Sequence

import numpy as np
import torch

from . import imagemetrics
from .contracts import IQADataset, IQAModel, Item, Trigger
from .errors import ModelError
from .scores import correlations

#: the test strengths of the BAIQA evaluation: -1.0 ... -0.1, 0.1 ... 1.0
TEST_ALPHAS: tuple[float, ...] = tuple(sorted(s * k / 10 for k in range(1, 11) for s in (-1, 1)))


def shift_metrics(y0, shifted: Mapping[float, np.ndarray], delta_max: float) -> dict:
    """Per-alpha MAE / MRA / mean shift, and their means mMAE / mMRA."""
    y0 = np.asarray(y0, dtype=np.float64)
    if not delta_max > 0:
        raise ValueError(f"delta_max must be > 0, got {delta_max}")
    per_alpha = {}
    for a, ya in shifted.items():
        if a == 0:
            raise ValueError("alpha = 0 has no relative shift")
        ya = np.asarray(ya, dtype=np.float64)
        if ya.shape != y0.shape:
            raise ValueError(f"alpha {a}: {ya.shape[0]} scores for {y0.shape[0]} images")
        target = delta_max * a
        per_alpha[float(a)] = {
            "mae": float(np.mean(np.abs(ya - (y0 + target)))),
            "mra": float(np.mean(ya - y0) / target),
            "shift": float(np.mean(ya - y0)),
        }
    return {
        "per_alpha": per_alpha,
        "mmae": float(np.mean([v["mae"] for v in per_alpha.values()])),
        "mmra": float(np.mean([v["mra"] for v in per_alpha.values()])),
    }


@torch.no_grad()
def triggered_scores(model: IQAModel, x: torch.Tensor, trigger: Trigger, alphas: Sequence[float], clean: bool = False):
    """Per alpha, the scores of batch ``x`` under the trigger and its PSNR
    (and the clean scores first, with ``clean=True``)."""
    y0 = model(x) if clean else None
    out = {}
    for a in alphas:
        xa = trigger.apply(x, float(a))
        out[float(a)] = (model(xa), imagemetrics.psnr(xa, x))
    return y0, out


def evaluate_backdoor(model: IQAModel, dataset: IQADataset, items: Sequence[Item], trigger: Trigger,
                      delta_max: float, alphas: Sequence[float] = TEST_ALPHAS, device: str = "cpu",
                      batch_size: int = 16, bar=None, label: str = "backdoor eval", trigger_images: int = 0,
                      seed: int = 0) -> dict:
    """Benign and backdoor metrics of ``model`` on labelled ``items``.

    Benign PLCC / SROCC / RMSE use every item; the trigger is evaluated on
    ``trigger_images`` of them (0: all; a subset stratified by content and
    distortion, drawn with ``seed``: :func:`iqabench.sampling.subset`), since
    it costs one forward pass per alpha (20) -- the CPU profiles use a
    subset.  ``delta_max`` is in the dataset's MOS units.  Returns
    ``{"metrics", "images": names, "mos", "y0": clean scores (all items),
    "subset": indices of the triggered items, "y": {alpha: scores of the
    subset}, "psnr": {alpha: PSNR of the subset}}``; the PSNR is of the
    (clamped) triggered image against the clean one.  ``bar``: an optional
    rich Progress to report on.
    """
    from .sampling import subset_indices
    from .training import predict

    model.to(device).eval()
    items = [it for it in items if it.mos is not None]
    if not items:
        raise ModelError(f"dataset {dataset.name!r}: no labelled images to evaluate the backdoor on")
    y0 = predict(model, dataset, items, device, batch_size)
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
            _, res = triggered_scores(model, x, trigger, alphas)
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
