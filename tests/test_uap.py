"""Universal perturbations: closed forms on the linear models (Adam and the
cumulative sum with a constant gradient), clamps, the tiling + clamping of
``apply``, size handling, determinism under a seed, the U-Net generator, the
plugin registration, and one fit on the default model."""
from __future__ import annotations

import pytest
import torch

from iqabench.contracts import UniversalAttack
from iqabench.errors import ParameterError
from iqabench_plugins.uap.generator import UnetGenerator
from iqabench_plugins.uap.uap import CumulativeUAP, GenerativeUAP, OptimizedUAP, train_view
from models_for_tests import LinearScore, LowerBetterLinear


def _batches(n_batches=3, b=2, size=8, seed=0, lo=0.2, hi=0.8):
    g = torch.Generator().manual_seed(seed)
    return [lo + (hi - lo) * torch.rand(b, 3, size, size, generator=g) for _ in range(n_batches)]


# --------------------------------------------------------- closed forms ---
@pytest.mark.parametrize("model_cls,sign", [(LinearScore, 1.0), (LowerBetterLinear, -1.0)])
def test_optimized_uap_with_a_constant_gradient_takes_lr_sign_steps_until_the_clamp(model_cls, sign):
    # mean gain of a linear score has the constant gradient sign*w/B*B = sign*w:
    # every Adam step is exactly lr * sign(sign * w); the clamp stops it
    model = model_cls()
    w = model.w.detach()
    u = OptimizedUAP(size=8, lr=0.01, epochs=2, clamp=0.05).fit(model, _batches(3))
    expected = (1e-4 + sign * torch.clamp(6 * 0.01 * w.sign(), -1, 1)).clamp(-0.05, 0.05)
    torch.testing.assert_close(u, expected, rtol=0, atol=1e-6)
    u = OptimizedUAP(size=8, lr=0.001, epochs=1).fit(model, _batches(3))
    torch.testing.assert_close(u, 1e-4 + sign * 3 * 0.001 * w.sign(), rtol=0, atol=1e-6)


@pytest.mark.parametrize("model_cls,sign", [(LinearScore, 1.0), (LowerBetterLinear, -1.0)])
def test_cumulative_uap_sums_the_batch_mean_gradients_and_clamps(model_cls, sign):
    model = model_cls()  # score_range (0, 1): the normalised gain is sign * score
    w = model.w.detach()
    u = CumulativeUAP(size=8, lr=0.01, epochs=1).fit(model, _batches(3))
    torch.testing.assert_close(u, (1e-4 + sign * 3 * 0.01 * w).clamp(-0.1, 0.1), rtol=0, atol=1e-6)
    u = CumulativeUAP(size=8, epochs=5).fit(model, _batches(2))  # lr 1: saturates at the clamp
    torch.testing.assert_close(u, (1e-4 + sign * 10 * w).clamp(-0.1, 0.1), rtol=0, atol=1e-6)


# ------------------------------------------------------- size handling ---
def test_train_view_centre_crops_only_the_sides_longer_than_size():
    x = torch.arange(2 * 3 * 10 * 6, dtype=torch.float32).view(2, 3, 10, 6)
    v = train_view(x, 4)
    assert torch.equal(v, x[..., 3:7, 1:5])
    assert torch.equal(train_view(x, 8), x[..., 1:9, :])  # width 6 < 8 kept whole


def test_larger_images_are_centre_cropped_and_smaller_ones_train_the_top_left_corner():
    # the cumulative UAP's closed form shows which pixels received gradient
    model = LinearScore(size=8)
    w = model.w.detach()
    big = [torch.full((1, 3, 12, 12), 0.5)]
    u = CumulativeUAP(size=8, lr=0.01, epochs=1).fit(model, big)  # centre 8x8 crop of the 12x12 image
    torch.testing.assert_close(u, 1e-4 + 0.01 * w, rtol=0, atol=1e-7)

    class Corner(LinearScore):  # scores a 6x6 image with the top-left 6x6 of w
        def forward(self, x):
            return (self.w[..., : x.shape[-2], : x.shape[-1]] * x).flatten(1).sum(1)

    small = [torch.full((2, 3, 6, 6), 0.5), torch.full((1, 3, 8, 8), 0.5)]  # sizes vary between batches
    u = CumulativeUAP(size=8, lr=0.01, epochs=1).fit(Corner(size=8), small)
    expected = 1e-4 + 0.01 * w.clone()
    expected[..., :6, :6] += 0.01 * w[..., :6, :6]
    torch.testing.assert_close(u, expected, rtol=0, atol=1e-7)


# --------------------------------------------------------------- apply ---
def test_apply_tiles_from_the_top_left_and_clamps():
    uap = torch.arange(3 * 2 * 3, dtype=torch.float32).view(1, 3, 2, 3) / 100 - 0.05
    x = torch.rand(2, 3, 5, 7)
    x[0, 0, 0, 0], x[1, 2, 4, 6] = 0.999, 0.001
    out = UniversalAttack.apply(uap, x, amplitude=0.4)
    i = torch.arange(5).view(5, 1) % 2
    j = torch.arange(7).view(1, 7) % 3
    tiled = uap[0][:, i, j]  # 3 x 5 x 7
    torch.testing.assert_close(out, (x + 0.4 * tiled).clamp(0, 1), rtol=0, atol=0)
    big = UniversalAttack.apply(torch.ones(1, 3, 2, 2), x, amplitude=5.0)
    assert torch.equal(big, torch.ones_like(x))


# ---------------------------------------------------- clamps and seeds ---
def _tiny_generative(**kw):
    return GenerativeUAP(size=16, ngf=4, depth=3, **kw)


@pytest.mark.parametrize(
    "attack,limit",
    [(OptimizedUAP(size=8, lr=0.05), 0.1), (CumulativeUAP(size=8), 0.1), (_tiny_generative(lr=0.01), 10 / 255)],
    ids=["uap", "cumulative-uap", "generative-uap"],
)
def test_fit_respects_the_clamp_and_is_deterministic_under_a_seed(attack, limit):
    size = attack.size
    model = LinearScore(size=size)
    batches = _batches(2, b=2, size=size)
    torch.manual_seed(7)
    u1 = attack.fit(model, iter(batches))  # a one-shot iterator still serves every epoch
    torch.manual_seed(7)
    u2 = attack.fit(model, batches)
    assert u1.shape == (1, 3, size, size)
    assert torch.equal(u1, u2)
    assert u1.abs().max() <= limit + 1e-7
    assert u1.abs().max() > 1e-3  # it moved


def test_generative_uap_learns_to_raise_a_linear_score():
    model = LinearScore(size=16)
    batches = _batches(4, b=2, size=16)
    torch.manual_seed(0)
    u = _tiny_generative(lr=0.01, epochs=3).fit(model, batches)
    torch.manual_seed(0)
    untrained = _tiny_generative(lr=1e-12, epochs=1).fit(model, batches[:1])
    gain = (model.w * u).sum()
    assert gain > 0 and gain > (model.w * untrained).sum()


def test_generative_uap_rejects_a_size_the_unet_cannot_halve():
    with pytest.raises(ParameterError, match="size"):
        GenerativeUAP(size=100, depth=3)


def test_unet_at_reference_depth_has_the_reference_shapes():
    net = UnetGenerator(3, 3, ngf=2, depth=8)
    out = net(torch.rand(1, 3, 256, 256))
    assert out.shape == (1, 3, 256, 256) and out.abs().max() <= 1
    assert [m.out_channels for m in net.down] == [2, 4, 8, 16, 16, 16, 16, 16]
    assert [m.out_channels for m in net.up] == [16, 16, 16, 16, 8, 4, 2, 3]
    assert [m.in_channels for m in net.up] == [16, 32, 32, 32, 32, 16, 8, 4]


@pytest.mark.parametrize("cls,bad", [(OptimizedUAP, {"lr": 0.0}), (CumulativeUAP, {"clamp": -1.0}),
                                     (GenerativeUAP, {"eps": 0.0}), (OptimizedUAP, {"epochs": 0})])
def test_bad_parameters_are_refused(cls, bad):
    with pytest.raises(ParameterError, match=list(bad)[0]):
        cls(**bad)


# ----------------------------------------------------------- plugins ---
def test_the_uap_plugin_registers_the_three_universal_attacks(plugin):
    import iqabench_plugins.uap as uap_plugin
    from iqabench.plugins import registry

    if "uap" not in registry("attack"):  # not yet an installed entry point
        plugin(uap_plugin, "uap-under-test")
    reg = registry("attack")
    for name in ("uap", "cumulative-uap", "generative-uap"):
        assert reg[name].obj.kind == "universal" and reg[name].obj.description
    o = reg["uap"].obj()
    assert (o.size, o.init, o.lr, o.epochs, o.clamp) == (256, 1e-4, 0.001, 5, 0.1)
    g = reg["generative-uap"].obj()
    assert (g.ngf, g.eps, g.lr, g.epochs) == (64, 10 / 255, 0.001, 1)


# -------------------------------------------------- the default model ---
def test_fit_on_the_default_model_and_embedded_training_images():
    import iqabench

    model = iqabench.get_model("cnniqa").requires_grad_(False)
    ds = iqabench.get_dataset("embedded")
    items = list(ds.items("train"))[::97][:6]
    imgs = torch.stack([ds.load(it) for it in items])  # 192 x 192
    batches = [imgs[:3], imgs[3:]]
    torch.manual_seed(0)
    u = OptimizedUAP(size=64, lr=0.01, epochs=1).fit(model, batches)  # centre 64 crops
    assert u.shape == (1, 3, 64, 64) and u.abs().max() <= 0.1
    x = train_view(imgs, 64)
    with torch.no_grad():
        before = model(x).mean()
        after = model(UniversalAttack.apply(u, x, 0.8)).mean()
    assert after > before
