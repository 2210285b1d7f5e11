"""Tests of iqabench.imagemetrics against hand arithmetic and scikit-image."""
from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from skimage import data as skdata
from skimage.metrics import peak_signal_noise_ratio, structural_similarity

from iqabench.metrics.images import linf, mse, psnr, ssim


def _sk_ssim(x: torch.Tensor, y: torch.Tensor) -> np.ndarray:
    return np.array([
        structural_similarity(xi.double().numpy(), yi.double().numpy(), channel_axis=0,
                              gaussian_weights=True, sigma=1.5,
                              use_sample_covariance=False, data_range=1.0)
        for xi, yi in zip(x.cpu(), y.cpu())])


def _sk_psnr(x: torch.Tensor, y: torch.Tensor) -> np.ndarray:
    return np.array([peak_signal_noise_ratio(xi.double().numpy(), yi.double().numpy(),
                                             data_range=1.0)
                     for xi, yi in zip(x.cpu(), y.cpu())])


def _astronaut() -> torch.Tensor:
    img = skdata.astronaut()                      # 512x512x3 uint8, bundled
    return torch.from_numpy(img).permute(2, 0, 1).double().div(255).unsqueeze(0)


# ------------------------------------------------------------- hand cases

def test_hand_cases():
    x = torch.zeros(2, 3, 4, 4, dtype=torch.float64)
    y = x.clone()
    y[0] += 0.1                # image 0: every value off by 0.1 -> MSE 0.01, PSNR 10 log10(1/0.01) = 20
    y[1, 2, 3, 1] = 0.5        # image 1: one of 3*4*4 = 48 values off by 0.5 -> MSE 0.25/48
    np.testing.assert_allclose(mse(x, y), [0.01, 0.25 / 48])
    np.testing.assert_allclose(psnr(x, y), [20.0, 10 * math.log10(48 / 0.25)])
    np.testing.assert_allclose(linf(x, y), [0.1, 0.5])
    # data_range 255 on the same errors scaled by 255: same PSNR
    np.testing.assert_allclose(psnr(x * 255, y * 255, data_range=255.0),
                               [20.0, 10 * math.log10(48 / 0.25)])


def test_ssim_constant_images_by_hand():
    # constant images: all variances/covariance 0, so
    # SSIM = (2*0.5*0.25 + C1)(0 + C2) / ((0.25 + 0.0625 + C1)(0 + C2))
    #      = (0.25 + 1e-4)/(0.3125 + 1e-4) = 0.2501/0.3126 with C1 = (0.01)^2
    x = torch.full((1, 3, 16, 16), 0.5, dtype=torch.float64)
    y = torch.full((1, 3, 16, 16), 0.25, dtype=torch.float64)
    assert ssim(x, y).item() == pytest.approx(0.2501 / 0.3126, rel=1e-12)


def test_identical_images():
    x = torch.rand(3, 3, 20, 24, generator=torch.Generator().manual_seed(0))
    assert torch.all(torch.isinf(psnr(x, x))) and torch.all(psnr(x, x) > 0)   # +inf, documented
    assert torch.all(mse(x, x) == 0) and torch.all(linf(x, x) == 0)
    torch.testing.assert_close(ssim(x, x), torch.ones(3))


# ------------------------------------------------------ skimage oracles

def test_random_images_against_skimage():
    g = torch.Generator().manual_seed(1)
    x = torch.rand(4, 3, 32, 41, generator=g, dtype=torch.float64)
    y = (x + 0.1 * torch.randn(x.shape, generator=g, dtype=torch.float64)).clamp(0, 1)
    y[3] = torch.rand(3, 32, 41, generator=g, dtype=torch.float64)   # unrelated image
    np.testing.assert_allclose(ssim(x, y).numpy(), _sk_ssim(x, y), atol=1e-4, rtol=0)
    np.testing.assert_allclose(psnr(x, y).numpy(), _sk_psnr(x, y), atol=1e-4, rtol=0)
    np.testing.assert_allclose(linf(x, y).numpy(), (x - y).abs().amax((1, 2, 3)).numpy())


def test_natural_image_against_skimage():
    x = _astronaut()
    g = torch.Generator().manual_seed(2)
    eps = 10 / 255
    noisy = (x + 0.05 * torch.randn(x.shape, generator=g, dtype=torch.float64)).clamp(0, 1)
    signed = (x + eps * torch.sign(torch.randn(x.shape, generator=g, dtype=torch.float64))).clamp(0, 1)
    shifted = torch.roll(x, shifts=1, dims=3)
    xb = x.expand(3, -1, -1, -1)
    yb = torch.cat([noisy, signed, shifted])
    want_ssim = _sk_ssim(xb, yb)
    assert want_ssim.min() < 0.9      # the cases are not trivially close to 1
    np.testing.assert_allclose(ssim(xb, yb).numpy(), want_ssim, atol=1e-4, rtol=0)
    np.testing.assert_allclose(psnr(xb, yb).numpy(), _sk_psnr(xb, yb), atol=1e-4, rtol=0)
    assert linf(xb, yb)[1].item() == pytest.approx(eps)
    # float32 input: float32 output, still within 1e-4 of the float64 oracle
    got32 = ssim(xb.float(), yb.float())
    assert got32.dtype == torch.float32
    np.testing.assert_allclose(got32.numpy(), want_ssim, atol=1e-4, rtol=0)


def test_batch_has_no_cross_talk():
    g = torch.Generator().manual_seed(3)
    x = torch.rand(5, 3, 16, 16, generator=g)
    y = torch.rand(5, 3, 16, 16, generator=g)
    for f in (ssim, psnr, mse, linf):
        whole = f(x, y)
        assert whole.shape == (5,)
        singles = torch.cat([f(x[i:i + 1], y[i:i + 1]) for i in range(5)])
        torch.testing.assert_close(whole, singles)


def test_bad_inputs():
    x = torch.rand(1, 3, 16, 16)
    with pytest.raises(ValueError):
        ssim(x, torch.rand(1, 3, 16, 15))
    with pytest.raises(ValueError):
        ssim(torch.rand(1, 3, 10, 16), torch.rand(1, 3, 10, 16))   # smaller than the 11x11 window
    with pytest.raises(ValueError):
        psnr(x[0], x[0])                                          # not B x C x H x W


@pytest.mark.skipif(not torch.cuda.is_available(), reason="no CUDA device")
def test_cuda_matches_cpu():
    g = torch.Generator().manual_seed(4)
    x = torch.rand(2, 3, 64, 64, generator=g)
    y = (x + 0.05 * torch.randn(x.shape, generator=g)).clamp(0, 1)
    for f in (ssim, psnr, mse, linf):
        got = f(x.cuda(), y.cuda())
        assert got.device.type == "cuda"
        torch.testing.assert_close(got.cpu(), f(x, y))
