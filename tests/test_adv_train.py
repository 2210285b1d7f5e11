"""Adversarial training (adv-train): ratio 0 is plain training bit for bit, the PGD step
against its closed form on a linear model, the relabelling rules of the release."""
from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

from iqabench.metrics import images as imagemetrics
from iqabench.models.training import train_model
from iqabench.registry import baseline_of, build_defense
from models_for_tests import LinearScore, TinyConvIQA, TinyData


def _state(model):
    return {k: v.clone() for k, v in model.state_dict().items()}


def test_ratio_zero_is_bit_identical_to_plain_training():
    data = TinyData.make()()
    torch.manual_seed(0)
    plain = TinyConvIQA()
    torch.manual_seed(0)
    defended = TinyConvIQA()
    assert all(torch.equal(a, b) for a, b in zip(_state(plain).values(), _state(defended).values()))
    train_model(plain, data, plain.recipe(), seed=3, progress=False)
    build_defense("adv-train", {"ratio": 0.0}).apply(defended, data, seed=3, progress=False)
    for (k, a), b in zip(_state(plain).items(), _state(defended).values()):
        assert torch.equal(a, b), k
    # and the defence at ratio > 0 does change training (the test can fail)
    torch.manual_seed(0)
    other = TinyConvIQA()
    build_defense("adv-train", {"ratio": 1.0}).apply(other, data, seed=3, progress=False)
    assert not all(torch.equal(a, b) for a, b in zip(_state(plain).values(), _state(other).values()))


def test_baseline_is_ratio_zero_shared_by_every_variant_of_one_recipe():
    a = baseline_of("adv-train", {"ratio": 0.5, "relabel": "ssim", "eps": 0.01, "epochs": 4})
    b = baseline_of("adv-train", {"epochs": 4})
    assert a["name"] == "adv-train" and a["params"]["ratio"] == 0.0 and a["params"]["epochs"] == 4
    assert build_defense("adv-train", a["params"]).params == build_defense("adv-train", b["params"]).params


def test_pgd_step_on_a_linear_model_is_the_closed_form():
    """f = sum(w x), L1 loss |f - y|: the gradient is sign(f - y) w, so one step of size
    5/255 from the crop, projected on eps = 4/255, moves every pixel by 4/255 * sign(f - y) sign(w)
    (then the [0, 1] clamp)."""
    model = LinearScore(seed=1, size=8).double()
    x = torch.rand(4, 3, 8, 8, dtype=torch.float64)
    y = model(x).detach() + torch.tensor([5.0, -5.0, 3.0, -3.0], dtype=torch.float64)
    d = build_defense("adv-train", {})
    adv = d.attack(model, x, y, F.l1_loss)
    direction = torch.sign(model(x).detach() - y).view(-1, 1, 1, 1) * model.w.detach().sign()
    torch.testing.assert_close(adv, (x + 4 / 255 * direction).clamp(0, 1))


def test_relabelling_rules():
    x = torch.rand(3, 3, 16, 16, dtype=torch.float64)
    adv = (x + 0.05 * torch.randn_like(x)).clamp(0, 1)
    mos = torch.tensor([20.0, 50.0, 90.0], dtype=torch.float64)
    low, high = 10.0, 90.0
    ssim = imagemetrics.ssim(adv, x)
    got = build_defense("adv-train", {"relabel": "ssim", "penalty": 2.0}).labels(adv, x, mos, low, high)
    torch.testing.assert_close(got, (mos - 2.0 * (1 - ssim) * 80).clamp(low, high))
    assert torch.equal(build_defense("adv-train", {}).labels(adv, x, mos, low, high), mos)
    assert torch.equal(build_defense("adv-train", {"relabel": "min"}).labels(adv, x, mos, low, high),
                       torch.full_like(mos, low))
    torch.testing.assert_close(build_defense("adv-train", {"relabel": "percent", "penalty": 0.1}).labels(
        adv, x, mos, low, high), torch.tensor([12.0, 42.0, 82.0], dtype=torch.float64))


@pytest.mark.parametrize("keep_clean,size", [(True, 6), (False, 4)])
def test_batch_composition(keep_clean, size):
    model = LinearScore(seed=1, size=8).double()
    x = torch.rand(4, 3, 8, 8, dtype=torch.float64)
    y = torch.full((4,), 0.5, dtype=torch.float64)
    aug = build_defense("adv-train", {"ratio": 0.5, "keep_clean": keep_clean}).augmenter(model, 0.0, 1.0)
    crops, target = aug(x, y, F.l1_loss)
    assert len(crops) == len(target) == size
    assert not torch.equal(crops[:2], x[:2]) and torch.equal(crops[-2:], x[-2:])
