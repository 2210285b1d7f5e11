"""Saved adversarial images and JPEG re-encoding: what a user gets back is
what the store scores (--save-images, jpeg_quality)."""
import json
import sqlite3

import numpy as np
import pytest
import torch

from iqabench.contracts import CellSpec
from iqabench.data.imageio import load_image
from iqabench.errors import ParameterError
from iqabench.experiments.components import cell_model
from iqabench.run.runner import Runner, open_run


def _rows(store):
    db = sqlite3.connect(store)
    rows = db.execute("SELECT name, clean, attacked, extra FROM images ORDER BY idx").fetchall()
    db.close()
    return rows


def test_saved_pngs_reload_to_the_stored_scores(tmp_path):
    spec = CellSpec(model="cnniqa", dataset="embedded", attack="ifgsm", limit=4, batch_size=4,
                    attack_params={"iters": 2, "alpha": "0.7/255"}, quantise=True)
    ctx = open_run(tmp_path / "s.sqlite", progress=False, save_images=tmp_path / "adv")
    (summary,) = Runner(ctx).run([spec])
    files = sorted((tmp_path / "adv").rglob("*.png"))
    assert len(files) == 4
    model = cell_model(spec, ctx)
    for name, clean, attacked, extra in _rows(tmp_path / "s.sqlite"):
        path = tmp_path / "adv" / json.loads(extra)["file"]
        img = load_image(path)
        assert ((img * 255).round() == img * 255).all()  # 8 bits, lossless
        with torch.no_grad():
            reloaded = float(model(img[None]))
        assert reloaded == pytest.approx(attacked, rel=1e-5, abs=1e-4)


def test_delivery_is_in_the_key_and_absent_keeps_old_keys(tmp_path):
    from iqabench.experiments.adversarial import AdversarialExperiment
    from iqabench.registry import build_attack

    ctx = open_run(tmp_path / "s.sqlite", progress=False)
    keys = {}
    for name, extra in (("plain", {}), ("png", {"quantise": True}), ("jpeg90", {"jpeg_quality": 90}),
                        ("jpeg10", {"jpeg_quality": 10})):
        spec = CellSpec(model="cnniqa", dataset="embedded", attack="fgsm", limit=2, **extra)
        (cell,) = AdversarialExperiment().plan(spec, build_attack("fgsm"), ctx)
        keys[name] = cell
    assert "delivery" not in keys["plain"].config
    assert len({c.key for c in keys.values()}) == 4


def test_jpeg_100_changes_almost_nothing_and_jpeg_10_shrinks_ifgsm_gain(tmp_path):
    runner = Runner(open_run(tmp_path / "s.sqlite", progress=False))
    base = dict(model="cnniqa", dataset="embedded", attack="ifgsm", limit=4, batch_size=4, attack_params={"iters": 3})
    plain, q100, q10 = runner.run([CellSpec(**base), CellSpec(**base, jpeg_quality=100),
                                   CellSpec(**base, jpeg_quality=10)])
    gain = [s["abs_gain"] for s in (plain, q100, q10)]
    print("abs_gain plain, q100, q10:", gain)
    assert gain[0] > 0
    assert abs(gain[1] - gain[0]) < 0.25 * gain[0]
    assert gain[2] < 0.5 * gain[0]


def test_bad_jpeg_quality_is_a_one_line_error():
    from iqabench.run.plan import validate_cell

    with pytest.raises(ParameterError, match="jpeg_quality"):
        validate_cell(CellSpec(model="cnniqa", dataset="embedded", attack="fgsm", jpeg_quality=101))


def test_the_cli_saves_jpegs_of_a_transfer_attack_and_scores_the_saved_files(plugin, invoke, tmp_path):
    from models_for_tests import LinearScore, MeanLuma, Registers, TinyData

    plugin(Registers(models=[LinearScore, MeanLuma], datasets=[TinyData.make(n_train=2, n_test=5, size=16)]), "t")
    store, out = tmp_path / "s.sqlite", tmp_path / "adv"
    result = invoke(["run", "-m", "test-linear", "-d", "test-tiny-data", "-a", "fgsm", "--model-param", "size=16",
                     "--weights", "random", "--save-images", str(out), "--jpeg-quality", "50",
                     "--transfer-from", "test-mean-luma", "--store", str(store), "--no-leaderboard", "-q"])
    assert result.exit_code == 0, result.output
    db = sqlite3.connect(store)
    (config,) = [json.loads(c) for (c,) in db.execute("SELECT config FROM cells")]
    db.close()
    assert config["delivery"] == {"format": "jpeg", "quality": 50}
    assert config["transfer_from"]["name"] == "test-mean-luma"
    model = LinearScore(seed=0, size=16)
    rows = _rows(store)
    assert len(rows) == 5 and len(list(out.rglob("*.jpg"))) == 5
    for name, clean, attacked, extra in rows:
        img = load_image(out / json.loads(extra)["file"])
        with torch.no_grad():
            assert float(model(img[None])) == pytest.approx(attacked, abs=1e-4)
    # a rerun skips the finished cell, so it saves nothing -- and says so
    again = invoke(["run", "-m", "test-linear", "-d", "test-tiny-data", "-a", "fgsm", "--model-param", "size=16",
                    "--weights", "random", "--save-images", str(tmp_path / "again"), "--jpeg-quality", "50",
                    "--transfer-from", "test-mean-luma", "--store", str(store), "--no-leaderboard", "-q"])
    assert again.exit_code == 0, again.output
    assert "its images are not saved: --force recomputes and saves them" in " ".join(again.output.split())
    assert not list((tmp_path / "again").rglob("*.jpg"))
