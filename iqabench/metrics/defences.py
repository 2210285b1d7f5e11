"""The defence scores of the MSU defences benchmark (``defence_scoring_methods.py``).

Per cell of an input-purification defence, from four scores of each image --
``clean`` / ``attacked`` (the bare model on the clean / attacked image) and
``defended_clean`` / ``defended_attacked`` (the model on the purified images;
one draw of a random purifier serves both) -- the MOS, and the SSIM and PSNR of
the purified images against the clean image:

* gains (lower = more robust): ``robust_*_gain`` compares the bare model's clean
  score with the defended model's score of the attacked image (the benchmark's
  headline), ``both_defended_*`` the defended scores of clean and attacked
  images, ``nonpurified_*`` the bare scores (how strong the attack is without
  the defence).  ``abs``: ``mean(|a - b|) / range`` with the model's clean
  range; ``rel``: ``mean(|a - b| / (a + 1e-6))`` on raw scores, as released;
* clean cost: ``robust_clear_srocc_mos`` / ``robust_clear_plcc_mos`` (the
  defended model on purified clean images against MOS; PLCC is our addition,
  the issue's), ``clear_srocc_mos`` / ``clear_plcc_mos`` (the bare model), ``robust_attacked_srocc_mos``
  (defended, attacked images), ``attacked_srocc_mos`` (bare, attacked) and
  ``robust_clear_srocc_clear`` (bare vs defended scores of clean images);
* similarity: ``similarity_score`` = mean of SSIM + PSNR/40 of purified
  attacked vs clean images, ``clear_similarity_score`` the same for purified
  clean images.  The release drops NaN terms; a purifier that leaves an image
  unchanged gives PSNR = inf, which is dropped too (it would make the mean inf).
"""
from __future__ import annotations

import numpy as np
from scipy import stats

REL_EPS = 1e-6


def _abs_gain(a: np.ndarray, b: np.ndarray, span: float) -> float:
    return float(np.mean(np.abs(a - b) / span))


def _rel_gain(a: np.ndarray, b: np.ndarray) -> float:
    return float(np.mean(np.abs(a - b) / (a + REL_EPS)))


def _corr(fn, a: np.ndarray, b: np.ndarray) -> float:
    known = np.isfinite(a) & np.isfinite(b)
    if known.sum() < 3 or np.ptp(a[known]) == 0 or np.ptp(b[known]) == 0:
        return float("nan")
    return float(fn(a[known], b[known])[0])


def _similarity(ssim: np.ndarray, psnr: np.ndarray) -> float:
    terms = ssim + psnr / 40
    terms = terms[np.isfinite(terms)]
    return float(terms.mean()) if terms.size else float("nan")


def defence_scores(clean, attacked, defended_clean, defended_attacked, mos, span: float,
                   ssim_clean, psnr_clean, ssim_attacked, psnr_attacked) -> dict[str, float]:
    """The benchmark's defence scores of one cell (see the module docstring)."""
    c, a, dc, da = (np.asarray(v, dtype=np.float64) for v in (clean, attacked, defended_clean, defended_attacked))
    mos = np.asarray(mos, dtype=np.float64)
    span = float(span) or 1.0
    srocc, plcc = stats.spearmanr, stats.pearsonr
    return {
        "robust_abs_gain": _abs_gain(c, da, span), "robust_rel_gain": _rel_gain(c, da),
        "both_defended_abs_gain": _abs_gain(dc, da, span), "both_defended_rel_gain": _rel_gain(dc, da),
        "nonpurified_abs_gain": _abs_gain(c, a, span), "nonpurified_rel_gain": _rel_gain(c, a),
        "similarity_score": _similarity(np.asarray(ssim_attacked, float), np.asarray(psnr_attacked, float)),
        "clear_similarity_score": _similarity(np.asarray(ssim_clean, float), np.asarray(psnr_clean, float)),
        "robust_clear_srocc_mos": _corr(srocc, mos, dc), "robust_clear_plcc_mos": _corr(plcc, mos, dc),
        "robust_attacked_srocc_mos": _corr(srocc, mos, da), "clear_srocc_mos": _corr(srocc, mos, c), "clear_plcc_mos": _corr(plcc, mos, c),
        "attacked_srocc_mos": _corr(srocc, mos, a), "robust_clear_srocc_clear": _corr(srocc, c, dc),
    }


def _bounds(pair) -> tuple[float, float]:
    """A stored [lower, upper]: an infinite bound is stored as null."""
    lo, hi = pair
    return (-np.inf if lo is None else float(lo)), (np.inf if hi is None else float(hi))


def certified_summary(intervals: list[dict[str, list]], attacked, l2, span: float) -> dict:
    """A certified defence's figures from its per-image clean intervals (radius -> [lower, upper]).

    ``certified``: per radius, the mean interval width over images with finite
    bounds, normalised by the clean range (the board's width-vs-radius curve),
    and the fraction of images with finite bounds (``n`` too small for a radius
    leaves it infinite; the store keeps it as null).  ``certified_violations``: attacked images whose L2
    perturbation lies within a certified radius but whose defended score left
    that radius's interval -- the certificate says 0 (with probability 1 - alpha
    each); ``certified_checked``: how many attacked images lay within a radius.
    """
    intervals = [{r: _bounds(b) for r, b in iv.items()} for iv in intervals]
    radii = sorted({r for iv in intervals for r in iv}, key=float)
    span = float(span) or 1.0
    out: dict = {"certified": {}}
    for r in radii:
        bounds = np.array([iv[r] for iv in intervals], dtype=np.float64)
        finite = np.isfinite(bounds).all(axis=1)
        width = (bounds[finite, 1] - bounds[finite, 0]) / span
        out["certified"][r] = {"width": float(width.mean()) if width.size else float("nan"),
                               "finite": float(finite.mean())}
    checked = violations = 0
    for iv, a, d in zip(intervals, np.asarray(attacked, float), np.asarray(l2, float)):
        within = [r for r in radii if float(r) >= d]
        if within:
            lo, hi = iv[within[0]]
            checked += 1
            violations += int(not (lo <= a <= hi))
    out["certified_checked"], out["certified_violations"] = checked, violations
    return out
