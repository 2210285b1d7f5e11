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
"""
from __future__ import annotations

from typing import Mapping

import numpy as np

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
