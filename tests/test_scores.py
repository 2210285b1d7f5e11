"""Tests of iqabench.scores against hand arithmetic, closed forms and scipy."""
from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pytest
from scipy import stats

from iqabench import scores
from iqabench.errors import DatasetError, IQABenchError
from iqabench.metrics.scores import (
    absolute_gain,
    energy_score,
    normalise,
    per_image,
    relative_gain,
    robustness_score,
    robustness_terms,
    score_csv,
    summarise,
    t_interval,
    wasserstein_score,
)

SHARED = Path(__file__).resolve().parents[2] / "shared"
MSU_IFGSM = SHARED / "data" / "msu" / "ifgsm_maniqa_test.csv"


# ------------------------------------------------------------- hand cases

def test_normalise_fixed_range_by_hand():
    # range [10, 30]: (10-10)/20 = 0, (20-10)/20 = 0.5, (35-10)/20 = 1.25 (not clipped)
    np.testing.assert_allclose(normalise([10, 20, 35], 10, 30), [0.0, 0.5, 1.25])
    with pytest.raises(ValueError):
        normalise([1, 2], 3, 3)


# c = [0, 0.5, 0.25], a = [0.5, 1.0, 0.25]  (already normalised)
C = np.array([0.0, 0.5, 0.25])
A = np.array([0.5, 1.0, 0.25])


def test_gains_by_hand():
    # a - c = [0.5, 0.5, 0]             -> mean 1/3
    assert absolute_gain(C, A) == pytest.approx(1 / 3)
    # (a-c)/(c+1) = [0.5/1, 0.5/1.5, 0/1.25] = [1/2, 1/3, 0] -> mean (1/2 + 1/3)/3 = 5/18
    assert relative_gain(C, A) == pytest.approx(5 / 18)


def test_robustness_by_hand_excludes_unchanged_images():
    # image 0: max(1-0, 0-0) = 1,     |a-c| = 0.5 -> log10(2)
    # image 1: max(1-0.5, 0.5) = 0.5, |a-c| = 0.5 -> log10(1) = 0
    # image 2: a == c -> excluded (would be +inf)
    # mean over the two counted images = log10(2)/2
    terms, excluded = robustness_terms(C, A)
    np.testing.assert_allclose(terms, [math.log10(2), 0.0], atol=1e-15)
    assert excluded == 1
    assert robustness_score(C, A) == pytest.approx(math.log10(2) / 2)
    s = summarise(C, A, 0, 1)
    assert s["robustness"] == pytest.approx(math.log10(2) / 2)
    assert s["robustness_n"] == 2 and s["robustness_excluded"] == 1 and s["n"] == 3
    assert np.isnan(per_image(C, A, 0, 1)["robustness"][2])


def test_robustness_never_inf():
    c = np.array([0.3, 0.6, 0.9])
    assert np.isnan(robustness_score(c, c))            # nothing moved: nan, not inf
    s = summarise(c, c, 0, 1)
    assert np.isnan(s["robustness"]) and s["robustness_excluded"] == 3
    assert s["abs_gain"] == 0 and s["rel_gain"] == 0
    assert s["wasserstein"] == 0 and s["energy"] == 0
    # a tiny but non-zero change is counted and finite: log10(0.7/1e-12) = 11.845...
    assert robustness_score([0.3], [0.3 + 1e-12]) == pytest.approx(
        math.log10(0.7 / ((0.3 + 1e-12) - 0.3)))


def test_distances_by_hand():
    # sorted P = [0, .25, .5], sorted Q = [.25, .5, 1]; equal sizes ->
    # W1 = mean |P_(i) - Q_(i)| = (.25 + .25 + .5)/3 = 1/3; mean(Q) > mean(P) -> +
    assert wasserstein_score(C, A) == pytest.approx(1 / 3)
    # F_P - F_Q = 1/3 on [0,.25), [.25,.5), [.5,1) and 0 elsewhere:
    # integral (F_P - F_Q)^2 = (1/9) * 1 ; energy = sqrt(2/9) = sqrt(2)/3
    assert energy_score(C, A) == pytest.approx(math.sqrt(2) / 3)
    # attack lowering the scores: same magnitude, negative sign
    assert wasserstein_score(A, C) == pytest.approx(-1 / 3)
    assert energy_score(A, C) == pytest.approx(-math.sqrt(2) / 3)


def test_distances_closed_forms():
    rng = np.random.default_rng(0)
    p = rng.uniform(0, 1, 50)
    for d in (0.1, 0.37):           # W1 of a shift by d is d
        assert wasserstein_score(p, p + d) == pytest.approx(d)
        assert wasserstein_score(p, p - d) == pytest.approx(-d)
    for u, v in ((0.2, 0.7), (0.5, 0.51)):  # two point masses: energy = sqrt(2|u-v|), W1 = |u-v|
        assert energy_score([u] * 4, [v] * 4) == pytest.approx(math.sqrt(2 * abs(u - v)))
        assert wasserstein_score([u] * 4, [v] * 4) == pytest.approx(abs(u - v))


def _cdf_distances(p, q):
    """Independent oracle: integrate |F_P - F_Q| and (F_P - F_Q)^2 exactly on
    the merged grid of sample points (CDFs are step functions)."""
    grid = np.sort(np.concatenate([p, q]))
    widths = np.diff(grid)
    fp = np.searchsorted(np.sort(p), grid[:-1], side="right") / len(p)
    fq = np.searchsorted(np.sort(q), grid[:-1], side="right") / len(q)
    return np.sum(np.abs(fp - fq) * widths), math.sqrt(2 * np.sum((fp - fq) ** 2 * widths))


def test_distances_against_cdf_integrals():
    rng = np.random.default_rng(1)
    c = rng.beta(2, 3, 40)
    a = c + rng.normal(0.1, 0.2, 40)
    w, e = _cdf_distances(c, a)
    sign = np.sign(a.mean() - c.mean())
    assert sign != 0
    assert wasserstein_score(c, a) == pytest.approx(sign * w, rel=1e-12)
    assert energy_score(c, a) == pytest.approx(sign * e, rel=1e-12)


# ------------------------------------------------------------- t interval

def test_t_interval_by_hand_and_scipy():
    # [1, 2, 3]: mean 2, s = 1, sem = 1/sqrt(3), t_{0.975, 2} = 4.303 (table)
    # half-width = 4.303/1.732 = 2.484
    m, lo, hi = t_interval([1.0, 2.0, 3.0])
    assert m == 2.0
    assert hi - m == pytest.approx(4.303 / math.sqrt(3), abs=1e-3)
    assert m - lo == pytest.approx(hi - m)
    rng = np.random.default_rng(2)
    for n, conf in ((5, 0.95), (30, 0.9), (200, 0.99)):
        v = rng.normal(1, 2, n)
        m, lo, hi = t_interval(v, conf)
        slo, shi = stats.t.interval(conf, n - 1, loc=v.mean(), scale=stats.sem(v))
        assert m == pytest.approx(v.mean())
        assert (lo, hi) == pytest.approx((slo, shi), rel=1e-12)


def test_t_interval_degenerate():
    m, lo, hi = t_interval([0.7])            # n = 1: mean known, spread unknown
    assert m == 0.7 and np.isnan(lo) and np.isnan(hi)
    assert all(np.isnan(t_interval([])))      # n = 0
    assert t_interval([0.5, 0.5, 0.5]) == (0.5, 0.5, 0.5)  # zero spread: not nan
    assert t_interval([0.4] * 3) == pytest.approx((0.4, 0.4, 0.4), abs=1e-15)
    with pytest.raises(ValueError):
        t_interval([1, 2], confidence=1.0)


def test_summarise_intervals_are_t_intervals_of_per_image_values():
    rng = np.random.default_rng(3)
    c = rng.uniform(20, 80, 25)
    a = c + rng.uniform(-5, 15, 25)
    s = summarise(c, a, 20, 80)
    p = per_image(c, a, 20, 80)
    for key in ("abs_gain", "rel_gain", "robustness"):
        m, lo, hi = t_interval(p[key])
        assert s[key] == pytest.approx(m)
        assert s[f"{key}_ci"] == pytest.approx((lo, hi))
        assert lo < s[key] < hi


# ------------------------------------------------------------ orientation

def test_lower_better_gives_same_signed_figures():
    rng = np.random.default_rng(4)
    # a higher-is-better model, range [20, 80]; the attack raises its scores
    c = rng.uniform(25, 75, 30)
    a = c + rng.uniform(0, 10, 30)
    ref = summarise(c, a, 20, 80)
    assert ref["abs_gain"] > 0 and ref["wasserstein"] > 0 and ref["energy"] > 0
    # the same images and attack on lower-is-better models: s' = 100 - s on the
    # same range, and s' = 7 - 0.05 s on [7 - 4, 7 - 1] = [3, 6]
    for f, lo, hi in ((lambda s: 100 - s, 20, 80), (lambda s: 7 - 0.05 * s, 3, 6)):
        got = summarise(f(c), f(a), lo, hi, lower_better=True)
        for key in ("abs_gain", "rel_gain", "robustness", "wasserstein", "energy"):
            assert got[key] == pytest.approx(ref[key], rel=1e-9, abs=1e-12), key
        for key in ("abs_gain_ci", "rel_gain_ci", "robustness_ci"):
            assert got[key] == pytest.approx(ref[key], rel=1e-9), key
        # without the flip the attack would look like a loss
        assert summarise(f(c), f(a), lo, hi)["abs_gain"] == pytest.approx(-ref["abs_gain"])


# ---------------------------------------------------------- fixed range

def test_fixed_range_is_not_refitted_on_subsets():
    rng = np.random.default_rng(5)
    c = rng.uniform(30, 70, 12)
    a = c + rng.uniform(-2, 12, 12)
    low, high = 20.0, 80.0
    full = per_image(c, a, low, high)
    # hand check of one per-image value: ((a0-20)/60 - (c0-20)/60) = (a0-c0)/60
    assert full["abs_gain"][0] == pytest.approx((a[0] - c[0]) / 60)
    subset = np.array([1, 4, 5, 9])
    sub = summarise(c[subset], a[subset], low, high)
    assert sub["abs_gain"] == pytest.approx(full["abs_gain"][subset].mean())
    assert sub["rel_gain"] == pytest.approx(full["rel_gain"][subset].mean())
    assert sub["robustness"] == pytest.approx(full["robustness"][subset].mean())
    # the test can tell: refitting the range on the subset's clean scores
    # (the MSU reference code) gives a different relative gain
    rl, rh = c[subset].min(), c[subset].max()
    refit = relative_gain(normalise(c[subset], rl, rh), normalise(a[subset], rl, rh))
    assert abs(refit - sub["rel_gain"]) > 1e-3


# ------------------------------------------------------------- score_csv

def _write(tmp_path, text):
    p = tmp_path / "s.csv"
    p.write_text(text)
    return p


def test_score_csv_matches_summarise(tmp_path):
    p = _write(tmp_path, "img,clean,att\nx,30,40\ny,50,50\nz,60,75\n")
    got = score_csv(p, "clean", "att", 20, 80)
    ref = summarise([30, 50, 60], [40, 50, 75], 20, 80)
    for k, v in ref.items():
        assert got[k] == pytest.approx(v, nan_ok=True), k
    assert got["robustness_excluded"] == 1
    # (40-30)/60 = 1/6, 0, (75-60)/60 = 1/4 -> mean (1/6 + 1/4)/3 = 5/36
    assert got["abs_gain"] == pytest.approx(5 / 36)


def test_score_csv_errors_name_file_column_row(tmp_path):
    with pytest.raises(DatasetError, match="nope.csv"):
        score_csv(tmp_path / "nope.csv", "clean", "att", 0, 1)
    p = _write(tmp_path, "img,clean,att\nx,0.3,0.4\n")
    with pytest.raises(DatasetError, match=r"s\.csv.*'attacked'"):
        score_csv(p, "clean", "attacked", 0, 1)
    p = _write(tmp_path, "img,clean,att\nx,0.3,0.4\ny,0.2,oops\n")
    with pytest.raises(DatasetError, match=r"s\.csv.*'att' row 1 .*oops"):
        score_csv(p, "clean", "att", 0, 1)
    p = _write(tmp_path, "img,clean,att\nx,0.3,0.4\ny,0.2,0.3\nz,,0.5\n")
    with pytest.raises(DatasetError, match=r"'clean' row 2 \(line 4\)"):
        score_csv(p, "clean", "att", 0, 1)
    p = _write(tmp_path, "img,clean,att\n")
    with pytest.raises(DatasetError, match="no rows"):
        score_csv(p, "clean", "att", 0, 1)
    assert issubclass(DatasetError, IQABenchError)
    with pytest.raises(IQABenchError):
        score_csv(_write(tmp_path, "clean,att\n1,2\n"), "clean", "att", 1, 1)


# ------------------------------------------------- real external results

@pytest.mark.skipif(not MSU_IFGSM.is_file(), reason=f"{MSU_IFGSM} not available")
def test_msu_maniqa_ifgsm_results():
    import pandas as pd

    df = pd.read_csv(MSU_IFGSM)
    c = df["clear"].to_numpy(float)
    a = df["attacked"].to_numpy(float)
    r = df["rel_gain"].to_numpy(float)
    got = score_csv(MSU_IFGSM, "clear", "attacked", 0, 1)   # MANIQA range 0-1
    assert got["n"] == len(df) == 3218
    # The file's rel_gain column is NOT our relative gain: it is the per-image
    # RATIO attacked/clear (exactly, e.g. row 0: 1.38394/0.52054 = 2.65865),
    # mean 3.35, whereas (a-c)/(c+1) averages 0.656.  So the relationship that
    # holds is (a - c)/(c + 1) = c * (a/c - 1)/(c + 1) = c * (r - 1)/(c + 1).
    np.testing.assert_allclose(r, a / c, rtol=1e-12)
    assert got["rel_gain"] == pytest.approx(np.mean(c * (r - 1) / (c + 1)), rel=1e-9)
    assert abs(got["rel_gain"] - r.mean()) > 1          # i.e. not the column's mean
    # with range 0-1 normalisation is the identity: absolute gain = mean(a - c)
    assert got["abs_gain"] == pytest.approx(np.mean(a - c), rel=1e-12)
    # the attack raised the scores of every image: nothing excluded, positive distances
    assert got["robustness_excluded"] == 0 and np.isfinite(got["robustness"])
    assert got["wasserstein"] > 0 and got["energy"] > 0
    # the file's psnr is 10 log10(1/mse), the data_range = 1 convention of imagemetrics.psnr
    np.testing.assert_allclose(df["psnr"], 10 * np.log10(1 / df["mse"]), rtol=1e-12)


def test_scores_module_does_not_import_torch():
    import ast
    tree = ast.parse(Path(scores.__file__).read_text())
    names = {a.name.split(".")[0] for n in ast.walk(tree) if isinstance(n, (ast.Import, ast.ImportFrom))
             for a in getattr(n, "names", [])}
    mods = {n.module.split(".")[0] for n in ast.walk(tree) if isinstance(n, ast.ImportFrom) and n.module}
    assert "torch" not in names | mods


def test_relative_gain_leaves_out_images_far_below_the_clean_range():
    # normalised clean scores: 0.5, -2.0 (a whole range below low: undefined)
    from iqabench.metrics.scores import summarise

    s = summarise([0.5, -2.0], [0.75, -1.5], low=0.0, high=1.0)
    assert s["rel_gain_excluded"] == 1
    assert s["rel_gain"] == pytest.approx((0.75 - 0.5) / 1.5)  # only the defined image
    assert s["abs_gain"] == pytest.approx((0.25 + 0.5) / 2)    # gains use every image


def test_relative_gain_of_images_all_far_below_the_range_is_left_out_not_a_crash():
    """Clean scores a whole range below ``low`` make (a - c)/(c + 1) undefined for every
    image: the relative gain is NaN with every image counted as excluded, and the other
    scores are still computed (a random-init zoo model on two images hit this)."""
    s = summarise(np.array([-30.0, -25.0]), np.array([-29.0, -20.0]), 0.0, 10.0)
    assert np.isnan(s["rel_gain"]) and s["rel_gain_excluded"] == 2
    assert s["abs_gain"] == pytest.approx(np.mean([0.1, 0.5]))
