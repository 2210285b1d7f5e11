"""The overview's columns are attack families: per model, a family's robustness is
its least robust attack (the worst case a security board shows), with that
attack's 95% interval and cell, and the attack named; an attack that declares
no family (or whose plugin is gone) is a family of its own, never an error."""
from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest

#: the families the brief asks for, as the built-in attacks declare them
TRUTH = {"fgsm": "one-step", "ifgsm": "iterative", "mifgsm": "iterative", "amifgsm": "iterative", "pgd": "iterative",
         "korhonen": "perceptual", "madc": "perceptual", "uap": "universal", "cumulative-uap": "universal",
         "generative-uap": "universal", "baiqa-p": "backdoor", "baiqa-c": "backdoor"}


def test_every_built_in_attack_declares_its_family():
    from iqabench.registry import lookup

    for name, family in TRUTH.items():
        assert lookup("attack", name).obj.family == family, name


def _per_attack(rng):
    """Per-attack overview rows of two models: robustness, interval, cell."""
    rows = []
    for model in ("a", "b"):
        for attack, params in [("fgsm", ""), ("ifgsm", ""), ("ifgsm", "iters=5"), ("pgd", ""), ("korhonen", ""),
                               ("not-installed", ""), ("uap (mean)", "")]:
            value = float(rng.normal(1.0, 0.5))
            half = 0.0 if attack.endswith("(mean)") else float(rng.uniform(0.01, 0.1))
            rows.append({"model": model, "attack": attack, "params": params, "robustness": value,
                         "robustness_ci_low": value - half if half else math.nan,
                         "robustness_ci_high": value + half if half else math.nan,
                         "cell": f"{model}-{attack}-{params}"})
    rows.append({**rows[0], "robustness": math.nan, "cell": "a-nan"})  # a NaN never wins the worst case
    rows[-1]["attack"] = "madc"
    return pd.DataFrame(rows)


def test_a_familys_robustness_is_its_least_robust_attack_with_its_interval_and_cell():
    from iqabench.board.overview import family_of, worst_per_family

    per = _per_attack(np.random.default_rng(0))
    got = worst_per_family(per, ["model"])
    assert family_of("not-installed") == "not-installed" and family_of("uap (mean)") == "universal"
    for model, rows in per.groupby("model"):
        row = got[got["model"] == model].iloc[0]
        families = {TRUTH.get(a.split(" (")[0], a.split(" (")[0]) for a in rows["attack"]}
        for family in families:
            members = rows[[TRUTH.get(a.split(" (")[0], a.split(" (")[0]) == family for a in rows["attack"]]]
            finite = members[members["robustness"].notna()]
            if not len(finite):
                assert math.isnan(row[family])
                continue
            worst = finite.loc[finite["robustness"].idxmin()]
            assert row[family] == worst["robustness"]
            assert row[f"{family}_cell"] == worst["cell"]
            label = worst["attack"] + (f" ({worst['params']})" if worst["params"] else "")
            assert row[f"{family}_by"] == label
            for side in ("low", "high"):
                assert row[f"{family}_ci_{side}"] == pytest.approx(worst[f"robustness_ci_{side}"], nan_ok=True)


def test_an_attack_without_a_declared_family_is_its_own_column(monkeypatch):
    from iqabench.board.overview import family_of
    from iqabench.registry import lookup

    monkeypatch.setattr(lookup("attack", "fgsm").obj, "family", "")
    assert family_of("fgsm") == "fgsm"


def test_the_query_based_attacks_are_the_black_box_family():
    """Merged after the families: the four query-based attacks share one column."""
    from iqabench.registry import build

    for name in ("square-attack", "parsimonious", "grad-est", "onepixel"):
        assert build("attack", name, {}).family == "black-box", name
