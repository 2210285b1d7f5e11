"""The defences benchmark's defence scores (its defence_scoring_methods.py), per purified cell."""
from __future__ import annotations

import io
import json
import sqlite3

import numpy as np
import pytest
import torch
from scipy import stats

from iqabench.metrics import images as imagemetrics
from iqabench.metrics.defences import defence_scores
from models_for_tests import Registers, TinyConvIQA, TinyData


def test_defence_scores_by_hand():
    clean, attacked = np.array([10.0, 20.0, 40.0]), np.array([20.0, 20.0, 50.0])
    dc, da = np.array([11.0, 19.0, 42.0]), np.array([12.0, 45.0, 40.0])
    mos = np.array([1.0, 2.0, 3.0])
    s = defence_scores(clean, attacked, dc, da, mos, 100.0, [0.9, 0.8, np.nan], [30.0, 20.0, 10.0],
                       [0.5, 0.5, 0.5], [40.0, np.inf, 20.0])
    assert s["robust_abs_gain"] == pytest.approx((2 + 25 + 0) / 3 / 100)
    assert s["robust_rel_gain"] == pytest.approx((2 / 10 + 25 / 20 + 0) / 3, rel=1e-6)
    assert s["nonpurified_abs_gain"] == pytest.approx((10 + 0 + 10) / 3 / 100)
    assert s["both_defended_abs_gain"] == pytest.approx((1 + 26 + 2) / 3 / 100)
    assert s["clear_similarity_score"] == pytest.approx(((0.9 + 0.75) + (0.8 + 0.5)) / 2)  # NaN term dropped
    assert s["similarity_score"] == pytest.approx(((0.5 + 1.0) + (0.5 + 0.5)) / 2)  # inf PSNR dropped
    assert s["robust_clear_srocc_mos"] == pytest.approx(1.0)
    assert s["robust_attacked_srocc_mos"] == pytest.approx(0.5)
    assert s["robust_clear_srocc_clear"] == pytest.approx(1.0)
    assert s["robust_clear_plcc_mos"] == pytest.approx(stats.pearsonr(mos, dc)[0])


def test_purified_cells_store_the_defence_scores(invoke, plugin, tmp_path):
    """Against independent recomputations: the bare model's clean scores are the undefended
    cell's, the purified clean images are PIL's JPEG of the dataset's images."""
    from PIL import Image

    data = TinyData.make(n_train=4, n_test=6)
    plugin(Registers(models=[TinyConvIQA], datasets=[data]), "tiny-scores")
    store = tmp_path / "s.sqlite"
    for defense in ("none", "jpeg"):
        result = invoke(["run", "-m", "test-tiny-cnn", "-d", "test-tiny-data", "--weights", "random", "-a", "ifgsm",
                         "--defense", defense, "--store", str(store), "--no-leaderboard", "--no-baselines", "-q"])
        assert result.exit_code == 0, result.output
    db = sqlite3.connect(store)
    cells = {d or "none": (k, json.loads(s)) for k, d, s in db.execute("SELECT key, defense, summary FROM cells")}

    def rows(key):
        return db.execute("SELECT name, clean, attacked, extra FROM images WHERE cell_key = ? ORDER BY idx",
                          (key,)).fetchall()

    bare, purified = rows(cells["none"][0]), rows(cells["jpeg"][0])
    s = cells["jpeg"][1]
    span = s["score_range"][1] - s["score_range"][0]
    bare_clean = np.array([r[1] for r in bare])
    defended_clean, defended_attacked = np.array([r[1] for r in purified]), np.array([r[2] for r in purified])
    mos = np.array([json.loads(r[3])["mos"] for r in purified])
    assert s["robust_abs_gain"] == pytest.approx(np.mean(np.abs(bare_clean - defended_attacked)) / span)
    assert s["robust_clear_srocc_mos"] == pytest.approx(stats.spearmanr(mos, defended_clean)[0])
    assert s["robust_clear_srocc_clear"] == pytest.approx(stats.spearmanr(bare_clean, defended_clean)[0])
    assert s["clear_srocc_mos"] == pytest.approx(stats.spearmanr(mos, bare_clean)[0])
    assert s["clear_plcc_mos"] == pytest.approx(stats.pearsonr(mos, bare_clean)[0])
    ds = data()
    terms = []
    for item in ds.items("test"):
        x = ds.load(item).unsqueeze(0)
        buf = io.BytesIO()
        Image.fromarray((x[0].permute(1, 2, 0).numpy() * 255).astype(np.uint8)).save(buf, "JPEG", quality=50)
        buf.seek(0)
        y = torch.from_numpy(np.array(Image.open(buf).convert("RGB"))).permute(2, 0, 1)[None].float() / 255
        terms.append(float(imagemetrics.ssim(y, x)[0] + imagemetrics.psnr(y, x)[0] / 40))
    assert s["clear_similarity_score"] == pytest.approx(np.mean(terms), rel=1e-5)
    assert 0 < s["similarity_score"] < s["clear_similarity_score"]
    assert "robust_abs_gain" not in cells["none"][1]
