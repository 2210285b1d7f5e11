"""Attacker modes behind input purification: non-adaptive (crafted on the bare model)
and adaptive (crafted through the defence: BPDA, EOT), unit and end to end."""
from __future__ import annotations

import json
import sqlite3

import numpy as np
import pytest
import torch

from iqabench.contracts import IQAModel
from iqabench.gradients import gain_and_grad
from iqabench.models.purified import AdaptiveModel, PurifiedModel, attacker_model
from iqabench.registry import build_attack, build_defense
from models_for_tests import LinearScore, Registers, TinyConvIQA, TinyData


def _adaptive(inner, name, **params):
    d = build_defense(name, {"adaptive": True, **params})
    return AdaptiveModel(inner, d, {"name": name, "params": d.params})


def test_bpda_passes_the_gradient_through_a_non_differentiable_purifier():
    """JPEG (PIL) has no autograd graph; through BPDA the gradient of a linear score
    sum(w * purify(x)) is w (the identity's backward), while the score is that of the
    purified image."""
    inner = LinearScore(seed=1, size=16).double().requires_grad_(False)
    x = torch.rand(2, 3, 16, 16, dtype=torch.float64)
    for name in ("jpeg", "bit-depth"):
        model = _adaptive(inner, name)
        gain, grad = gain_and_grad(model, x)
        purified = build_defense(name, {}).purify(x)
        torch.testing.assert_close(gain, inner(purified))  # score range (0, 1): gain = score
        torch.testing.assert_close(grad, inner.w.detach().expand_as(x))
    with pytest.raises(RuntimeError):  # without BPDA there is no gradient at all
        xr = x.clone().requires_grad_(True)
        torch.autograd.grad(inner(build_defense("jpeg", {}).purify(xr)).sum(), xr)


class _PlainThroughNoise(IQAModel):
    """The plain adaptive target, written out: inner(x + sigma * noise), one draw per forward."""

    name = "plain-through"
    min_size = 1

    def __init__(self, inner, sigma):
        super().__init__()
        self.inner, self.sigma = inner, sigma
        self.score_range = inner.score_range

    def forward(self, x):
        return self.inner((x + self.sigma * torch.randn(x.shape, dtype=x.dtype)).clamp(0, 1))


@pytest.mark.parametrize("attack", ["fgsm", "ifgsm"])
def test_eot_with_one_sample_is_the_plain_adaptive_attack_with_that_seed(attack):
    torch.manual_seed(0)
    inner = TinyConvIQA().double().eval().requires_grad_(False)
    inner.score_range = (0.0, 100.0)
    x = torch.rand(2, 3, 24, 24, dtype=torch.float64)
    a = build_attack(attack, {})
    torch.manual_seed(7)
    eot = a.perturb(_adaptive(inner, "random-noise", sigma=0.05, eot_samples=1), x).images
    torch.manual_seed(7)
    plain = a.perturb(_PlainThroughNoise(inner, 0.05), x).images
    torch.testing.assert_close(eot, plain, rtol=0, atol=0)


def test_eot_averages_independent_draws():
    inner = LinearScore(seed=2, size=8).double().requires_grad_(False)
    x = torch.rand(1, 3, 8, 8, dtype=torch.float64)
    torch.manual_seed(5)
    got = _adaptive(inner, "random-noise", sigma=0.1, eot_samples=3)(x)
    torch.manual_seed(5)
    want = sum(inner((x + 0.1 * torch.randn(x.shape, dtype=x.dtype)).clamp(0, 1)) for _ in range(3)) / 3
    torch.testing.assert_close(got, want)


def test_attacker_model_by_mode():
    inner = LinearScore(seed=0).requires_grad_(False)
    plain = PurifiedModel(inner, build_defense("jpeg", {}))
    assert attacker_model(inner) is inner and attacker_model(plain) is inner
    adaptive = PurifiedModel(inner, build_defense("jpeg", {"adaptive": True}))
    adaptive.defense = {"name": "jpeg", "params": {"adaptive": True}}
    through = attacker_model(adaptive)
    assert isinstance(through, AdaptiveModel) and through.params["through"]["name"] == "jpeg"


# ------------------------------------------------------------ end to end ---
def _run(invoke, store, defense, *params, attacks=("fgsm", "ifgsm", "uap")):
    args = ["run", "-m", "test-tiny-cnn", "-d", "test-tiny-data", "--weights", "random", "--defense", defense,
            "--param", "uap.size=32", "--param", "uap.epochs=1", "--limit", "4", "--train-limit", "4",
            "--store", str(store), "--no-leaderboard", "--no-baselines", "-q"]
    for a in attacks:
        args += ["-a", a]
    for p in params:
        args += ["--defense-param", p]
    result = invoke(args)
    assert result.exit_code == 0, result.output


def _cells(store):
    db = sqlite3.connect(store)
    out = {}
    for key, config, defense in db.execute("SELECT key, config, defense FROM cells"):
        cfg = json.loads(config)
        rows = db.execute("SELECT name, clean, attacked FROM images WHERE cell_key = ? ORDER BY idx", (key,)).fetchall()
        adaptive = (cfg.get("defense") or {}).get("params", {}).get("adaptive")
        amp = cfg["attack"].get("amplitude")
        out[(defense or "none", adaptive, cfg["attack"]["name"] + (f"@{amp}" if amp is not None else ""))] = (key, rows, cfg)
    return out


def test_every_attack_runs_in_both_modes_and_non_adaptive_attacks_the_bare_model(invoke, plugin, tmp_path):
    """Non-adaptive: the attack is the undefended cell's (same images: its clean and attacked
    scores through the purifier are the purified model's scores of the undefended cell's
    images); adaptive: crafted through the defence, another key; both for gradient and
    universal attacks, and for a random purifier (EOT) and a non-differentiable one (BPDA)."""
    plugin(Registers(models=[TinyConvIQA], datasets=[TinyData.make(n_train=4, n_test=4)]), "tiny-adaptive")
    store = tmp_path / "s.sqlite"
    _run(invoke, store, "none")
    for defense in ("jpeg", "random-noise"):
        _run(invoke, store, defense)
        _run(invoke, store, defense, "adaptive=true", "eot_samples=2")
    cells = _cells(store)
    attacks = {a for (_, _, a) in cells}
    assert {"fgsm", "ifgsm", "uap@0.2"} <= attacks
    keys = {k for k, _, _ in cells.values()}
    assert len(keys) == len(cells)  # the mode is in the key
    for defense in ("jpeg", "random-noise"):
        for attack in attacks:
            plain, adaptive = cells[(defense, False, attack)], cells[(defense, True, attack)]
            assert plain[2]["defense"]["params"]["adaptive"] is False
            assert [r[1] for r in plain[1]] == [r[1] for r in adaptive[1]] or defense == "random-noise"
            assert np.isfinite([r[2] for r in adaptive[1]]).all()
    # non-adaptive jpeg: the purified model's score of the undefended cell's attacked images
    from iqabench.models.build import build_model

    _, none_rows, none_cfg = cells[("none", None, "ifgsm")]
    assert cells[("jpeg", False, "uap@0.2")][2]["attack"]["artifact"] == cells[("none", None, "uap@0.2")][2]["attack"]["artifact"]
    assert cells[("jpeg", True, "uap@0.2")][2]["attack"]["artifact"] != cells[("none", None, "uap@0.2")][2]["attack"]["artifact"]
    jpeg_rows = cells[("jpeg", False, "ifgsm")][1]
    assert [r[0] for r in jpeg_rows] == [r[0] for r in none_rows]
    assert [r[1] for r in jpeg_rows] != [r[1] for r in none_rows]  # scored through the purifier


BLACK_BOX = ("square-attack", "parsimonious", "grad-est", "onepixel")


@pytest.mark.slow
def test_every_registered_attack_runs_adaptively(invoke, plugin, tmp_path):
    """'*' (every adversarial and universal attack) through BPDA (jpeg) and EOT (random-noise)."""
    plugin(Registers(models=[TinyConvIQA], datasets=[TinyData.make(n_train=4, n_test=4, size=96)]), "tiny-all")
    store = tmp_path / "s.sqlite"
    for defense, extra in (("random-noise", ["--defense-param", "eot_samples=2"]), ("jpeg", [])):
        result = invoke(["run", "-m", "test-tiny-cnn", "-d", "test-tiny-data", "--weights", "random", "-a", "*",
                         "--param", "uap.size=96", "--param", "cumulative-uap.size=96", "--param", "uap.epochs=1",
                         "--param", "cumulative-uap.epochs=1", "--param", "generative-uap.epochs=1",
                         "--limit", "4", "--train-limit", "4", "--defense", defense,
                         "--defense-param", "adaptive=true", *extra,
                         "--store", str(store), "--no-leaderboard", "--no-baselines", "-q"])
        assert result.exit_code == 0, result.output
        # the query-based attacks ('*' leaves them out: thousands of queries) through the same defence
        blackbox = [a for n in BLACK_BOX for a in ("-a", n)]
        result = invoke(["run", "-m", "test-tiny-cnn", "-d", "test-tiny-data", "--weights", "random", *blackbox,
                         "--param", "queries=6", "--limit", "2", "--defense", defense,
                         "--defense-param", "adaptive=true", *extra,
                         "--store", str(store), "--no-leaderboard", "--no-baselines", "-q"])
        assert result.exit_code == 0, result.output
    from iqabench.registry import registry

    attacks = {n for n, r in registry("attack").items() if getattr(r.obj, "kind", "") in ("adversarial", "universal")}
    assert set(BLACK_BOX) <= attacks  # every registered attack below, black-box ones included
    done = {(d, json.loads(c)["attack"]["name"])
            for d, c in sqlite3.connect(store).execute("SELECT defense, config FROM cells WHERE status = 'done'")}
    assert {(d, a) for d in ("jpeg", "random-noise") for a in attacks} <= done


def test_a_universal_attacks_mean_row_averages_its_own_defences_amplitudes_only(invoke, plugin, tmp_path):
    """A non-adaptive purified UAP cell reuses the bare model's UAP (one artifact), so
    the mean over amplitudes must be grouped by the row's defence too: the undefended
    'uap (mean)' once averaged every purifier's amplitudes with its own."""
    from iqabench.board.adversarial import adversarial_table
    from iqabench.run.store import Store

    plugin(Registers(models=[TinyConvIQA], datasets=[TinyData.make(n_train=4, n_test=4)]), "tiny-uap-mean")
    store = tmp_path / "s.sqlite"
    for defense in ("none", "jpeg", "bit-depth"):
        _run(invoke, store, defense, attacks=("uap",))
    table = adversarial_table(Store(store))
    amplitudes = table[table["attack"].str.startswith("uap @")]
    means = table[table["attack"] == "uap (mean)"]
    assert sorted(means["defense"]) == ["bit-depth", "jpeg", "none"]
    for _, mean in means.iterrows():
        own = amplitudes[amplitudes["defense"] == mean["defense"]]
        assert len(own) == 3 and sorted(mean["cell"].split(",")) == sorted(own["cell"])
        assert mean["abs_gain"] == pytest.approx(own["abs_gain"].mean())
        assert mean["clean_srocc"] == pytest.approx(own["clean_srocc"].mean(), nan_ok=True)
