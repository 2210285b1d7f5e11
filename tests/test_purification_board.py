"""The board's input-purification section: non-adaptive and adaptive side by side,
flags, clean cost, the undefended baseline, certified widths."""
from __future__ import annotations

import json
import sqlite3

import numpy as np
import pandas as pd
import pytest

from iqabench.board.purification import matrix
from models_for_tests import Registers, TinyConvIQA, TinyData


def _row(defense, mode, attack, gain, bare, images="all"):
    return {"model": "m", "weights": "w.safetensors", "dataset": "d/test", "images": images, "defense": defense, "mode": mode, "attack": attack, "seed": 0,
            "robust_abs_gain": gain, "nonpurified_abs_gain": bare, "robust_clear_srocc_mos": 0.9,
            "robust_clear_plcc_mos": 0.9, "robust_clear_srocc_clear": 0.95, "clear_similarity_score": 1.5,
            "clear_srocc_mos": 0.97, "clear_plcc_mos": 0.96}


def test_flags_defences_that_only_survive_non_adaptive_attacks():
    table = pd.DataFrame([
        _row("jpeg", "non-adaptive", "ifgsm", 0.1, 1.0), _row("jpeg", "adaptive", "ifgsm", 0.9, 1.0),
        _row("blur", "non-adaptive", "ifgsm", 0.1, 1.0), _row("blur", "adaptive", "ifgsm", 0.2, 1.0),
        _row("flip", "non-adaptive", "ifgsm", 0.8, 1.0), _row("flip", "adaptive", "ifgsm", 0.9, 1.0),
    ])
    m = matrix(table).set_index("defense")
    assert list(m.index) == ["none", "jpeg", "blur", "flip"]
    assert m.loc["none", "ifgsm | non-adaptive"] == 1.0 and m.loc["jpeg", "baseline"] == "none"
    assert m.loc["jpeg", "flags"] == "non-adaptive only vs ifgsm"
    assert m.loc["blur", "flags"] == "" and m.loc["flip", "flags"] == ""  # holds both ways / never held
    assert m.loc["jpeg", "ifgsm | adaptive"] == 0.9
    assert m.loc["none", "robust_clear_srocc_mos"] == pytest.approx(0.97)  # the bare model's clean cost beside the defences'


def test_rows_of_two_image_subsets_are_never_averaged():
    table = pd.DataFrame([_row("jpeg", "non-adaptive", "ifgsm", 0.1, 1.0),
                          _row("jpeg", "non-adaptive", "ifgsm", 0.3, 0.5, images="4 stratified-v1")])
    m = matrix(table)
    assert list(zip(m["defense"], m["images"])) == [("none", "4 stratified-v1"), ("jpeg", "4 stratified-v1"),
                                                   ("none", "all"), ("jpeg", "all")]
    assert list(m["ifgsm | non-adaptive"]) == [0.5, 0.3, 1.0, 0.1]


def test_board_renders_the_purification_matrix_and_certified_curves(invoke, plugin, tmp_path):
    plugin(Registers(models=[TinyConvIQA], datasets=[TinyData.make(n_train=4, n_test=4)]), "tiny-board")
    store, board = tmp_path / "s.sqlite", tmp_path / "board"
    common = ["-m", "test-tiny-cnn", "-d", "test-tiny-data", "--weights", "random", "-a", "fgsm",
              "--store", str(store), "--no-baselines", "-q"]
    for extra in (["--defense", "none"], ["--defense", "jpeg"], ["--defense", "jpeg", "--defense-param", "adaptive=true"],
                  ["--defense", "median-smoothing", "--defense-param", "n=50", "--defense-param", "radii=0.05,0.1"]):
        result = invoke(["run", *common, *extra, "--no-leaderboard"])
        assert result.exit_code == 0, result.output
    result = invoke(["leaderboard", "--store", str(store), "--output", str(board)])
    assert result.exit_code == 0, result.output
    m = pd.read_csv(board / "purification_matrix.csv").set_index("defense")
    assert list(m.index)[:2] == ["none", "jpeg"] and m.index[2].startswith("median-smoothing n=50")
    assert {"fgsm | non-adaptive", "fgsm | adaptive"} <= set(m.columns)
    # against an independent recomputation from the stored rows
    db = sqlite3.connect(store)
    for key, config, summary in db.execute("SELECT key, config, summary FROM cells WHERE defense = 'jpeg'"):
        cfg, s = json.loads(config), json.loads(summary)
        rows = db.execute("SELECT attacked, extra FROM images WHERE cell_key = ?", (key,)).fetchall()
        gain = np.mean([abs(json.loads(e)["bare_clean"] - a) for a, e in rows]) / np.ptp(s["score_range"])
        mode = "adaptive" if cfg["defense"]["params"]["adaptive"] else "non-adaptive"
        assert m.loc["jpeg", f"fgsm | {mode}"] == pytest.approx(gain)
    assert m.loc["jpeg", "baseline"] == "none"
    cert = pd.read_csv(board / "certified.csv")
    assert list(cert["radius"]) == [0.05, 0.1] and (cert["width"].diff().dropna() > 0).all()
    text = (board / "purification.md").read_text()
    assert "## Input purification: non-adaptive vs adaptive attacks" in text and "certified.svg" in text
    assert list((board / "certified").glob("*.svg"))
    assert "purification.html" in (board / "README.md").read_text()  # the overview links the section's page


def test_the_defences_suite_runs_every_purifier_in_both_modes():
    """Every registered inference-time defence, non-adaptive and adaptive, against FGSM,
    I-FGSM and a UAP on the default model; median smoothing and adversarial training too."""
    from iqabench.registry import registry
    from iqabench.run.suite import expand, load_suite

    cells = expand(*load_suite("defences"))
    have = {(c.model, c.defense, bool(c.defense_params.get("adaptive")), c.attack) for c in cells}
    inference = [n for n, r in registry("defense").items() if getattr(r.obj, "kind", "") == "inference"]
    assert len(inference) >= 12 and "median-smoothing" in inference
    for name in inference:
        for adaptive in (False, True):
            for attack in ("fgsm", "ifgsm", "uap"):
                assert ("cnniqa", name, adaptive, attack) in have, (name, adaptive, attack)
    assert {("cnniqa", "none", False, a) for a in ("fgsm", "ifgsm", "uap")} <= have
    assert {c.seed for c in cells if c.defense == "adv-train"} == {0, 1, 2}
