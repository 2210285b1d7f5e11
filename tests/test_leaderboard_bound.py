"""The adversarial leaderboard shows each L-inf attack's mean bound (AMI-FGSM's
1/NIQE is several times the 10/255 of the others: the row must say so)."""
import sqlite3

import numpy as np
import pandas as pd
import pytest

from models_for_tests import Registers, TinyConvIQA, TinyData


def test_the_mean_linf_bound_is_a_column_of_the_csv_and_the_markdown(invoke, plugin, tmp_path):
    plugin(Registers([TinyConvIQA], [TinyData.make(n_train=4, n_test=6)]), "tiny-bound-plugin")
    store, board = tmp_path / "s.sqlite", tmp_path / "board"
    common = ["-m", "test-tiny-cnn", "-d", "test-tiny-data", "--batch-size", "4", "--store", str(store), "-q"]
    result = invoke(["run", *common, "-a", "fgsm", "--no-leaderboard"])
    assert result.exit_code == 0, result.output
    result = invoke(["run", *common, "-a", "korhonen", "-a", "madc", "--param", "iters=2", "--leaderboard", str(board)])
    assert result.exit_code == 0, result.output
    db = sqlite3.connect(store)
    bounds = {a: np.array([b for (b,) in db.execute(
        "SELECT i.bound FROM images i JOIN cells c ON i.cell_key = c.key WHERE c.attack = ?", (a,))])
        for a in ("fgsm", "korhonen", "madc")}
    assert len(set(bounds["korhonen"])) > 1  # the realised L-inf: a genuine mean over images
    df = pd.read_csv(board / "adversarial.csv").set_index("attack")
    assert df.loc["fgsm", "linf_bound"] == pytest.approx(10 / 255)
    assert df.loc["korhonen", "linf_bound"] == pytest.approx(bounds["korhonen"].mean())
    assert np.isnan(df.loc["madc", "linf_bound"])  # an MSE bound is no L-inf bound
    lines = (board / "adversarial.md").read_text().splitlines()
    header = next(line for line in lines if line.startswith("| model |"))
    col = [c.strip() for c in header.split("|")].index("L-inf bound")
    row = {line.split("|")[4].strip(): [c.strip() for c in line.split("|")] for line in lines
           if line.startswith("| test-tiny-cnn")}
    assert row["fgsm"][col] == f"{10 / 255:.4f}"
    assert row["korhonen"][col] == f"{bounds['korhonen'].mean():.4f}"
    assert row["madc"][col] == "n/a"


def test_parameters_a_mode_fills_in_are_not_shown_as_non_default():
    # MADC's lr and iters default to None and are filled by its init mode: the
    # default row says "defaults", an init=noise row says only that
    from iqabench.board.labels import non_default as _non_default
    from iqabench.registry import build_attack

    assert _non_default("attack", "madc", build_attack("madc").params) == ""
    assert _non_default("attack", "madc", build_attack("madc", {"init": "noise"}).params) == "init=noise"
    assert _non_default("attack", "madc", build_attack("madc", {"init": "noise", "iters": "3"}).params) == "init=noise iters=3"
    assert _non_default("attack", "madc", build_attack("madc", {"lr": "0.002"}).params) == "lr=0.002"
