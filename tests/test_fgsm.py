"""FGSM and I-FGSM against closed forms on a linear model, and invariants on
the default model (bound, [0,1] range, direction for both orientations)."""
import pytest
import torch

from iqabench.errors import ParameterError
from iqabench_plugins.adversarial.fgsm import FGSM, IFGSM
from models_for_tests import LinearScore, LowerBetterLinear


def _inputs(size=8, n=4, seed=1):
    g = torch.Generator().manual_seed(seed)
    return 0.2 + 0.6 * torch.rand(n, 3, size, size, generator=g)  # away from 0/1: no clamping


def test_fgsm_is_one_signed_step_of_eps():
    model, x = LinearScore(), _inputs()
    out = FGSM(eps=10 / 255).perturb(model, x)
    torch.testing.assert_close(out.images, x + 10 / 255 * model.w.sign().detach(), rtol=0, atol=1e-6)
    assert out.norm == "linf" and torch.allclose(out.bound, torch.full((4,), 10 / 255))


def test_fgsm_pushes_a_lower_is_better_model_down():
    model, x = LowerBetterLinear(), _inputs()
    adv = FGSM().perturb(model, x).images
    torch.testing.assert_close(adv, x - 10 / 255 * model.w.sign().detach(), rtol=0, atol=1e-6)
    assert (model(adv) < model(x)).all()


@pytest.mark.parametrize("model_cls,sign", [(LinearScore, 1.0), (LowerBetterLinear, -1.0)])
@pytest.mark.parametrize("iters,alpha", [(10, 1 / 255), (10, 2 / 255), (3, 1 / 255)])
def test_ifgsm_walks_min_of_k_alpha_and_eps_along_sign_w(model_cls, sign, iters, alpha):
    # A linear score has a constant gradient w, so each step moves every pixel
    # by alpha*sign(w) until the eps projection stops it: the closed form is
    # x + sign * min(iters*alpha, eps) * sign(w).
    model, x, eps = model_cls(), _inputs(), 10 / 255
    adv = IFGSM(eps=eps, alpha=alpha, iters=iters).perturb(model, x).images
    expected = x + sign * min(iters * alpha, eps) * model.w.sign().detach()
    torch.testing.assert_close(adv, expected, rtol=0, atol=1e-5)


def test_clamping_to_the_image_range():
    model = LinearScore()
    x = torch.ones(2, 3, 8, 8) * 0.999
    adv = IFGSM().perturb(model, x).images
    assert adv.min() >= 0 and adv.max() <= 1
    assert ((adv - x).abs() <= 10 / 255 + 1e-7).all()


@pytest.mark.parametrize("bad", [{"eps": 0.0}, {"eps": -1.0}, {"iters": 0}, {"alpha": 0.0}])
def test_non_positive_parameters_are_refused(bad):
    with pytest.raises(ParameterError, match=list(bad)[0]):
        IFGSM(**bad)


@pytest.mark.parametrize("lower_better", [False, True])
@pytest.mark.parametrize("attack", [FGSM(), IFGSM()])
def test_default_model_bound_range_and_direction(attack, lower_better):
    """On the trained default model every image stays in its eps ball and in
    [0,1], and the mean score moves in the model's "better" direction."""
    import iqabench

    model = iqabench.get_model("cnniqa").requires_grad_(False)
    model.lower_better = lower_better  # instance override: same network, other orientation
    ds = iqabench.get_dataset("embedded")
    x = torch.stack([ds.load(it) for it in list(ds.items("test"))[:8]])
    adv = attack.perturb(model, x).images
    assert ((adv - x).abs().amax() <= attack.eps + 1e-6)
    assert adv.min() >= 0 and adv.max() <= 1
    with torch.no_grad():
        delta = (model(adv) - model(x)).mean()
    assert (delta < 0) if lower_better else (delta > 0)
