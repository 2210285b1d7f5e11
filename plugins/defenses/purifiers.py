"""Input purification defences: filters, resampling, quantisation and random transforms.

Each is an :class:`~iqabench.contracts.InputDefense` with the defaults of
its ``metrics/defences/<name>/run.py`` in the defences benchmark of the MSU
group (Gushchin et al., ICML 2025); where that code calls a torchvision
transform, the same operation is written out in torch (torchvision is not a
dependency) and the test suite checks it against a scipy/numpy oracle.

Random purifiers draw from torch's global CPU generator (then move the
draw to the images' device), which the harness seeds per batch: a resumed
run draws what an uninterrupted one would, on any device.  As in the
reference, one draw serves the whole batch for crop and rotation (a
torchvision transform applied to a batch tensor draws once).
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Literal

import torch
import torch.nn.functional as F

from iqabench.contracts import InputDefense, check_positive
from iqabench.errors import ParameterError
from .. import bib


def _odd_kernel(defense: InputDefense, field: str = "kernel_size") -> None:
    k = getattr(defense, field)
    if isinstance(k, bool) or not isinstance(k, int) or k < 1 or k % 2 == 0:
        raise ParameterError(f"{defense.name!r} parameter {field!r} must be an odd integer >= 1, got {k!r}")


def gaussian_taps(kernel_size: int, sigma: float, like: torch.Tensor) -> torch.Tensor:
    """torchvision's 1-D Gaussian kernel: ``exp(-t^2 / 2 sigma^2)`` at ``t = -(k-1)/2 .. (k-1)/2``, summing to 1."""
    t = torch.linspace(-(kernel_size - 1) / 2, (kernel_size - 1) / 2, kernel_size, dtype=like.dtype,
                       device=like.device)
    taps = torch.exp(-0.5 * (t / sigma) ** 2)
    return taps / taps.sum()


def gaussian_blur(x: torch.Tensor, kernel_size: int, sigma: float) -> torch.Tensor:
    """Separable Gaussian blur with reflect padding (torchvision's ``GaussianBlur`` on a tensor)."""
    taps = gaussian_taps(kernel_size, sigma, x)
    c, pad = x.shape[1], kernel_size // 2
    y = F.pad(x, (pad, pad, pad, pad), mode="reflect")
    y = F.conv2d(y, taps.view(1, 1, 1, -1).repeat(c, 1, 1, 1), groups=c)
    return F.conv2d(y, taps.view(1, 1, -1, 1).repeat(c, 1, 1, 1), groups=c)


def median_blur(x: torch.Tensor, kernel_size: int) -> torch.Tensor:
    """The median of each ``k x k`` window (reflect padding); torch's median of an odd count is the middle value."""
    pad = kernel_size // 2
    y = F.pad(x, (pad, pad, pad, pad), mode="reflect")
    windows = y.unfold(2, kernel_size, 1).unfold(3, kernel_size, 1)
    return windows.reshape(*x.shape, kernel_size * kernel_size).median(dim=-1).values


def gaussian_noise(x: torch.Tensor, sigma: float, clamp: bool = True) -> torch.Tensor:
    """``x + sigma * N(0, I)`` drawn from torch's global CPU generator (any device
    draws the same), clamped to [0, 1] unless ``clamp`` is False."""
    noisy = x + sigma * torch.randn(x.shape, dtype=x.dtype).to(x.device)
    return noisy.clamp(0.0, 1.0) if clamp else noisy


@dataclass
class GaussianBlur(InputDefense):
    """Gaussian blur; ``sigma`` 0 (the default) takes OpenCV's rule for the kernel size,
    ``0.3 ((k - 1) / 2 - 1) + 0.8`` (0.8 at k = 3), as the reference does."""

    name = "gaussian-blur"
    citation = bib.GUARDIANS
    description = "Input purification: Gaussian blur (kernel 3, sigma by OpenCV's rule; MSU defences benchmark)"

    kernel_size: int = 3
    sigma: float = 0.0

    def __post_init__(self) -> None:
        super().__post_init__()
        _odd_kernel(self)
        if self.sigma < 0 or not math.isfinite(self.sigma):
            raise ParameterError(f"'gaussian-blur' parameter 'sigma' must be >= 0 (0: from the kernel size), "
                                 f"got {self.sigma!r}")

    def effective_sigma(self) -> float:
        return self.sigma or 0.3 * ((self.kernel_size - 1) * 0.5 - 1) + 0.8

    def purify(self, x):
        return gaussian_blur(x, self.kernel_size, self.effective_sigma())


@dataclass
class MedianBlur(InputDefense):
    """Median filter over ``kernel_size`` x ``kernel_size`` windows, reflect padding."""

    name = "median-blur"
    citation = bib.GUARDIANS
    description = "Input purification: 3x3 median filter (MSU defences benchmark)"

    kernel_size: int = 3

    def __post_init__(self) -> None:
        super().__post_init__()
        _odd_kernel(self)

    def purify(self, x):
        return median_blur(x, self.kernel_size)


@dataclass
class Unsharp(InputDefense):
    """Unsharp masking ``clip(x + amount (x - blur(x)), 0, 1)`` with a Gaussian blur."""

    name = "unsharp"
    citation = bib.GUARDIANS
    description = "Input purification: unsharp masking (kernel 5, sigma 1, amount 1; MSU defences benchmark)"

    kernel_size: int = 5
    sigma: float = 1.0
    amount: float = 1.0

    def __post_init__(self) -> None:
        super().__post_init__()
        _odd_kernel(self)
        check_positive(self, "sigma", "amount")

    def purify(self, x):
        return (x + (x - gaussian_blur(x, self.kernel_size, self.sigma)) * self.amount).clamp(0.0, 1.0)


@dataclass
class Resize(InputDefense):
    """Bilinear (antialiased) resize by ``scale``; ``restore = True`` resizes back to
    the input size (down and up).  The reference only downscales (the model scores
    the smaller image): ``restore = False``."""

    name = "resize"
    citation = bib.GUARDIANS
    description = "Input purification: bilinear antialiased resize by 0.5 (MSU defences benchmark); restore=true resizes back"

    scale: float = 0.5
    restore: bool = False

    def __post_init__(self) -> None:
        super().__post_init__()
        check_positive(self, "scale")

    def purify(self, x):
        h, w = x.shape[-2:]
        size = (max(1, int(h * self.scale)), max(1, int(w * self.scale)))
        y = F.interpolate(x, size=size, mode="bilinear", align_corners=False, antialias=True)
        if self.restore:
            y = F.interpolate(y, size=(h, w), mode="bilinear", align_corners=False, antialias=True)
        return y.clamp(0.0, 1.0)


@dataclass
class BitDepth(InputDefense):
    """Colour quantisation to ``levels`` levels per channel: ``round(x (L - 1)) / (L - 1)``
    (the reference's ``color-quantization``, 16 levels).  Rounding has no useful
    gradient: an adaptive attacker goes through it by BPDA."""

    name = "bit-depth"
    citation = bib.GUARDIANS
    description = "Input purification: colour quantisation to 16 levels per channel (MSU defences benchmark)"
    differentiable = False

    levels: int = 16

    def __post_init__(self) -> None:
        super().__post_init__()
        if isinstance(self.levels, bool) or not isinstance(self.levels, int) or self.levels < 2:
            raise ParameterError(f"'bit-depth' parameter 'levels' must be an integer >= 2, got {self.levels!r}")

    def purify(self, x):
        n = self.levels - 1
        return torch.round(x * n) / n


@dataclass
class Flip(InputDefense):
    """Flip along ``axes``: ``"both"`` (the reference's axes [2, 3], a 180-degree rotation),
    ``"horizontal"`` or ``"vertical"``."""

    name = "flip"
    citation = bib.GUARDIANS
    description = "Input purification: flip both axes (MSU defences benchmark)"

    axes: Literal["both", "horizontal", "vertical"] = "both"

    def purify(self, x):
        dims = {"both": [2, 3], "horizontal": [3], "vertical": [2]}[self.axes]
        return torch.flip(x, dims)


@dataclass
class RandomNoise(InputDefense):
    """Additive Gaussian noise of std ``sigma``, clamped to [0, 1]."""

    name = "random-noise"
    citation = bib.GUARDIANS
    description = "Input purification: additive Gaussian noise, sigma 0.01 (MSU defences benchmark)"
    random = True

    sigma: float = 0.01

    def __post_init__(self) -> None:
        super().__post_init__()
        check_positive(self, "sigma")

    def purify(self, x):
        return gaussian_noise(x, self.sigma)


@dataclass
class RandomCrop(InputDefense):
    """A random ``size`` x ``size`` crop (one position per batch, as torchvision's
    transform on a batch tensor); an image side under ``size`` is kept whole."""

    name = "random-crop"
    citation = bib.GUARDIANS
    description = "Input purification: random 128 px crop (MSU defences benchmark)"
    random = True

    size: int = 128

    def __post_init__(self) -> None:
        super().__post_init__()
        check_positive(self, "size")

    def purify(self, x):
        h, w = x.shape[-2:]
        sh, sw = min(self.size, h), min(self.size, w)
        top = int(torch.randint(0, h - sh + 1, (1,)))
        left = int(torch.randint(0, w - sw + 1, (1,)))
        return x[..., top: top + sh, left: left + sw]


def rotate(x: torch.Tensor, degrees: float) -> torch.Tensor:
    """Rotate about the image centre by ``degrees`` (counter-clockwise), nearest
    neighbour, zero fill -- torchvision's ``rotate`` defaults."""
    theta = math.radians(degrees)
    h, w = x.shape[-2:]
    cos, sin = math.cos(theta), math.sin(theta)
    # output pixel (normalised, align_corners=False) -> input pixel; the aspect
    # ratio enters because normalised units differ along the two axes
    mat = torch.tensor([[cos, -sin * h / w, 0.0], [sin * w / h, cos, 0.0]], dtype=x.dtype, device=x.device)
    grid = F.affine_grid(mat.expand(x.shape[0], 2, 3), list(x.shape), align_corners=False)
    return F.grid_sample(x, grid, mode="nearest", padding_mode="zeros", align_corners=False)


@dataclass
class RandomRotate(InputDefense):
    """Rotation by an angle drawn uniformly in [-angle_limit, angle_limit] degrees (one per batch)."""

    name = "random-rotate"
    citation = bib.GUARDIANS
    description = "Input purification: random rotation within +-15 degrees (MSU defences benchmark)"
    random = True

    angle_limit: float = 15.0

    def __post_init__(self) -> None:
        super().__post_init__()
        if self.angle_limit < 0 or not math.isfinite(self.angle_limit):
            raise ParameterError(f"'random-rotate' parameter 'angle_limit' must be >= 0, got {self.angle_limit!r}")

    def purify(self, x):
        angle = float(torch.empty(1).uniform_(-self.angle_limit, self.angle_limit))
        return rotate(x, angle)


PURIFIERS = (GaussianBlur, MedianBlur, Unsharp, Resize, BitDepth, Flip, RandomNoise, RandomCrop, RandomRotate)
