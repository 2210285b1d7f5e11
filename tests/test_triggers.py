"""Backdoor triggers (REFERENCES.md 2): the blockwise DCT against scipy, the
UAP-DCT injection (rounding, centred padding, linearity in alpha of the
injected coefficients, gradients w.r.t. the pattern, per-image alphas), the
released trigger's published PSNR table on LIVEC images, and the FTrojan,
Blended and WaNet baselines."""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import scipy.fft
import torch

from iqabench.contracts import Trigger
from iqabench.errors import ParameterError
from iqabench.metrics.images import psnr
from iqabench_plugins.backdoor.blended import Blended
from iqabench_plugins.backdoor.dct import block_dct2, block_idct2, blockify, deblockify
from iqabench_plugins.backdoor.ftrojan import FTrojan
from iqabench_plugins.backdoor.uap_dct import (
    MID64_POSITIONS,
    UAPDCT,
    YCBCR_FROM_RGB,
    coefficient_pattern,
    pad_to,
)
from iqabench_plugins.backdoor.wanet import WaNet

SHARED = Path(__file__).resolve().parents[2] / "shared"
LIVEC = SHARED / "data" / "livec-sample"
RELEASED = SHARED / "data" / "baiqa" / "trigger_p0.2_adam_e8.npy"

#: REFERENCES.md 2: PSNR (dB) of the released trigger before the clamp
PUBLISHED_PSNR = {1.0: 29.8, 0.75: 32.3, 0.5: 35.9, 0.25: 41.9, 0.1: 49.8}


def _images(b=2, h=48, w=64, lo=64, hi=192, seed=0, dtype=torch.float64):
    """8-bit images (k / 255), by default well inside (0, 1) so that no clamp acts."""
    g = torch.Generator().manual_seed(seed)
    return (torch.randint(lo, hi, (b, 3, h, w), generator=g) / 255.0).to(dtype)


def _pattern(seed=1):
    g = torch.Generator().manual_seed(seed)
    return (torch.rand(3, 64, generator=g, dtype=torch.float64) * 2 - 1) * 300.0


def _ycbcr_block_dct(diff_rgb: torch.Tensor) -> torch.Tensor:
    """Block DCT of an RGB difference image (in [0, 1] units) in YCbCr at range
    255 (the colour offsets cancel in a difference), as B x 3 x bh x 16 x bw x 16."""
    m = torch.tensor(YCBCR_FROM_RGB, dtype=torch.float64)
    d = torch.einsum("vc,bchw->bvhw", m, diff_rgb.double() * 255.0)
    b, c, h, w = d.shape
    return block_dct2(d).view(b, c, h // 16, 16, w // 16, 16)


def _expected(alpha: float, t: torch.Tensor) -> torch.Tensor:
    return (alpha * coefficient_pattern(t.double())).view(1, 3, 1, 16, 1, 16)


# ------------------------------------------------------------------- DCT ---
def _scipy_blockwise(x: np.ndarray, fn) -> np.ndarray:
    out = np.empty_like(x)
    for r in range(0, x.shape[-2], 16):
        for c in range(0, x.shape[-1], 16):
            out[..., r : r + 16, c : c + 16] = fn(x[..., r : r + 16, c : c + 16], type=2, norm=None, axes=(-2, -1))
    return out


def test_block_dct_and_its_inverse_match_scipy_per_block_in_float64():
    g = torch.Generator().manual_seed(0)
    x = torch.randn(2, 3, 32, 48, generator=g, dtype=torch.float64) * 100
    coeffs = block_dct2(x)
    ref = _scipy_blockwise(x.numpy(), scipy.fft.dctn)
    np.testing.assert_allclose(coeffs.numpy(), ref, rtol=0, atol=1e-9)
    np.testing.assert_allclose(block_idct2(coeffs).numpy(), x.numpy(), rtol=0, atol=1e-9)
    np.testing.assert_allclose(block_idct2(torch.from_numpy(ref)).numpy(),
                               _scipy_blockwise(ref, scipy.fft.idctn), rtol=0, atol=1e-9)
    # unnormalised: the DC coefficient of a constant block is 4 * 256 * value
    assert block_dct2(torch.ones(16, 16, dtype=torch.float64))[0, 0].item() == pytest.approx(1024.0)
    # float32 works too, in float32; dtype= forces double
    assert block_dct2(x.float()).dtype == torch.float32
    assert block_dct2(x.float(), dtype=torch.float64).dtype == torch.float64
    assert torch.equal(deblockify(blockify(x)), x)
    with pytest.raises(ValueError, match="multiple"):
        block_dct2(torch.zeros(1, 3, 20, 32))


# -------------------------------------------------------------- UAP-DCT ---
def test_alpha_zero_returns_the_input_up_to_the_8_bit_rounding():
    g = torch.Generator().manual_seed(3)
    x = torch.rand(2, 3, 37, 50, generator=g)  # not 8-bit, not a multiple of 16
    trig = UAPDCT().set_pattern(_pattern())
    for clamp in (True, False):
        y = trig.apply(x, 0.0, clamp=clamp)
        assert y.shape == x.shape and y.dtype == x.dtype
        assert (y - x).abs().max().item() <= 0.5 / 255 + 1e-6
        q = torch.round(x.double() * 255) / 255
        assert (y.double() - q).abs().max().item() < 1e-5  # the rest is float32 arithmetic


def test_pad_is_centred_and_the_block_grid_is_that_of_the_padded_image():
    x = _images(1, 37, 50)
    xp, pads = pad_to(x)
    assert pads == (7, 7, 5, 6) and xp.shape[-2:] == (48, 64)  # (left, right, top, bottom)
    trig = UAPDCT().set_pattern(_pattern())
    y = trig.apply(x, 0.7, clamp=False)
    y_padded = trig.apply(xp, 0.7, clamp=False)
    torch.testing.assert_close(y, y_padded[..., 5:42, 7:57], rtol=0, atol=1e-12)


@pytest.mark.parametrize("alpha", [0.3, 1.0, -0.6])
def test_injected_coefficients_are_alpha_times_t_at_the_64_positions_and_zero_elsewhere(alpha):
    x = _images(2, 48, 64)  # 8-bit, inside (0, 1): rounding and clamp inactive
    t = _pattern()
    trig = UAPDCT().set_pattern(t)
    y = trig.apply(x, alpha, clamp=False)
    assert 0 < y.min() and y.max() < 1
    torch.testing.assert_close(trig.apply(x, alpha), y)  # so the clamp changes nothing here
    coeffs = _ycbcr_block_dct(y - x)
    # the release's colour constants make to_rgb(to_ycbcr(q)) differ from q by a
    # constant ~7e-5/255 (its inverse offsets are 6-digit, its matrices 9-digit):
    # ~0.05 on the DC coefficients, < 1e-3 elsewhere
    torch.testing.assert_close(coeffs, _expected(alpha, t).expand_as(coeffs), rtol=0, atol=0.06)
    off_dc = (coeffs - _expected(alpha, t)).clone()
    off_dc[..., 0, :, 0] = 0
    assert off_dc.abs().max().item() < 1e-3
    # against the alpha = 0 output the injection is exactly linear
    coeffs0 = _ycbcr_block_dct(y - trig.apply(x, 0.0, clamp=False))
    torch.testing.assert_close(coeffs0, _expected(alpha, t).expand_as(coeffs0), rtol=0, atol=1e-6)


def test_positions_are_the_releases_mid_64_slice_of_its_zigzag_table():
    assert len(MID64_POSITIONS) == len(set(MID64_POSITIONS)) == 64
    # rows 6..9 of the release's 16x16 raster->zigzag table hold exactly these values;
    # the zigzag order numbers 96..159 are its middle 64 -- the release uses the values
    # as raster positions: check the first and last of each row of the table
    assert MID64_POSITIONS[0::16] == (21, 35, 36, 54) and MID64_POSITIONS[15::16] == (201, 219, 220, 234)
    assert all(0 < p < 256 for p in MID64_POSITIONS)


def test_the_trigger_is_additive_and_independent_of_the_image():
    t = _pattern()
    trig = UAPDCT().set_pattern(t)
    a, b = _images(1, 37, 50, seed=0), _images(1, 37, 50, seed=1)
    da = trig.apply(a, 0.8, clamp=False) - trig.apply(a, 0.0, clamp=False)
    db = trig.apply(b, 0.8, clamp=False) - trig.apply(b, 0.0, clamp=False)
    torch.testing.assert_close(da, db, rtol=0, atol=1e-9)


def test_gradients_flow_to_the_pattern_not_to_the_image():
    trig = UAPDCT()
    x = _images(2, 16, 32).requires_grad_(True)
    t = _pattern().requires_grad_(True)
    y = trig.apply_pattern(x, torch.tensor([0.5, -1.0], dtype=torch.float64), t, clamp=False)
    y.pow(2).sum().backward()
    assert t.grad is not None and torch.isfinite(t.grad).all() and (t.grad.abs() > 0).all()
    assert x.grad is None or (x.grad == 0).all()  # round() has no gradient
    # the gradient w.r.t. t is right: the output is linear in t, so for a
    # weighted sum L, L(t + v) - L(t) = <grad L(t), v> for any v
    x0 = _images(1, 16, 16)
    wts = torch.randn(1, 3, 16, 16, generator=torch.Generator().manual_seed(5), dtype=torch.float64)
    t0 = _pattern().requires_grad_(True)
    loss = (wts * trig.apply_pattern(x0, 0.7, t0, clamp=False)).sum()
    (grad,) = torch.autograd.grad(loss, t0)
    v = _pattern(seed=9)
    with torch.no_grad():
        change = (wts * trig.apply_pattern(x0, 0.7, t0 + v, clamp=False)).sum() - loss
    assert change.item() == pytest.approx((grad * v).sum().item(), rel=1e-9, abs=1e-9)


def _all_triggers():
    return [UAPDCT().set_pattern(_pattern()), FTrojan(), Blended(), WaNet()]


@pytest.mark.parametrize("trig", _all_triggers(), ids=lambda t: t.name)
def test_a_per_image_alpha_equals_applying_each_image_alone(trig):
    x = _images(3, 37, 50, lo=0, hi=256, dtype=torch.float32)
    alpha = torch.tensor([1.0, -0.5, 0.25])
    y = trig.apply(x, alpha)
    assert y.shape == x.shape and y.dtype == x.dtype and 0 <= y.min() and y.max() <= 1
    for i in range(3):
        torch.testing.assert_close(y[i : i + 1], trig.apply(x[i : i + 1], float(alpha[i])), rtol=0, atol=1e-5)
    torch.testing.assert_close(trig(x, 0.4), trig.apply(x, torch.full((3,), 0.4)), rtol=0, atol=1e-6)
    with pytest.raises(ValueError, match="alpha has 2 values"):
        trig.apply(x, torch.ones(2))


def test_uap_dct_pattern_errors_name_the_problem(tmp_path):
    with pytest.raises(ParameterError, match="no pattern"):
        UAPDCT().apply(_images(1, 16, 16))
    with pytest.raises(ParameterError, match="not found"):
        UAPDCT(pattern=str(tmp_path / "missing.npy"))
    np.save(tmp_path / "bad.npy", np.zeros((3, 63), dtype=np.float32))
    with pytest.raises(ParameterError, match="shape"):
        UAPDCT(pattern=str(tmp_path / "bad.npy"))
    np.save(tmp_path / "good.npy", _pattern().numpy().astype(np.float32))
    assert UAPDCT(pattern=str(tmp_path / "good.npy")).t.shape == (3, 64)
    with pytest.raises(ValueError, match="B x 3 x H x W"):
        UAPDCT().set_pattern(_pattern()).apply(torch.zeros(3, 16, 16))


# ----------------------------------------------------- released trigger ---
@pytest.mark.skipif(not (RELEASED.exists() and (LIVEC / "meta_info.csv").exists()),
                    reason="shared BAIQA data not available")
def test_released_trigger_reproduces_the_published_psnr_table():
    import pandas as pd

    from iqabench.data.imageio import load_image

    meta = pd.read_csv(LIVEC / "meta_info.csv")
    names = list(meta[meta["split"] == "test"]["img_name"])[:20]
    assert len(names) == 20
    x = torch.stack([load_image(LIVEC / "Images" / n) for n in names])  # 500 x 500: padded to 512
    trig = UAPDCT(pattern=str(RELEASED))
    for alpha, published in PUBLISHED_PSNR.items():
        y = trig.apply(x, alpha, clamp=False)
        if alpha == 1.0:
            per_image = psnr(y, x)  # the benchmark's metric (float64 inside)
        else:  # the same in float32, 8x faster (MSE ~1e-3, relative error ~1e-6)
            per_image = -10 * torch.log10((y - x).pow(2).flatten(1).mean(1))
        mse = (10 ** (-per_image.double() / 10))  # per-image MSE back from the PSNR
        mean_psnr = per_image.double().mean().item()
        psnr_of_mean_mse = -10 * torch.log10(mse.mean()).item()  # images of equal size
        # both conventions agree: before the clamp the trigger is additive and
        # image-independent, so every image has the same MSE
        assert per_image.max() - per_image.min() < 0.01
        assert abs(mean_psnr - published) <= 0.2, (alpha, mean_psnr, published)
        assert abs(psnr_of_mean_mse - published) <= 0.2, (alpha, psnr_of_mean_mse, published)
        if alpha == 1.0:
            # after the clamp the PSNR is higher (the clean image is in [0, 1]) and
            # image-dependent: the published table is of the unclamped images
            clamped = psnr(y.clamp(0, 1), x)
            assert (clamped >= per_image - 1e-6).all()
            torch.testing.assert_close(trig.apply(x[:2], alpha), y[:2].clamp(0, 1), rtol=0, atol=0)


# ------------------------------------------------------------ baselines ---
def test_ftrojan_adds_its_magnitude_to_the_64_positions_of_cb_and_cr_only():
    x = _images(2, 48, 64)
    trig = FTrojan()  # magnitude 66
    t = torch.zeros(3, 64, dtype=torch.float64)
    t[1:] = 66.0
    for alpha in (1.0, -0.5):
        y = trig.apply(x, alpha, clamp=False)
        coeffs = _ycbcr_block_dct(y - trig.apply(x, 0.0, clamp=False))
        torch.testing.assert_close(coeffs, _expected(alpha, t).expand_as(coeffs), rtol=0, atol=1e-6)
        assert coeffs[:, 0].abs().max() < 1e-6  # luma untouched
    assert FTrojan(magnitude=33.0).dct_pattern()[1, 0].item() == 33.0


def test_blended_is_the_closed_form_with_a_seeded_uniform_pattern():
    x = _images(2, 37, 50, lo=0, hi=256)
    trig = Blended()  # weight 0.1
    p = trig.pattern(37, 50, dtype=torch.float64)
    assert p.shape == (3, 37, 50) and 0 <= p.min() and p.max() < 1 and abs(p.mean().item() - 0.5) < 0.02
    torch.testing.assert_close(trig.apply(x, 1.0), 0.9 * x + 0.1 * p, rtol=0, atol=1e-12)
    torch.testing.assert_close(trig.apply(x, 0.5), 0.95 * x + 0.05 * p, rtol=0, atol=1e-12)
    # negative alpha: the same form with a negative weight, x - |w| (p - x), then the clamp
    torch.testing.assert_close(trig.apply(x, -1.0, clamp=False), x - 0.1 * (p - x), rtol=0, atol=1e-12)
    torch.testing.assert_close(trig.apply(x, -1.0), (x - 0.1 * (p - x)).clamp(0, 1), rtol=0, atol=1e-12)
    torch.testing.assert_close(trig.apply(x, 0.0), x, rtol=0, atol=0)
    # deterministic under the seed; the pattern depends only on the pixel position
    assert torch.equal(Blended(seed=0).pattern(37, 50), trig.pattern(37, 50))
    assert not torch.equal(Blended(seed=1).pattern(37, 50), trig.pattern(37, 50))
    assert torch.equal(Blended(pattern_size=16).pattern(40, 40)[:, 16:32, 0:16], Blended(pattern_size=16).noise())
    torch.testing.assert_close(trig.pattern(600, 20)[:, :37], trig.pattern(37, 20), rtol=0, atol=0)


def test_wanet_without_strength_is_the_identity():
    x = _images(2, 37, 50, lo=0, hi=256)
    for trig, alpha in ((WaNet(s=0.0), 1.0), (WaNet(), 0.0)):
        torch.testing.assert_close(trig.apply(x, alpha), x, rtol=0, atol=1e-12)
    # in float32 the identity grid's coordinates are not exact: ~1e-6 interpolation
    torch.testing.assert_close(WaNet(s=0.0).apply(x.float(), 1.0), x.float(), rtol=0, atol=2e-5)


def test_wanet_displacement_scales_with_alpha():
    h, w = 40, 56
    trig = WaNet(s=4.0)  # a strong warp, so that the displacement is well measurable
    ramp_x = torch.linspace(0.25, 0.75, w, dtype=torch.float64).expand(1, 3, h, w).contiguous()
    ramp_y = torch.linspace(0.25, 0.75, h, dtype=torch.float64).view(1, 1, h, 1).expand(1, 3, h, w).contiguous()
    disp = trig.displacement(h, w, dtype=torch.float64)  # h x w x 2, (x, y), normalised units
    inner = (slice(None), slice(None), slice(4, h - 4), slice(4, w - 4))  # away from the grid clamp
    for alpha in (1.0, 0.5, -0.5):
        # bilinear sampling reproduces a linear ramp exactly: the output minus the
        # input is the displacement times the ramp's slope (0.25 per normalised unit)
        dx = trig.apply(ramp_x, alpha) - ramp_x
        dy = trig.apply(ramp_y, alpha) - ramp_y
        torch.testing.assert_close(dx[inner], (0.25 * alpha * disp[..., 0]).expand_as(dx)[inner], rtol=0, atol=1e-9)
        torch.testing.assert_close(dy[inner], (0.25 * alpha * disp[..., 1]).expand_as(dy)[inner], rtol=0, atol=1e-9)
    assert disp.abs().max() > 0
    # the noise is k x k, normalised to mean |noise| = 1, seeded
    assert trig.noise().shape == (1, 2, 4, 4) and trig.noise().abs().mean().item() == pytest.approx(1.0)
    assert torch.equal(WaNet(seed=0).noise(), WaNet(seed=0).noise())
    assert not torch.equal(WaNet(seed=1).noise(), WaNet(seed=0).noise())


def test_differentiable_triggers_pass_gradients_to_the_image():
    x = _images(1, 32, 32).requires_grad_(True)
    for trig in (Blended(), WaNet()):
        assert trig.differentiable
        x.grad = None
        trig.apply(x, 1.0).sum().backward()
        assert x.grad is not None and x.grad.abs().sum() > 0
    assert not UAPDCT.differentiable and not FTrojan.differentiable


# --------------------------------------------------------- registration ---
def test_the_plugin_registers_the_four_triggers_with_typed_parameters(plugin):
    from iqabench_plugins import backdoor

    import iqabench
    from iqabench.registry import registry

    if "uap-dct" not in registry("trigger"):  # until the entry point is installed
        plugin(backdoor, "backdoor")
    names = registry("trigger")
    assert {"uap-dct", "ftrojan", "blended", "wanet"} <= set(names)
    assert all(issubclass(names[n].obj, Trigger) for n in ("uap-dct", "ftrojan", "blended", "wanet"))
    assert iqabench.get_trigger("blended", weight="1/20").weight == pytest.approx(0.05)
    assert iqabench.get_trigger("wanet", k="8", s="0.2").k == 8
    assert iqabench.get_trigger("ftrojan").magnitude == 66.0
    with pytest.raises(ParameterError, match="magnitude"):
        iqabench.get_trigger("ftrojan", magnitud="3")
