"""Median smoothing (Chiang et al. 2020): the certified interval against the closed form
of a linear model, and empirically against random and attacked perturbations."""
from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from scipy import stats

from iqabench.models.purified import AdaptiveModel
from iqabench.registry import build_attack, build_defense
from models_for_tests import LinearScore, TinyConvIQA


def _smoothing(**params):
    return build_defense("median-smoothing", params)


def test_release_defaults():
    """ccrf/calc_nms_*.py: sigma 0.12, n 1000, conf 0.999, clamp, radius 0.05."""
    p = _smoothing().params
    assert (p["sigma"], p["n"], p["alpha"], p["clamp"]) == (0.12, 1000, 0.001, True)
    assert 0.05 in p["radii"]


@pytest.mark.parametrize("radius", [0.05, 0.2])
def test_linear_model_closed_form(radius):
    """f(x) = w.x without clamping: f(x + sigma eps) ~ N(w.x, sigma^2 ||w||^2), so the
    percentile h_p(x) = w.x + sigma ||w|| Phi^-1(p) and at p+- = Phi(+-r / sigma) the
    bounds are w.x +- r ||w|| -- exactly the extremes of f over the L2 ball of radius r.
    The order statistics must contain them (w.p. 1 - alpha) and be within the sampling
    margin of them."""
    model = LinearScore(seed=4, size=8).double().requires_grad_(False)
    x = torch.rand(3, 3, 8, 8, dtype=torch.float64) * 0.5 + 0.25
    d = _smoothing(n=20000, chunk=2000, clamp=False, radii=(radius,))
    torch.manual_seed(0)
    lo, hi = d.certify(model, x)[radius]
    wn, fx = float(model.w.norm()), model(x)
    exact_lo, exact_hi = fx - radius * wn, fx + radius * wn
    assert (lo <= exact_lo).all() and (hi >= exact_hi).all()
    margin = 0.1 * 0.12 * wn
    assert (exact_lo - lo <= margin).all() and (hi - exact_hi <= margin).all()
    torch.manual_seed(1)
    med = d.defend(model, x)
    assert (med - fx).abs().max() <= 0.05 * 0.12 * wn


def _median_at(d, model, z, seed):
    torch.manual_seed(seed)
    return d.defend(model, z)


def test_bounds_hold_for_random_and_attacked_perturbations():
    torch.manual_seed(0)
    model = TinyConvIQA().double().eval().requires_grad_(False)
    model.score_range = (0.0, 100.0)
    x = torch.rand(2, 3, 16, 16, dtype=torch.float64) * 0.6 + 0.2
    radius = 0.5
    d = _smoothing(sigma=0.5, n=2000, chunk=500, radii=(radius,))  # r / sigma = 1: p+ = 0.84
    torch.manual_seed(11)
    lo, hi = d.certify(model, x)[radius]
    assert (hi > lo).all() and torch.isfinite(hi).all()
    g = torch.Generator().manual_seed(3)
    for trial in range(5):  # random directions at the full radius
        delta = torch.randn(x.shape, generator=g, dtype=x.dtype)
        delta = delta / delta.flatten(1).norm(dim=1).view(-1, 1, 1, 1) * radius
        med = _median_at(d, model, (x + delta).clamp(0, 1), 100 + trial)
        assert ((med >= lo) & (med <= hi)).all()
    # the strongest attack we have: L2 PGD through the smoothing (EOT), both directions
    eot = AdaptiveModel(model, build_defense("median-smoothing", {"sigma": 0.5, "adaptive": True, "eot_samples": 8}), {})
    for target in (0.0, 100.0):
        torch.manual_seed(5)
        adv = build_attack("pgd", {"norm": "l2", "eps": radius, "step": radius / 5, "iters": 10,
                                   "target": target}).perturb(eot, x).images
        assert (adv - x).flatten(1).norm(dim=1).max() <= radius + 1e-9
        med = _median_at(d, model, adv, 200)
        assert ((med >= lo) & (med <= hi)).all()


def test_order_statistics_match_the_binomial_definition():
    from iqabench_plugins.defenses.smoothing import order_statistics

    n, sigma, r, alpha = 1000, 0.12, 0.05, 0.001
    k_low, k_up = order_statistics(n, sigma, r, alpha)
    p_up, p_low = stats.norm.cdf(r / sigma), stats.norm.cdf(-r / sigma)
    # the upper rank is the first k whose BinomCDF(k-1) reaches 1 - alpha; the lower the last at or under alpha
    assert stats.binom.cdf(k_up - 1, n, p_up) >= 1 - alpha > stats.binom.cdf(k_up - 2, n, p_up)
    assert stats.binom.cdf(k_low - 1, n, p_low) <= alpha < stats.binom.cdf(k_low, n, p_low)
    assert k_low < n / 2 < k_up
    assert order_statistics(10, sigma, 1.0, alpha) == (None, None)  # too few samples for that radius


def test_smoothed_cells_store_certified_intervals(invoke, plugin, tmp_path):
    """End to end: the smoothed model scores the cell (clean score = median of n noisy scores,
    inside its own certified interval at every radius); an L2 attack inside a radius never
    leaves that radius's interval; the summary's widths grow with the radius."""
    import json
    import sqlite3

    from models_for_tests import Registers, TinyData

    plugin(Registers(models=[TinyConvIQA], datasets=[TinyData.make(n_train=4, n_test=4)]), "tiny-smooth")
    store = tmp_path / "s.sqlite"
    result = invoke(["run", "-m", "test-tiny-cnn", "-d", "test-tiny-data", "--weights", "random", "-a", "pgd",
                     "--param", "norm=l2", "--param", "eps=0.3", "--param", "step=0.1", "--param", "iters=3",
                     "--defense", "median-smoothing", "--defense-param", "n=200", "--defense-param", "sigma=0.3",
                     "--defense-param", "radii=0.1,0.3,0.6", "--defense-param", "adaptive=true",
                     "--defense-param", "eot_samples=2", "--store", str(store), "--no-leaderboard", "--no-baselines", "-q"])
    assert result.exit_code == 0, result.output
    db = sqlite3.connect(store)
    key, summary = db.execute("SELECT key, summary FROM cells").fetchone()
    s = json.loads(summary)
    rows = db.execute("SELECT clean, attacked, extra FROM images WHERE cell_key = ?", (key,)).fetchall()
    for clean, attacked, extra in rows:
        cert = json.loads(extra)["certified"]
        assert set(cert) == {"0.1", "0.3", "0.6"}
        for lo, hi in cert.values():  # an infinite bound is stored as null
            assert (lo is None or lo <= clean) and (hi is None or clean <= hi)
        assert json.loads(extra)["l2"] <= 0.3 + 1e-6
    widths = [s["certified"][r]["width"] for r in ("0.1", "0.3")]
    assert 0 < widths[0] < widths[1]
    assert s["certified"]["0.6"]["finite"] == 0  # n = 200 is too few for r / sigma = 2
    assert s["certified_checked"] == len(rows) and s["certified_violations"] == 0
