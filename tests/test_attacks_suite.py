"""MI-FGSM, AMI-FGSM, Korhonen et al., MADC and PGD: closed forms on the
linear models, batched == per-image reference loops on a small nonlinear
model, bound / range / direction invariants for both orientations, and a
short run of each on the default model."""
from __future__ import annotations

import numpy as np
import pytest
import torch
from scipy import ndimage
from torch import nn

from iqabench.contracts import IQAModel
from iqabench.errors import ParameterError
from iqabench_plugins.adversarial.korhonen import Korhonen, activity_map
from iqabench_plugins.adversarial.madc import MADC, restore_mse
from iqabench_plugins.adversarial.mifgsm import AMIFGSM, MIFGSM
from iqabench_plugins.adversarial.pgd import PGD, random_crops
from models_for_tests import LinearScore, LowerBetterLinear


class TinyConvIQA(IQAModel):
    """A small nonlinear model whose input gradient changes from step to step."""

    name = "test-tinyconv"
    min_size = 4

    def __init__(self, lower_better: bool = False, seed: int = 0):
        super().__init__()
        g = torch.Generator().manual_seed(seed)
        self.conv = nn.Conv2d(3, 6, 3, padding=1)
        with torch.no_grad():
            self.conv.weight.copy_(torch.randn(self.conv.weight.shape, generator=g))
            self.conv.bias.copy_(torch.randn(6, generator=g) * 0.3)
        self.out = torch.randn(6, generator=g)
        self.lower_better = lower_better
        self.score_range = (0.0, 10.0)
        self.requires_grad_(False)

    def forward(self, x):
        h = torch.tanh(self.conv(x - 0.5))
        return 5.0 + 3.0 * (h.mean(dim=(2, 3)) * self.out).sum(1)


def _inputs(n=4, size=8, seed=1, lo=0.2, hi=0.8):
    g = torch.Generator().manual_seed(seed)
    return lo + (hi - lo) * torch.rand(n, 3, size, size, generator=g)


def _linf(a, b):
    return (a - b).abs().flatten(1).amax(1)


def _mse(a, b):
    return (a - b).pow(2).flatten(1).mean(1)


# --------------------------------------------------------------- MI-FGSM ---
@pytest.mark.parametrize("model_cls,sign", [(LinearScore, 1.0), (LowerBetterLinear, -1.0)])
@pytest.mark.parametrize("iters,alpha,l1", [(10, 1 / 255, False), (3, 2 / 255, False), (10, 1 / 255, True)])
def test_mifgsm_on_a_linear_score_walks_min_of_k_alpha_and_eps_along_sign_w(model_cls, sign, iters, alpha, l1):
    # constant gradient w: the momentum sum keeps sign(w) at every step
    model, x, eps = model_cls(), _inputs(), 10 / 255
    out = MIFGSM(eps=eps, alpha=alpha, iters=iters, l1_normalise=l1).perturb(model, x)
    expected = x + sign * min(iters * alpha, eps) * model.w.sign().detach()
    torch.testing.assert_close(out.images, expected, rtol=0, atol=1e-6)
    assert out.norm == "linf" and torch.allclose(out.bound, torch.full((4,), eps))


def _reference_mifgsm(model, image, eps, alpha, iters, nu, metric_range):
    """The MSU reference loop (methods/mifgsm/run.py), one image, with the
    orientation sign of the adversarial-defenses fork."""
    sign = -1.0 if model.lower_better else 1.0
    p = torch.zeros_like(image, requires_grad=True)
    g_prev = 0
    for _ in range(iters):
        res = image + p
        res.data.clamp_(0.0, 1.0)
        loss = 1 - sign * model(res).sum() / metric_range
        loss.backward()
        g = p.grad + g_prev * nu
        g_prev = g
        p.data -= alpha * torch.sign(g)
        p.data.clamp_(-eps, eps)
        p.grad.zero_()
    return (image + p).data.clamp(0, 1)


@pytest.mark.parametrize("lower_better", [False, True])
def test_mifgsm_batched_equals_the_per_image_reference_loop(lower_better):
    # away from 0/1: the reference keeps the part of p that the image clamp
    # cuts off, iqabench (project_linf, as I-FGSM) does not
    model, x = TinyConvIQA(lower_better), _inputs(n=3, size=10, lo=0.05, hi=0.95)
    adv = MIFGSM(iters=6, momentum=0.7).perturb(model, x).images
    ref = torch.cat([_reference_mifgsm(model, x[i:i + 1], 10 / 255, 1 / 255, 6, 0.7, 10.0) for i in range(3)])
    torch.testing.assert_close(adv, ref, rtol=0, atol=1e-6)


# -------------------------------------------------------------- AMI-FGSM ---
def _natural(n=3, size=96):
    """Centre crops of the embedded dataset's test images (NIQE needs >= 96 px)."""
    import iqabench

    ds = iqabench.get_dataset("embedded")
    items = list(ds.items("test"))[:: max(1, len(ds.items("test")) // n)][:n]
    x = torch.stack([ds.load(it) for it in items])
    top = (x.shape[-1] - size) // 2
    return x[..., top: top + size, top: top + size].contiguous()


def test_amifgsm_bound_is_one_over_niqe_of_each_image_and_the_step_is_bound_over_iters():
    from iqabench_plugins.adversarial.niqe import niqe

    x = _natural()
    for model, sign in ((LinearScore(size=96), 1.0), (LowerBetterLinear(size=96), -1.0)):
        out = AMIFGSM(iters=4).perturb(model, x)
        # NIQE recomputed one image at a time, independently of the batch
        expected_bound = torch.stack([1.0 / niqe(x[i:i + 1])[0] for i in range(len(x))])
        torch.testing.assert_close(out.bound, expected_bound, rtol=1e-6, atol=0)
        assert out.norm == "linf" and out.bound.shape == (3,)
        assert len(set(out.bound.tolist())) == 3  # genuinely per image
        # linear score: 4 steps of bound/4 along sign(w), then the [0,1] clamp
        step = out.bound.view(-1, 1, 1, 1)
        expected = (x + sign * step * model.w.sign().detach()).clamp(0, 1)
        torch.testing.assert_close(out.images, expected, rtol=0, atol=1e-5)
        assert (_linf(out.images, x) <= out.bound + 1e-6).all()


@pytest.mark.parametrize("model_cls,sign", [(LinearScore, 1.0), (LowerBetterLinear, -1.0)])
def test_amifgsm_fixed_mode_holds_every_image_to_the_reference_10_over_255(model_cls, sign):
    # the MSU code's AMI-FGSM: eps 10/255 for every image, 10 steps of eps/10;
    # no NIQE is computed (an 8 px image, too small for NIQE, is fine)
    model, x = model_cls(), _inputs(n=3, size=8)
    out = AMIFGSM(eps_mode="fixed").perturb(model, x)
    assert out.norm == "linf" and out.bound.tolist() == [torch.tensor(10 / 255).item()] * 3
    expected = (x + sign * (10 / 255) * model.w.sign().detach()).clamp(0, 1)
    torch.testing.assert_close(out.images, expected, rtol=0, atol=1e-6)
    assert "niqe" not in AMIFGSM(eps_mode="fixed").provenance()
    # the reference's AMI-FGSM is MI-FGSM at its defaults (step 10/255 / 10 = 1/255, momentum 1)
    tiny, z = TinyConvIQA(lower_better=sign < 0), _inputs(n=3, size=10)
    torch.testing.assert_close(AMIFGSM(eps_mode="fixed").perturb(tiny, z).images, MIFGSM().perturb(tiny, z).images,
                               rtol=0, atol=1e-6)


def test_amifgsm_refuses_images_smaller_than_the_niqe_patch_and_flat_images():
    from iqabench.errors import IQABenchError

    with pytest.raises(IQABenchError, match="96x96"):
        AMIFGSM().perturb(LinearScore(), _inputs())
    x = _inputs(n=2, size=96)
    x[1] = 0.5
    with pytest.raises(IQABenchError, match="image 1 .*flat"):
        AMIFGSM().perturb(LinearScore(size=96), x)


def test_amifgsm_reports_which_niqe_model_it_used():
    info = AMIFGSM().provenance()["niqe"]
    assert {"source", "version", "patch", "sha256"} <= set(info)


# -------------------------------------------------------------- Korhonen ---
_DF = np.array([[0, 1, 1, 1, 0], [1, 1, 1, 1, 1], [1, 1, 1, 1, 1], [1, 1, 1, 1, 1], [0, 1, 1, 1, 0]], bool)


def _reference_activity_map(img):
    """scipy: Sobel both ways, magnitude, border zeroed, / max, grey dilation."""
    y = 0.299 * img[0] + 0.587 * img[1] + 0.114 * img[2]
    mag = np.hypot(ndimage.sobel(y, axis=1), ndimage.sobel(y, axis=0))
    inner = np.zeros_like(mag)
    inner[1:-1, 1:-1] = mag[1:-1, 1:-1]
    inner = inner / inner.max() if inner.max() > 0 else np.ones_like(inner)
    return ndimage.grey_dilation(inner, footprint=_DF, mode="constant", cval=-np.inf)


def test_activity_map_matches_scipy_and_flat_images_get_ones():
    x = _inputs(n=2, size=12, lo=0.0, hi=1.0).double()
    ours = activity_map(x)
    for i in range(2):
        np.testing.assert_allclose(ours[i, 0].numpy(), _reference_activity_map(x[i].numpy()), atol=1e-12)
    assert torch.equal(activity_map(torch.full((1, 3, 9, 9), 0.4)), torch.ones(1, 1, 9, 9))


@pytest.mark.parametrize("map_on", ["update", "gradient"])
def test_korhonen_on_a_linear_score_closed_form(map_on):
    # Adam with a constant gradient steps exactly lr * sign(g) each time:
    # "update" scales that step by the map, "gradient" (Adam on grad * map)
    # keeps only the map's support
    x = _inputs(size=8)
    x[:, :, :, :4] = 0.3  # flat on the left: column 0 has no activity even after dilation
    assert (activity_map(x)[..., 0] == 0).all()
    for model, sign in ((LinearScore(), 1.0), (LowerBetterLinear(), -1.0)):
        out = Korhonen(iters=10, lr=0.005, map_on=map_on).perturb(model, x)
        mask = activity_map(x)
        weight = mask if map_on == "update" else (mask > 0).to(x.dtype)
        expected = x + sign * 10 * 0.005 * model.w.detach().sign() * weight
        torch.testing.assert_close(out.images, expected, rtol=0, atol=1e-5)
        torch.testing.assert_close(out.bound, _linf(out.images, x))
        assert out.norm == "linf"


def _spearman_delta_vs_map(x, adv):
    from scipy.stats import spearmanr

    act = activity_map(x)[:, 0]
    delta = (adv - x).abs().mean(1)  # per pixel, over the colour channels
    keep = act > 0
    return spearmanr(act[keep].numpy(), delta[keep].numpy()).statistic


@pytest.mark.parametrize("model", [LinearScore(size=24), LowerBetterLinear(size=24), TinyConvIQA(),
                                   TinyConvIQA(lower_better=True)], ids=lambda m: type(m).__name__)
def test_korhonen_perturbation_grows_with_the_activity_map(model):
    # the map must shape the perturbation, not just mask it: among pixels with
    # positive activity |delta| rises with the map (the old grad * map before
    # Adam gave every such pixel the same |delta| on a linear score)
    g = torch.Generator().manual_seed(2)
    x = 0.3 + 0.4 * torch.rand(2, 3, 24, 24, generator=g) * torch.linspace(0, 1, 24)  # texture growing left to right
    adv = Korhonen().perturb(model, x).images
    assert _spearman_delta_vs_map(x, adv) > 0.5


def test_korhonen_on_the_default_model_perturbs_textured_pixels_most():
    import iqabench

    model = iqabench.get_model("cnniqa").requires_grad_(False)
    x = _natural(n=2, size=96)
    assert _spearman_delta_vs_map(x, Korhonen().perturb(model, x).images) > 0.5


def _reference_korhonen(model, image, iters, lr, metric_range, map_on):
    sign = -1.0 if model.lower_better else 1.0
    sp = activity_map(image)
    img = image.clone().requires_grad_(True)
    opt = torch.optim.Adam([img], lr=lr)
    for _ in range(iters):
        loss = 1 - sign * model(img).sum() / metric_range
        loss.backward()
        before = img.detach().clone()
        if map_on == "gradient":
            img.grad *= sp
        opt.step()
        if map_on == "update":
            img.data = before + sp * (img.data - before)
        img.data.clamp_(0.0, 1.0)
        opt.zero_grad()
    return img.detach()


@pytest.mark.parametrize("map_on", ["update", "gradient"])
@pytest.mark.parametrize("lower_better", [False, True])
def test_korhonen_batched_equals_the_per_image_reference_loop(lower_better, map_on):
    # float64: Adam divides tiny masked gradients by their own size
    model, x = TinyConvIQA(lower_better).double(), _inputs(n=3, size=10, lo=0.0, hi=1.0).double()
    model.out = model.out.double()
    adv = Korhonen(iters=5, map_on=map_on).perturb(model, x).images
    ref = torch.cat([_reference_korhonen(model, x[i:i + 1], 5, 0.005, 10.0, map_on) for i in range(3)])
    torch.testing.assert_close(adv, ref, rtol=0, atol=1e-12)


# ------------------------------------------------------------------ MADC ---
def test_restore_mse_lands_every_image_in_the_window_without_exceeding_the_budget():
    x = _inputs(n=6, size=8, lo=0.0, hi=1.0)
    g = torch.Generator().manual_seed(3)
    # perturbations far too small, far too large, exact, and clamped at 0/1
    scales = torch.tensor([1e-4, 0.01, 0.04, 0.3, 2.0, 5.0]).view(-1, 1, 1, 1)
    x_adv = (x + scales * torch.randn(x.shape, generator=g)).clamp(0, 1)
    target = torch.full((6,), (10 / 255) ** 2)
    out = restore_mse(x, x_adv, target, precision=0.04)
    m = _mse(out, x)
    assert ((m >= 0.96 * target) & (m <= target)).all(), m / target
    assert out.min() >= 0 and out.max() <= 1


def test_restore_mse_is_a_rescaling_along_the_mse_gradient():
    # without clamping, moving along the MSE gradient only rescales the
    # perturbation: the result is x + c d with c in the closed-form window
    x = torch.full((1, 3, 8, 8), 0.5)
    d = 0.01 * torch.ones_like(x)
    d[..., ::2, :] *= -1
    target = torch.tensor([(10 / 255) ** 2])
    out = restore_mse(x, x + d, target, precision=0.01)
    c = (out - x) / d
    assert torch.allclose(c, c.flatten()[0].expand_as(c), atol=1e-5)
    c_star = (10 / 255) / 0.01  # exact scale for MSE = target
    assert 0.99**0.5 * c_star - 1e-4 <= float(c.flatten()[0]) <= c_star + 1e-4


@pytest.mark.parametrize("init", ["noise", "gradient"])
@pytest.mark.parametrize("model_cls,sign", [(LinearScore, 1.0), (LowerBetterLinear, -1.0)])
def test_madc_keeps_every_image_on_the_mse_sphere_and_moves_the_score(init, model_cls, sign):
    torch.manual_seed(0)
    model, x = model_cls(), _inputs(n=16)
    out = MADC(init=init).perturb(model, x)
    target = (10 / 255) ** 2
    m = _mse(out.images, x)
    assert ((m >= 0.96 * target - 1e-9) & (m <= target + 1e-9)).all(), m / target
    assert out.norm == "mse" and torch.allclose(out.bound, torch.full((16,), target))
    assert out.images.min() >= 0 and out.images.max() <= 1
    with torch.no_grad():
        delta = (model(out.images) - model(x)).mean()
    assert sign * delta > 0


@pytest.mark.parametrize("init", ["noise", "gradient"])
def test_madc_on_the_sphere_gets_close_to_the_spheres_maximum(init):
    # a linear score's maximum on the sphere ||d||_2 = eps sqrt(N) is
    # eps sqrt(N) ||w||_2 (d along w; the images are far enough from 0 and 1
    # for no clamp to bind). The defaults must cross the sphere from any start:
    # the old 8 steps of 0.001 from noise reached 12-27% of it
    torch.manual_seed(0)
    model, x = LinearScore(size=16), _inputs(n=8, size=16, lo=0.3, hi=0.7)
    out = MADC(init=init).perturb(model, x)
    best = (10 / 255) * x[0].numel() ** 0.5 * model.w.detach().norm()
    with torch.no_grad():
        reached = (model(out.images) - model(x)) / best
    assert (reached > 0.95).all() and (reached <= 1 + 1e-6).all(), reached


@pytest.mark.parametrize("lower_better", [False, True])
def test_madc_projected_steps_beat_the_starting_point(lower_better):
    # same seed -> same noise start; the projected steps must improve on it
    model, x = TinyConvIQA(lower_better), _inputs(n=6, size=10)
    torch.manual_seed(5)
    start = MADC(init="noise", iters=1, lr=1e-12).perturb(model, x).images
    torch.manual_seed(5)
    adv = MADC(init="noise", iters=8).perturb(model, x).images
    with torch.no_grad():
        better = model.direction * (model(adv) - model(start))
    assert (better > 0).all()


def test_madc_defaults_are_the_reference_code_and_mode_specific_steps():
    assert (MADC().init, MADC().lr, MADC().iters, MADC().pullback) == ("clean", 0.001, 8, 0.0005)
    assert (MADC(init="noise").lr, MADC(init="noise").iters) == ((10 / 255) / 8, 40)
    assert (MADC(init="noise", lr=0.01, iters=3).lr, MADC(init="noise", lr=0.01, iters=3).iters) == (0.01, 3)


@pytest.mark.parametrize("lower_better", [False, True])
def test_madc_with_a_vanishing_step_returns_the_clean_image(lower_better):
    model, x = TinyConvIQA(lower_better), _inputs(n=4, size=10, lo=0.0, hi=1.0)
    out = MADC(lr=1e-12).perturb(model, x)
    torch.testing.assert_close(out.images, x, rtol=0, atol=1e-9)


def _reference_madc(w, image, span, lr, eps, iters, pullback):
    """The MSU code (methods/madc/run.py) on s = sum(w x), one image, numpy:
    loss = 1 - s/span, so its gradient is -w/span at every point; the RMSE
    gradient is d / (N RMSE)."""
    x0 = image.astype(np.float64)
    x = x0.copy()
    g2 = -w / span
    for i in range(iters):
        if i < 1:
            pg = g2
        else:
            d = x - x0
            g1 = d / (d.size * np.sqrt((d ** 2).mean()))
            pg = g2 - (g1 * g2).sum() / (g1 * g1).sum() * g1
        x = x - lr * np.sign(pg)
        rmse = np.sqrt(((x - x0) ** 2).mean())
        while rmse > eps:
            x = np.clip(x - pullback * np.sign(x - x0), 0, 1)
            rmse = np.sqrt(((x - x0) ** 2).mean())
        x = np.clip(x, 0, 1)
    return x


@pytest.mark.parametrize("eps,iters", [(10 / 255, 8), (0.002, 12), (0.0013, 20)])
@pytest.mark.parametrize("model_cls", [LinearScore, LowerBetterLinear])
def test_madc_default_follows_the_reference_code_on_a_linear_model(eps, iters, model_cls):
    # images touching 0 and 1 (the clamps bind), budgets small enough for the
    # pull-back to run (projected steps grow the RMSE slowly), in float64
    model = model_cls(size=6).double()
    x = _inputs(n=3, size=6, lo=0.0, hi=1.0).double()
    x[0, 0] = 0.0
    x[1, 1] = 1.0
    out = MADC(eps=eps, iters=iters).perturb(model, x)
    w = model.direction * model.w.detach().numpy()[0]  # the reference's model outputs "higher is better"
    for i in range(3):
        ref = _reference_madc(w, x[i].numpy(), 1.0, 0.001, eps, iters, 0.0005)
        np.testing.assert_allclose(out.images[i].numpy(), ref, rtol=0, atol=1e-12)
    rmse = _mse(out.images, x).sqrt()
    assert (rmse <= eps).all()
    if eps < 0.01:
        assert (rmse > eps - 0.0005).all()  # the pull-back ran and stopped at the budget


def test_madc_two_reference_steps_by_hand():
    # away from 0/1: step 1 is lr sign(w); then d = lr sign(w), and w minus its
    # part along d is w - mean|w| sign(w), whose sign is sign(w) where |w| is
    # above its mean and -sign(w) below: step 2 doubles the first step there
    # and undoes it elsewhere
    model, x = LinearScore(size=8), _inputs(n=2, size=8)
    w = model.w.detach()
    out = MADC(iters=2).perturb(model, x)
    expected = x + 0.001 * w.sign() * (1 + (w.abs() - w.abs().mean()).sign())
    torch.testing.assert_close(out.images, expected, rtol=0, atol=1e-7)


@pytest.mark.parametrize("init", ["clean", "noise", "gradient"])
def test_madc_holds_its_mse_constraint_for_every_image(init):
    # clean: MSE <= eps^2 (an inequality; steps large enough to reach it);
    # noise / gradient: (1 - precision) eps^2 <= MSE <= eps^2
    torch.manual_seed(0)
    model, x = TinyConvIQA(), _inputs(n=6, size=10, lo=0.0, hi=1.0)
    eps = 4 / 255
    out = MADC(init=init, eps=eps, lr=0.01, iters=10).perturb(model, x)
    m = _mse(out.images, x)
    assert out.norm == "mse" and torch.allclose(out.bound, torch.full((6,), eps ** 2))
    assert (m <= eps ** 2 * (1 + 1e-6)).all(), m / eps ** 2
    low = (eps - 0.0005) ** 2 if init == "clean" else 0.96 * eps ** 2  # clean: the pull-back stops within a step
    assert (m >= low).all(), m / eps ** 2


def test_madc_pull_back_ends_when_the_budget_is_below_half_a_step():
    # sign steps of 0.0005 oscillate around x: the reference's loop would never
    # end; ours stops and rescales onto the budget
    # (steps of 0.0007: |d| goes 0.0007, 0.0002, 0.0003, 0.0002, ...)
    model, x = LinearScore(size=4), _inputs(n=2, size=4)
    eps = 0.0001
    out = MADC(eps=eps, iters=3, lr=0.0007).perturb(model, x)
    rmse = _mse(out.images, x).sqrt()  # float32: x + c d rounds to within ~6e-8 of its value
    assert (rmse <= eps * (1 + 1e-3)).all() and (rmse > 0.5 * eps).all()


# ------------------------------------------------- common invariants ------
ATTACKS = [
    MIFGSM(iters=4), Korhonen(iters=4), MADC(iters=3), MADC(init="noise", iters=3), PGD(iters=4),
    PGD(norm="l2", eps=0.5, step=0.1, iters=4, random_start=True),
    PGD(iters=3, eot_crops=3, crop_size=6, random_start=True), PGD(iters=3, target=4.0),
]


@pytest.mark.parametrize("attack", ATTACKS, ids=lambda a: f"{a.name}")
@pytest.mark.parametrize("lower_better", [False, True])
def test_bound_and_range_invariants_near_the_edges_of_the_range(attack, lower_better):
    torch.manual_seed(0)
    model = TinyConvIQA(lower_better)
    x = _inputs(n=4, size=10, lo=0.0, hi=1.0)
    x[0] = 0.0
    x[1] = 1.0  # saturated images: the clamp must hold
    out = attack.perturb(model, x)
    adv = out.images
    assert adv.shape == x.shape and adv.dtype == x.dtype
    assert adv.min() >= 0 and adv.max() <= 1
    assert out.bound.shape == (4,)
    if out.norm == "linf":
        assert (_linf(adv, x) <= out.bound + 1e-6).all()
    elif out.norm == "l2":
        assert ((adv - x).flatten(1).norm(dim=1) <= out.bound + 1e-5).all()
    else:
        assert out.norm == "mse" and (_mse(adv, x) <= out.bound + 1e-9).all()


@pytest.mark.parametrize(
    "cls,bad",
    [(MIFGSM, {"eps": 0.0}), (MIFGSM, {"iters": 0}), (MIFGSM, {"momentum": -1.0}), (AMIFGSM, {"iters": 0}),
     (Korhonen, {"lr": 0.0}), (MADC, {"precision": 0.0}), (MADC, {"precision": 1.5}), (MADC, {"eps": -1.0}),
     (PGD, {"step": 0.0}), (PGD, {"eot_crops": -1}), (PGD, {"norm": "l1"})],
)
def test_bad_parameters_are_refused_naming_the_parameter(cls, bad):
    with pytest.raises(ParameterError, match=list(bad)[0]):
        cls(**bad)


def test_all_new_attacks_are_registered_and_built_with_reference_defaults():
    import iqabench

    a = iqabench.get_attack("mifgsm")
    assert (a.eps, a.alpha, a.iters, a.momentum) == (10 / 255, 1 / 255, 10, 1.0)
    k = iqabench.get_attack("korhonen")
    assert (k.iters, k.lr) == (10, 0.005)
    m = iqabench.get_attack("madc")
    assert (m.eps, m.lr, m.iters, m.precision) == (10 / 255, 0.001, 8, 0.04)
    assert iqabench.get_attack("amifgsm").iters == 10
    p = iqabench.get_attack("pgd", norm="l2", target="50", eot_crops="25")
    assert (p.norm, p.target, p.eot_crops, p.crop_size) == ("l2", 50.0, 25, 224)
    for name in ("mifgsm", "amifgsm", "korhonen", "madc", "pgd"):
        assert iqabench.get_attack(name).description


# ---------------------------------------------------- the default model ---
#: AMI-FGSM keeps its 10 iterations: its bound 1/NIQE is ~0.10-0.15 on these
#: images, and 2 steps of bound/2 leave the region where the gradient says
#: anything about the score (measured: -32 ... -51 with 2, +20 ... +30 with 10)
DEFAULT_MODEL_ATTACKS = [
    (MIFGSM(iters=3), 48), (AMIFGSM(iters=10), 96), (Korhonen(iters=3), 48), (MADC(iters=2), 48),
    (PGD(eps=4 / 255, step=2 / 255, iters=3), 48), (PGD(eps=4 / 255, step=2 / 255, iters=2, eot_crops=2, crop_size=40), 48),
]


@pytest.fixture(scope="module")
def default_model_and_images():
    import iqabench

    model = iqabench.get_model("cnniqa").requires_grad_(False)
    return model, _natural(n=4, size=96)


@pytest.mark.parametrize("attack,size", DEFAULT_MODEL_ATTACKS, ids=lambda a: getattr(a, "name", str(a)))
@pytest.mark.parametrize("lower_better", [False, True])
def test_each_attack_moves_the_default_model_in_its_better_direction(default_model_and_images, attack, size,
                                                                      lower_better):
    model, x = default_model_and_images
    x = x[..., :size, :size]
    model.lower_better = lower_better  # instance override: the same network, other orientation
    try:
        torch.manual_seed(0)
        out = attack.perturb(model, x)
        with torch.no_grad():
            gain = (model(out.images) - model(x)).mean()
    finally:
        del model.lower_better
    assert out.images.min() >= 0 and out.images.max() <= 1
    if out.norm == "linf":
        assert (_linf(out.images, x) <= out.bound + 1e-6).all()
    if out.norm == "mse":
        m = _mse(out.images, x)
        low = 0.0 if attack.init == "clean" else (1 - attack.precision) * out.bound - 1e-9  # clean: MSE <= bound
        assert ((m >= low) & (m <= out.bound + 1e-9)).all()
    assert (gain < 0) if lower_better else (gain > 0), float(gain)


def test_pgd_eot_scores_at_most_eot_batch_crops_per_pass_and_its_result_does_not_depend_on_it(
        default_model_and_images, monkeypatch):
    """32 images x 25 crops in one pass held 20.7 GiB on the default model (a
    24 GiB machine's out-of-memory killer took it); the crops of all images are
    drawn first, so splitting their scoring changes nothing but the peak."""
    model, x = default_model_and_images
    x = x[..., :64, :64]  # 4 images
    seen: list[int] = []
    real_forward = model.forward

    def counting(z):
        seen.append(len(z))
        return real_forward(z)

    monkeypatch.setattr(model, "forward", counting)
    attack = PGD(eps=8 / 255, step=2 / 255, iters=2, target=50.0, eot_crops=3, crop_size=40)
    results = {}
    for eot_batch in (1000, 6, 1):
        monkeypatch.setattr(PGD, "eot_batch", eot_batch)
        seen.clear()
        torch.manual_seed(3)
        results[eot_batch] = attack.perturb(model, x).images
        assert max(seen) <= max(eot_batch, attack.eot_crops)  # whole images: at least one image's crops
        assert sum(seen) == 2 * len(x) * attack.eot_crops  # every crop of every iteration, once
    assert torch.equal(results[1000], results[6]) and torch.equal(results[1000], results[1])
    assert (results[1000] - x).abs().max() > 1 / 255  # the attack moved the images
