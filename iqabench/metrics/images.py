"""Full-reference image metrics of attacked images against their sources.

Batched torch implementations: every function takes two ``B x C x H x W``
float tensors (RGB in [0, 1] in the benchmark, C = 3, but any C works) on any
device and returns a ``Tensor[B]``, one value per image, computed without a
python loop over images.  Internally the arithmetic is done in float64
(float32 on MPS, which has no float64) so that the results agree with
scikit-image to ~1e-7; the result is returned in the inputs' floating dtype
on their device.

PSNR of identical images
------------------------
``psnr`` returns ``+inf`` for an image pair with zero MSE (as
``skimage.metrics.peak_signal_noise_ratio`` does, without its divide-by-zero
warning).  It is not capped: a cap is an arbitrary number that would leak
into averages unnoticed.  Callers averaging PSNR over images must decide what
to do with ``inf`` (e.g. report the number of unchanged images separately or
average the MSE instead).
"""
from __future__ import annotations

import math

import torch

__all__ = ["linf", "mse", "psnr", "ssim"]


def _work_dtype(x: torch.Tensor) -> torch.dtype:
    return torch.float32 if x.device.type == "mps" else torch.float64


def _check(x: torch.Tensor, y: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.dtype]:
    if not isinstance(x, torch.Tensor) or not isinstance(y, torch.Tensor):
        raise TypeError("image metrics take torch tensors")
    if x.ndim != 4:
        raise ValueError(f"expected B x C x H x W images, got shape {tuple(x.shape)}")
    if x.shape != y.shape:
        raise ValueError(f"image shapes differ: {tuple(x.shape)} vs {tuple(y.shape)}")
    out_dtype = torch.promote_types(x.dtype, y.dtype)
    if not out_dtype.is_floating_point:
        out_dtype = torch.get_default_dtype()
    work = _work_dtype(x)
    return x.to(work), y.to(work), out_dtype


def mse(x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    """Mean squared error per image (over channels and pixels)."""
    x, y, out = _check(x, y)
    return (x - y).pow(2).flatten(1).mean(1).to(out)


def psnr(x: torch.Tensor, y: torch.Tensor, data_range: float = 1.0) -> torch.Tensor:
    """``10 log10(data_range^2 / MSE)`` per image; ``+inf`` for identical images."""
    if not data_range > 0:
        raise ValueError(f"data_range must be > 0, got {data_range}")
    x, y, out = _check(x, y)
    err = (x - y).pow(2).flatten(1).mean(1)
    # err == 0 -> log10(0) = -inf -> +inf; no warning in torch
    return (20.0 * math.log10(data_range) - 10.0 * torch.log10(err)).to(out)


def linf(x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    """L-infinity distance ``max |x - y|`` per image."""
    x, y, out = _check(x, y)
    return (x - y).abs().flatten(1).amax(1).to(out)


def _gaussian_taps(sigma: float, radius: int) -> list[float]:
    # scipy.ndimage's kernel: exp(-t^2 / (2 sigma^2)) on t = -radius..radius, sum 1
    # (python floats: the taps are scalars, no device round trip)
    g = [math.exp(-0.5 * (t / sigma) ** 2) for t in range(-radius, radius + 1)]
    total = math.fsum(g)
    return [v / total for v in g]


def _valid_filter(t: torch.Tensor, taps: list[float], dim: int) -> torch.Tensor:
    """'Valid' 1-D correlation along ``dim`` as a weighted sum of shifted
    slices (a loop over the taps only; much faster than a 1-channel float64
    conv2d on CPU, and the same on any device)."""
    n = t.shape[dim] - len(taps) + 1
    out = taps[0] * t.narrow(dim, 0, n)
    for k in range(1, len(taps)):
        out.add_(t.narrow(dim, k, n), alpha=taps[k])
    return out


def ssim(x: torch.Tensor, y: torch.Tensor, data_range: float = 1.0, sigma: float = 1.5,
         K1: float = 0.01, K2: float = 0.03) -> torch.Tensor:
    """Mean SSIM per image (Wang et al. 2004), per channel then averaged.

    Gaussian window sigma 1.5 truncated at 3.5 sigma (radius 5, 11 taps),
    population covariances, C1 = (K1 R)^2, C2 = (K2 R)^2; the SSIM map is
    averaged over the pixels at least the window radius away from the border
    and then over channels.  This is what
    ``skimage.metrics.structural_similarity(x, y, channel_axis=..., gaussian_weights=True,
    sigma=1.5, use_sample_covariance=False, data_range=1.0)`` computes: skimage
    filters with ``mode='reflect'`` and then crops the border, so the values it
    keeps are exactly those of a 'valid' convolution, used here.
    Images must be at least 11 x 11.
    """
    if not (data_range > 0 and sigma > 0):
        raise ValueError(f"ssim needs data_range > 0 and sigma > 0, got {data_range}, {sigma}")
    x, y, out = _check(x, y)
    radius = int(3.5 * sigma + 0.5)
    win = 2 * radius + 1
    h, w = x.shape[-2:]
    if h < win or w < win:
        raise ValueError(f"SSIM needs images of at least {win}x{win}, got {h}x{w}")
    g = _gaussian_taps(sigma, radius)

    # the five maps to filter, stacked: B x C x 5 x H x W
    maps = torch.stack((x, y, x * x, y * y, x * y), dim=2)
    f = _valid_filter(_valid_filter(maps, g, dim=-2), g, dim=-1)
    ux, uy, uxx, uyy, uxy = f.unbind(2)
    vx = uxx - ux * ux
    vy = uyy - uy * uy
    vxy = uxy - ux * uy
    c1 = (K1 * data_range) ** 2
    c2 = (K2 * data_range) ** 2
    s = ((2 * ux * uy + c1) * (2 * vxy + c2)) / ((ux * ux + uy * uy + c1) * (vx + vy + c2))
    return s.flatten(2).mean(2).mean(1).to(out)
