"""Scores of the benchmark (REFERENCES.md section 1) and correlation metrics.

Everything here is a pure function of per-image arrays: ``c`` holds the
model's scores of the clean images, ``a`` its scores of the attacked images,
image ``i`` in position ``i`` of both.  numpy/scipy only (no torch).

Normalisation with a FIXED range
--------------------------------
Scores are first min-max normalised with the model's fixed clean range
``[low, high]`` (:func:`normalise`, ``(v - low) / (high - low)``), e.g. the
range of its clean scores on a reference set (MANIQA and CLIP-IQA: 0-1).  The
range is never refitted on the images being scored.  The MSU reference code
refitted the scaler on every subset; then the normalised score of one image
depends on which other images happen to be in the subset, so gains of two
attacks (or two datasets, or two seeds) are measured in different units and
cannot be compared, and the score of a subset is not the mean of its images'
per-image scores.  With a fixed range the normalisation is one affine map per
model: every figure below is the mean of per-image values
(:func:`per_image`), so the score of any subset is the mean of the full set's
per-image values restricted to that subset.  Values are not clipped: an
attacked score above ``high`` normalises above 1, as it should.

Orientation
-----------
Every attack pushes the score towards "better quality".  For a model whose
score is lower-is-better (``lower_better=True``) the normalised values are
flipped, ``v' = 1 - (v - low)/(high - low) = (high - v)/(high - low)``, so
that in the scored space higher always means "the model thinks the image looks
better".  Hence a POSITIVE gain (absolute, relative, Wasserstein, energy)
always means the attack made the image look better to the model, whatever
the model's orientation, and the same attack expressed on a lower-is-better
model gives the same signed figures.  The robustness score is unchanged by the
flip (``max(1 - c, c)`` and ``|a - c|`` are symmetric), provided b1 = 1 and
b2 = 0 (the flip maps ``[0, 1]`` onto itself).

Images whose attacked score equals the clean score (robustness score)
----------------------------------------------------------------------
The robustness term ``log10(max(b1 - c, c - b2) / |a - c|)`` is +inf for an
image the attack did not move at all (``a == c`` exactly).  Such images are
EXCLUDED from the robustness mean (and from its interval) and their number is
reported (``robustness_excluded`` in :func:`summarise`; :func:`robustness_terms`
returns it).  A floor would put an arbitrary number into the mean.  If every
image is excluded the robustness score is nan (not inf) and the count equals
``n``.  Only exact equality is excluded: a change of 1e-9 gives a large but
finite term (about 8.7), which is counted.  Absolute/relative gains and the
distances use all images (a zero change is simply a zero gain).
"""
from __future__ import annotations

from pathlib import Path

import numpy as np
from scipy import stats

from ..errors import DatasetError, ParameterError


def correlations(pred, mos) -> dict[str, float]:
    """PLCC, SROCC and RMSE of predictions against MOS (no fitted mapping)."""
    pred = np.asarray(pred, dtype=np.float64)
    mos = np.asarray(mos, dtype=np.float64)
    return {
        "plcc": float(stats.pearsonr(pred, mos)[0]),
        "srocc": float(stats.spearmanr(pred, mos)[0]),
        "rmse": float(np.sqrt(np.mean((pred - mos) ** 2))),
    }


def defence_figures(clean, attacked, mos) -> dict[str, float]:
    """What a defence is judged by, in the model's raw score units.

    ``score_rmse``: RMSE between clean and attacked scores (the NT paper's
    robustness measure; lower = more robust).  ``clean_plcc``,
    ``clean_srocc``, ``clean_rmse``: the clean scores against MOS (the clean
    cost of a defence), NaN when fewer than 3 images carry a MOS.
    """
    clean = np.asarray(clean, dtype=np.float64)
    attacked = np.asarray(attacked, dtype=np.float64)
    mos = np.asarray(mos, dtype=np.float64)
    out = {"score_rmse": float(np.sqrt(np.mean((attacked - clean) ** 2))) if clean.size else float("nan")}
    known = np.isfinite(mos)
    if known.sum() >= 3 and np.ptp(clean[known]) > 0 and np.ptp(mos[known]) > 0:
        corr = correlations(clean[known], mos[known])
    else:
        corr = {"plcc": float("nan"), "srocc": float("nan"), "rmse": float("nan")}
    out.update({f"clean_{k}": v for k, v in corr.items()})
    return out


# ---------------------------------------------------------------- helpers

def _vector(values, name: str) -> np.ndarray:
    v = np.asarray(values, dtype=np.float64)
    if v.ndim != 1:
        raise ValueError(f"{name} must be a 1-D array of per-image scores, got shape {v.shape}")
    if v.size == 0:
        raise ValueError(f"{name} is empty: no images to score")
    if not np.all(np.isfinite(v)):
        bad = int(np.flatnonzero(~np.isfinite(v))[0])
        raise ValueError(f"{name} has a non-finite value at index {bad}: {v[bad]}")
    return v


def _pair(c, a) -> tuple[np.ndarray, np.ndarray]:
    c = _vector(c, "clean scores")
    a = _vector(a, "attacked scores")
    if c.shape != a.shape:
        raise ValueError(
            f"clean and attacked scores differ in length: {c.size} vs {a.size}")
    return c, a


def normalise(values, low: float, high: float) -> np.ndarray:
    """``(v - low) / (high - low)`` with the model's FIXED clean range.

    Not clipped, not refitted (see the module docstring for why).
    """
    low = float(low)
    high = float(high)
    if not (np.isfinite(low) and np.isfinite(high)) or not high > low:
        raise ValueError(f"score range must be finite with high > low, got low={low}, high={high}")
    return (np.asarray(values, dtype=np.float64) - low) / (high - low)


def orient(c, a, low: float, high: float, lower_better: bool = False):
    """Normalise clean and attacked scores with the fixed range and orient them
    so that higher means "looks better to the model" (flip for lower-is-better)."""
    cn = normalise(c, low, high)
    an = normalise(a, low, high)
    if lower_better:
        cn = 1.0 - cn
        an = 1.0 - an
    return cn, an


# ---------------------------------------------------------- per-image terms

def relative_terms(c, a) -> np.ndarray:
    """Per-image ``(a - c) / (c + 1)``; c must be > -1 (a clean score a whole
    range below ``low`` makes the denominator vanish or change sign)."""
    c, a = _pair(c, a)
    if np.any(c <= -1.0):
        bad = int(np.flatnonzero(c <= -1.0)[0])
        raise ValueError(
            f"normalised clean score {c[bad]} at index {bad} is <= -1: the relative gain "
            "(a - c)/(c + 1) is undefined; check the model's score range")
    return (a - c) / (c + 1.0)


def robustness_terms(c, a, b1: float = 1.0, b2: float = 0.0) -> tuple[np.ndarray, int]:
    """Per-image ``log10(max(b1 - c, c - b2) / |a - c|)`` over the images the
    attack changed, and the number of excluded images (``a == c`` exactly)."""
    c, a = _pair(c, a)
    if not b1 > b2:
        raise ValueError(f"robustness bounds need b1 > b2, got b1={b1}, b2={b2}")
    diff = np.abs(a - c)
    moved = diff > 0
    # max(b1 - c, c - b2) >= (b1 - b2)/2 > 0 for every c, so the log is finite.
    num = np.maximum(b1 - c[moved], c[moved] - b2)
    return np.log10(num / diff[moved]), int(np.count_nonzero(~moved))


def per_image(clean, attacked, low: float, high: float, lower_better: bool = False,
              b1: float = 1.0, b2: float = 0.0) -> dict[str, np.ndarray]:
    """Per-image values of the scores, in the normalised, oriented space.

    ``robustness`` is nan for the images the attack did not change (they are
    left out of the robustness mean); ``rel_gain`` is nan for images whose
    normalised clean score is <= -1 (a whole range below the model's clean
    range: the relative gain is undefined there, and they are left out of
    its mean and counted).  Every figure of :func:`summarise` except
    the two distances is the mean of one of these arrays (over its finite
    entries for ``robustness``).
    """
    c, a = _pair(clean, attacked)
    c, a = orient(c, a, low, high, lower_better)
    rob = np.full(c.shape, np.nan)
    rob[a != c] = robustness_terms(c, a, b1, b2)[0]  # terms come in image order
    rel = np.full(c.shape, np.nan)
    defined = c > -1.0
    if defined.any():  # none defined: every relative gain is left out (and counted)
        rel[defined] = relative_terms(c[defined], a[defined])
    return {
        "clean": c,
        "attacked": a,
        "abs_gain": a - c,
        "rel_gain": rel,
        "robustness": rob,
    }


# ------------------------------------------------------------------ scores

def absolute_gain(c, a) -> float:
    """``mean(a - c)`` of normalised scores."""
    c, a = _pair(c, a)
    return float(np.mean(a - c))


def relative_gain(c, a) -> float:
    """``mean((a - c) / (c + 1))`` of normalised scores."""
    return float(np.mean(relative_terms(c, a)))


def robustness_score(c, a, b1: float = 1.0, b2: float = 0.0) -> float:
    """``mean(log10(max(b1 - c, c - b2) / |a - c|))`` over the images whose
    score the attack changed; images with ``a == c`` are excluded (use
    :func:`robustness_terms` for their count).  nan if no image changed.
    Higher is more robust."""
    terms, _ = robustness_terms(c, a, b1, b2)
    return float(np.mean(terms)) if terms.size else float("nan")


def _signed(distance: float, c: np.ndarray, a: np.ndarray) -> float:
    return float(distance * np.sign(np.mean(a) - np.mean(c)))


def wasserstein_score(c, a) -> float:
    """``W1(P_clean, P_attacked) * sign(mean(a) - mean(c))``.

    The sign is 0 (so the score is 0) when the means are equal, even if the
    distributions differ -- that is the published definition."""
    c, a = _pair(c, a)
    return _signed(stats.wasserstein_distance(c, a), c, a)


def energy_score(c, a) -> float:
    """``energy_distance(P_clean, P_attacked) * sign(mean(a) - mean(c))``,
    energy distance ``(2 * integral (F_P - F_Q)^2)^(1/2)`` (scipy's)."""
    c, a = _pair(c, a)
    return _signed(stats.energy_distance(c, a), c, a)


def t_interval(values, confidence: float = 0.95) -> tuple[float, float, float]:
    """``(mean, low, high)``: Student-t interval for the mean of ``values``.

    Half-width ``t_{(1+conf)/2, n-1} * s / sqrt(n)`` with ``s`` the sample
    standard deviation (ddof=1), equal to ``scipy.stats.t.interval(conf, n-1,
    loc=mean, scale=sem)``.  n = 1: the spread is unknown, low = high = nan
    (the mean is still returned).  n = 0: all three nan.  Zero spread (all
    values equal, n >= 2): low = high = mean (scipy's own interval gives nan
    for a zero scale).
    """
    if not 0.0 < confidence < 1.0:
        raise ValueError(f"confidence must be in (0, 1), got {confidence}")
    v = np.asarray(values, dtype=np.float64).ravel()
    n = v.size
    if n == 0:
        return float("nan"), float("nan"), float("nan")
    if not np.all(np.isfinite(v)):
        raise ValueError("t_interval got a non-finite value")
    mean = float(np.mean(v))
    if n == 1:
        return mean, float("nan"), float("nan")
    half = float(stats.t.ppf(0.5 + confidence / 2.0, n - 1) * np.std(v, ddof=1) / np.sqrt(n))
    return mean, mean - half, mean + half


def summarise(clean, attacked, low: float, high: float, lower_better: bool = False,
              confidence: float = 0.95) -> dict:
    """All benchmark scores of one (model, attack, dataset) run.

    Raw clean/attacked model scores are normalised with the model's FIXED
    range ``[low, high]`` and oriented (flipped for ``lower_better``) so that a
    positive gain always means the attack made the images look better to the
    model.  Returns ``abs_gain``, ``rel_gain``, ``robustness`` (means), their
    ``*_ci`` ``(low, high)`` Student-t intervals, ``wasserstein``, ``energy``,
    ``n`` (images), ``robustness_n`` (images in the robustness mean) and
    ``robustness_excluded`` (images the attack did not change, left out).
    """
    p = per_image(clean, attacked, low, high, lower_better)
    c, a = p["clean"], p["attacked"]
    rob = p["robustness"][np.isfinite(p["robustness"])]
    rel = p["rel_gain"][np.isfinite(p["rel_gain"])]
    out: dict = {"n": int(c.size), "rel_gain_excluded": int(c.size - rel.size)}
    for key, vals in (("abs_gain", p["abs_gain"]), ("rel_gain", rel),
                      ("robustness", rob)):
        mean, lo, hi = t_interval(vals, confidence)
        out[key] = mean
        out[f"{key}_ci"] = (lo, hi)
    out["robustness_n"] = int(rob.size)
    out["robustness_excluded"] = int(c.size - rob.size)
    out["wasserstein"] = wasserstein_score(c, a)
    out["energy"] = energy_score(c, a)
    return out


def score_csv(path, clean_col: str, attacked_col: str, low: float, high: float,
              lower_better: bool = False) -> dict:
    """:func:`summarise` of the columns ``clean_col`` and ``attacked_col`` of a
    CSV file (one row per image).  Problems with the file are raised as
    :class:`DatasetError` naming the file, the column and, for bad values, the
    row (0-based data row; file line = row + 2)."""
    import pandas as pd

    path = Path(path)
    if not (np.isfinite(float(low)) and np.isfinite(float(high))) or not float(high) > float(low):
        raise ParameterError(f"score range for {path}: need high > low, got low={low}, high={high}")
    if not path.is_file():
        raise DatasetError(f"score file not found: {path}")
    try:
        df = pd.read_csv(path)
    except (ValueError, OSError) as exc:  # parser, empty file, decoding (ValueError subclasses)
        raise DatasetError(f"cannot read score file {path}: {exc}") from None
    cols = {}
    for col in (clean_col, attacked_col):
        if col not in df.columns:
            raise DatasetError(
                f"{path}: no column {col!r} (columns: {', '.join(map(str, df.columns))})")
        values = pd.to_numeric(df[col], errors="coerce").to_numpy(dtype=np.float64)
        bad = ~np.isfinite(values)
        if bad.any():
            row = int(np.flatnonzero(bad)[0])
            raise DatasetError(
                f"{path}: column {col!r} row {row} (line {row + 2}) is not a finite number: "
                f"{df[col].iloc[row]!r}")
        cols[col] = values
    if len(df) == 0:
        raise DatasetError(f"{path}: no rows to score")
    try:
        return summarise(cols[clean_col], cols[attacked_col], low, high, lower_better)
    except ValueError as exc:
        raise DatasetError(f"{path}: {exc}") from None
