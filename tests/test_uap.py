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
def _cv2_inter_linear(img, out_h, out_w):
    """numpy: OpenCV's ``resize(..., INTER_LINEAR)`` (its default, what the MSU
    reader calls): half-pixel centres, two taps per axis, no antialiasing,
    source coordinates clamped to the image (``resize.cpp``)."""
    import numpy as np

    def taps(n_in, n_out):
        f = (np.arange(n_out) + 0.5) * (n_in / n_out) - 0.5
        i0 = np.floor(f).astype(int)
        a = f - i0
        a = np.where(i0 < 0, 0.0, a)
        i0 = np.clip(i0, 0, n_in - 1)
        a = np.where(i0 >= n_in - 1, 0.0, a)
        return i0, np.minimum(i0 + 1, n_in - 1), a

    y0, y1, ay = taps(img.shape[0], out_h)
    x0, x1, ax = taps(img.shape[1], out_w)
    rows = img[y0] * (1 - ay)[:, None, None] + img[y1] * ay[:, None, None]
    return rows[:, x0] * (1 - ax)[None, :, None] + rows[:, x1] * ax[None, :, None]


def _reference_view(img, size=256):
    """numpy: the MSU reader's ``center_crop`` (``methods/utils/read_dataset.py``)
    with its 256 generalised to ``size``: an image with a side under 2 size
    (512) is resized to size x size, any other centre-cropped to size x size."""
    h, w = img.shape[:2]
    if w / 2 < size or h / 2 < size:
        return _cv2_inter_linear(img, size, size)
    y, x = h / 2 - size / 2, w / 2 - size / 2
    return img[int(y): int(y + size), int(x): int(x + size)]


@pytest.mark.parametrize("shape,size", [((192, 192), 256), ((480, 640), 256), ((511, 900), 256), ((600, 700), 256),
                                        ((601, 777), 256), ((12, 20), 8), ((17, 16), 8), ((8, 8), 8)])
def test_train_view_is_the_reference_readers_resize_or_centre_crop(shape, size):
    import numpy as np

    g = torch.Generator().manual_seed(sum(shape))
    x = torch.rand(2, 3, *shape, generator=g)
    v = train_view(x, size)
    assert v.shape == (2, 3, size, size)
    for i in range(2):
        ref = _reference_view(x[i].permute(1, 2, 0).double().numpy(), size)
        np.testing.assert_allclose(v[i].permute(1, 2, 0).numpy(), ref, rtol=0, atol=1e-5)


@pytest.mark.parametrize("shape", [(192, 192), (480, 640), (300, 257)])
def test_the_resize_oracle_is_opencvs_inter_linear(shape):
    cv2 = pytest.importorskip("cv2")
    import numpy as np

    img = (np.random.default_rng(0).random((*shape, 3)) * 255).astype(np.float32)  # as the reader: 0-255 float32
    np.testing.assert_allclose(_cv2_inter_linear(img.astype(np.float64), 256, 256), cv2.resize(img, (256, 256)),
                               rtol=0, atol=1e-3)


def test_train_view_crop_keeps_the_old_view_centre_crops_only_the_sides_longer_than_size():
    x = torch.arange(2 * 3 * 10 * 6, dtype=torch.float32).view(2, 3, 10, 6)
    v = train_view(x, 4, "crop")
    assert torch.equal(v, x[..., 3:7, 1:5])
    assert torch.equal(train_view(x, 8, "crop"), x[..., 1:9, :])  # width 6 < 8 kept whole


@pytest.mark.parametrize("view", ["resize", "crop"])
def test_which_pixels_of_the_uap_train_on_small_and_large_images(view):
    # the cumulative UAP's closed form on a linear score shows which pixels
    # received gradient: a 6 px image resized to 8 trains all of them, kept
    # whole ("crop") only the top-left 6 x 6; a 16 px image (>= 2 size) is
    # centre-cropped either way
    class AnySize(LinearScore):  # s = sum(w x) with w cut to the image: gradient w[:h, :w] at any size
        def forward(self, x):
            return (self.w[..., : x.shape[-2], : x.shape[-1]] * x).flatten(1).sum(1)

    model = AnySize(size=8)
    w = model.w.detach()
    small = [torch.full((1, 3, 6, 6), 0.5)]
    u = CumulativeUAP(size=8, lr=0.01, epochs=1, view=view).fit(model, small)
    expected = torch.full_like(w, 1e-4)
    if view == "resize":
        expected = expected + 0.01 * w
    else:
        expected[..., :6, :6] += 0.01 * w[..., :6, :6]
    torch.testing.assert_close(u, expected, rtol=0, atol=1e-7)
    big = [torch.full((1, 3, 16, 16), 0.5)]
    u = CumulativeUAP(size=8, lr=0.01, epochs=1, view=view).fit(model, big)
    torch.testing.assert_close(u, 1e-4 + 0.01 * w, rtol=0, atol=1e-7)


def test_every_universal_attack_has_the_view_parameter_defaulting_to_the_reference():
    for cls in (OptimizedUAP, CumulativeUAP, GenerativeUAP):
        assert cls().view == "resize"
        with pytest.raises(ParameterError, match="view"):
            cls(view="stretch")


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
    from iqabench.registry import registry

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
